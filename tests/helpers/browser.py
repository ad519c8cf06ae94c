"""The app in Chromium: Debian's /usr/bin/chromium with its flags, a Streamlit server on a free
port for a test module, a page of a given size, and waits that read what the page shows.

Importing it skips the importing module where Playwright is not installed.

Not for: the app without a browser (tests.helpers.apptest).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

# The Chromium settings and the server helpers are the load test's (one copy for both).
from tools.loadtest import CHROMIUM, CHROMIUM_ARGS, error_count, free_port, start_server, stop_server, wait_healthy  # noqa: F401
from tools.pace import within  # noqa: F401 -- a "not hung" bound on a busy box

ROOT = Path(__file__).resolve().parents[2]  # the repository
ARTIFACTS = ROOT / "test-artifacts"
DEMO_LIMIT_S = float(os.environ.get("TLS_DEMO_LIMIT_S", "90"))  # target 30 s on an idle 2-core CPU

playwright_api = pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def chromium_page(width: int, height: int, *, args: tuple[str, ...] = (), camera_for: str | None = None):
    """A page in Debian's Chromium, headless, with a window of this size (and, for
    `camera_for`'s origin, permission to use the camera)."""
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(args), headless=True)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
            if camera_for:
                context.grant_permissions(["camera"], origin=camera_for)
            pg = context.new_page()
            pg.set_default_timeout(within(30) * 1000)
            yield pg
        finally:
            browser.close()


def wait_idle(page) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_function(
        """() => {
            const status = document.querySelector('[data-testid="stStatusWidget"]');
            const running = status && status.innerText.includes('Running');
            return !running && !document.querySelector('[data-stale="true"]');
        }""",
        timeout=within(30) * 1000,
    )


def choose(page, selectbox, option) -> None:
    """Pick an option of a selectbox; a click that lands while the page reruns or scrolls can
    be lost, so check and retry."""
    for _ in range(5):
        try:
            selectbox.click()
            page.get_by_role("option", name=option).first.click(timeout=5_000)
        except playwright_api.TimeoutError:
            continue
        wait_idle(page)
        value = selectbox.locator("input").input_value()
        if option.search(value) if hasattr(option, "search") else value == option:
            return


def set_number(page, spinbutton, value: int) -> None:
    """Type a number into a number input and send it (Enter); check that it took. A run that began
    before the typing (the last click's, on a busy box) can redraw the input with the value it had
    and replace what was typed (seen once: seeds 1 typed, the class experiment started with 5)."""
    for _ in range(5):
        spinbutton.fill(str(value))
        spinbutton.press("Enter")
        wait_idle(page)
        page.wait_for_timeout(1_000)  # a run that was already on its way
        wait_idle(page)
        if spinbutton.input_value() == str(value):
            return
    raise AssertionError(f"the number input kept {spinbutton.input_value()!r}, not {value}")


class FullRuns:
    """The page's finished full script runs, counted from what the server sends (each run ends with
    a ForwardMsg `script_finished`; a fragment's run, the sidebar's timer, ends with another status).
    `wait_idle` sees only what the page shows, and a click's run may not have begun when it looks;
    this waits for the run itself. Made before the page loads (its websocket is opened then)."""

    def __init__(self, page) -> None:
        self.count = 0
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        msg = ForwardMsg.FromString(payload)
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
            self.count += 1

    def after(self, page, action) -> None:
        """Do `action()` and wait until a full run has finished since (the one it caused)."""
        before = self.count
        action()
        deadline = time.monotonic() + within(60)
        while self.count == before:
            assert time.monotonic() < deadline, "no full run finished after the action"
            page.wait_for_timeout(50)
        wait_idle(page)
