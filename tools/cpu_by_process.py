"""Where a command's CPU goes, by kind of process: run it, read every process's CPU time from
/proc twice a second, print the core-seconds of each kind at the end.

    python -m tools.cpu_by_process -- python -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup

The kinds are what this project runs: the Streamlit servers, Chromium's renderers and its other
processes, Playwright's driver, pytest and its xdist workers (the tests that run in-process:
AppTest, the engine), Ray, training worker processes, and anything else by its command line. The
whole box's busy time is printed beside them (what the kinds leave out: processes that started
and ended between two looks, the kernel). Linux only. Issue 33, item 7 (docs/suite-time.md):
the suite's time on 2 cores is the CPU its tests make the box spend, so a cut starts from here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tlcore.serve.cores import HZ, box_busy_s  # the whole box's busy seconds (/proc/stat)

KINDS = (  # (kind, what its command line holds), first match wins
    ("chromium renderer", ("chromium", "--type=renderer")),
    ("chromium gpu", ("chromium", "--type=gpu-process")),
    ("chromium other", ("chromium",)),
    ("playwright driver", ("playwright",)),
    ("streamlit server", ("streamlit",)),
    ("training worker", ("tlcore.serve.process_jobs",)),
    ("ray", ("ray",)),
    ("pytest-xdist worker", ("import sys;exec(eval(sys.stdin",)),
    ("pytest", ("pytest",)),
    ("busy loop (a test's load)", ("while True: pass",)),
    ("busy loop (a test's load)", ("while os.getppid() == parent: pass",)),  # tests/test_ray.py's
)


def kind_of(cmdline: str) -> str:
    """The kind of a process from its command line (its argv joined by spaces)."""
    for kind, parts in KINDS:
        if all(part in cmdline for part in parts):
            return kind
    return "other: " + " ".join(cmdline.split()[:3])[:60]


def _read(pid: str) -> tuple[str, int, str] | None:
    """(start time, CPU ticks, command line) of a process, or None when it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    return stat[19], int(stat[11]) + int(stat[12]), cmdline


def core_seconds(pid: int) -> float:
    """One process's CPU seconds so far (every thread of it), 0 once it has gone."""
    got = _read(str(pid))
    return got[1] / HZ if got else 0.0


def pids_of(kind: str) -> list[int]:
    """The living processes of this kind (a walk of /proc: a few milliseconds; find them once, then
    read `core_seconds` of each)."""
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc")) if (got := _read(pid)) and kind_of(got[2]) == kind]


def watch(command: list[str], every_s: float = 0.5) -> tuple[int, Counter, float, float]:
    """Run `command`; (its exit code, core-seconds per kind, the box's busy core-seconds, wall seconds)."""
    seen: dict[tuple[str, str], int] = {}  # (pid, start time) -> ticks at the last look
    kinds: dict[tuple[str, str], str] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):  # what ran before: only its growth counts
        if (got := _read(pid)) is not None:
            seen[(pid, got[0])] = got[1]
    spent: Counter = Counter()
    busy0, t0 = box_busy_s(), time.monotonic()
    proc = subprocess.Popen(command)
    while True:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if (got := _read(pid)) is None:
                continue
            key = (pid, got[0])
            if got[2].strip():  # (a child seen before its exec shows its parent's line; a zombie, none)
                kinds[key] = kind_of(got[2])
            spent[kinds.get(key, "other: ?")] += got[1] - seen.get(key, 0)
            seen[key] = got[1]
        if proc.poll() is not None:  # (read before it is reaped: an exited child's last ticks still count)
            break
        time.sleep(every_s)
    return proc.returncode, Counter({k: v / HZ for k, v in spent.items() if v > 0}), box_busy_s() - busy0, time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    code, spent, busy, wall = watch(command)
    print(f"\n{wall:.0f} s, the box busy {busy:.0f} core-seconds; by kind of process:", file=sys.stderr)
    for kind, seconds in spent.most_common():
        if seconds >= 0.5:
            print(f"{seconds:9.1f}  {kind}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
