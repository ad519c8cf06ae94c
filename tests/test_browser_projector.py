"""The class on a real projector, in Chromium: the code at least 48 px in the first screen with the
QR beside it (the teacher's page at 1280x720, the projector view at 1280x720 and 1920x1080), a join
link students can open although the teacher opened 127.0.0.1, and the projector view fitted without
scrolling, no sidebar, no buttons, in English and Korean, before and during an experiment.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import re
import time

import pytest

from tests.helpers.apptest import SECRET
from tests.helpers.browser import ARTIFACTS, choose, set_number, wait_idle, within
from tests.test_browser_class_experiment import browser, class_server  # noqa: F401 -- the fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SIZES = ((1280, 720), (1920, 1080))

MEASURE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const side = document.querySelector('[data-testid="stSidebar"]');
  const code = document.querySelector('.class-code');
  const visible = (e) => e && e.offsetParent !== null && e.getBoundingClientRect().width > 0;
  return {
    over: main ? main.scrollHeight - main.clientHeight : document.scrollingElement.scrollHeight - innerHeight,
    pageOver: document.scrollingElement.scrollHeight - innerHeight,
    buttons: [...document.querySelectorAll('button, [role="button"]')].filter(visible).map(b => b.innerText || b.ariaLabel),
    sidebar: visible(side),
    codePx: code ? parseFloat(getComputedStyle(code).fontSize) : 0,
  };
}"""


def boxes(page):
    code = page.locator(".class-code").first.bounding_box()
    qr = page.locator(".class-qr img").first.bounding_box()
    return code, qr


def in_first_screen_side_by_side(code, qr, height) -> bool:
    return code["y"] + code["height"] <= height and qr["y"] + qr["height"] <= height and qr["x"] >= code["x"] + code["width"] - 1


def test_the_code_reads_from_the_back_row_and_the_projector_view_fits_every_screen(class_server, browser):  # noqa: F811
    url = class_server  # http://127.0.0.1:PORT: a loopback address no student's device can open
    teacher = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    teacher.set_default_timeout(within(60) * 1000)
    teacher.goto(f"{url}/class?lang=en")
    wait_idle(teacher)
    teacher.get_by_label("Teacher's secret").fill(SECRET)
    teacher.get_by_role("button", name="Unlock teacher mode").click()
    teacher.locator(".class-code").first.wait_for()
    wait_idle(teacher)
    m = teacher.evaluate(MEASURE)
    code, qr = boxes(teacher)
    teacher.screenshot(path=str(ARTIFACTS / "projector_teacher_1280.png"))
    assert m["codePx"] >= 48, m
    assert in_first_screen_side_by_side(code, qr, 720), (code, qr)

    # The join link: the machine's network address, or a plain word on how to fix it.
    how = teacher.get_by_text("Students open the page and type the code").first.inner_text()
    link = re.search(r"https?://\S+\?join=\w+", how).group(0)
    if "127.0.0.1" in link or "localhost" in link:
        assert teacher.get_by_text("Students cannot open").first.is_visible()
    else:
        assert teacher.get_by_text("Students cannot open").count() == 0
    assert teacher.locator(f'.class-qr img[alt="QR code of the join link {link}"]').count() == 1

    projector_url = teacher.get_by_role("link", name="Open the projector view").get_attribute("href")
    assert "view=projector" in projector_url and "key=" in projector_url

    def look(lang: str, phase: str, expect: str) -> None:
        for width, height in SIZES:
            room = browser.new_context(viewport={"width": width, "height": height}, locale="ko-KR" if lang == "ko" else "en-US")
            page = room.new_page()
            page.set_default_timeout(within(60) * 1000)
            page.goto(re.sub(r"lang=\w+", f"lang={lang}", projector_url))
            page.get_by_text(expect).first.wait_for()
            time.sleep(1.5)  # a redraw of the view's timer
            m = page.evaluate(MEASURE)
            page.screenshot(path=str(ARTIFACTS / f"projector_{phase}_{lang}_{width}.png"))
            assert m["over"] <= 1 and m["pageOver"] <= 1, (lang, phase, width, m)
            assert m["buttons"] == [] and not m["sidebar"], (lang, phase, width, m)
            if phase == "join":
                code, qr = boxes(page)
                assert m["codePx"] >= 48 and in_first_screen_side_by_side(code, qr, height), (width, m, code, qr)
            room.close()

    look("en", "join", "Joined: 0")
    look("ko", "join", "참여: 0")

    choose(teacher, teacher.locator('[data-testid="stSelectbox"]').filter(has_text="What the class varies"), "Learning rate")
    set_number(teacher, teacher.get_by_role("spinbutton", name="Seeds per level (per round)"), 1)
    teacher.get_by_role("button", name="Start the experiment").click()
    teacher.get_by_text("Experiment started: 3 parts").first.wait_for()
    look("en", "experiment", "Does the learning rate change accuracy more than the seed does?")
    look("ko", "experiment", "학습률의 효과가 시드의 효과보다 클까요?")
    teacher.close()
