"""Settings stick in a real browser, with the pauses a class makes.

A teacher changes a setting, talks for a few seconds (the sidebar's queue counter and any
live panel re-run on their timers meanwhile), goes to another page by the sidebar and
comes back: the setting must be as set, and the next Start must run it. AppTest runs no
timers, so only Chromium shows this (it failed before settings and widgets had separate
keys: Epochs 3 -> 9, a 4 s pause, page 2 and back, and Epochs was 3 again).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.helpers.browser import (
    ARTIFACTS,
    FullRuns,
    choose,
    chromium_page,
    error_count,
    wait_idle,
    within,
)
from tlcore.serve.store import learner_key

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PAUSE_S = 5.0  # a teacher explaining between two clicks


@pytest.fixture(scope="module")
def projector(server):
    with chromium_page(1280, 720) as pg:
        yield pg


def slider(page, label: str):
    return page.locator('[data-testid="stSlider"]').filter(has_text=label).first


def shown(page, label: str) -> str:
    """The value a slider or select slider shows."""
    return slider(page, label).locator('[data-testid="stSliderThumbValue"]').inner_text()


def nudge(page, label: str, steps: int) -> None:
    """Move a slider by keyboard, as a learner's arrow keys do, and wait for the server's run."""
    thumb = slider(page, label).locator('input[type="range"]').first
    thumb.focus()
    for _ in range(abs(steps)):
        thumb.press("ArrowRight" if steps > 0 else "ArrowLeft")
        page.wait_for_timeout(150)
    wait_idle(page)


def selected(page, label: str) -> str:
    return selectbox(page, label).locator("input").input_value()


def selectbox(page, label: str):
    return page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first


def go(page, title: str) -> None:
    """Change page by the sidebar, as a class does (not by typing an address)."""
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    page.wait_for_timeout(800)
    wait_idle(page)


def latest_job(page) -> tuple[str, dict, str] | None:
    """(id, settings, state) of this browser's newest run, as the server stored it."""
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == "tls_learner")
    path = Path(os.environ["TLS_STATE_DIR"]) / "runs.sqlite"
    if not path.exists():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
        row = db.execute(
            "SELECT id, configs, state FROM jobs WHERE learner=? ORDER BY submitted_at DESC LIMIT 1",
            (learner_key(cookie),),
        ).fetchone()
    return (row[0], json.loads(row[1])[0], row[2]) if row else None


def press_start(page) -> dict:
    """Press Start; the settings of the run it queued."""
    before = latest_job(page)
    page.get_by_role("button", name="Start").first.click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):
            now = latest_job(page)
            if now is not None and (before is None or now[0] != before[0]):
                return now[1]
        page.wait_for_timeout(500)
    raise AssertionError("Start queued no run")


def stop_run(page) -> None:
    """Stop the run just started, or let it end: its Stop button may take a moment to be drawn,
    and a short run may end (and take Stop away) between a look and a click."""
    stop, start = page.get_by_role("button", name="Stop"), page.get_by_role("button", name="Start")
    deadline = time.monotonic() + within(60)
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):
            job = latest_job(page)
            if job is None or job[2] not in ("queued", "running"):
                break
        if stop.count():
            with contextlib.suppress(PlaywrightTimeout):
                stop.first.click(timeout=2_000)
        page.wait_for_timeout(500)
    else:
        raise AssertionError(f"the run did not stop or end in {within(60):.0f} s")
    start.first.wait_for(timeout=within(60) * 1000)
    wait_idle(page)


def test_settings_stick_across_pauses_pages_reloads_and_start(server, projector):  # noqa: F811
    page = projector
    try:
        walk(server, page)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "settings_failure.png"))
        raise


def walk(url: str, page) -> None:
    page.goto(f"{url}/finetune")
    page.get_by_role("button", name="Start").first.wait_for(timeout=within(120) * 1000)
    wait_idle(page)

    # Page 3: every setting changed through its widget, a few seconds apart, as a teacher would.
    choose(page, selectbox(page, "Strategy"), "Full fine-tuning")
    page.wait_for_timeout(2_000)
    nudge(page, "Training examples per class", 5)
    page.wait_for_timeout(2_000)
    nudge(page, "Image size", -1)
    page.wait_for_timeout(2_000)
    nudge(page, "Epochs", -1)
    page.wait_for_timeout(2_000)
    want = {
        "strategy": selected(page, "Strategy"),
        "per_class": shown(page, "Training examples per class"),
        "image_size": shown(page, "Image size"),
        "epochs": shown(page, "Epochs"),
    }
    dataset = selected(page, "Dataset")
    choose(page, selectbox(page, "Dataset"), "Digits on textured colour backgrounds (shifted domain)")
    want["dataset"] = selected(page, "Dataset")
    assert want["dataset"] != dataset
    page.wait_for_timeout(PAUSE_S * 1000)  # the queue counter re-runs meanwhile

    go(page, "2 · Choose a strategy")
    page.wait_for_timeout(PAUSE_S * 1000)
    go(page, "3 · Fine-tune")
    now = {
        "strategy": selected(page, "Strategy"),
        "per_class": shown(page, "Training examples per class"),
        "image_size": shown(page, "Image size"),
        "epochs": shown(page, "Epochs"),
        "dataset": selected(page, "Dataset"),
    }
    assert now == want, "page 3's settings changed after a pause and a page change"

    page.reload()  # F5: the same learner (cookie), the same settings
    page.get_by_role("button", name="Start").first.wait_for(timeout=within(60) * 1000)
    wait_idle(page)
    assert selected(page, "Strategy") == want["strategy"] and shown(page, "Epochs") == want["epochs"]

    config = press_start(page)
    assert (config["strategy"], config["per_class"], config["image_size"], config["epochs"]) == (
        "full",
        int(want["per_class"]),
        int(want["image_size"]),
        int(want["epochs"]),
    )
    assert config["dataset"] == "digits_textured"
    stop_run(page)

    # Page 2: a learning rate and a matrix cell, then a pause, then Fine-tune by the sidebar.
    go(page, "2 · Choose a strategy")
    nudge(page, "Layer-wise decay", -2)
    decay = shown(page, "Layer-wise decay")
    page.wait_for_timeout(PAUSE_S * 1000)
    go(page, "1 · Pretraining vs fine-tuning")
    page.wait_for_timeout(2_000)
    go(page, "2 · Choose a strategy")
    assert shown(page, "Layer-wise decay") == decay, "page 2's layer-wise decay reverted"

    page.get_by_role("button", name="Freeze all conv layers").first.click()
    page.wait_for_timeout(1_500)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "settings_cell.png"))
    cell = {"strategy": selected(page, "Strategy"), "depth": shown(page, "Freeze depth k")}
    page.wait_for_timeout(6_000)
    go(page, "3 · Fine-tune")
    assert {"strategy": selected(page, "Strategy"), "depth": shown(page, "Freeze depth k")} == cell
    config = press_start(page)
    assert config["freeze_depth"] == int(cell["depth"]) and config["layer_decay"] == pytest.approx(float(decay)), config
    stop_run(page)

    # The text page's own settings, the same way.
    go(page, "5 · Text models")
    page.get_by_role("button", name="Start").first.wait_for(timeout=within(120) * 1000)
    wait_idle(page)
    nudge(page, "Epochs", 2)
    text_epochs = shown(page, "Epochs")
    page.wait_for_timeout(PAUSE_S * 1000)
    go(page, "3 · Fine-tune")
    go(page, "5 · Text models")
    page.get_by_role("button", name="Start").first.wait_for(timeout=within(60) * 1000)
    assert shown(page, "Epochs") == text_epochs, "the text page's epochs reverted"

    # A teacher's link: its settings hold after a pause and a page change, like the learner's own.
    page.goto(f"{url}/finetune?settings=epochs:5")
    page.get_by_role("button", name="Start").first.wait_for(timeout=within(60) * 1000)
    wait_idle(page)
    assert shown(page, "Epochs") == "5"
    page.wait_for_timeout(PAUSE_S * 1000)
    go(page, "4 · Compare strategies")
    go(page, "3 · Fine-tune")
    assert shown(page, "Epochs") == "5"
    assert error_count(page) == 0
    page.screenshot(path=str(ARTIFACTS / "settings_after_pauses.png"))


# The visible expanders' <details>, in the order drawn (those of the tab shown now).
SEEN_DETAILS_JS = (
    """() => [...document.querySelectorAll('[data-testid="stExpander"] details')].filter(d => d.checkVisibility())"""
)


def test_a_tab_click_keeps_what_the_tabs_hold_and_the_tab_stays_after_another_page(server, projector):
    """Page 4's tabs hold charts with their data folded under them. A tab click used to give the tabs
    a new identity in Streamlit (their `default` followed the learner's tab), so the browser drew all
    of it anew: every chart redrawn, every "chart's data" shut, and one opened just after the click
    shut again when the click's run came back. Checked on the elements themselves: a marked one is
    still the same element after the learner leaves the tab and comes back."""
    # A learner of their own, in the module's browser (a second Playwright in one thread is refused).
    context = projector.context.browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        page = context.new_page()
        page.set_default_timeout(within(30) * 1000)
        runs = FullRuns(page)
        page.goto(f"{server}/compare?lang=en")
        page.locator("h1").first.wait_for()
        wait_idle(page)
        race, sweep = (page.get_by_role("tab", name=n, exact=True) for n in ("Race", "Freeze-depth sweep"))
        runs.after(page, sweep.click)
        first = page.evaluate_handle(f"() => ({SEEN_DETAILS_JS})()[0]")
        first.evaluate("d => d.querySelector('summary').click()")
        page.wait_for_function("d => d.open", arg=first)

        runs.after(page, race.click)
        runs.after(page, sweep.click)
        assert first.evaluate("d => d.isConnected && d.open"), "the sweep tab's content was drawn anew: the chart's data shut"

        # One opened right after the click, before the click's run is back, stays open when it is.
        runs.after(page, race.click)

        def back_and_open():
            sweep.click()
            page.evaluate(f"() => ({SEEN_DETAILS_JS})().filter(d => !d.open).forEach(d => d.querySelector('summary').click())")

        runs.after(page, back_and_open)
        page.wait_for_timeout(500)
        assert page.evaluate(f"() => ({SEEN_DETAILS_JS})().every(d => d.open)"), (
            "an expander shut when the tab click's run came back"
        )

        go(page, "2 · Choose a strategy")
        go(page, "4 · Compare strategies")
        assert sweep.get_attribute("aria-selected") == "true", "the learner's tab was not kept across a page visit"
    finally:
        context.close()
