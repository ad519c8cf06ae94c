"""The class as one experiment in Chromium, walked as a teacher with three students would: Ann on a
desktop, Ben by keyboard only, Mina on a Korean phone (by the QR's link, her browser in Korean).
They join, follow the teacher's push to page 3, are paused and resumed, predict which level wins
before the runs (the projector counts, their Start waits), run a 3-cell class experiment (the
projected view shows 3 dots), see the reveal in their own words, vote again, get a second round of
seeds, the exports, and an exit ticket. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.helpers.apptest import SECRET
from tests.helpers.browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    choose,
    error_count,
    playwright_api,
    set_number,
    wait_idle,
    within,
)
from tools.loadtest.experiment import dots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# A push or a question reaches a learner on their next poll: target 3 s on an idle 2-core box (docs/class-experiment.md).
# A speed, printed here (the question's, for a class of 30, by `python -m tools.loadtest --class-experiment`); the waits only say "not hung".
PUSH_TARGET_S = 3.0


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    """A server with a teacher's secret and a state folder of its own (a fresh class)."""
    import socket

    from tests.helpers.browser import start_server, stop_server, wait_healthy

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ARTIFACTS.mkdir(exist_ok=True)
    # No warm-up (TLS_WARM_UP=0): the first cell pays its own data and features; the head start's other runs
    # (the race's linear probe and full epoch, the time estimator's calibration) are nothing these cells use.
    env = dict(os.environ, TLS_TEACHER_SECRET=SECRET, TLS_STATE_DIR=str(tmp_path_factory.mktemp("class-state")), TLS_WARM_UP="0")
    proc = start_server(port, ARTIFACTS / "streamlit-class.log", env)
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url):
        proc.kill()
        pytest.fail("streamlit did not start; see test-artifacts/streamlit-class.log")
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def tab(browser, width=1280, height=720):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(within(60) * 1000)
    return page


def test_join_follow_and_a_class_experiment_fills_the_projected_view(class_server, browser):
    teacher = tab(browser)
    learners: list = []
    try:
        run_class(class_server, browser, teacher, learners)
    except Exception:
        for i, page in enumerate([teacher, *learners]):
            page.screenshot(path=str(ARTIFACTS / f"class_experiment_failure_{i}.png"), full_page=True)
        raise


def run_class(url, browser, teacher, learners):
    teacher.goto(f"{url}/class?lang=en")
    wait_idle(teacher)
    teacher.get_by_label("Teacher's secret").fill(SECRET)
    teacher.get_by_role("button", name="Unlock teacher mode").click()
    code_text = teacher.locator(".class-code").inner_text(timeout=within(60) * 1000)
    code = code_text.replace(" ", "")
    assert re.fullmatch(r"[ACDEFGHJKMNPQRTUVWXY3467]{6}", code)
    qr = teacher.locator('.class-qr img[alt^="QR code of the join link"]')
    qr.first.wait_for()  # (drawn beside the code, a moment after it on a loaded box)
    assert qr.count() == 1

    ann = tab(browser)  # the join link (the QR's)
    ann.goto(f"{url}/?join={code}&lang=en")
    ann.get_by_text("You joined the class as").first.wait_for()
    ben = tab(browser)  # by keyboard only: the code, Tab to the nickname (no help icon between), Enter
    ben.goto(f"{url}/?lang=en")
    ben.get_by_role("textbox", name="Class code").focus()
    ben.keyboard.type(code.lower(), delay=40)
    ben.keyboard.press("Tab")
    assert ben.evaluate("document.activeElement.getAttribute('aria-label')") == "Nickname (optional)"
    ben.keyboard.type("Ben", delay=40)
    ben.keyboard.press("Enter")
    ben.get_by_text("You joined the class as Ben").first.wait_for()
    ben.wait_for_function("document.activeElement && document.activeElement !== document.body", timeout=within(5) * 1000)
    assert ben.evaluate("document.activeElement.closest('[class*=st-key-joined-]') !== null")  # focus kept where Join was
    # Mina: a Korean phone scanning the QR (a link without ?lang): Korean, joined, then her own name
    mina = browser.new_context(viewport={"width": 390, "height": 844}, locale="ko-KR").new_page()
    mina.set_default_timeout(within(60) * 1000)
    learners += [ann, ben, mina]
    mina.goto(f"{url}/?join={code}")
    mina.get_by_text("링크로 참여해 이름을 하나 받았습니다").first.wait_for()
    mina.get_by_role("textbox", name="별명 (선택)").fill("미나")
    mina.get_by_role("button", name="별명 바꾸기").click()
    mina.get_by_text("이제 수업에서 내 이름은").first.wait_for()
    mina.wait_for_function(  # Korean from her browser's language, Streamlit's own skip link included
        "() => document.querySelector('[data-testid=\"stSkipToContent\"]')?.textContent === '본문으로 건너뛰기'",
        timeout=within(10) * 1000,
    )
    teacher.get_by_text("Joined: 3").first.wait_for(timeout=within(15) * 1000)

    # The push: every learner lands on page 3 on their next poll, with a banner.
    choose(teacher, teacher.locator('[data-testid="stSelectbox"]').filter(has_text="Page"), "3 · Fine-tune")
    time.sleep(2)  # a teacher's pause before the click
    teacher.get_by_role("button", name="Bring everyone there with my settings").click()
    pushed = time.monotonic()
    for learner, banner in ((ann, "Your teacher brought you to"), (ben, "Your teacher brought you to"), (mina, "선생님이")):
        learner.get_by_text(banner).first.wait_for(timeout=within(30) * 1000)
        learner.wait_for_url(re.compile(r"/finetune(\?|$)"), timeout=within(10) * 1000)
    landed = time.monotonic() - pushed
    print(f"push: the last learner landed {landed:.1f} s after it (target {PUSH_TARGET_S:.0f} s)")

    # Pause all: a learner's Start turns grey and says why, where it is; Resume gives it back.
    teacher.get_by_role("button", name="Pause all").click()
    ann.get_by_text("The teacher paused the class").first.wait_for(timeout=within(15) * 1000)
    teacher.get_by_role("button", name="Resume").click()
    ann.get_by_text("The teacher paused the class").first.wait_for(state="hidden", timeout=within(15) * 1000)

    # A 3-cell experiment: the learning rate at three levels, one seed each.
    choose(teacher, teacher.locator('[data-testid="stSelectbox"]').filter(has_text="What the class varies"), "Learning rate")
    set_number(teacher, teacher.get_by_role("spinbutton", name="Seeds per level"), 1)
    teacher.get_by_role("button", name="Start the experiment").click()
    teacher.get_by_text("Experiment started: 3 parts").first.wait_for()

    from tests.helpers.a11y import listen, sideways_px, small_targets, tabs_from_the_top

    # Predict first: one click for the teacher; every learner sees it on the page they are on
    # (page 3) within a poll; the projector counts, shows no answer; the parts wait meanwhile.
    projector = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
    projector.goto(teacher.get_by_role("link", name="Open the projector view").get_attribute("href"))
    teacher.get_by_role("button", name="Ask: which level wins?").click()
    asked = time.monotonic()
    for learner, question in ((ann, "Which level will reach"), (ben, "Which level will reach"), (mina, "어느 수준이")):
        learner.get_by_text(question).first.wait_for(timeout=within(15) * 1000)
    seen = time.monotonic() - asked
    ann.get_by_role("button", name="0.01", exact=True).click()  # a tap (0.01 wins, says Ann)
    ann.get_by_text("Your answer is in").first.wait_for()
    ben.get_by_role("button", name="0.001", exact=True).focus()  # the keyboard: focus and Enter
    ben.keyboard.press("Enter")
    ben.get_by_text("Your answer: 0.001").first.wait_for()
    mina.get_by_role("button", name="0.001", exact=True).click()
    mina.get_by_text("답이 들어갔습니다").first.wait_for()
    projector.get_by_text("Answered: 3 of 3").first.wait_for(timeout=within(10) * 1000)
    assert projector.get_by_text("Vote 1").count() == 0  # nothing of the answers before the reveal
    print(f"predict: the question reached the last learner {seen:.1f} s after it was asked (target {PUSH_TARGET_S:.0f} s)")
    ann.goto(f"{url}/class")
    ann.get_by_text("collecting predictions first").first.wait_for()
    assert ann.get_by_role("button", name="Start my part").is_disabled()
    teacher.get_by_role("button", name="Close answers").click()
    teacher.get_by_text("Closed:").first.wait_for()

    # Mina's phone: "Open your part" in her sidebar takes her there and closes the sidebar on the way.
    mina.get_by_test_id("stExpandSidebarButton").click()
    mina.get_by_role("link", name="내 부분 열기").click()
    mina.get_by_text("수업 실험에서 내 부분").first.wait_for()
    mina.wait_for_function(
        "() => document.querySelector('[data-testid=\"stSidebar\"]').getAttribute('data-collapsed') === 'true'", timeout=5000
    )
    for learner, start in ((ann, "Start my part"), (ben, "Start my part"), (mina, "내 부분 시작")):
        if learner is not mina:
            learner.goto(f"{url}/class")
        learner.get_by_text(re.compile("Your part of the class experiment|수업 실험에서 내 부분")).first.wait_for()
        listen(learner)  # what the page's live regions say from here on
        learner.get_by_role("button", name=start).wait_for()
        if learner is ben:  # by keyboard only: Tab from the top of the page to the one Start, then Enter
            trail: list = []
            presses, invisible = tabs_from_the_top(ben, "st-key-class_start", 10, trail)
            assert presses <= 10 and not invisible, (presses, invisible, trail)  # issue 52: at most 10 Tabs
            ben.keyboard.press("Enter")
        else:
            learner.get_by_role("button", name=start).click()
        learner.wait_for_timeout(1000)
    for learner, done in ((ann, "Your run finished"), (ben, "Your run finished"), (mina, "내 실행이 끝났습니다")):
        learner.get_by_text(done).first.wait_for(timeout=within(120) * 1000)
        # ... and a screen reader hears it: the polite region says the result (the dot's sentence)
        learner.wait_for_function(
            "done => window.__said.some(s => s.startsWith('tls-live: ') && s.includes(done))", arg=done, timeout=within(10) * 1000
        )
    deadline = time.monotonic() + 30
    while dots(teacher) != 3 and time.monotonic() < deadline:
        teacher.wait_for_timeout(500)
    assert dots(teacher) == 3
    teacher.get_by_text("3 of 3").first.wait_for()
    teacher.locator(".js-plotly-plot").filter(has_text="class's result").first.scroll_into_view_if_needed()
    teacher.screenshot(path=str(ARTIFACTS / "class_experiment_projected.png"))
    mina.screenshot(path=str(ARTIFACTS / "class_experiment_learner_ko.png"), full_page=True)
    for page in (teacher, ann, ben, mina):
        assert error_count(page) == 0
    # The phone: the Class page fits its width and every control is a 44 px touch target.
    assert sideways_px(mina) == 0 and small_targets(mina) == [], (sideways_px(mina), small_targets(mina))
    # WCAG 2.1 A/AA (axe-core) on the teacher's class view and a Korean learner's, every expander open
    from tests.helpers.a11y import failing_nodes_everywhere

    for page in (teacher, ann, mina):  # the teacher's (en), a learner's in English and one in Korean
        assert failing_nodes_everywhere(page) == []

    # The reveal: the class's predictions beside the measured levels; each learner in their words.
    teacher.get_by_role("button", name="Reveal", exact=True).click()
    projector.get_by_text("The class expected").first.wait_for(timeout=within(15) * 1000)
    for learner, words in ((ann, "You predicted 0.01"), (ben, "You predicted 0.001"), (mina, "을(를) 예측했")):
        learner.get_by_text(words).first.wait_for(timeout=within(15) * 1000)
    projector.screenshot(path=str(ARTIFACTS / "class_walk_reveal_projector.png"))
    # Vote again (peer instruction): a second vote beside the first.
    teacher.get_by_role("button", name="Vote again").click()
    ann.get_by_text("Vote 2").first.wait_for(timeout=within(15) * 1000)
    ann.get_by_role("button", name="0.001", exact=True).click()
    ann.get_by_text("Your answer is in").first.wait_for()
    teacher.get_by_role("button", name="Reveal", exact=True).click()
    projector.get_by_text("Vote 2").first.wait_for(timeout=within(15) * 1000)
    # How accurate? The slider lives in the box the learner's pulse redraws every second while the
    # class predicts: moved by keyboard, it keeps its value through several pulses until Send.
    teacher.get_by_role("button", name="Ask: how accurate?").click()
    slider = ben.get_by_role("slider", name=re.compile("Your prediction"))
    slider.wait_for(timeout=within(15) * 1000)
    slider.focus()
    for _ in range(7):  # 50 % -> 57 %, a key a third of a second apart
        ben.keyboard.press("ArrowRight")
        ben.wait_for_timeout(300)
    ben.wait_for_timeout(3500)  # three pulses or more redraw the box meanwhile
    assert slider.input_value() == "57", slider.input_value()  # (an <input type="range">)
    ben.get_by_role("button", name="Send my answer").click()
    ben.get_by_text("Your answer: 57%").first.wait_for(timeout=within(10) * 1000)
    teacher.get_by_role("button", name="Close answers").click()
    # Run it again: a second round of seeds in the same experiment, the chart keeps the first.
    teacher.get_by_role("button", name=re.compile("Run it again")).click()
    teacher.get_by_text("Round 2 added").first.wait_for()
    teacher.get_by_text("3 of 6").first.wait_for(timeout=within(15) * 1000)
    # The exports: every round and the fixed settings in the CSV (the file the page drew: its run ends first).
    wait_idle(teacher)
    with teacher.expect_download(timeout=within(30) * 1000) as got:
        teacher.get_by_role("button", name="Every run (CSV)").click()
    text = open(got.value.path(), encoding="utf-8").read()
    header = text.splitlines()[0]
    assert "round" in header and "fixed_epochs" in header and text.count("\n") == 7, text
    # The exit ticket, from Ann's own run.
    teacher.get_by_role("button", name="Open exit tickets").click()
    ann.goto(f"{url}/class")
    ann.get_by_text("Your exit ticket").first.wait_for()
    ann.get_by_role("button", name="They were frozen: no gradient is computed for them").click()
    ann.get_by_text("Freezing turns gradients off").first.wait_for()
    teacher.get_by_text("1 of 1 right").first.wait_for(timeout=within(15) * 1000)
    teacher.screenshot(path=str(ARTIFACTS / "class_walk_teacher.png"), full_page=True)
    # The teacher's Class page in Korean (the language switch keeps teacher mode; a reload would not): axe finds nothing.
    teacher.get_by_text("한국어", exact=True).click()
    teacher.get_by_role("link", name="프로젝터 화면 열기").wait_for()
    wait_idle(teacher)
    # The question box shows its claim in Korean too (Streamlit's selectbox kept the English label: session 41)
    claim = teacher.locator('.st-key-ask_claim input[role="combobox"]').input_value()
    assert "학습률" in claim and "learning rate" not in claim, claim
    assert failing_nodes_everywhere(teacher) == []
    teacher.screenshot(path=str(ARTIFACTS / "class_walk_teacher_ko.png"), full_page=True)
    projector.close()
