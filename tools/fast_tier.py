"""Choose the fast test tier (`pytest -m fast`) from measured durations: tests/fast_tier.txt.

    python -m tools.fast_tier                    # run the local tier with durations, write the list
    python -m tools.fast_tier --from-log F       # the same from a saved `--durations=0 --durations-min=0` run

The local tier (`-m "not slow and not browser and not ray"`) is run once with every test's
duration (setup, call and teardown added up); the tests under `--max-s` each, quickest first,
go into tests/fast_tier.txt until their sum reaches `--budget-s`. tests/conftest.py marks the
listed tests `fast`; tests/test_layout.py checks that the tier still reaches every package. A
test renamed or added is simply not in the tier until the list is made again (the way
pytest-split keeps its durations file).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "tests" / "fast_tier.txt"
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from-log", help="a saved pytest output with --durations=0 --durations-min=0")
    ap.add_argument("--max-s", type=float, default=0.3, help="the slowest test the tier takes (default %(default)s s)")
    ap.add_argument("--budget-s", type=float, default=30.0, help="the tier's tests' total (default %(default)s s)")
    args = ap.parse_args(argv)
    if args.from_log:
        log = Path(args.from_log).read_text(encoding="utf-8")
    else:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            LOCAL_TIER,
            "--durations=0",
            "--durations-min=0",
        ]
        log = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True).stdout
    seconds = durations(log)
    if not seconds:
        print("no durations found: run pytest with --durations=0 --durations-min=0")
        return 2
    chosen = choose(seconds, max_s=args.max_s, budget_s=args.budget_s)
    header = (
        f"# The fast tier (pytest -m fast): made by `python -m tools.fast_tier` from measured durations; {len(chosen)} tests.\n"
    )
    LIST.write_text(header + "".join(f"{node}\n" for node in chosen), encoding="utf-8")
    total = sum(seconds[n] for n in chosen)
    print(f"wrote {LIST.relative_to(ROOT)}: {len(chosen)} of {len(seconds)} tests, {total:.1f} s of measured test time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
