"""A real server restart in Chromium: the server is killed (SIGKILL) while a learner's run
trains; a new server on the same state folder shows that run as interrupted, with a message,
and the learner's finished race from before, in full; a browser without the learner's cookie
sees neither. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import secrets
import socket
from contextlib import contextmanager

import pytest

from tests.helpers.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_page,
    error_count,
    free_port,
    playwright_api,
    start_server,
    wait_healthy,
    wait_idle,
    within,
)
from tests.helpers.fakes import fake_run, wait_for
from tlcore.serve.jobs import JobQueue
from tlcore.serve.store import RunStore
from tlcore.train.config import RunConfig

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@contextmanager
def streamlit(state_dir, port: int, name: str):
    """A Streamlit server on `port` keeping its state (the run store) in `state_dir`; its log is
    test-artifacts/streamlit-restart-<name>.log. Killed, not stopped, if the test left it running."""
    env = dict(os.environ, TLS_STATE_DIR=str(state_dir), TLS_WARM_UP="0")  # one run, its own features: no head start
    env.pop("TLS_RAY_ADDRESS", None)
    proc = start_server(port, ARTIFACTS / f"streamlit-restart-{name}.log", env)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}"), "streamlit did not start; see test-artifacts"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc._tls_log.close()


def test_a_killed_server_loses_no_finished_run_and_says_which_run_it_interrupted(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    learner = secrets.token_urlsafe(16)
    # Before: this learner finished a race on an earlier server (written as that server writes it).
    earlier = JobQueue.started(fake_run, store=RunStore(tmp_path / "runs.sqlite"))
    race = earlier.submit(
        [RunConfig(strategy="linear_probe"), RunConfig(strategy="full")],
        learner,
        ["Linear probe (head only)", "Full fine-tuning"],
        tag="race",
    )
    assert wait_for(lambda: earlier.get(race, learner).state == "done")
    earlier.store.close()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
            context.add_cookies([{"name": "tls_learner", "value": learner, "url": url}])
            page = context.new_page()
            page.set_default_timeout(within(60) * 1000)
            with streamlit(tmp_path, port, "crashed") as server:
                page.goto(f"{url}/?lang=en")
                page.get_by_role("link", name="3 · Fine-tune").click()
                page.get_by_role("button", name="Start").click()
                page.get_by_text(re.compile(r"Run 1 of 1 \(.*\): \d+%")).first.wait_for(timeout=within(120) * 1000)
                server.kill()  # a crash mid-run: no clean shutdown, nothing flushed
                server.wait(timeout=30)

            with streamlit(tmp_path, port, "restarted"):
                page.goto(f"{url}/?lang=en")
                page.get_by_role("link", name="3 · Fine-tune").click()
                told = page.get_by_text(
                    re.compile("The run failed: the server restarted while this run was waiting or training")
                ).first
                told.wait_for()
                page.get_by_role("button", name="Start").wait_for()  # and a new run can start
                told.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "restart_interrupted.png"))
                page.get_by_role("link", name="4 · Compare strategies").click()
                page.get_by_text("Finished in").first.wait_for()
                table = page.locator('[data-testid="stDataFrame"]').first
                try:
                    table.wait_for(timeout=within(120) * 1000)  # the race's results table
                except Exception:  # noqa: BLE001 -- keep what the page showed for whoever reads the failure
                    page.screenshot(path=str(ARTIFACTS / "restart_race_missing.png"), full_page=True)
                    (ARTIFACTS / "restart_race_missing.txt").write_text(page.inner_text("body"))
                    raise
                table.scroll_into_view_if_needed()
                page.screenshot(path=str(ARTIFACTS / "restart_race_back.png"))
                assert error_count(page) == 0

                stranger = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US").new_page()
                stranger.goto(f"{url}/?lang=en")
                stranger.get_by_role("link", name="4 · Compare strategies").click()
                stranger.get_by_role("heading", name="Compare strategies").first.wait_for()
                stranger.wait_for_timeout(2000)
                assert stranger.get_by_text("Finished in").count() == 0
                assert error_count(stranger) == 0
        finally:
            browser.close()


def test_the_first_learner_back_by_a_pages_address_has_their_first_click_count(tmp_path):
    """A server's first visitor who comes by a page's address (a bookmark; after a restart, every open
    tab reconnects to its page) makes Streamlit run that page alone, once. Widgets drawn by that run had
    another name in Streamlit than the same page gets under st.navigation ever after, so the visitor's
    first click on any of them was lost: page 3's picture panel went back to "Sample photos" when
    "Upload" was clicked, and took a second click (studio.page_frame.ensure_frame now runs the page
    again before drawing anything)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with chromium_page(1280, 900) as page, streamlit(tmp_path, port, "first-by-address"):
        page.goto(f"{url}/finetune?lang=en")
        page.get_by_role("button", name="Start").first.wait_for(timeout=within(60) * 1000)
        wait_idle(page)
        source = page.locator('[data-testid="stButtonGroup"]').filter(has_text="Sample photos").first
        source.locator("button").filter(has_text="Upload").first.click()
        try:
            page.locator('[data-testid="stFileUploader"]').first.wait_for(timeout=within(20) * 1000)
        except playwright_api.TimeoutError:
            page.screenshot(path=str(ARTIFACTS / "first_click_lost.png"))
            raise AssertionError("the first click of the server's first visitor was lost") from None
        assert page.get_by_role("heading", name="Fine-tune", exact=False).count()
        assert error_count(page) == 0
