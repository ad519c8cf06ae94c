"""A page being redrawn stays readable (WCAG 2.1 AA 1.4.3), in Chromium against real Streamlit.

Streamlit fades what a running script has not drawn again yet to 0.33 opacity: body text at
1.9:1. On a busy class server a timer's redraw can last seconds, every few seconds (session 20
found axe's color-contrast failing on page 5 under load). The page frame's CSS keeps such
elements at full opacity and shows a moving bar along the top instead, after a second.

The app's own pages redraw quickly on an idle test box, so a small script with the page frame's
real CSS stands in for a loaded server here: its redraw lasts until the test has looked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.a11y import failing_nodes
from tests.helpers.browser import CHROMIUM, ROOT, chromium_page, free_port, wait_healthy

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

REDRAW_MOST_S = 120.0  # the script's redraw ends when the test writes the file, or after this
SCRIPT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
import streamlit as st
from studio.page_frame import CSS
st.html(CSS)
if st.session_state.get("slow"):
    st.session_state.slow = False
    ends = time.monotonic() + {most}
    while not Path({done!r}).exists() and time.monotonic() < ends:
        time.sleep(0.1)
st.write("Body text that a learner reads while the page is redrawn.")
st.caption("A caption that carries content.")
st.button("Redraw slowly", on_click=lambda: st.session_state.update(slow=True))
"""
STALE_OPACITIES = """[...document.querySelectorAll('[data-stale="true"]')].map(e => getComputedStyle(e).opacity)"""
SETTLED = """[...document.querySelectorAll('[data-stale="true"]')].every(e => e.getAnimations().length === 0)"""
BAR = """(() => { const s = getComputedStyle(document.body, '::before');
                 return {content: s.content, opacity: s.opacity, delay: s.animationDelay}; })()"""


@pytest.fixture(scope="module")
def slow_page_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("redraw")
    done = folder / "looked"
    script = folder / "slow_redraw.py"
    script.write_text(SCRIPT.format(root=str(ROOT), most=REDRAW_MOST_S, done=str(done)), encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port)],
        cwd=ROOT,  # the repository's .streamlit/config.toml, as for the app
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://localhost:{port}"
    try:
        assert wait_healthy(url), "the small Streamlit script did not start"
        yield url, done
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_a_slow_redraw_keeps_aa_contrast_and_shows_a_bar_instead_of_fading(slow_page_server):
    url, done = slow_page_server
    with chromium_page(1280, 720) as page:
        page.goto(url)
        button = page.get_by_role("button", name="Redraw slowly")
        button.wait_for()
        assert page.evaluate(BAR)["content"] == "none", "the redraw bar is shown on a page at rest"
        button.click()
        page.wait_for_selector('[data-stale="true"]')
        delay = page.evaluate(BAR)["delay"]
        page.wait_for_function(SETTLED)  # Streamlit's fade is a transition: read once it has ended
        opacities = page.evaluate(STALE_OPACITIES)
        failing = failing_nodes(page)
        page.wait_for_function("getComputedStyle(document.body, '::before').opacity === '1'")
        assert page.evaluate(STALE_OPACITIES), "the redraw ended before it was checked"
        done.write_text("looked")
        assert opacities and set(opacities) == {"1"}, f"elements being redrawn are faded: {opacities}"
        assert failing == [], "\n".join(failing)
        assert delay.startswith("1s"), f"the bar waits {delay}: a quick redraw (a timer's) would flash it"
        page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')")
        assert page.evaluate(BAR)["content"] == "none", "the redraw bar stayed after the redraw"
