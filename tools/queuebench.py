"""Jobs through the real queue on this machine's CPU: how many runs at a time, how many threads each.

    python -m tools.queuebench                         # six default jobs: 1x1, 1x2, 2x1 and this machine's plan
    python -m tools.queuebench --jobs 6 --plans 1x1,1x2,2x1,1x4,auto
    python -m tools.queuebench --lone                  # one default job alone, each plan (a demo's speed)
    python -m tools.queuebench --where thread,process --busy 2 --plans auto   # in the server's threads vs
                                                       # worker processes, while 2 threads of "page scripts" run
    python -m tools.queuebench --where thread --busy 1 --switch-ms 5,1        # the interpreter handed over
                                                       # after 5 ms (Python's default) vs 1 ms (the server's)
    python -m tools.queuebench --jobs 2 --strategy full --elsewhere 1 --plans 1x2,1x1,auto   # while another
                                                       # program keeps a core busy

A plan WxT is W workers, each run on T torch threads, fixed; "auto" is tlcore.serve.cores' plan for
this machine (a lone run on every core, the cores shared as runs start). Every plan runs the
same jobs (the app's default image run, tlcore.train.presets.image) through `tlcore.serve.jobs.JobQueue`
with `tlcore.train.recipe.run`, submitted together by as many learners; the data and the model are
loaded once before (the server's warm-up does that too). Prints wall time, jobs per minute, the
mean time from submit to end, and each figure's ratio to the first plan's, measured in the
same run (a shared machine's other work moves absolute times; the load average is printed).

`--where`: the runs train in the queue's threads (`JobQueue`, in this process), in worker processes
(`tlcore.serve.process_jobs.ProcessJobQueue`), or in the queue a class server would start here
(`server`: `tlcore.serve.server_queue()`, one worker per GPU on a GPU machine; the plans do not apply); `--busy N` keeps N threads of
this process busy with pure-Python work meanwhile (30 ms of work, 10 ms asleep, over and over): a
class's page scripts, which hold the interpreter a training thread in the same process needs. The
jobs then are a class experiment's cells: seeds 1..N on the same examples (their frozen features
found after the first), after the server's warm-up (tlcore.train.presets.warm_ups) in the process
that trains. `--elsewhere N` keeps N other programs busy meanwhile (each a loop of pure Python in a
process of its own, at the normal priority: a browser drawing, another service), and the queue's
runs train at the server's nice ($TLS_WORKER_NICE), as a class server's do; the CPU time the
training used is printed too.

Not for: the pages (tools.loadtest drives a whole class through the app).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from tlcore.serve import cores
from tlcore.serve.cores import CpuPlan  # no torch yet: the OpenMP setting below must come first


def parse_plan(text: str, n_cores: int) -> tuple[str, CpuPlan]:
    if text == "auto":
        plan = cores.plan(n_cores)
        return f"auto ({plan.workers}x{plan.threads}, lone {plan.threads_now(1)})", plan
    workers, threads = (int(v) for v in text.lower().split("x"))
    # fixed: a run keeps T threads whatever else runs (threads_now gives T for any number of runs)
    return text, _Fixed(n_cores, workers, threads)


class _Fixed(CpuPlan):
    def threads_now(self, running: int, pages: int = 0, elsewhere: float = 0.0) -> int:  # noqa: ARG002 -- the plan's signature, fixed answer
        return self.threads


def run_plan(plan: CpuPlan, configs: list, where: str = "thread", nice: int = 0) -> dict:
    from tlcore.serve.jobs import JobQueue

    if where == "process":
        from tlcore.serve.process_jobs import ProcessJobQueue

        q = ProcessJobQueue.started(cpu=plan, warm=True)
        q.pool.take().wait_ready(600)  # its warm-up done before the clock starts (returned below)
        q.pool.give_back(q.pool._keeper, True)
    elif where == "server":
        from tlcore import serve

        q = serve.server_queue()  # what a class server runs here: one worker per GPU where there are GPUs
    else:
        q = JobQueue.started(cpu=plan, nice=nice)
    cpu0, t0 = sum(os.times()[:2]), time.perf_counter()
    ids = [(q.submit(c, owner=f"learner-{i}"), f"learner-{i}") for i, c in enumerate(configs)]
    while any(q.get(j, o).state in ("queued", "running") for j, o in ids):
        time.sleep(0.05)
    wall, cpu = time.perf_counter() - t0, sum(os.times()[:2]) - cpu0
    views = [q.get(j, o) for j, o in ids]
    failed = [v.state for v in views if v.state != "done"]
    ends = [v.runs[0].times[-1] - t0_mono for v, t0_mono in zip(views, [_submitted(q, j) for j, _ in ids])]
    if hasattr(q, "close"):
        q.close()
    return {"wall": wall, "cpu": cpu, "per_min": 60 * len(configs) / wall, "mean_end": statistics.mean(ends), "failed": failed}


def _submitted(q, job_id: str) -> float:
    return q._jobs[job_id].submitted  # the queue's own clock (time.monotonic)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=6, help="default jobs per plan (default %(default)s)")
    ap.add_argument("--plans", default="1x1,1x2,2x1,auto", help="comma-separated WxT or auto (default %(default)s)")
    ap.add_argument("--lone", action="store_true", help="one job alone per plan (--jobs 1)")
    ap.add_argument("--epochs", type=int, default=0, help="override the default run's epochs")
    ap.add_argument("--strategy", default="", help="override the default run's strategy (e.g. full)")
    ap.add_argument("--cores", type=int, default=0, help="cores the plans may use (default: this machine's)")
    ap.add_argument(
        "--spin",
        action="store_true",
        help="torch's threads spin while they wait (OpenMP's default); without it they sleep, as the "
        "app's server makes them (tlcore.serve.cores.wait_passively)",
    )
    ap.add_argument("--where", default="thread", help="thread, process, server, comma-separated (see above)")
    ap.add_argument("--busy", type=int, default=0, help="threads of pure-Python work beside the queue (see above)")
    ap.add_argument("--elsewhere", type=int, default=0, help="other programs kept busy beside the queue (see above)")
    ap.add_argument(
        "--switch-ms",
        default="",
        help="comma-separated switch intervals (ms) to run each in-thread plan at, e.g. 5,1: how soon a thread "
        "waiting for the interpreter gets it (tlcore.serve.cores.hand_over_interpreter); Python's default is 5",
    )
    args = ap.parse_args(argv)
    if not args.spin:
        cores.wait_passively()
    from tlcore.train import presets, recipe

    config = presets.image()
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    if args.strategy:
        config = config.replace(strategy=args.strategy)
    n = 1 if args.lone else args.jobs
    n_cores = args.cores or cores.count()
    wheres = [w.strip() for w in args.where.split(",")]
    cells = [config.replace(seed=i + 1, split_seed=config.seed) for i in range(n)]
    if ("thread" in wheres or "server" in wheres) and (len(wheres) > 1 or args.busy or args.switch_ms):
        for warm in presets.warm_ups():  # the same warm start as a worker process gets
            recipe.warm_up(warm)
    if args.busy:
        _start_busy(args.busy)
    nice = 0
    if args.elsewhere:
        from tlcore.core import settings

        nice = settings.get("TLS_WORKER_NICE")
    if len(wheres) > 1 or args.busy or args.switch_ms:  # the class-experiment cells
        _start_elsewhere(args.elsewhere)
        print(f"{n} class-experiment cells per plan, where: {', '.join(wheres)}; {args.busy} busy threads beside")
        rows = []
        switches = [float(v) for v in args.switch_ms.split(",")] if args.switch_ms else [5.0]
        for where in wheres:
            for text in ["server"] if where == "server" else args.plans.split(","):
                name, plan = ("queue", None) if where == "server" else parse_plan(text.strip(), n_cores)
                for ms in [5.0] if where == "process" else switches:  # a worker process shares no interpreter
                    cores.hand_over_interpreter(ms)
                    label = f"{name}, switch {ms:g} ms" if args.switch_ms and where != "process" else name
                    row = run_plan(plan, cells, where)
                    rows.append((f"{where} {label}", row))
                    print(
                        f"  {where:8s} {label:34s} wall {row['wall']:6.1f} s   per cell {row['wall'] / n:5.1f} s   mean "
                        f"submit->end {row['mean_end']:5.1f} s   failed {len(row['failed'])}   load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
        return _ratios(rows)
    recipe.warm_up(config)  # its data, its model and its frozen features ready, as the server's warm-up leaves them
    _start_elsewhere(args.elsewhere)
    print(
        f"{n} x the default image run ({config.backbone}, {config.dataset}, {config.per_class}/class, "
        f"{config.image_size} px, {config.epochs} epochs) per plan; {n_cores} cores; load average before "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(spin)')}",
        flush=True,
    )
    if args.elsewhere:
        print(f"{args.elsewhere} other programs busy beside; the runs at nice {nice}")
    rows = []
    for text in args.plans.split(","):
        name, plan = parse_plan(text.strip(), n_cores)
        row = run_plan(plan, [config] * n, nice=nice)
        rows.append((name, row))
        print(
            f"  {name:22s} wall {row['wall']:6.1f} s   jobs/min {row['per_min']:5.1f}   mean submit->end "
            f"{row['mean_end']:5.1f} s   training CPU {row['cpu']:5.1f} s   failed {len(row['failed'])}   "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    return _ratios(rows)


def _ratios(rows: list) -> int:
    base = rows[0][1]
    print(f"ratios to {rows[0][0]} (wall, mean submit->end; below 1 is faster):")
    for name, row in rows:
        print(f"  {name:43s} {row['wall'] / base['wall']:.2f}  {row['mean_end'] / base['mean_end']:.2f}")
    return 0 if not any(row["failed"] for _, row in rows) else 1


def _start_busy(count: int) -> None:
    """Threads that hold the interpreter as a class's page scripts do: 30 ms of Python, 10 ms asleep."""
    import json
    import threading

    page = {"rows": [{"cell": i, "acc": i / 7, "name": f"learner {i}"} for i in range(200)]}

    def busy() -> None:
        while True:
            end = time.perf_counter() + 0.03
            while time.perf_counter() < end:
                json.loads(json.dumps(page))
            time.sleep(0.01)

    for i in range(count):
        threading.Thread(target=busy, name=f"busy-{i}", daemon=True).start()


def _start_elsewhere(count: int) -> None:
    """`count` other programs, each a process that keeps a core busy (ended with this one)."""
    import atexit
    import subprocess

    loop = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    procs = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]
    atexit.register(lambda: [p.kill() for p in procs])


if __name__ == "__main__":
    sys.exit(main())
