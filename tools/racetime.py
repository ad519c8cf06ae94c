"""The race of four and the default demo through the real queue, engine alone, A/B in one sitting.

    python -m tools.racetime                         # this tree: 2 races after the server's warm-up
    python -m tools.racetime --demo --races 5        # the default demo (partial, depth 4) instead
    python -m tools.racetime --base main --rounds 3  # this tree against `main`, alternating processes
    python -m tools.racetime --rounds 3 --env MALLOC_ARENA_MAX=1   # this tree with and without a setting
    python -m tools.racetime --base HEAD~2 --this HEAD~1           # two commits (temporary worktrees)

Each measurement is a fresh process (as a server is): the app's thread setting (GOMP_SPINCOUNT,
before torch), the server's warm-up (tlcore.train.presets.warm_ups), then `--races` jobs through
`tlcore.serve.jobs.JobQueue` with this machine's CPU plan (tlcore.serve.cores): a race's four runs
two at a time, one torch thread each, longest first; the demo alone on every core. No browser
(tools.demotime measures the pages too). With `--base` or `--env`, the two variants alternate
`--rounds` times, so a shared machine's other work falls on both; the figures are medians over
all races of a variant, and the ratio is the variant's over the baseline's (below 1 is faster).
The load average is printed with every process: only ratios from one sitting compare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RACE = ("scratch", "linear_probe", "partial", "full")


def measure(demo: bool, races: int) -> list[dict]:
    """In this process: warm up as the server does, then time `races` jobs (seconds per run and
    the job's own start to end)."""
    from tlcore.serve import cores

    cores.wait_briefly()  # before torch, as app.py does
    from tlcore.serve.jobs import JobQueue
    from tlcore.train import presets, recipe

    for config in presets.warm_ups():
        recipe.warm_up(config)
    default = presets.image()
    configs = [default] if demo else [default.replace(strategy=s) for s in RACE]
    queue = JobQueue.started(cpu=cores.plan())
    rows = []
    for i in range(races):
        before = resource.getrusage(resource.RUSAGE_SELF)
        job = queue.submit(configs, owner=f"bench-{i}")
        queue.wait_until_ended(job, f"bench-{i}", 600)
        view = queue.get(job, f"bench-{i}")
        runs = {c.strategy: _run_seconds(snap) for c, snap in zip(view.configs, view.runs)}
        accs = {c.strategy: snap.result.val_acc if snap.result else None for c, snap in zip(view.configs, view.runs)}
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = {"user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime}
        cpu["faults"] = after.ru_minflt - before.ru_minflt
        rows.append({"wall": view.elapsed_s, "runs": runs, "acc": accs, "state": view.state, "load": os.getloadavg()[0], **cpu})
    return rows


def _run_seconds(snap) -> float:
    """A run's first event to its last (set-up before Started is a few hundredths of a second)."""
    return snap.times[-1] - snap.times[0] if snap.times else float("nan")


def child(tree: Path, args, env: dict[str, str]) -> list[dict]:
    """One measuring process on `tree`'s tlcore, with `env` added."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--races", str(args.races)]
    cmd += ["--demo"] if args.demo else []
    full_env = {**os.environ, **env, "PYTHONPATH": str(tree)}
    out = subprocess.run(cmd, cwd=tree, env=full_env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@contextlib.contextmanager
def tree_at(rev: str | None):
    """This tree, or a temporary worktree of `rev` (removed after)."""
    if rev is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="racetime-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True, capture_output=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False, capture_output=True)


def summary(rows: list[dict]) -> dict[str, float]:
    out = {key: statistics.median(r[key] for r in rows) for key in ("wall", "user", "sys")}
    for name in rows[0]["runs"]:
        out[name] = statistics.median(r["runs"][name] for r in rows)
    return out


def show(label: str, rows: list[dict]) -> None:
    for r in rows:
        runs = "  ".join(f"{k} {v:5.2f}" for k, v in r["runs"].items())
        accs = " ".join(f"{v:.3f}" for v in r["acc"].values() if v is not None)
        cpu = f"cpu {r['user']:5.1f}+{r['sys']:4.1f} s, {r['faults'] / 1e3:5.0f}k faults"
        print(f"  {label:5s} wall {r['wall']:6.2f} s  {runs}  {cpu}  acc {accs}  load {r['load']:.2f} {r['state']}", flush=True)


def parse_env(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", action="store_true", help="the default demo instead of the race")
    ap.add_argument("--races", type=int, default=2, help="jobs per process (default %(default)s)")
    ap.add_argument("--rounds", type=int, default=0, help="alternating processes per variant (with --base or --env)")
    ap.add_argument("--base", help="a git revision to compare this tree with (a temporary worktree)")
    ap.add_argument("--this", help="a git revision in place of this tree (a temporary worktree)")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for this tree's processes only")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.demo, args.races)))
        return 0
    what = "default demo" if args.demo else "race of four"
    print(f"{what}, {args.races} per process; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    if not (args.base or args.this or args.env):
        show("this", measure(args.demo, args.races))
        return 0
    results: dict[str, list[dict]] = {"base": [], "this": []}
    with tree_at(args.base) as base_tree, tree_at(args.this) as this_tree:
        for _ in range(max(1, args.rounds)):
            for label, tree, env in (("base", base_tree, {}), ("this", this_tree, parse_env(args.env))):
                rows = child(tree, args, env)
                show(label, rows)
                results[label] += rows
    base, this = summary(results["base"]), summary(results["this"])
    this_name = (args.this or "this tree") + (" with " + " ".join(args.env) if args.env else "")
    print(f"medians (base {args.base or 'this tree'}, this {this_name}):")
    for key in base:
        print(f"  {key:13s} base {base[key]:6.2f} s   this {this[key]:6.2f} s   ratio {this[key] / base[key]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
