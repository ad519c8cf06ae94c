"""A class on one server: N students press Start on page 3 within 2 s; print the figures.

    python -m tools.loadtest --students 30            # the class the issue asks for
    python -m tools.loadtest --students 5 --max-seconds 6 --browsers 5   # the suite's scale

What it does is told in the package's docstring (tools/loadtest/__init__.py).
"""

from __future__ import annotations

import argparse
import sys

from tools.loadtest.classroom import run_class


def parser() -> argparse.ArgumentParser:
    """The command line: the same flags as ever (`python -m tools.loadtest --help`)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=30, help="students in the class (default 30)")
    ap.add_argument(
        "--browsers",
        type=int,
        default=6,
        help="how many of them are real Chromium contexts; the rest are websocket clients (default 6)",
    )
    ap.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="cap each job at this many seconds (the teacher's class.toml limit); default: the shipped limits",
    )
    ap.add_argument("--timeout", type=float, default=900, help="give up on the class after this many seconds")
    ap.add_argument("--probe-every", type=float, default=10, help="a fresh visitor every this many seconds")
    ap.add_argument(
        "--settle",
        type=float,
        default=20,
        help="seconds after everyone left before memory is read (longer while the server is still busy)",
    )
    ap.add_argument(
        "--no-teacher",
        action="store_true",
        help="no teacher: by default a teacher unlocks teacher mode (page 6) before the class, presses "
        "Start after every student, and the delay to their run's start is checked",
    )
    ap.add_argument(
        "--students-compete",
        action="store_true",
        help="run the simulated students' browsers at the server's CPU priority (by default they get only "
        "idle CPU: in a class they run on their own machines; the teacher's is always at the normal priority)",
    )
    ap.add_argument(
        "--until",
        choices=("end", "ok"),
        default="end",
        help="end: wait for every job to end; ok: leave once every student has seen a queue position or "
        "an end and one visitor was timed (jobs left are cancelled as closed tabs)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="runs at a time (class.toml cpu_workers; default 0: from the core count, tlcore.serve.cores)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads per run when all are busy (class.toml threads_per_job; default 0: from the cores)",
    )
    ap.add_argument(
        "--class-experiment",
        action="store_true",
        help="the class as one experiment: students join by the code, the teacher starts an experiment, every "
        "student presses Start on their part (tools.loadtest.experiment); --browsers defaults to 3 there",
    )
    ap.add_argument(
        "--no-predictions",
        action="store_true",
        help="with --class-experiment: no question before the runs (by default the teacher asks which level wins, "
        "every student answers, the projector counts, then the answers close and the parts start)",
    )
    ap.add_argument(
        "--busy-loops",
        type=int,
        default=0,
        help="busy programs beside the server for the whole class (`while :; do :; done`, started from this "
        "session, as tools.neighbours' 'same session'; issue 56 item 5)",
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the server and browsers
    args = parser().parse_args(argv)
    from tools.neighbours import start_loops, stop_loops

    loops = start_loops(args.busy_loops, "same")
    if loops:
        print(f"{len(loops)} busy loops beside the server (pids {', '.join(str(loop.pid) for loop in loops)})", flush=True)
    try:
        return _run(args, argv)
    finally:
        stop_loops(loops)


def _run(args, argv: list[str] | None) -> int:
    if args.class_experiment:
        from tools.loadtest.experiment import TARGETS, run_experiment

        browsers = 3 if "--browsers" not in (argv if argv is not None else sys.argv) else args.browsers
        result = run_experiment(
            args.students,
            browsers,
            args.timeout,
            args.probe_every,
            workers=args.workers,
            threads=args.threads,
            students_idle=not args.students_compete,
            predict=not args.no_predictions,
        )
        return 0 if all(check(result) for check in TARGETS.values()) else 1
    report = run_class(
        args.students,
        args.browsers,
        args.max_seconds,
        args.timeout,
        args.probe_every,
        args.settle,
        not args.no_teacher,
        args.until,
        students_idle=not args.students_compete,
        workers=args.workers,
        threads=args.threads,
    )
    report.print()
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
