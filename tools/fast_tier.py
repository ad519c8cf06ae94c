"""The fast test tier (`pytest -m fast`, marked on the tests themselves) against measured durations.

    python -m tools.fast_tier                    # run the local tier with durations, report the marked tier
    python -m tools.fast_tier --from-log F       # the same from a saved `--durations=0 --durations-min=0` run

The local tier (`-m "not slow and not browser and not ray"`) is run once with every test's
duration (setup, call and teardown added up), and the tests marked `fast` are collected. Printed:
the marked tier's count and measured time against `--budget-s`, the marked tests slower than
`--max-s` (take the mark off), and the quickest unmarked ones that would fit in what is left of the
budget (mark them: `@pytest.mark.fast`, or a case's `pytest.param(..., marks=pytest.mark.fast)`).
Nothing is written: the marks are the tier. tests/test_layout.py checks that no fast test is also
slow, browser or ray, and that the tier still reaches every package.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_TIER = "not slow and not browser and not ray"
# Modules whose module-scoped fixture (a whole training run) is charged to whichever of their tests
# runs first: the durations of the others look quick, the tier would not be.
LEAVE_OUT = ("tests/test_notebook.py",)
_LINE = re.compile(r"^([\d.]+)s (?:call|setup|teardown)\s+(tests/\S+)$")


def durations(log: str) -> dict[str, float]:
    """Seconds per test node id from pytest's `--durations` report (setup + call + teardown)."""
    out: dict[str, float] = defaultdict(float)
    for line in log.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[m.group(2)] += float(m.group(1))
    return dict(out)


def choose(seconds: dict[str, float], *, max_s: float, budget_s: float) -> list[str]:
    """The quickest tests under `max_s` each, in order, until their sum would pass `budget_s`."""
    chosen, total = [], 0.0
    for node, s in sorted(seconds.items(), key=lambda kv: (kv[1], kv[0])):
        if node.split("::")[0] in LEAVE_OUT:
            continue
        if s > max_s or total + s > budget_s:
            break
        chosen.append(node)
        total += s
    return sorted(chosen)


def node_ids(collected: str) -> set[str]:
    """The node ids of a `pytest --collect-only -q` listing."""
    return {line.strip() for line in collected.splitlines() if "::" in line and not line.startswith(" ")}


def report(seconds: dict[str, float], marked: set[str], *, max_s: float, budget_s: float) -> list[str]:
    """What the marked tier measures, and the marks to change: lines to print."""
    total = sum(seconds.get(n, 0.0) for n in marked)
    unmeasured = sorted(marked - seconds.keys())
    lines = [f"the fast tier: {len(marked)} tests marked, {total:.1f} s of measured test time (budget {budget_s:.0f} s)"]
    if unmeasured:
        lines.append(f"  not in the durations (renamed, or not run): {len(unmeasured)}, e.g. {unmeasured[0]}")
    slow = sorted((n for n in marked if seconds.get(n, 0.0) > max_s), key=lambda n: -seconds[n])
    lines += [f"  take the mark off (over {max_s} s): {n} ({seconds[n]:.2f} s)" for n in slow]
    left = budget_s - total + sum(seconds[n] for n in slow)
    room = {n: s for n, s in seconds.items() if n not in marked}
    lines += [f"  mark (fits the budget): {n} ({seconds[n]:.2f} s)" for n in choose(room, max_s=max_s, budget_s=max(0.0, left))]
    return lines


def _pytest(*args: str) -> str:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-log", help="a saved pytest output with --durations=0 --durations-min=0")
    ap.add_argument("--max-s", type=float, default=0.3, help="the slowest test the tier takes (default %(default)s s)")
    ap.add_argument("--budget-s", type=float, default=30.0, help="the tier's tests' total (default %(default)s s)")
    args = ap.parse_args(argv)
    if args.from_log:
        log = Path(args.from_log).read_text(encoding="utf-8")
    else:
        log = _pytest("-m", LOCAL_TIER, "--durations=0", "--durations-min=0")
    seconds = durations(log)
    if not seconds:
        print("no durations found: run pytest with --durations=0 --durations-min=0")
        return 2
    marked = node_ids(_pytest("-m", "fast", "--collect-only"))
    print("\n".join(report(seconds, marked, max_s=args.max_s, budget_s=args.budget_s)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
