"""Jobs through the real queue on this machine's CPU: how many runs at a time, how many threads each.

    python -m tools.queuebench                         # six default jobs: 1x1, 1x2, 2x1 and this machine's plan
    python -m tools.queuebench --jobs 6 --plans 1x1,1x2,2x1,1x4,auto
    python -m tools.queuebench --lone                  # one default job alone, each plan (a demo's speed)

A plan WxT is W workers, each run on T torch threads, fixed; "auto" is tlcore.serve.cores' plan for
this machine (a lone run on every core, the cores shared as runs start). Every plan runs the
same jobs (the app's default image run, tlcore.train.presets.image) through `tlcore.serve.jobs.JobQueue`
with `tlcore.train.recipe.run`, submitted together by as many learners; the data and the model are
loaded once before (the server's warm-up does that too). Prints wall time, jobs per minute, the
mean time from submit to end, and each figure's ratio to the first plan's, measured in the
same run (a shared machine's other work moves absolute times; the load average is printed).

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
    def threads_now(self, running: int, pages: int = 0) -> int:  # noqa: ARG002 -- the plan's signature, fixed answer
        return self.threads


def run_plan(plan: CpuPlan, configs: list) -> dict:
    from tlcore.serve.jobs import JobQueue

    q = JobQueue(cpu=plan)
    t0 = time.perf_counter()
    ids = [(q.submit(c, owner=f"learner-{i}"), f"learner-{i}") for i, c in enumerate(configs)]
    while any(q.get(j, o).state in ("queued", "running") for j, o in ids):
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    views = [q.get(j, o) for j, o in ids]
    failed = [v.state for v in views if v.state != "done"]
    ends = [v.runs[0].times[-1] - t0_mono for v, t0_mono in zip(views, [_submitted(q, j) for j, _ in ids])]
    return {"wall": wall, "per_min": 60 * len(configs) / wall, "mean_end": statistics.mean(ends), "failed": failed}


def _submitted(q, job_id: str) -> float:
    return q._jobs[job_id].submitted  # the queue's own clock (time.monotonic)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=6, help="default jobs per plan (default %(default)s)")
    ap.add_argument("--plans", default="1x1,1x2,2x1,auto", help="comma-separated WxT or auto (default %(default)s)")
    ap.add_argument("--lone", action="store_true", help="one job alone per plan (--jobs 1)")
    ap.add_argument("--epochs", type=int, default=0, help="override the default run's epochs")
    ap.add_argument("--cores", type=int, default=0, help="cores the plans may use (default: this machine's)")
    ap.add_argument(
        "--spin",
        action="store_true",
        help="torch's threads spin while they wait (OpenMP's default); without it they sleep, as the "
        "app's server makes them (tlcore.serve.cores.wait_passively)",
    )
    args = ap.parse_args(argv)
    if not args.spin:
        cores.wait_passively()
    from tlcore.models import catalog
    from tlcore.train import presets

    config = presets.image()
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    n = 1 if args.lone else args.jobs
    n_cores = args.cores or cores.count()
    catalog.load_dataset(
        config.dataset,
        per_class=config.per_class,
        image_size=config.image_size,
        seed=config.seed,
        val_per_class=config.val_per_class,
    )  # warm, as the server's warm-up does
    catalog.build_model(config.backbone, 10, pretrained=True, image_size=config.image_size)
    print(
        f"{n} x the default image run ({config.backbone}, {config.dataset}, {config.per_class}/class, "
        f"{config.image_size} px, {config.epochs} epochs) per plan; {n_cores} cores; load average before "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(spin)')}",
        flush=True,
    )
    rows = []
    for text in args.plans.split(","):
        name, plan = parse_plan(text.strip(), n_cores)
        row = run_plan(plan, [config] * n)
        rows.append((name, row))
        print(
            f"  {name:22s} wall {row['wall']:6.1f} s   jobs/min {row['per_min']:5.1f}   mean submit->end "
            f"{row['mean_end']:5.1f} s   failed {len(row['failed'])}   load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    base = rows[0][1]
    print(f"ratios to {rows[0][0]} (wall, mean submit->end; below 1 is faster):")
    for name, row in rows:
        print(f"  {name:22s} {row['wall'] / base['wall']:.2f}  {row['mean_end'] / base['mean_end']:.2f}")
    return 0 if not any(row["failed"] for _, row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
