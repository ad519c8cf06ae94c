"""How the server's training shares the CPU with other programs on the machine (issue 56 item 5).

    python -m tools.neighbours                          # 3 class cells quiet, beside 2 busy loops in the
                                                        # server's scheduler group, beside 2 in groups of their own
    python -m tools.neighbours --loops 2 --cells 3 --where same,own --nice 10

Each cell is a class experiment's default cell (`tlcore.serve.classroom.design.cell_config` over the
default image run, the lr factor at 1e-3, seeds 1..N on the same examples), trained through
`tlcore.serve.jobs.JobQueue` as the server builds it for a CPU (`cores.plan()`, the server's nice,
`TLS_WORKER_NICE`), after the server's warm-up. A loop is `while :; do :; done`: a program at the
normal priority that keeps a core busy.

Where Linux groups a session's processes for the scheduler (autogroup:
/proc/sys/kernel/sched_autogroup_enabled), a nice value counts only inside its group:
- "same": the loops in the server's own session (started from the same terminal as the server):
  the training threads' nice weighs against the loops';
- "own": each loop a session of its own (another terminal, a desktop program, a service): the
  groups share the cores first, nice counts inside the server's group only.

Prints each cell's seconds (submit to end), the median per setting, the nice its run trained at
and each median's ratio to the quiet one measured in the same call (the goal: at most 3).

Not for: pages (tools.loadtest) or how many runs at once (tools.queuebench).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

from tlcore.serve import cores

LOOP = ["sh", "-c", "while :; do :; done"]


def start_loops(count: int, where: str) -> list[subprocess.Popen]:
    """`count` busy loops: in this process's session ("same") or each in a session of its own ("own")."""
    return [subprocess.Popen(LOOP, start_new_session=(where == "own")) for _ in range(count)]


def stop_loops(loops: list[subprocess.Popen]) -> None:
    for p in loops:
        p.kill()
        p.wait()


class NiceSeen:
    """The nice values of the threads that trained (read from /proc while runs go)."""

    def __init__(self) -> None:
        self.values: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> NiceSeen:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        mine = {threading.get_native_id(), os.getpid()}  # this watcher and the main thread (polling)
        while not self._stop.wait(0.2):
            for tid in os.listdir("/proc/self/task"):
                try:
                    fields = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # field 3 is the state (R: running), field 19 the nice value
                if int(tid) not in mine and fields[0] == "R":
                    self.values.add(int(fields[16]))


def run_cells(q, configs: list) -> tuple[list[float], set[int]]:
    """Each cell after the other (a class experiment's runs on a one-worker server): seconds each."""
    seconds = []
    with NiceSeen() as seen:
        for i, config in enumerate(configs):
            who = f"learner-{i}"
            job = q.submit(config, owner=who)
            t0 = time.perf_counter()
            while (view := q.get(job, who)).state in ("queued", "running"):
                time.sleep(0.02)
            if view.state != "done":
                raise SystemExit(f"cell {i} ended {view.state}")
            seconds.append(time.perf_counter() - t0)
    return seconds, seen.values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", type=int, default=2, help="busy loops beside the server (default %(default)s)")
    ap.add_argument("--cells", type=int, default=3, help="class cells per setting (default %(default)s)")
    ap.add_argument("--where", default="same,own", help="where the loops run: same, own, comma-separated (see above)")
    ap.add_argument("--nice", type=int, default=None, help="the queue's nice (default: the server's, TLS_WORKER_NICE)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds the loops run before the first cell")
    args = ap.parse_args(argv)
    cores.wait_passively()  # as app.py does before torch is imported
    from tlcore.core import settings
    from tlcore.serve.classroom.design import cell_config
    from tlcore.serve.jobs import JobQueue
    from tlcore.train import presets, recipe

    base = presets.image()
    configs = [cell_config(base, "lr", 1e-3, seed).replace(split_seed=base.seed) for seed in range(1, args.cells + 1)]
    for warm in presets.warm_ups():  # the server's warm-up: data, model and frozen features ready
        recipe.warm_up(warm)
    recipe.warm_up(configs[0])
    nice = settings.get("TLS_WORKER_NICE") if args.nice is None else args.nice
    q = JobQueue.started(cpu=cores.plan(), nice=nice)
    autogroup = (
        open("/proc/sys/kernel/sched_autogroup_enabled").read().strip()
        if os.path.exists("/proc/sys/kernel/sched_autogroup_enabled")
        else "absent"
    )
    print(
        f"{args.cells} class cells per setting on {cores.count()} cores; the queue's nice {nice}; "
        f"autogroup {autogroup}; load before {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    medians: dict[str, float] = {}
    for where in ["quiet"] + [w.strip() for w in args.where.split(",")] + ["quiet again"]:
        loops = [] if where.startswith("quiet") else start_loops(args.loops, where)
        try:
            time.sleep(0 if not loops else args.settle)
            seconds, nices = run_cells(q, configs)
        finally:
            stop_loops(loops)
        medians[where] = statistics.median(seconds)
        label = where if not loops else f"{args.loops} loops, {where} group"
        print(
            f"  {label:26s} cells {' '.join(f'{s:5.2f}' for s in seconds)} s   median {medians[where]:5.2f} s   "
            f"trained at nice {sorted(nices) or '?'}   load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    quiet = min(medians["quiet"], medians["quiet again"])
    print(f"ratios to the quiet median ({quiet:.2f} s; goal: at most 3):")
    for where, median in medians.items():
        print(f"  {where:26s} {median / quiet:5.2f}")
    worst = max(m for w, m in medians.items() if not w.startswith("quiet")) / quiet if len(medians) > 2 else 0.0
    return 0 if worst <= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
