"""Your own classes from the camera, in Chromium with a fake camera: a video file whose
frames change (a moving band over a real photo), so every shot is a new picture. Two
classes, three shots each, a fine-tune on them, then the fine-tuned model's classes in
"Try it on a new image". Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.helpers.browser import (
    ARTIFACTS,
    chromium_page,
    error_count,
    wait_idle,
    within,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
W, H, FRAMES = 320, 240, 120


def write_y4m(path) -> None:
    """A looping 12 s clip (10 fps, YUV 4:2:0) of scikit-image's cat with a moving band."""
    from PIL import Image
    from skimage import data

    base = np.asarray(Image.fromarray(data.chelsea()).convert("L").resize((W, H)), dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F10:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(FRAMES):
            y = base.copy()
            x0 = (i * 37) % (W - 24)  # a band that jumps every frame; the 12 s clip rarely repeats a shot
            y[:, x0 : x0 + 24] = 255  # a bright band that moves every frame
            f.write(b"FRAME\n" + y.tobytes() + np.full((H // 2) * (W // 2) * 2, 128, np.uint8).tobytes())


@pytest.fixture(scope="module")
def camera_page(server, tmp_path_factory):  # noqa: F811
    video = tmp_path_factory.mktemp("camera") / "clip.y4m"
    write_y4m(video)
    args = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}")
    with chromium_page(1400, 2400, args=args, camera_for=server) as pg:
        yield pg


def test_classes_from_the_camera_train_and_answer(server, camera_page):  # noqa: F811
    page = camera_page
    try:
        camera_classes(server, page)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "camera_failure.png"))
        raise


def count(page, name: str) -> int:
    """How many pictures the page says a class has ('thumbs up: 1 picture', '... 2 pictures')."""
    text = page.locator('[data-testid="stMarkdown"]').filter(has_text=re.compile(f"^{name}: \\d+ pictures?")).first
    return int(re.search(r"(\d+) pictures?", text.inner_text()).group(1)) if text.count() else 0


def camera_classes(url, page):
    page.goto(f"{url}/finetune?lang=en")
    page.get_by_role("heading", name="Fine-tune").first.wait_for()
    page.get_by_text("Camera (your classes)").click()
    page.get_by_text("New pictures go to").wait_for()
    clicks, notes = 0, []
    for name in ("thumbs up", "thumbs down"):
        target = page.locator('[data-testid="stRadio"]').filter(has_text="New pictures go to")
        for _ in range(5):  # a click that lands mid-rerun can be lost: check which class is chosen
            target.get_by_text(name).click()
            wait_idle(page)
            page.wait_for_timeout(500)
            if target.get_by_role("radio", name=name).is_checked():
                break
        assert target.get_by_role("radio", name=name).is_checked()
        for attempt in range(12):  # a black shot or a repeat of an earlier one (the clip loops) is not kept
            if count(page, name) >= 3:
                break
            take = page.get_by_role("button", name="Take Photo")
            take.wait_for(timeout=within(30) * 1000)  # (a fresh camera: its stream starts before the button shows)
            take.click()
            clicks += 1
            wait_idle(page)
            # One click, one picture: the shot is handled and the camera is fresh again, no Clear photo
            # (on a busy box the rerun that handles it can start after the wait above has returned).
            page.get_by_role("button", name="Clear photo").wait_for(state="hidden", timeout=within(10) * 1000)
            notes += page.locator('[data-testid="stAlert"]').filter(has_text=re.compile("not kept|not added")).all_inner_texts()
            # the next frames of the clip: a different picture (uneven waits, so a busy machine's
            # steady rhythm cannot keep landing on the same phase of the looping clip)
            page.wait_for_timeout(400 + (attempt * 311) % 700)
        assert count(page, name) >= 2  # the app's minimum (MIN_SHOTS); three on an idle machine
    print(f"camera: {clicks} clicks for the pictures; shots not kept: {notes}")
    page.screenshot(path=str(ARTIFACTS / "camera_shots_en.png"))

    page.get_by_role("button", name="Start").click()
    page.get_by_text("Finished in").first.wait_for(timeout=within(180) * 1000)
    wait_idle(page)
    # Try it: the fine-tuned column ranks the learner's own classes.
    page.locator('[data-testid="stProgress"]', has_text="thumbs down").first.wait_for(state="attached")
    page.screenshot(path=str(ARTIFACTS / "camera_trained_en.png"))
    assert error_count(page) == 0
