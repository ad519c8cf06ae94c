"""Chromium: its settings (shared with the browser tests), reading a page's state, and the
fresh visitor whose time to interactive is the figure."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

from tools.loadtest.texts import APP_ERRORS, DONE, FAILED, RUNNING, STOPPED, WAITING

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

ERRORS_JS = """(prefixes) => document.querySelectorAll('[data-testid="stException"]').length
    + [...document.querySelectorAll('[data-testid="stAlert"]')].filter(
        a => prefixes.some(p => a.innerText.includes(p))).length"""

STUDENT_IDLE = True  # see idle_chromium
# The calling session's scheduler group at the least weight, where the kernel groups sessions (see idle_chromium)
LEAST_GROUP = "[ -w /proc/self/autogroup ] && echo 19 > /proc/self/autogroup 2>/dev/null"


def idle_chromium(idle: bool, folder: Path) -> str:
    """A Chromium whose processes run under Linux's SCHED_IDLE policy: the simulated students'
    browsers (the teacher's projector is a browser of its own at the normal priority).

    In a class every student's browser runs on the student's own machine; here they share the
    server's two cores with it. Their own work (parsing Streamlit's scripts, redrawing four
    plotly charts every second) is not the server's and would not slow it in a class, so it
    gets only the CPU that the server and the fresh visitor leave. (`nice` does not hold:
    Chromium sets its processes' nice values itself; the policy is inherited and kept.) The
    fresh visitor's browser, whose page is what is timed, and the server keep the normal
    policy. `--students-compete` measures with every browser at the server's priority.

    Playwright starts each browser in a session of its own, and where Linux groups a session's
    processes for the scheduler (autogroup, /proc/sys/kernel/sched_autogroup_enabled: on in most
    distributions and on this box) a policy or a nice counts only inside the group: each
    SCHED_IDLE browser still took an equal share beside the server's group (two busy loops on
    one core, one in a session of its own at SCHED_IDLE: 50% each). The wrapper therefore also
    gives its session's group the least weight (nice 19: a weight of 15 against a nice-0 group's 1024;
    the same two busy loops: the normal one took the core)."""
    if not idle:
        return CHROMIUM
    wrapper = folder / "chromium-idle"
    wrapper.write_text(f'#!/bin/sh\n{LEAST_GROUP}\nexec chrt --idle 0 {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def priorities_said(idle: bool) -> str:
    """The report's line on who ran at which CPU priority (see idle_chromium)."""
    if not idle:
        return "every browser ran at the server's CPU priority (--students-compete)"
    return (
        "the students' browsers ran on idle CPU only (SCHED_IDLE, their scheduler group at nice 19: in a class they run "
        "on their own machines); the teacher's projector, the timed fresh visitor's browser and the server at the normal priority"
    )


@contextlib.contextmanager
def at_normal_priority():
    """The idle-priority browsers (idle_chromium) at the normal policy for a moment: a student's
    click in a class is not delayed by the server's load (their browser runs on their own machine),
    but here a Start click waits for its browser to answer Playwright, and once the first run
    trains, a SCHED_IDLE browser gets no CPU: six clicks one after the other took 3.1-6.1 s.
    The policy is per thread, so every thread of every such Chromium process is moved, then back;
    and their sessions' scheduler groups (autogroup) to the normal weight and back."""
    threads = [tid for tid in _chromium_threads() if _policy(tid) == os.SCHED_IDLE]
    groups = _groups_of(threads)
    _set_policy(threads, os.SCHED_OTHER)
    _set_group_nice(groups, 0)
    try:
        yield
    finally:
        _set_policy(threads, os.SCHED_IDLE)
        _set_group_nice(groups, 19)


def _groups_of(threads: list[int]) -> list[Path]:
    """One /proc file for each scheduler group (a session's autogroup) these threads are in, where the kernel has them."""
    found: dict[str, Path] = {}
    for tid in threads:
        path = Path(f"/proc/{tid}/autogroup")
        with contextlib.suppress(OSError):
            found.setdefault(path.read_text().split()[0], path)  # "/autogroup-1544 nice 19"
    return list(found.values())


def _set_group_nice(groups: list[Path], nice: int) -> None:
    for group in groups:
        with contextlib.suppress(OSError):  # ended meanwhile, or a lower nice not allowed here
            group.write_text(str(nice))


def _chromium_threads() -> list[int]:
    found = []
    for task in Path("/proc").glob("[0-9]*/task/[0-9]*"):
        with contextlib.suppress(OSError):
            if "chrom" in (task.parent.parent / "comm").read_text():
                found.append(int(task.name))
    return found


def _policy(tid: int) -> int | None:
    try:
        return os.sched_getscheduler(tid)
    except OSError:
        return None


def _set_policy(threads: list[int], policy: int) -> None:
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setscheduler(tid, policy, os.sched_param(0))


def error_count(page) -> int:
    """Exception boxes and the app's 'something went wrong' lines on a Playwright page."""
    return page.evaluate(ERRORS_JS, APP_ERRORS)


# "curve": a line chart with points in view (a run's loss curve, or a race's curves); not page 3's block
# diagram (bars) drawn before Start, nor page 4's committed curves in a closed tab.
STATUS_JS = """([waiting, running, done, stopped, failed, errors]) => {
    const txt = document.body.innerText;
    const m = txt.match(new RegExp(waiting));
    const shown = el => el.offsetParent !== null;
    return {position: m ? +m[1] : null, running: new RegExp(running).test(txt),
            curve: [...document.querySelectorAll('.js-plotly-plot')].some(
                el => shown(el) && (el.data || []).some(d => (d.type || 'scatter') === 'scatter' && d.x && d.x.length > 0))
                || [...document.querySelectorAll('.tls-live[data-chart="loss"], .tls-live[data-chart^="race_"]')].some(
                    el => shown(el) && +el.dataset.points > 0),
            done: new RegExp(done).test(txt), stopped: new RegExp(stopped).test(txt), failed: txt.includes(failed),
            exceptions: (ERRORS)(errors)};
}""".replace("ERRORS", ERRORS_JS)
PATTERNS = [WAITING.pattern, RUNNING.pattern, DONE.pattern, STOPPED, FAILED, APP_ERRORS]


def wait_interactive(page, timeout_ms: int | None = None) -> None:
    """Start is on the page and enabled, and Streamlit has finished the script run (by default within
    120 s of an idle box, longer on a loaded one: tools.pace.within; a class's idle-priority browser
    beside the suite's other browser tests once waited past a fixed 120 s)."""
    from tools.pace import within

    timeout_ms = timeout_ms if timeout_ms is not None else int(1000 * within(120))
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
