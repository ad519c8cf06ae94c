"""The app in a real browser: `streamlit run app.py` driven by Playwright + system Chromium.

One walk through a lesson as a class would do it: choose a matrix cell, run the default
fine-tune and watch the loss curve and the gradient heatmap fill with data, stop a second
run, switch to Korean. Screenshots go to test-artifacts/ (gitignored) for a human look.

Needs /usr/bin/chromium (Debian's package; Playwright's own download is not used) and
fonts-noto-cjk for the Korean screenshots. Skipped when either Chromium or Playwright is
missing. Runs the real trainer with the app's defaults, so it also checks that the
default demo finishes within the time a class will wait.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.helpers.browser import (
    ARTIFACTS,
    CHROMIUM,
    DEMO_LIMIT_S,
    choose,
    chromium_page,
    error_count,
    playwright_api,
    wait_idle,
    within,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def page(server):
    # A tall window: Streamlit scrolls inside its own container, so a screenshot shows
    # only what fits in the viewport.
    with chromium_page(1400, 2600) as pg:
        yield pg


def shot(page, name: str) -> None:
    wait_idle(page)
    page.wait_for_timeout(800)  # let the last elements of the run replace the stale ones
    page.mouse.move(0, 0)  # no tooltip over the content
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


PLOT_POINTS_JS = """(title) => {
            for (const el of document.querySelectorAll('.js-plotly-plot')) {
                const t = el.layout && el.layout.title && (el.layout.title.text || el.layout.title);
                if (t && t.includes(title)) {  // Streamlit's theme wraps titles in <b>
                    return el.data.reduce((n, trace) => {
                        const z = trace.z ? trace.z.flat().filter(v => v !== null).length : 0;
                        return n + Math.max(z, (trace.x || []).length);
                    }, 0);
                }
            }
            return 0;
        }"""


def plot_points(page, title: str) -> int:
    """How many data points the plotly chart with this title currently holds."""
    return page.evaluate(PLOT_POINTS_JS, title)


def wait_points(page, title: str, more_than: int = 1, timeout_ms: int = 30_000) -> int:
    """Wait until the plotly chart with this title holds more than `more_than` points; returns how many.

    A finished run's charts replace the live panel's a moment after "Finished in" is drawn
    (Streamlit sends the page's elements one after another), so they are waited for, not read at once."""
    try:
        page.wait_for_function(f"(title) => ({PLOT_POINTS_JS})(title) > {more_than}", arg=title, timeout=timeout_ms)
    except playwright_api.TimeoutError:
        pass  # the caller's assertion says what was seen
    return plot_points(page, title)


def test_a_lesson_walk_through_in_chromium(server, page):
    try:
        walk_through(server, page)
    except Exception:
        shot(page, "failure")  # what the browser showed when it went wrong
        raise


def walk_through(server, page):
    # Offline first: nothing the pages load may come from another host (a Material icon as the
    # tab's icon was fetched from Google's font servers on every page).
    elsewhere = []
    page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else elsewhere.append(r.url))
    page.goto(f"{server}/?lang=en")
    page.get_by_role("heading", name="Pretraining vs fine-tuning").wait_for()
    shot(page, "1_pretraining_en")

    # Choose a strategy: click a matrix cell; the recommendation and the readout appear.
    page.get_by_role("link", name="2 · Choose a strategy").click()
    page.get_by_role("button", name="Freeze all conv layers").click()
    page.get_by_text("Linear probe (head only)").first.wait_for()
    page.get_by_text("trainable:").first.wait_for()
    shot(page, "2_strategy_en")

    # Run the default fine-tune and watch the curves and the heatmap fill with data.
    page.get_by_role("link", name="3 · Fine-tune").click()
    page.get_by_role("heading", name="Fine-tune").first.wait_for()
    page.get_by_role("button", name="Start").click()
    started = time.monotonic()
    # The first step is on screen when the progress shows a percentage (or the run is over).
    page.get_by_text(re.compile(r"Run 1 of 1 \(.*\): \d+%|Finished in")).first.wait_for(timeout=within(60) * 1000)
    first_step_s = time.monotonic() - started
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(el => el.layout && el.layout.title"
        " && (el.layout.title.text || '').includes('Gradient norm per layer group'))",
        timeout=within(120) * 1000,
    )
    page.get_by_text("Finished in").first.wait_for(timeout=within(DEMO_LIMIT_S) * 1000)
    demo_s = time.monotonic() - started
    assert wait_points(page, "Loss: training vs validation") > 1
    assert wait_points(page, "Gradient norm per layer group (log scale)") > 1
    page.get_by_text("Confusion matrix (validation)").first.wait_for()
    shot(page, "3_finetune_done_en")
    assert error_count(page) == 0
    print(f"default demo: first step shown {first_step_s:.1f} s after Start, finished after {demo_s:.1f} s")

    # A second, longer run (full fine-tuning, 20 epochs), stopped from the page.
    strategy = page.locator('[data-testid="stSelectbox"]').filter(has_text="Strategy")
    page.wait_for_timeout(1500)  # the finished run scrolls its results into view once
    choose(page, strategy, "Full fine-tuning")
    assert strategy.locator("input").input_value() == "Full fine-tuning"
    epochs = page.locator('[data-testid="stSlider"]').filter(has_text="Epochs").get_by_role("slider")
    epochs.focus()
    epochs.press("End")
    page.wait_for_timeout(1500)  # the slider sends its value when it settles
    wait_idle(page)
    page.get_by_role("button", name="Start").click()
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for(timeout=within(30) * 1000)
    clicked = time.monotonic()
    stop.click()
    page.get_by_text(re.compile("Stopping at the next training step|The run was stopped")).first.wait_for(timeout=5_000)
    print(f"stop: acknowledged on screen {time.monotonic() - clicked:.1f} s after the click")
    page.get_by_test_id("stAlertContentWarning").get_by_text("The run was stopped.").wait_for(timeout=within(30) * 1000)
    print(f"stop: {time.monotonic() - clicked:.1f} s from click to 'stopped' on screen")
    shot(page, "3_finetune_stopped_en")

    # Korean: the switch changes the page and goes into the URL (a link to share).
    page.get_by_text("한국어").click()
    page.get_by_role("heading", name="미세 조정 실습").first.wait_for()
    page.wait_for_function("() => location.search.includes('lang=ko')")
    shot(page, "3_finetune_ko")
    page.get_by_role("link", name="2 · 전략 고르기").click()
    page.get_by_role("heading", name="전략 고르기").first.wait_for()
    assert "lang=ko" in page.url
    shot(page, "2_strategy_ko")
    page.get_by_role("link", name="1 · 사전 학습과 미세 조정").click()
    page.get_by_role("heading", name="사전 학습과 미세 조정").first.wait_for()
    shot(page, "1_pretraining_ko")
    page.get_by_role("link", name="4 · 전략 비교").click()
    page.get_by_role("heading", name="전략 비교").first.wait_for()
    shot(page, "4_compare_ko")
    assert error_count(page) == 0
    assert elsewhere == [], elsewhere
