"""Take the model home, in a real browser: run the default fine-tune, read what it forgot,
download the model (built only on the click) and classify a picture with `python -m tlcore
predict` on the downloaded files, as a learner would at home.

Runs the real trainer with the app's defaults (EfficientNet-Lite0 on Fashion-MNIST). Needs
/usr/bin/chromium; a screenshot of the results goes to test-artifacts/.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.browser import (
    ARTIFACTS,
    CHROMIUM,
    DEMO_LIMIT_S,
    ROOT,
    chromium_page,
    wait_idle,
    within,
)

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def test_download_the_fine_tuned_model_and_predict_with_it(server, tmp_path):  # noqa: F811
    from tlcore.models import catalog
    from tlcore.train import presets

    with chromium_page(1280, 720) as page:
        page.goto(f"{server}/?lang=en")
        page.get_by_role("link", name="3 · Fine-tune").click()
        page.get_by_role("heading", name="Fine-tune").first.wait_for()
        page.get_by_role("button", name="Start").click()
        page.get_by_text("Finished in").first.wait_for(timeout=within(DEMO_LIMIT_S) * 1000)
        forgot = page.get_by_text(re.compile(r"Before this run the pretrained network recognised \d+ of \d+ ImageNet photos"))
        forgot.first.wait_for(timeout=within(30) * 1000)
        forgot.first.scroll_into_view_if_needed()
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "3_finetune_forgetting_en.png"))
        button = page.get_by_role("button", name=re.compile(r"Model: weights and settings \(\d+ MB\)"))
        button.scroll_into_view_if_needed()
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "3_finetune_takehome_en.png"))
        with page.expect_download(timeout=within(60) * 1000) as download:
            button.click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        # streamed from the zip on disk (studio.download_hold): Starlette's file answer, which names the
        # file's version (ETag); Streamlit's in-memory media answer does not
        again = page.request.get(download.value.url, headers={"Range": "bytes=0-1"})
        assert again.status == 206 and again.body() == b"PK" and again.headers.get("etag")
        # a learner who downloads again and again: every download arrives (Streamlit's page also
        # fetches each URL to check it and never reads the answer; unread, 13 MB answers held the
        # browser's six connections to the server and the third or fourth download never began)
        onnx = page.get_by_role("button", name=re.compile(r"Model for ONNX Runtime \(\d+ MB\)"))
        page.evaluate("() => { performance.clearResourceTimings(); performance.setResourceTimingBufferSize(5000); }")
        for i in range(6):
            with page.expect_download(timeout=within(60) * 1000) as more:
                (onnx if i % 2 else button).click()
            assert more.value.failure() is None, f"download {i + 2} failed"
        # each of those checks was answered at once, with no content left for the page to read
        checks = page.evaluate(
            "() => performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/media/') && e.name.endsWith('.zip')).map(e => [e.responseStatus, e.encodedBodySize])"
        )
        assert len(checks) == 6 and all(check == [204, 0] for check in checks), checks
        page.get_by_text("한국어").click()  # the same results in Korean, for a look at the layout
        korean = page.get_by_text("망각, 직접 재기")
        korean.first.wait_for(timeout=within(30) * 1000)
        korean.first.scroll_into_view_if_needed()
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "3_finetune_forgetting_ko.png"))
    assert saved.name == "efficientnet_lite0-partial.zip"
    with zipfile.ZipFile(saved) as z:
        assert sorted(z.namelist()) == ["model/MODEL_CARD.md", "model/README.md", "model/model.json", "model/model.safetensors"]
        z.extractall(tmp_path)
    # a picture of the default data set's validation split, classified from the downloaded files alone
    from PIL import Image

    data = catalog.load_dataset("fashion_mnist", per_class=1, val_per_class=1, image_size=96, seed=0)
    picture = tmp_path / "picture.png"
    Image.fromarray(data.val_x[0].permute(1, 2, 0).numpy()).save(picture)
    out = subprocess.run(
        [sys.executable, "-m", "tlcore", "predict", "--model", str(tmp_path / "model"), str(picture)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    top = out.stdout.split(": ", 1)[1].split(",")[0].rsplit(" ", 1)[0]
    assert top in data.classes, out.stdout
    assert presets.image().dataset == "fashion_mnist"
