"""The default demo as a teacher sees it: Start on a page in Chromium to "Finished", and where the time goes.

    python -m tools.demotime                      # page 3's default fine-tune, 3 times
    python -m tools.demotime --race --runs 1      # page 4's race of four strategies
    python -m tools.demotime --text --runs 3      # page 5's default text run
    python -m tools.demotime --base HEAD~1 --rounds 2   # this tree's pages against a commit's, alternating

Starts `streamlit run app.py` (a fresh state folder, the shipped settings), opens the page in
Chromium at 1280x720, waits until the server's warm-up is over (the data and the model loaded, as
on a server that has been up a minute), then presses Start `--runs` times. For each press it
prints, from the browser (polled every 50 ms): the first curve on screen and "Finished"; and from
the server's own record (its run store: submit, start and end times, each event's arrival, the
run's measured phases): the click to the job's submit, queue pickup, set-up (data and model),
the frozen prefix's features, each epoch's training and evaluation, the finish (confusion
matrix, examples), and the end to "Finished" on screen (the page's polling and drawing). With
the load average: a shared machine's other work moves every figure.

The page's side is split by what the browser received, and when (every websocket message is
stamped by the page itself, and decoded here as Streamlit's ForwardMsg): the first step to the
first curve's message and to the curve on screen; the job's end to the script run that drew the
result (polling), to the "Finished" message (the page's script), to "Finished" on screen (the
browser). Then, in the same call, the engine alone (`tools.racetime --demo`: the same warm-up and
queue, no browser) runs the same job `--runs` times: "browser path / engine path" is the figure,
and the difference is what the pages add to a run.

While a run goes, the server process's and Chromium's renderers' CPU is read from /proc every 50 ms:
the core-seconds each spent between the job's start and end are printed per press (the browser on the
same box takes its share of the cores the run trains on). With `--base REV`, a server of this tree and
one of a worktree of REV take turns (`--rounds`, `--runs` presses each, one Chromium each time): the
medians of both and their ratio (this / base), instead of the engine-alone baseline.

Training runs at nice +10 in the app (TLS_WORKER_NICE): on a machine shared with other people's
programs at nice 0 it gets a tenth of their share each; `--nice 0` measures the server as if it
had the machine to itself (a class server does), and says so.

Not for: a class (tools.loadtest) or the queue alone (tools.queuebench).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.loadtest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    fresh_server,
    read_status,
    wait_interactive,
)

GOALS = {"finetune": (4.0, 1.5), "race": (20.0, None), "text": (3.0, None)}  # issues 22, 56: Finished, first curve (s)
ROOT = Path(__file__).resolve().parent.parent
EN = json.loads((ROOT / "assets" / "i18n" / "en.json").read_text(encoding="utf-8"))
# Each slot's page and its Start button, as the English page labels it
PAGES = {
    "finetune": ("finetune", EN["page3.start"]),
    "race": ("compare", EN["page4.race_start"]),
    "text": ("text", EN["text.start"]),
}
DONE_TEXT = EN["job.done"].split("{")[0]


def _stored_runs(state_dir: Path):
    from tlcore.serve.store import RunStore

    store = RunStore(state_dir / "runs.sqlite")
    try:
        return [store.load(job.id) for job in store.times()]  # oldest first
    finally:
        store.close()


# Every websocket message the page receives, stamped by the page's own clock (Date.now(): the same
# machine's wall clock as the server's time.time()); read back and emptied per press.
RECORD_FRAMES = """(() => {
  const Real = window.WebSocket;
  window.__tlsFrames = [];
  window.WebSocket = class extends Real {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (e.data instanceof ArrayBuffer) window.__tlsFrames.push([Date.now() / 1000, e.data]);
      });
    }
  };
})();"""
TAKE_FRAMES = """() => window.__tlsFrames.splice(0).map(([t, buf]) => {
  const u = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
  return [t, btoa(s)];
})"""


class CpuDuring:
    """The server's and Chromium's renderers' CPU seconds so far, read every 50 ms while a press
    goes (a thread of this process): `between(start, end)` gives what each spent in that span."""

    def __init__(self, server_pid: int):
        self.server_pid, self.samples, self._stop = server_pid, [], threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        from tools.cpu_by_process import core_seconds, pids_of

        renderers = pids_of("chromium renderer")  # once: walking /proc every 50 ms cost the box 12-15% of a core
        while not self._stop.is_set():
            self.samples.append((time.time(), core_seconds(self.server_pid), sum(map(core_seconds, renderers))))
            self._stop.wait(0.05)

    def __enter__(self) -> CpuDuring:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> dict[str, float]:
        """Core-seconds of the server and the renderers from `start` to `end` (Unix times), by the
        samples nearest to each; NaN without samples."""
        if not self.samples:
            return {"server": float("nan"), "renderers": float("nan")}
        at = lambda t: min(self.samples, key=lambda row: abs(row[0] - t))  # noqa: E731
        first, last = at(start), at(end)
        return {"server": last[1] - first[1], "renderers": last[2] - first[2]}


def received(frames: list, done_text: str) -> dict[str, float]:
    """When the page received what matters (Unix times): `runs`, each script run's start (a
    new_session message: a full run or a poll of a fragment); `curve`, the first loss curve with a
    point; `finished`, the "Finished" line."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    out: dict = {"runs": []}
    for stamp, data in frames:
        msg = ForwardMsg.FromString(base64.b64decode(data))
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            out["runs"].append(stamp)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            what = element.WhichOneof("type")
            if what == "alert" and element.alert.body.startswith(done_text):
                out.setdefault("finished", stamp)
            elif what == "plotly_chart" and "curve" not in out and _has_points(element.plotly_chart.spec):
                out["curve"] = stamp
            elif what == "html" and "curve" not in out and LIVE_CURVE.search(element.html.body):
                out["curve"] = stamp  # a running run's loss curve (studio.plots.live)
    return out


LIVE_CURVE = re.compile(r'data-chart="(?:loss|race_\w+)" data-points="[1-9]')  # a live loss or race curve with a point


def _has_points(spec: str) -> bool:
    """A line chart with a point, as tools.loadtest's STATUS_JS sees a curve on screen."""
    try:
        traces = json.loads(spec).get("data", [])
    except ValueError:
        return False
    return any(t.get("type", "scatter") == "scatter" and t.get("x") for t in traces)


def page_parts(job, clicked: float, seen: dict, got: dict) -> list[tuple[str, float]]:
    """The page's share of a press, from what the browser received and when."""
    from tlcore.core.events import StepEvent

    nan = float("nan")
    rows = []
    snap = job.runs[0] if job.runs else None
    times = dict(zip((id(e) for e in snap.events), snap.times)) if snap else {}
    first = next((e for e in snap.events if isinstance(e, StepEvent)), None) if snap else None
    if first is not None and "curve" in got and job.started_at:  # event times count from the job's start
        rows += [
            ("first step event -> its curve received (poll, page's script)", got["curve"] - job.started_at - times[id(first)]),
            ("first curve received -> on screen (the browser)", clicked + seen.get("curve", nan) - got["curve"]),
        ]
    if job.finished_at and "finished" in got:
        began = max((t for t in got["runs"] if t <= got["finished"]), default=nan)
        rows += [
            ("job finished -> the run that drew it began (polling)", began - job.finished_at),
            ("that run began -> Finished received (page's script)", got["finished"] - began),
            ("Finished received -> on screen (the browser)", clicked + seen.get("end", nan) - got["finished"]),
        ]
    return rows


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
        if not armed:  # the last run's "Finished" and curves stay until this run is drawn (or its progress line)
            armed = not status["end"] or status["running"]
            if not armed:
                time.sleep(0.02)
                continue
        if status["curve"]:
            seen.setdefault("curve", now)
        if status["end"] and not status["running"]:  # (a progress line: this run's, beside the last one's line)
            seen["end"], seen["outcome"] = now, status["end"]
            break
        time.sleep(0.05)
    return seen


def print_breakdowns(results: list, jobs: list) -> None:
    """Each press beside the server's record of its job: where the seconds went."""
    for (clicked, seen, load, got, cpu), job in zip(results, jobs):
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
        for name, value in page_parts(job, clicked, seen, got):
            print(f"  {name:62s} {value:6.2f} s")
        if job.started_at and job.finished_at:
            spent = cpu.between(job.started_at, job.finished_at)
            print(
                f"  {'CPU from the job start to its end: the server (training too)':62s} {spent['server']:6.2f} core-s\n"
                f"  {'  Chromium renderers (the page drawn beside the run)':62s} {spent['renderers']:6.2f} core-s"
            )


def parts(results: list, jobs: list) -> dict[str, list[float]]:
    """Each press cut in four: waiting in the queue (click to a worker's pickup), to the first step
    (set-up and the first step), the run (first step to the job's end), the end to Finished on
    screen. Seconds, one value per press."""
    from tlcore.core.events import StepEvent

    names = ("click -> picked up", "picked up -> first step", "first step -> job end", "job end -> Finished on screen")
    names += ("click -> Finished on screen", "click -> first curve on screen")
    names += ("server core-s, job start -> end", "Chromium renderers core-s, job start -> end")
    out: dict[str, list[float]] = {name: [] for name in names}
    for (clicked, seen, _load, _got, cpu), job in zip(results, jobs):
        snap = job.runs[0] if job.runs else None
        first = [t for e, t in zip(snap.events, snap.times) if isinstance(e, StepEvent)][:1] if snap else []
        if not (first and job.started_at and job.finished_at and "end" in seen):
            continue
        out["click -> picked up"].append(job.started_at - clicked)
        out["picked up -> first step"].append(first[0])  # event times count from the job's start
        out["first step -> job end"].append(job.finished_at - job.started_at - first[0])
        out["job end -> Finished on screen"].append(clicked + seen["end"] - job.finished_at)
        out["click -> Finished on screen"].append(seen["end"])
        out["click -> first curve on screen"].append(seen.get("curve", float("nan")))
        spent = cpu.between(job.started_at, job.finished_at)
        out["server core-s, job start -> end"].append(spent["server"])
        out["Chromium renderers core-s, job start -> end"].append(spent["renderers"])
    return out


def engine_alone(race: bool, runs: int, env: dict) -> list[dict]:
    """The same job `runs` times through the same queue, in a fresh process after the server's
    warm-up, no browser (tools.racetime's child): each job's start to end and its runs' own times."""
    cmd = [sys.executable, "-m", "tools.racetime", "--child", "--races", str(runs)] + ([] if race else ["--demo"])
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def print_against_engine(split: dict[str, list[float]], engine: list[dict]) -> None:
    """Medians of the parts, and the browser path against the engine path."""
    med = {k: statistics.median(v) for k, v in split.items() if v}
    walls = [r["wall"] for r in engine]
    if not med or not walls:
        return
    print("\nmedians per press (the page's parts around the run, and the run)")
    for name, value in med.items():
        print(f"  {name:40s} {value:6.2f} s")
    runs = [next(iter(r["runs"].values())) for r in engine] if len(engine[0]["runs"]) == 1 else []
    loads = " ".join(f"{r['load']:.2f}" for r in engine)
    print(
        f"engine alone ({len(walls)} jobs, load {loads}): job start -> end "
        + ", ".join(f"{w:.2f}" for w in walls)
        + " s"
        + (f"; the run's first event -> last {', '.join(f'{r:.2f}' for r in runs)} s" if runs else "")
    )
    browser = med["click -> Finished on screen"]
    engine_s = statistics.median(walls)
    print(
        f"browser path / engine path: {browser:.2f} / {engine_s:.2f} s = {browser / engine_s:.2f} "
        f"(the pages add {browser - engine_s:+.2f} s; of it around the run: queue {med['click -> picked up']:.2f} s, "
        f"end to Finished {med['job end -> Finished on screen']:.2f} s)"
    )


def print_goals(slot: str, results: list) -> None:
    goal_end, goal_curve = GOALS[slot]
    ends = [s["end"] for _, s, *_ in results if "end" in s]
    curves = [s["curve"] for _, s, *_ in results if "curve" in s]
    print(
        f"\n{slot}: Finished {', '.join(f'{e:.2f}' for e in ends)} s (goal <= {goal_end:g} s)"
        + (f"; first curve {', '.join(f'{c:.2f}' for c in curves)} s (goal <= {goal_curve:g} s)" if goal_curve else "")
    )


def presses(url: str, server_pid: int, *, slot: str, runs: int, settle: float, screenshot: str = "") -> list[tuple]:
    """Chromium at 1280x720 on the page of `slot` (`PAGES`) of the server at `url`, `settle` s to let
    its warm-up end, then Start pressed `runs` times, one after the other: (the click's time,
    `time_one_press`'s seconds, the load average, what the page received, the CPU read meanwhile
    (CpuDuring)) per press."""
    from playwright.sync_api import sync_playwright

    path, button = PAGES[slot]
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US").new_page()
        page.add_init_script(RECORD_FRAMES)
        page.goto(f"{url}/{path}?lang=en", timeout=120_000)
        page.get_by_role("button", name=button).first.wait_for(timeout=120_000)
        time.sleep(settle)  # the server's warm-up: the default data and model loaded
        for n in range(runs):
            wait_interactive(page) if slot == "finetune" else page.wait_for_timeout(500)
            load = os.getloadavg()[0]
            page.evaluate(TAKE_FRAMES)  # what came before this press
            with CpuDuring(server_pid) as cpu:
                clicked = time.time()
                seen = time_one_press(page, button, first=n == 0)
            results.append((clicked, seen, load, received(page.evaluate(TAKE_FRAMES), DONE_TEXT), cpu))
            print(
                f"press {n + 1}: first curve {seen.get('curve', float('nan')):.2f} s, {seen.get('outcome')} "
                f"{seen.get('end', float('nan')):.2f} s after the click (load average {load:.2f})",
                flush=True,
            )
            page.wait_for_timeout(1500)
        if screenshot:
            page.screenshot(path=screenshot)
        browser.close()
    return results


def sitting(root: Path, settings: dict, args) -> tuple[list, list, Path]:
    """A fresh server of the checkout at `root`, its presses, its run store's record of them, its state folder."""
    with fresh_server("tls-demotime-", root=root, **settings) as (url, state, server):
        results = presses(url, server.pid, slot=args.slot, runs=args.runs, settle=args.settle, screenshot=args.screenshot)
    return results, _stored_runs(state), state


def against_base(args, settings: dict) -> None:
    """This tree's pages and a worktree of `args.base`'s, taking turns `args.rounds` times: the
    medians of each part of a press, both variants, and their ratio (this / base)."""
    from tools.racetime import tree_at

    split: dict[str, dict[str, list[float]]] = {"base": {}, "this": {}}
    with tree_at(args.base) as base_tree:
        for n in range(max(1, args.rounds)):
            for label, root in (("base", base_tree), ("this", ROOT)):
                print(f"\nround {n + 1}, {label} ({args.base if label == 'base' else 'this tree'})", flush=True)
                results, jobs, _state = sitting(root, settings, args)
                for key, values in parts(results, jobs).items():
                    split[label].setdefault(key, []).extend(values)
    print(f"\nmedians per press (base {args.base}, this tree), {args.rounds} rounds of {args.runs} presses each")
    for key, values in split["this"].items():
        base = statistics.median(split["base"].get(key) or [float("nan")])
        this = statistics.median(values)
        print(f"  {key:44s} base {base:6.2f}   this {this:6.2f}   ratio {this / base if base else float('nan'):.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--race", action="store_true", help="page 4's race of four (default: page 3's fine-tune)")
    ap.add_argument("--text", action="store_true", help="page 5's default text run (no engine-alone baseline)")
    ap.add_argument("--runs", type=int, default=3, help="presses of Start, one after the other (default %(default)s)")
    ap.add_argument(
        "--settle",
        type=float,
        default=40,
        help="seconds to let the server's warm-up (presets.warm_ups: about 13 s of work on 2 idle cores, longer while pages load) finish before the first press",
    )
    ap.add_argument("--screenshot", default="", help="a PNG of the page when the last run finished")
    ap.add_argument("--nice", type=int, default=None, help="the training threads' nice (TLS_WORKER_NICE; app default 10)")
    ap.add_argument("--no-engine", action="store_true", help="leave out the engine-alone baseline (tools.racetime's child)")
    ap.add_argument("--base", help="a git revision whose pages this tree's are measured against (a temporary worktree)")
    ap.add_argument("--rounds", type=int, default=2, help="with --base: turns of each variant (default %(default)s)")
    args = ap.parse_args(argv)
    args.slot = slot = "race" if args.race else "text" if args.text else "finetune"
    settings = {} if args.nice is None else {"TLS_WORKER_NICE": str(args.nice)}
    nice = settings.get("TLS_WORKER_NICE", os.environ.get("TLS_WORKER_NICE", "10"))
    print(f"training at nice {nice}; {os.cpu_count()} cores", flush=True)
    if args.base:
        against_base(args, settings)
        return 0
    results, jobs, state = sitting(ROOT, settings, args)
    env = dict(os.environ, TLS_STATE_DIR=str(state), TLS_CLASS_CONFIG=str(state / "class.toml"), **settings)
    print_breakdowns(results, jobs)
    print_goals(slot, results)
    if not args.no_engine and slot != "text":
        print(
            f"\nthe engine alone: tools.racetime's queue, its threads at nice 0 (the server's: {nice})",
            flush=True,
        )
        print_against_engine(parts(results, jobs), engine_alone(args.race, args.runs, env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
