"""The feature space panel in a real browser (Playwright + Debian's Chromium, 1280 x 720).

Contracts: page 1's view is computed in the background (the page answers meanwhile), then
drawn within the window's width; hovering a dot shows that training image (a Vega-Lite
tooltip whose `image` field vega-tooltip draws as a picture) under its class name, in
English and, after the language switch, in Korean. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import pytest

from tests.helpers.browser import ARTIFACTS, chromium_page, wait_idle, within
from tlcore.train import presets

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FASHION = presets.image().dataset == "fashion_mnist"  # else scikit-learn's digits, named 0..9 in both languages
KOREAN_FASHION = {"티셔츠/상의", "바지", "풀오버", "드레스", "코트", "샌들", "셔츠", "운동화", "가방", "앵클 부츠"}


def hover_a_dot(page, chart) -> str:
    """Move over the first panel until a tooltip shows; its heading (the class name)."""
    box = chart.bounding_box()
    for fx in [i / 20 for i in range(2, 19)]:
        for fy in [j / 14 for j in range(3, 12)]:
            page.mouse.move(box["x"] + box["width"] * 0.45 * fx, box["y"] + box["height"] * 0.8 * fy)
            page.wait_for_timeout(40)
            tip = page.locator("#vg-tooltip-element.visible")
            if tip.count() and tip.is_visible():
                return tip.locator("h2").inner_text()
    raise AssertionError("no tooltip over the feature space chart")


def test_hovering_a_dot_shows_its_image_in_both_languages(server):  # noqa: F811
    with chromium_page(1280, 720) as page:
        page.goto(f"{server}/?lang=en")
        show = page.get_by_role("button", name="Show the feature space")
        show.wait_for(timeout=within(60) * 1000)
        show.click()
        chart = page.locator("[data-testid='stVegaLiteChart']").first
        chart.wait_for(timeout=within(300) * 1000)  # computed in the background: tens of seconds on a busy 2-core CPU
        chart.scroll_into_view_if_needed()
        wait_idle(page)
        box = chart.bounding_box()
        assert box["x"] + box["width"] <= 1280, "the panels fit the window"
        name = hover_a_dot(page, chart)
        image = page.locator("#vg-tooltip-element.visible img")
        assert not FASHION or name in {
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        }
        assert image.count() == 1 and image.get_attribute("src").startswith("data:image/png;base64,")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "the thumbnail decodes"
        page.screenshot(path=str(ARTIFACTS / "features_hover_en.png"))

        page.mouse.move(0, 0)
        page.get_by_text("한국어").click()
        page.get_by_text("학습하기 전의 특징 공간").first.wait_for(timeout=within(60) * 1000)
        wait_idle(page)
        chart = page.locator("[data-testid='stVegaLiteChart']").first
        chart.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        name = hover_a_dot(page, chart)
        assert not FASHION or name in KOREAN_FASHION
        page.screenshot(path=str(ARTIFACTS / "features_hover_ko.png"))
