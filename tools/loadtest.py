"""A class on one server: N students press Start on page 3 within 2 s; print the figures.

    python -m tools.loadtest --students 30            # the class the issue asks for
    python -m tools.loadtest --students 5 --max-seconds 6 --browsers 5   # the suite's scale

What it does, in one process on loopback:
- starts `streamlit run app.py` from the repository root, so `.streamlit/config.toml` (the
  settings we ship) applies; `--max-seconds` writes a class.toml (`TLS_CLASS_CONFIG`) that caps
  each job, the teacher's own control, to make a short class;
- `--browsers` students are real Chromium pages (one browser, one context each: their own
  cookie, their own Streamlit session);
- the other students are websocket clients that speak Streamlit's own protocol to the same
  server (`/_stcore/stream`, BackMsg/ForwardMsg protobufs): they load page 3 like a browser,
  press the real Start button by its widget id, and re-run the live panel's fragment every
  time the server asks for it (`auto_rerun`), as the browser's frontend does. The server
  cannot tell them from browsers: same sessions, same script runs, same fragment polls, same
  deltas sent. They draw nothing, so they cost the machine less than a browser would;
- a fresh visitor (a new browser context) opens page 3 every `--probe-every` seconds and is
  timed until Start is clickable and the script has finished (time to interactive);
- the server's RSS and CPU are sampled every 0.5 s from /proc.

Figures (per student and summed up) print as a pass/fail list against the issue's targets.
Everything it starts (server, browsers) is stopped before it returns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EN = json.loads((ROOT / "assets" / "i18n" / "en.json").read_text())
KO = json.loads((ROOT / "assets" / "i18n" / "ko.json").read_text())
# Something broke on a page: a raw exception box, or the one line the app shows instead of one
# (app.py for a page's exception, studio.state.callback for a click's), in either language.
APP_ERRORS = [lang[key].split("(")[0] for lang in (EN, KO) for key in ("error.page", "error.callback")]
ERRORS_JS = """(prefixes) => document.querySelectorAll('[data-testid="stException"]').length
    + [...document.querySelectorAll('[data-testid="stAlert"]')].filter(
        a => prefixes.some(p => a.innerText.includes(p))).length"""
WAITING = re.compile(re.escape(EN["job.waiting"]).replace(r"\{position\}", r"(\d+)").split(r"\.")[0])
RUNNING = re.compile(r"Run \d+ of \d+ \(")
DONE = re.compile(re.escape(EN["job.done"]).replace(r"\{seconds\}", r"[\d.]+"))
HAS_POINTS = re.compile(r'"[xy]":\s*\[\s*[-\d]')  # a trace with data in a plotly spec
# A stopped run says why: stopped by its learner, at the class's time limit, its tab closed, the teacher.
STOPPED = "|".join(
    re.escape(EN[k].split("{")[0]) for k in ("job.cancelled", "job.note.time_limit", "job.note.closed", "job.note.teacher")
)
FAILED = EN["job.failed"].split("{")[0]

# Targets of issue 11 (a 2-core server, a class of 30).
TTI_TARGET_S = 5.0
PEAK_TARGET_MB = 3072
AFTER_TARGET_MB = 300
PRESS_WINDOW_S = 2.0
LAST_TARGET_S = 180.0  # issue 22: with full-length default jobs, the last student's run ends within 3 min


@dataclass
class Student:
    name: str
    kind: str  # "browser" | "websocket"
    pressed: float | None = None
    t_position: float | None = None  # seconds after the press
    position: int | None = None
    t_running: float | None = None
    t_curve: float | None = None
    t_end: float | None = None
    outcome: str | None = None  # done | stopped | failed
    exceptions: int = 0
    error: str = ""

    def seen(self, now: float, *, position=None, running=False, curve=False, end=None, exceptions=0) -> None:
        if self.pressed is None:
            return
        dt = now - self.pressed
        if position is not None and self.t_position is None:
            self.t_position, self.position = dt, position
        if running and self.t_running is None:
            self.t_running = dt
        if curve and self.t_curve is None:
            self.t_curve = dt
        if end and self.outcome is None:
            self.t_end, self.outcome = dt, end
        self.exceptions = max(self.exceptions, exceptions)

    @property
    def ok(self) -> bool:
        """The issue's test: the job finished, or the page showed its queue position."""
        return not self.error and (self.outcome in ("done", "stopped") or self.t_position is not None)


# --- the server and what it uses -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return True
        except OSError:
            time.sleep(0.3)
    return False


def start_server(port: int, log_path: Path, env: dict) -> subprocess.Popen:
    """`streamlit run app.py` with only the port given on the command line: the rest of the
    settings come from .streamlit/config.toml, as when the teacher starts it."""
    log = open(log_path, "w")  # noqa: SIM115 -- closed with the process by stop_server
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    proc._tls_log = log  # type: ignore[attr-defined]
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc._tls_log.close()  # type: ignore[attr-defined]


class Sampler(threading.Thread):
    """The server's resident memory (MB) and CPU seconds, every 0.5 s, from /proc."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop_flag = pid, [], threading.Event()
        self.tick = os.sysconf("SC_CLK_TCK")

    def read(self) -> tuple[float, float, float]:
        with open(f"/proc/{self.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
        with open(f"/proc/{self.pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        cpu = (int(parts[11]) + int(parts[12])) / self.tick  # utime + stime
        return time.monotonic(), rss, cpu

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                self.samples.append(self.read())
            except (OSError, StopIteration):
                return
            self.stop_flag.wait(0.5)

    def cpu_between(self, t0: float, t1: float) -> float | None:
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return None
        return (inside[-1][2] - inside[0][2]) / max(inside[-1][0] - inside[0][0], 1e-9)

    def wait_idle(self, at_least: float, at_most: float, window: float = 3.0, busy: float = 0.1) -> float:
        """Sleep `at_least` s, then until the server used under `busy` CPU-s per s over `window` s
        (the closed tabs' jobs cancelled, the queue empty), or `at_most` s in all; the seconds waited."""
        t0 = time.monotonic()
        time.sleep(at_least)
        while time.monotonic() - t0 < at_most:
            now = time.monotonic()
            used = self.cpu_between(now - window, now)
            if used is not None and used < busy:
                break
            time.sleep(0.5)
        return time.monotonic() - t0


def read_server_jobs(path: Path, teacher_id: str, since: float) -> list[tuple[bool, float, float | None, float | None]]:
    """Every job submitted since `since` as the server recorded it: (the teacher's?, submitted,
    started, finished), Unix times."""
    from tlcore.serve.store import learner_key

    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        rows = db.execute(
            "SELECT learner, submitted_at, started_at, finished_at FROM jobs WHERE submitted_at >= ?", (since,)
        ).fetchall()
    key = learner_key(teacher_id)
    return [(learner == key, sub, start, end) for learner, sub, start, end in rows]


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --- browser students ----------------------------------------------------------------------

STUDENT_IDLE = True  # see idle_chromium


def idle_chromium(idle: bool, folder: Path) -> str:
    """A Chromium whose processes run under Linux's SCHED_IDLE policy: the simulated students'
    (and the teacher's) browsers.

    In a class every student's browser runs on the student's own machine; here they share the
    server's two cores with it. Their own work (parsing Streamlit's scripts, redrawing four
    plotly charts every second) is not the server's and would not slow it in a class, so it
    gets only the CPU that the server and the fresh visitor leave. (`nice` does not hold:
    Chromium sets its processes' nice values itself; the policy is inherited and kept.) The
    fresh visitor's browser, whose page is what is timed, and the server keep the normal
    policy. `--students-compete` measures with every browser at the server's priority."""
    if not idle:
        return CHROMIUM
    wrapper = folder / "chromium-idle"
    wrapper.write_text(f'#!/bin/sh\nexec chrt --idle 0 {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def error_count(page) -> int:
    """Exception boxes and the app's 'something went wrong' lines on a Playwright page."""
    return page.evaluate(ERRORS_JS, APP_ERRORS)


STATUS_JS = """([waiting, running, done, stopped, failed, errors]) => {
    const txt = document.body.innerText;
    const m = txt.match(new RegExp(waiting));
    return {position: m ? +m[1] : null, running: new RegExp(running).test(txt),
            curve: [...document.querySelectorAll('.js-plotly-plot')].some(
                el => (el.data || []).some(d => d.x && d.x.length > 0)),
            done: new RegExp(done).test(txt), stopped: new RegExp(stopped).test(txt), failed: txt.includes(failed),
            exceptions: (ERRORS)(errors)};
}""".replace("ERRORS", ERRORS_JS)
PATTERNS = [WAITING.pattern, RUNNING.pattern, DONE.pattern, STOPPED, FAILED, APP_ERRORS]


def wait_interactive(page, timeout_ms: int = 120_000) -> None:
    """Start is on the page and enabled, and Streamlit has finished the script run."""
    page.get_by_role("button", name="Start").first.wait_for(timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const b = [...document.querySelectorAll('button')].find(b => b.innerText.includes('Start'));
            const status = document.querySelector('[data-testid="stStatusWidget"]');
            return b && !b.disabled && !(status && status.innerText.includes('Running'))
                   && !document.querySelector('[data-stale="true"]');
        }""",
        timeout=timeout_ms,
    )


def read_status(page) -> dict:
    status = page.evaluate(STATUS_JS, PATTERNS)
    end = "failed" if status["failed"] else "done" if status["done"] else "stopped" if status["stopped"] else None
    return {
        "position": status["position"],
        "running": status["running"],
        "curve": status["curve"],
        "end": end,
        "exceptions": status["exceptions"],
    }


class Visitor(threading.Thread):
    """A fresh visitor every `every` s: a new context (no cookie), page 3, time to interactive."""

    def __init__(self, url: str, every: float):
        super().__init__(daemon=True)
        self.url, self.every, self.stop_flag = url, every, threading.Event()
        # Chromium is up before the class starts: the first visit begins with the Start clicks,
        # in the burst they cause, not a browser launch later.
        self.ready, self.go = threading.Event(), threading.Event()
        self.times: list[tuple[float, float | None]] = []  # (when, seconds or None = timed out)
        self.exceptions = 0

    def run(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            self.ready.set()
            self.go.wait()
            try:
                while not self.stop_flag.is_set():
                    begun = time.monotonic()
                    context = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US")
                    page = context.new_page()
                    try:
                        page.goto(f"{self.url}/finetune?lang=en", timeout=60_000)
                        wait_interactive(page, timeout_ms=60_000)
                        self.times.append((begun, time.monotonic() - begun))
                        self.exceptions += error_count(page)
                    except Exception:  # noqa: BLE001 -- a timeout is a figure, not a crash
                        self.times.append((begun, None))
                    finally:
                        context.close()
                    self.stop_flag.wait(max(0.0, self.every - (time.monotonic() - begun)))
            finally:
                browser.close()


# --- websocket students --------------------------------------------------------------------


class WsStudent:
    """A student whose 'browser' is a Streamlit protocol client: it loads page 3, presses Start
    by its widget id, and runs the fragment reruns the server asks for, as the frontend does."""

    def __init__(self, student: Student, url: str):
        self.s, self.url = student, url
        self.ready = asyncio.Event()
        self.start_id: str | None = None
        self.page_hash = ""
        self.fragments: dict[str, float] = {}  # fragment id -> interval the server asked for
        self.script_running = False
        self.closing = False
        self.finished = asyncio.Event()
        self.poll_sent: float | None = None
        self.poll_times: list[float] = []

    def client_state(self, **kw):
        from streamlit.proto.ClientState_pb2 import ClientState

        return ClientState(query_string="lang=en", page_script_hash=self.page_hash, page_name="finetune", **kw)

    async def send_rerun(self, ws, **kw) -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        msg.rerun_script.CopyFrom(self.client_state(**kw))
        self.script_running = True
        await ws.send(msg.SerializeToString())

    async def press(self, ws) -> None:
        from streamlit.proto.WidgetStates_pb2 import WidgetState, WidgetStates

        self.s.pressed = time.monotonic()
        await self.send_rerun(ws, widget_states=WidgetStates(widgets=[WidgetState(id=self.start_id, trigger_value=True)]))

    async def poll_fragments(self, ws) -> None:
        while not self.closing:
            interval = min(self.fragments.values(), default=1.0)
            await asyncio.sleep(interval)
            if self.script_running:
                continue  # the frontend, too, waits for the run in progress
            for fragment in list(self.fragments):
                self.poll_sent = time.monotonic()
                await self.send_rerun(ws, fragment_id=fragment, is_auto_rerun=True)

    def handle(self, raw: bytes) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = ForwardMsg()
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("type")
        now = time.monotonic()
        if kind == "new_session":
            self.script_running = True
        elif kind == "navigation":
            self.page_hash = msg.navigation.page_script_hash or self.page_hash  # page 3's, as the frontend keeps it
        elif kind == "script_finished":
            self.script_running = False
            self.finished.set()
            if self.poll_sent is not None:  # a poll's round trip: how long the server took to answer it
                self.poll_times.append(now - self.poll_sent)
                self.poll_sent = None
        elif kind == "auto_rerun":
            self.fragments[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval or 1.0
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids or list(self.fragments):
                self.fragments.pop(fragment, None)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            which = el.WhichOneof("type")
            if which == "button" and el.button.label == "Start":
                self.start_id = el.button.id
            elif which == "alert":
                body = el.alert.body
                if any(body.startswith(prefix) for prefix in APP_ERRORS):
                    self.s.exceptions += 1
                m = WAITING.search(body)
                end = (
                    "failed"
                    if body.startswith(FAILED)
                    else "done"
                    if DONE.search(body)
                    else "stopped"
                    if re.search(STOPPED, body)
                    else None
                )
                self.s.seen(now, position=int(m.group(1)) if m else None, end=end)
            elif which == "progress" and RUNNING.search(el.progress.text):
                self.s.seen(now, running=True)
            elif which == "plotly_chart" and self.s.t_running is not None and HAS_POINTS.search(el.plotly_chart.spec):
                self.s.seen(now, curve=True)
            elif which == "exception":
                self.s.exceptions += 1

    async def run(self, go: asyncio.Event, deadline: float) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/_stcore/stream"
        try:
            async with websockets.connect(
                ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=120, ping_interval=None
            ) as ws:
                reader = asyncio.create_task(self.read(ws))
                # Load page 3 until the Start widget's id is the same in two runs in a row (the
                # first run sees no cookie and no settings yet, and its widget ids differ).
                previous = None
                for _ in range(6):
                    self.finished.clear()
                    await self.send_rerun(ws)
                    await asyncio.wait_for(self.finished.wait(), timeout=180)
                    if self.start_id and self.start_id == previous:
                        break
                    previous = self.start_id
                self.ready.set()
                await go.wait()
                await self.press(ws)
                poller = asyncio.create_task(self.poll_fragments(ws))
                while time.monotonic() < deadline and self.s.outcome is None and not self.closing:
                    await asyncio.sleep(0.5)
                self.closing = True
                poller.cancel()
                reader.cancel()
        except Exception as exc:  # noqa: BLE001 -- a client that broke is a figure
            self.s.error = f"{type(exc).__name__}: {exc}"[:200]

    async def read(self, ws) -> None:
        async for raw in ws:
            if isinstance(raw, bytes):
                self.handle(raw)


class WsClass(threading.Thread):
    """All websocket students in one asyncio loop (one thread), released together by `go`."""

    def __init__(self, students: list[Student], url: str, deadline: float):
        super().__init__(daemon=True)
        self.clients = [WsStudent(s, url) for s in students]
        self.deadline = deadline
        self.loop = asyncio.new_event_loop()
        self.go = asyncio.Event()
        self.all_ready = threading.Event()

    def release(self) -> None:
        self.loop.call_soon_threadsafe(self.go.set)

    def stop(self) -> None:
        for c in self.clients:
            c.closing = True

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self.go = asyncio.Event()
            tasks = [asyncio.create_task(c.run(self.go, self.deadline)) for c in self.clients]

            async def readiness():
                await asyncio.gather(*(c.ready.wait() for c in self.clients))
                self.all_ready.set()

            ready_task = asyncio.create_task(readiness())
            await asyncio.gather(*tasks)
            ready_task.cancel()
            self.all_ready.set()

        self.loop.run_until_complete(main())


# --- the class -----------------------------------------------------------------------------


@dataclass
class Report:
    students: list[Student]
    tti: list[tuple[float, float | None]]
    visitor_exceptions: int
    rss_start: float
    rss_peak: float  # from the class's Start on
    rss_peak_startup: float  # the server's start and warm-up (model load, calibration), for the record
    rss_after: float
    cpu_waiting: float | None
    cpu_total: float
    press_spread: float
    load_before: str
    load_after: str
    browsers: int
    students_idle: bool = False  # the simulated students' browsers ran on idle CPU only (SCHED_IDLE)
    teacher: str = "teacher mode: not used"
    teacher_delay: float | None = None  # seconds from the teacher's Start to their run running, on the page
    # The server's own record (its SQLite store): (is the teacher's, submitted, started, finished) per job.
    server_jobs: list[tuple[bool, float, float | None, float | None]] = field(default_factory=list)
    poll_times: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cpu_plan: str = ""  # the server's runs at a time and threads per run (tlcore.serve.cores)

    def jobs_per_minute(self) -> tuple[int, float] | None:
        """Jobs that ran to their end, and how many ended per minute from the first start to the
        last end: the server's own record (its store), the queue's throughput."""
        runs = [(start, end) for _, _, start, end in self.server_jobs if start is not None and end is not None]
        if not runs:
            return None
        span = max(end for _, end in runs) - min(start for start, _ in runs)
        return len(runs), 60.0 * len(runs) / span if span > 0 else float("nan")

    def checks(self) -> list[tuple[str, bool, str]]:
        ok = sum(s.ok for s in self.students)
        measured = [t for _, t in self.tti if t is not None]
        timeouts = sum(t is None for _, t in self.tti)
        worst = max(measured, default=float("nan"))
        exceptions = sum(s.exceptions for s in self.students) + self.visitor_exceptions
        return (
            [
                ("every job finished or showed its queue position", ok == len(self.students), f"{ok}/{len(self.students)}"),
                (
                    f"all pressed Start within {PRESS_WINDOW_S:.0f} s",
                    self.press_spread <= PRESS_WINDOW_S,
                    f"{self.press_spread:.2f} s",
                ),
                (
                    f"fresh visitor's page 3 interactive < {TTI_TARGET_S:.0f} s throughout",
                    bool(measured) and timeouts == 0 and worst < TTI_TARGET_S,
                    f"worst {worst:.1f} s, median {statistics.median(measured) if measured else float('nan'):.1f} s, "
                    f"{len(measured)} samples, {timeouts} timed out (ratio worst/target {worst / TTI_TARGET_S:.2f})",
                ),
                (
                    f"server memory peak during the class < {PEAK_TARGET_MB} MB",
                    self.rss_peak < PEAK_TARGET_MB,
                    f"{self.rss_peak:.0f} MB (ratio {self.rss_peak / PEAK_TARGET_MB:.2f})",
                ),
                (
                    f"memory after the class within {AFTER_TARGET_MB} MB of its start",
                    self.rss_after - self.rss_start < AFTER_TARGET_MB,
                    f"start {self.rss_start:.0f} MB, after {self.rss_after:.0f} MB (+{self.rss_after - self.rss_start:.0f} MB)",
                ),
                ("no error boxes", exceptions == 0, f"{exceptions}"),
            ]
            + self.last_check()
            + self.teacher_check()
        )

    def last_check(self) -> list[tuple[str, bool, str]]:
        """Every student's run ended (none stopped early, none failed) within LAST_TARGET_S of its Start."""
        ends = [s.t_end for s in self.students]
        if any(e is None for e in ends):
            return [
                (
                    f"the last student's run finished <= {LAST_TARGET_S:.0f} s",
                    False,
                    f"{sum(e is None for e in ends)} never ended",
                )
            ]
        last, done = max(ends), sum(s.outcome == "done" for s in self.students)
        return [
            (
                f"the last student's run finished <= {LAST_TARGET_S:.0f} s",
                last <= LAST_TARGET_S and done == len(self.students),
                f"{last:.1f} s, {done}/{len(self.students)} done (ratio {last / LAST_TARGET_S:.2f})",
            )
        ]

    def teacher_check(self) -> list[tuple[str, bool, str]]:
        """The teacher's run starts within one job length: it waits only for the job running
        when they pressed Start (one worker), however many students are in line. Both figures
        are the server's record (the store's submitted, started and finished times): a page
        sees a start only at its next poll, after the run's data and model are loaded."""
        if self.teacher.startswith("teacher mode: not"):
            return []
        mine = [(sub, start) for teacher, sub, start, _ in self.server_jobs if teacher]
        lengths = [
            end - start for teacher, _, start, end in self.server_jobs if not teacher and start is not None and end is not None
        ]
        if not mine or not lengths:
            return [
                ("the teacher's run starts within one job length", False, "no record of the teacher's run or of a finished job")
            ]
        sub, start = mine[0]
        wait, job = (None if start is None else start - sub), max(lengths)
        return [
            (
                "the teacher's run starts within one job length",
                wait is not None and wait <= job,
                f"waited {'-' if wait is None else f'{wait:.1f}'} s in the queue; longest job {job:.1f} s "
                f"(ratio {float('nan') if wait is None else wait / job:.2f})",
            )
        ]

    def print(self, out=sys.stdout) -> None:
        def fmt(x):
            return "-" if x is None else f"{x:6.1f}"

        p = lambda *a: print(*a, file=out)  # noqa: E731
        n_ws = len(self.students) - self.browsers
        p(
            f"\nclass of {len(self.students)}: {self.browsers} Chromium contexts (one browser) + {n_ws} websocket "
            "clients speaking Streamlit's protocol to the same server (page 3 loaded, the real Start widget "
            "pressed, the live panel's fragment re-run whenever the server asks, as the frontend does)"
        )
        p(
            "the students' and the teacher's browsers ran on idle CPU only (SCHED_IDLE: in a class they run on their "
            "own machines); the timed fresh visitor's browser and the server at the normal priority"
            if self.students_idle
            else "every browser ran at the server's CPU priority (--students-compete)"
        )
        p(
            f"load average before: {self.load_before}   after: {self.load_after}   (2 cores shared with other work "
            "make these figures pessimistic)"
        )
        p("\nstudent       kind       position(s) pos  running(s)  curve(s)  end(s)  outcome  exc")
        for s in self.students:
            p(
                f"{s.name:12}  {s.kind:9}  {fmt(s.t_position)}   {s.position or '-':>3}  {fmt(s.t_running)}    "
                f"{fmt(s.t_curve)}   {fmt(s.t_end)}  {s.outcome or '-':7}  {s.exceptions}  {s.error}"
            )
        ends = [s.t_end for s in self.students if s.t_end is not None]
        if ends:
            p(f"\nfinished: {len(ends)}, last at {max(ends):.1f} s after its Start")
        throughput = self.jobs_per_minute()
        if throughput is not None:
            p(
                f"jobs per minute: {throughput[1]:.1f} ({throughput[0]} jobs ran to their end, first start to last end, "
                f"the server's record)"
            )
        if self.cpu_plan:
            p(self.cpu_plan)
        p(
            "fresh visitor, page 3 time to interactive (s after class start): "
            + ", ".join(f"{t0:.0f}:{'timeout' if t is None else f'{t:.1f}'}" for t0, t in self.tti)
        )
        p(
            f"server CPU: {self.cpu_total:.1f} s over the class; while the queue was full "
            f"{self.cpu_waiting if self.cpu_waiting is not None else float('nan'):.2f} CPU-s per s "
            "(training included)"
        )
        p(
            f"server memory: {self.rss_start:.0f} MB at rest before the class, peak {self.rss_peak:.0f} MB during it "
            f"(start-up and warm-up peak {self.rss_peak_startup:.0f} MB), {self.rss_after:.0f} MB after"
        )
        if self.poll_times:
            q = statistics.quantiles(self.poll_times, n=10) if len(self.poll_times) > 1 else self.poll_times * 9
            p(
                f"live panel polls (websocket students, request to script finished): {len(self.poll_times)}, "
                f"median {statistics.median(self.poll_times) * 1000:.0f} ms, p90 {q[-1] * 1000:.0f} ms"
            )
        p(self.teacher)
        for note in self.notes:
            p(note)
        p("\ntarget                                                    result  figure")
        for name, passed, figure in self.checks():
            p(f"{name:56}  {'PASS' if passed else 'FAIL':6}  {figure}")

    @property
    def passed(self) -> bool:
        return all(passed for _, passed, _ in self.checks())


def run_class(
    students: int = 30,
    browsers: int = 6,
    max_seconds: float | None = None,
    timeout: float = 900.0,
    probe_every: float = 10.0,
    settle: float = 20.0,
    teacher: bool = True,
    until: str = "end",
    log_dir: Path | None = None,
    say=print,
    students_idle: bool = STUDENT_IDLE,
    workers: int = 0,
    threads: int = 0,
) -> Report:
    """Start a server, run the class, stop everything; return the figures."""
    from playwright.sync_api import sync_playwright

    browsers = min(browsers, students)
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="tls-loadtest-"))
    env = dict(os.environ)
    env.setdefault("TLS_STATE_DIR", tempfile.mkdtemp(prefix="tls-loadtest-state-"))
    secret = "loadtest-" + os.urandom(6).hex() if teacher else ""
    teacher_id = secrets.token_urlsafe(16)  # the teacher's learner cookie: finds their job in the store
    toml = log_dir / "class.toml"  # the teacher's file: the job cap (if any) and teacher mode
    toml.write_text(
        "[limits]\n"
        + (f"max_seconds = {max_seconds}\n" if max_seconds else "")
        + (f"cpu_workers = {workers}\n" if workers else "")
        + (f"threads_per_job = {threads}\n" if threads else "")
        + (f'[teacher]\nsecret = "{secret}"\n' if secret else "")
    )
    from tlcore.serve import cores

    plan = cores.plan(workers=workers, threads=threads)  # what the server decides on this machine (tlcore.serve.cores)
    cpu_plan = (
        f"server: {plan.cores} cores, {plan.workers} runs at a time, {plan.threads} threads each when all "
        f"are busy, a lone run on {plan.threads_now(1)}"
    )
    env["TLS_CLASS_CONFIG"] = str(toml)
    env.pop("TLS_TEACHER_SECRET", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    load_before = loadavg()
    server = start_server(port, log_dir / "streamlit.log", env)
    roster = [Student(f"browser-{i + 1}", "browser") for i in range(browsers)]
    roster += [Student(f"ws-{i + 1}", "websocket") for i in range(students - browsers)]
    sampler = visitor = ws_class = None
    try:
        if not wait_healthy(url):
            raise RuntimeError(f"streamlit did not start; see {log_dir / 'streamlit.log'}")
        sampler = Sampler(server.pid)
        sampler.start()
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=idle_chromium(students_idle, log_dir), args=CHROMIUM_ARGS, headless=True)
            try:
                # Warm up once (imports, the model's first build) so the start figure is the server at rest.
                warm = browser.new_context(locale="en-US")
                page = warm.new_page()
                page.goto(f"{url}/finetune?lang=en", timeout=120_000)
                wait_interactive(page)
                warm.close()
                time.sleep(2)
                rss_start = sampler.read()[1]
                say(
                    f"server up, {rss_start:.0f} MB; opening {browsers} browser students and "
                    f"{students - browsers} websocket students"
                )
                pages = []
                for s in roster[:browsers]:
                    ctx = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US")
                    pg = ctx.new_page()
                    pg.goto(f"{url}/finetune?lang=en", timeout=120_000)
                    pages.append((s, ctx, pg))
                for _, _, pg in pages:
                    wait_interactive(pg)
                teacher_page = None
                if secret:  # the teacher unlocks teacher mode on the Class page before the class
                    teacher_ctx = browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-US")
                    teacher_ctx.add_cookies([{"name": "tls_learner", "value": teacher_id, "url": url}])
                    teacher_page = teacher_ctx.new_page()
                    teacher_page.goto(f"{url}/class?lang=en", timeout=120_000)
                    unlocked = teacher_page.get_by_text("Teacher mode: your runs go first")
                    for _ in range(5):  # typing while the page's first runs redraw the form can be lost: retry
                        teacher_page.get_by_label("Teacher's secret").fill(secret, timeout=120_000)
                        teacher_page.get_by_role("button", name="Unlock teacher mode").click()
                        try:
                            unlocked.wait_for(timeout=15_000)
                            break
                        except Exception:  # noqa: BLE001 -- playwright's TimeoutError
                            teacher_page.wait_for_timeout(1000)
                    unlocked.wait_for(timeout=5_000)
                    # Teacher mode belongs to this tab's session (studio.teacher): go by the page's own
                    # navigation, as a teacher does; loading the address anew would start a new session.
                    teacher_page.locator('[data-testid="stSidebarNavLink"][href$="/finetune"]').first.click(timeout=60_000)
                    wait_interactive(teacher_page)
                deadline = time.monotonic() + timeout
                ws_class = WsClass(roster[browsers:], url, deadline)
                ws_class.start()
                if not ws_class.all_ready.wait(180):
                    raise RuntimeError("the websocket students did not load page 3 in 180 s")
                say("everyone on page 3: Start")
                visitor = Visitor(url, probe_every)
                visitor.start()
                visitor.ready.wait(60)
                class_start, class_wall = time.monotonic(), time.time()
                visitor.go.set()  # a fresh visitor opens page 3 as the class presses Start
                ws_class.release()
                for s, _, pg in pages:
                    s.pressed = time.monotonic()
                    pg.get_by_role("button", name="Start").first.click(no_wait_after=True)
                teacher_note, teacher_delay = "teacher mode: not used", None
                if teacher_page is not None:  # the teacher's demo, after the whole class pressed Start
                    t_pressed = time.monotonic()
                    teacher_page.get_by_role("button", name="Start").first.click(no_wait_after=True)
                full_until = None
                last_say = time.monotonic()
                while time.monotonic() < deadline:
                    now = time.monotonic()
                    for s, _, pg in pages:
                        if s.outcome is None:
                            try:
                                s.seen(time.monotonic(), **read_status(pg))
                            except Exception as exc:  # noqa: BLE001
                                s.error = f"{type(exc).__name__}: {exc}"[:200]
                    if teacher_page is not None and teacher_delay is None:
                        if read_status(teacher_page)["running"]:
                            teacher_delay = time.monotonic() - t_pressed
                    if full_until is None and any(s.outcome for s in roster):
                        full_until = now  # the first job ended: the queue was full until here
                    if all(s.outcome or s.error for s in roster):
                        break
                    if (
                        until == "ok"
                        and all(s.ok or s.error for s in roster)
                        and visitor.times
                        and (teacher_page is None or teacher_delay is not None)
                    ):
                        break  # everyone's page answered and a visitor was timed: the rest is the queue
                    if now - last_say > 15:
                        last_say = now
                        say(
                            f"{now - class_start:4.0f} s: {sum(s.t_position is not None for s in roster)} saw a queue "
                            f"position, {sum(s.t_running is not None for s in roster)} running, "
                            f"{sum(bool(s.outcome) for s in roster)} ended, {sum(bool(s.error) for s in roster)} broke"
                        )
                    time.sleep(max(0.0, 0.5 - (time.monotonic() - now)))
                class_end = time.monotonic()
                press_times = [s.pressed for s in roster if s.pressed]
                ws_class.stop()
                visitor.stop_flag.set()
                visitor.join(90)
                ws_class.join(30)
                for _, ctx, _ in pages:
                    ctx.close()
                if teacher_page is not None:
                    teacher_note = (
                        "teacher's run did not start during the class"
                        if teacher_delay is None
                        else f"teacher's page showed their run training {teacher_delay:.1f} s after Start "
                        "(the queue, the run's loading, the page's next poll)"
                    )
                    teacher_page.context.close()
            finally:
                browser.close()
        say(f"class over after {class_end - class_start:.0f} s; everyone gone, settling {settle:.0f} s or more")
        # Memory is read once the server is idle: the jobs of closed tabs are cancelled, none left queued.
        settled = sampler.wait_idle(settle, settle + 120)
        rss_after = sampler.read()[1]
        server_jobs = read_server_jobs(Path(env["TLS_STATE_DIR"]) / "runs.sqlite", teacher_id, class_wall - 5)
        sampler.stop_flag.set()
        sampler.join(5)
        inside = [s for s in sampler.samples if s[0] >= class_start]
        return Report(
            students=roster,
            tti=[(t0 - class_start, t) for t0, t in visitor.times],
            visitor_exceptions=visitor.exceptions,
            rss_start=rss_start,
            rss_peak=max(s[1] for s in inside),
            rss_after=rss_after,
            rss_peak_startup=max((s[1] for s in sampler.samples if s[0] < class_start), default=0.0),
            cpu_waiting=sampler.cpu_between(class_start + 3, full_until or class_end),
            cpu_total=(inside[-1][2] - inside[0][2]) if len(inside) > 1 else 0.0,
            press_spread=max(press_times) - min(press_times) if press_times else 0.0,
            load_before=load_before,
            load_after=loadavg(),
            browsers=browsers,
            students_idle=students_idle,
            teacher=teacher_note,
            teacher_delay=teacher_delay,
            server_jobs=server_jobs,
            poll_times=[t for c in ws_class.clients for t in c.poll_times],
            cpu_plan=cpu_plan,
            notes=[
                f"memory after read {settled:.0f} s after the class, the server idle",
                f"server log: {log_dir / 'streamlit.log'}",
            ],
        )
    finally:
        if ws_class is not None:
            ws_class.stop()
        if visitor is not None:
            visitor.stop_flag.set()
            visitor.go.set()
        if sampler is not None:
            sampler.stop_flag.set()
        stop_server(server)


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the server and browsers
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
        help="run the simulated students' and the teacher's browsers at the server's CPU priority (by "
        "default they get only idle CPU: in a class they run on their own machines)",
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
    args = ap.parse_args(argv)
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
