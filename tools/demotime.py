"""The default demo as a teacher sees it: Start on a page in Chromium to "Finished", and where the time goes.

    python -m tools.demotime                      # page 3's default fine-tune, 3 times
    python -m tools.demotime --race --runs 1      # page 4's race of four strategies

Starts `streamlit run app.py` (a fresh state folder, the shipped settings), opens the page in
Chromium at 1280x720, waits until the server's warm-up is over (the data and the model loaded, as
on a server that has been up a minute), then presses Start `--runs` times. For each press it
prints, from the browser (polled every 50 ms): the first curve on screen and "Finished"; and from
the server's own record (its run store: submit, start and end times, each event's arrival, the
run's measured phases): the click to the job's submit, queue pickup, set-up (data and model),
the frozen prefix's features, each epoch's training and evaluation, the finish (confusion
matrix, examples), and the end to "Finished" on screen (the page's polling and drawing). With
the load average: a shared machine's other work moves every figure.

Training runs at nice +10 in the app (TLS_WORKER_NICE): on a machine shared with other people's
programs at nice 0 it gets a tenth of their share each; `--nice 0` measures the server as if it
had the machine to itself (a class server does), and says so.

Not for: a class (tools.loadtest) or the queue alone (tools.queuebench).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tools.loadtest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    free_port,
    read_status,
    start_server,
    stop_server,
    wait_healthy,
    wait_interactive,
)

GOALS = {"finetune": (4.0, 1.5), "race": (20.0, None)}  # issue 22: Finished, first curve (s after the click)


def _stored_runs(state_dir: Path):
    from tlcore.serve.store import RunStore

    store = RunStore(state_dir / "runs.sqlite")
    try:
        return [store.load(job.id) for job in store.times()]  # oldest first
    finally:
        store.close()


def breakdown(job, clicked: float) -> list[tuple[str, float]]:
    """Phases of a stored job, seconds, from the server's own clocks (Unix times; one machine)."""
    from tlcore.core.events import Done, EvalEvent, Started, StepEvent

    rows = [
        ("click -> job submitted (the button's callback)", job.submitted_at - clicked),
        ("submitted -> a worker took it (queue pickup)", (job.started_at or job.submitted_at) - job.submitted_at),
    ]
    origin = job.started_at
    for i, snap in enumerate(job.runs):
        times = dict(zip((id(e) for e in snap.events), snap.times))
        start = next((e for e in snap.events if isinstance(e, Started)), None)
        done = next((e for e in snap.events if isinstance(e, Done)), None)
        if start is None or done is None:
            continue
        timing = done.result.timing
        label = f"run {i + 1} ({snap.config.get('strategy')})" if len(job.runs) > 1 else "run"
        first = next((e for e in snap.events if isinstance(e, (StepEvent, EvalEvent))), None)
        rows += [
            (f"{label}: set-up, data and model (timing.setup_s)", timing.get("setup_s", float("nan"))),
            (f"{label}: frozen prefix features once (timing.cache_s)", timing.get("cache_s", float("nan"))),
            (
                f"{label}: train per epoch (timing.train_s)",
                sum(timing.get("train_s", [])) / max(1, len(timing.get("train_s", []))),
            ),
            (
                f"{label}: evaluate per epoch (timing.eval_s)",
                sum(timing.get("eval_s", [])) / max(1, len(timing.get("eval_s", []))),
            ),
            (
                f"{label}: epochs ({len(timing.get('train_s', []))})",
                sum(timing.get("train_s", [])) + sum(timing.get("eval_s", [])),
            ),
            (f"{label}: finish, after the last evaluation (timing.finish_s)", timing.get("finish_s", float("nan"))),
            (
                f"{label}:   of it, forgetting measured (ImageNet photos)",
                (done.result.forgetting or {}).get("seconds", float("nan")),
            ),
            (f"{label}: job start -> Started event", times[id(start)] if i == 0 else float("nan")),
            (f"{label}: Started -> first step event", times[id(first)] - times[id(start)] if first else float("nan")),
            (f"{label}: Started -> Done", times[id(done)] - times[id(start)]),
        ]
    rows.append(("job started -> job finished (server)", (job.finished_at or origin) - origin))
    return rows


def time_one_press(page, button: str, *, first: bool) -> dict:
    """Press Start once; seconds from the click to the first curve and to the run's end on screen."""
    t0 = time.monotonic()
    page.get_by_role("button", name=button).first.click(no_wait_after=True)
    seen, armed = {}, first
    while time.monotonic() - t0 < 300:
        status = read_status(page)
        now = time.monotonic() - t0
        if not armed:  # the last run's "Finished" and curves stay until this run is drawn
            armed = not status["end"]
            if not armed:
                time.sleep(0.02)
                continue
        if status["curve"]:
            seen.setdefault("curve", now)
        if status["end"]:
            seen["end"], seen["outcome"] = now, status["end"]
            break
        time.sleep(0.05)
    return seen


def print_breakdowns(results: list, jobs: list) -> None:
    """Each press beside the server's record of its job: where the seconds went."""
    for (clicked, seen, load), job in zip(results, jobs):
        print(
            f"\npress at load {load:.2f}: Finished on screen {seen.get('end', float('nan')):.2f} s, first curve "
            f"{seen.get('curve', float('nan')):.2f} s after the click"
        )
        for name, value in breakdown(job, clicked):
            print(f"  {name:62s} {value:6.2f} s")
        if job.finished_at and "end" in seen:
            print(
                f"  {'job finished (server) -> Finished on screen (polling, drawing)':62s} "
                f"{clicked + seen['end'] - job.finished_at:6.2f} s"
            )


def print_goals(slot: str, results: list) -> None:
    goal_end, goal_curve = GOALS[slot]
    ends = [s["end"] for _, s, _ in results if "end" in s]
    curves = [s["curve"] for _, s, _ in results if "curve" in s]
    print(
        f"\n{slot}: Finished {', '.join(f'{e:.2f}' for e in ends)} s (goal <= {goal_end:g} s)"
        + (f"; first curve {', '.join(f'{c:.2f}' for c in curves)} s (goal <= {goal_curve:g} s)" if goal_curve else "")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--race", action="store_true", help="page 4's race of four (default: page 3's fine-tune)")
    ap.add_argument("--runs", type=int, default=3, help="presses of Start, one after the other (default %(default)s)")
    ap.add_argument(
        "--settle",
        type=float,
        default=40,
        help="seconds to let the server's warm-up (presets.warm_ups: about 13 s of work on 2 idle cores, longer while pages load) finish before the first press",
    )
    ap.add_argument("--screenshot", default="", help="a PNG of the page when the last run finished")
    ap.add_argument("--nice", type=int, default=None, help="the training threads' nice (TLS_WORKER_NICE; app default 10)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    slot, path, button = ("race", "compare", "Start the race") if args.race else ("finetune", "finetune", "Start")
    state = Path(tempfile.mkdtemp(prefix="tls-demotime-"))
    env = dict(os.environ, TLS_STATE_DIR=str(state), TLS_CLASS_CONFIG=str(state / "class.toml"))
    if args.nice is not None:
        env["TLS_WORKER_NICE"] = str(args.nice)
    print(f"training at nice {env.get('TLS_WORKER_NICE', '10')}; {os.cpu_count()} cores", flush=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, state / "streamlit.log", env)
    results = []
    try:
        if not wait_healthy(url):
            raise RuntimeError(f"streamlit did not start; see {state / 'streamlit.log'}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US").new_page()
            page.goto(f"{url}/{path}?lang=en", timeout=120_000)
            page.get_by_role("button", name=button).first.wait_for(timeout=120_000)
            time.sleep(args.settle)  # the server's warm-up: the default data and model loaded
            for n in range(args.runs):
                wait_interactive(page) if not args.race else page.wait_for_timeout(500)
                load = os.getloadavg()[0]
                clicked = time.time()
                seen = time_one_press(page, button, first=n == 0)
                results.append((clicked, seen, load))
                print(
                    f"press {n + 1}: first curve {seen.get('curve', float('nan')):.2f} s, {seen.get('outcome')} "
                    f"{seen.get('end', float('nan')):.2f} s after the click (load average {load:.2f})",
                    flush=True,
                )
                page.wait_for_timeout(1500)
            if args.screenshot:
                page.screenshot(path=args.screenshot)
            browser.close()
    finally:
        stop_server(server)
    print_breakdowns(results, _stored_runs(state))
    print_goals(slot, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
