"""The app's end of a run: forgetting, measured, and the model to take home (studio.takehome).

Contracts: a finished ImageNet run says how many ImageNet photos the network recognised before
and after, in English and in Korean (no English sentence on the Korean page), with the photos
whose answer changed; the race table has the column; the download buttons are there and build
nothing until clicked; the zip a click builds loads back with tlcore, and a model no longer
kept gives a zip that says so.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile

import pytest

from studio import server
from tests.helpers.apptest import QUEUE, app, english_in, ok, text_app, wait_until_done
from tests.helpers.fakes import fake_run, fake_text_run
from tlcore.models import catalog
from tlcore.serve.jobs import JobQueue
from tlcore.takehome import model_files
from tlcore.train.finetuned import Finetuned

FORGETTING = {
    "backbone": "efficientnet_lite0",
    "total": 24,
    "size": 224,
    "before": 21,
    "after": 13,
    "after_bn": 20,
    "seconds": 0.4,
    "photos": [
        {
            "photo": "chelsea",
            "answer": "tabby",
            "before": "Egyptian cat",
            "after": "window screen",
            "right_before": True,
            "right_after": False,
        },
        {
            "photo": "coffee",
            "answer": "coffee mug",
            "before": "espresso",
            "after": "espresso",
            "right_before": True,
            "right_after": True,
        },
    ],
}


def kept_run(config, emit, should_stop):
    """A finished run with a forgetting measurement and a (tiny, real) model on the shelf."""
    events = []
    fake_run(config, events.append, should_stop)
    done = events.pop()
    model = catalog.build_model("studio_resnet", 2, pretrained=False, image_size=32)
    result = dataclasses.replace(done.result, forgetting=FORGETTING)
    for event in events:
        emit(event)
    emit(type(done)(result))
    return dataclasses.replace(result, model=Finetuned(model, ("cat", "dog"), 32, "studio_resnet", config.to_dict()))


def finished(page: str, start: str, slot: str):
    at = app(page, run_fn=kept_run)
    at.button(key=start).click().run()
    assert wait_until_done(at, slot) == "done"
    at.run()
    return at


def download_labels(at) -> list[str]:
    return [el.proto.label for el in at.get("download_button")]


def test_the_results_say_what_the_fine_tune_forgot_and_offer_the_model():
    at = finished("pages/3_finetune.py", "start", "finetune")
    ok(at)
    text = " ".join(m.value for m in at.markdown)
    assert "recognised **21 of 24** ImageNet photos" in text and "recognises **13**" in text
    assert "put back to ImageNet's" in text and "recognises **20**: 7 of the 8 photos were lost to the normalisation" in text
    assert "and 1 to the changed weights" in text
    table = next(frame.value for frame in at.dataframe if "ImageNet class of the photo" in frame.value.columns)
    assert list(table["ImageNet class of the photo"]) == ["tabby"]  # only the photo whose answer changed
    assert list(table["after this run it says"]) == ["✗ window screen"]
    labels = download_labels(at)
    assert any(label.startswith("Model: weights and settings") for label in labels), labels
    assert any(label.startswith("Model for ONNX Runtime") for label in labels), labels
    assert any("takehome.load" in c.value for c in at.code)


def test_when_imagenet_statistics_bring_back_every_photo_the_weights_are_not_blamed(monkeypatch):
    """Putting the statistics back can even beat the pretrained count (22 of 24 against 21):
    then all that was lost is put on the statistics, and no count goes negative."""
    monkeypatch.setitem(FORGETTING, "after_bn", 22)
    at = finished("pages/3_finetune.py", "start", "finetune")
    text = " ".join(m.value for m in at.markdown)
    assert "recognises **22**: what was lost was lost to the normalisation statistics" in text
    assert "changed weights" not in text and "-1" not in text


def test_the_korean_results_say_it_in_korean():
    at = finished("pages/3_finetune.py", "start", "finetune")
    at.radio(key="w:lang").set_value("ko").run()
    ok(at)
    text = " ".join(m.value for m in at.markdown)
    assert "ImageNet 사진 **24장 중 21장**" in text and "**13장**" in text
    assert "**20장**을 알아봅니다. 잃은 8장 중 7장은" in text and "1장은 바뀐 가중치 때문에" in text
    assert any(label.startswith("모델: 가중치와 설정") for label in download_labels(at))
    assert english_in(at) == []


def test_the_race_table_has_the_imagenet_column():
    at = finished("pages/4_compare.py", "race_start", "race")
    ok(at)
    table = next(frame.value for frame in at.dataframe if "ImageNet photos still recognised" in frame.value.columns)
    assert set(table["ImageNet photos still recognised"]) == {"13 / 24 (20)"}
    assert any("before the race: 21 / 24" in c.value for c in at.caption)
    at.radio(key="w:lang").set_value("ko").run()
    ok(at)
    assert any("아직 알아보는 ImageNet 사진" in frame.value.columns for frame in at.dataframe)
    assert english_in(at) == []


@pytest.mark.fast
def test_a_click_builds_a_zip_that_loads_back(tmp_path, monkeypatch):
    from studio import takehome

    model = catalog.build_model("studio_resnet", 2, pretrained=False, image_size=32)
    queue = JobQueue.started(workers=0)
    model_id = queue.shelf.keep("learner-a", Finetuned(model, ("cat", "dog"), 32, "studio_resnet"))
    monkeypatch.setattr(server, "job_queue", lambda: queue)
    builds = []
    real = model_files.write_zip
    monkeypatch.setattr(model_files, "write_zip", lambda *a, **k: (builds.append(a[0]), real(*a, **k))[1])
    data = takehome.bundle("learner-a", model_id, "weights")
    # a second click: the same bytes (Streamlit stores a download once per distinct bytes), not built again
    assert takehome.bundle("learner-a", model_id, "weights") == data and len(builds) == 1
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    loaded = model_files.load(tmp_path / "model")
    assert loaded.classes == ("cat", "dog") and loaded.backbone == "studio_resnet"
    gone = zipfile.ZipFile(io.BytesIO(takehome.bundle("learner-a", "no-such-model", "onnx")))
    assert gone.namelist() == ["model/NOTE.txt"] and b"no longer kept" in gone.read("model/NOTE.txt")
    theirs = zipfile.ZipFile(io.BytesIO(takehome.bundle("learner-b", model_id, "weights")))  # another learner: nothing
    assert theirs.namelist() == ["model/NOTE.txt"]


def kept_text_run(config, emit, should_stop):
    """A finished text run whose model (a stand-in of the right kind) is on the shelf."""
    import torch

    events = []
    fake_text_run(config, events.append, should_stop)
    done = events.pop()
    for event in events:
        emit(event)
    emit(done)
    return dataclasses.replace(
        done.result,
        model=Finetuned(torch.nn.Linear(4, 2), ("negative", "positive"), 0, "minilm_l6", config.to_dict(), task="text"),
    )


def test_a_text_run_offers_its_model_in_both_languages():
    from tlcore.serve.jobs import JobQueue

    at = text_app()
    at.session_state[QUEUE] = JobQueue.started(kept_text_run)
    at.button(key="text_start").click().run()
    assert wait_until_done(at, "text") == "done"
    at.run()
    ok(at)
    assert any(label.startswith("Model for ONNX Runtime") for label in download_labels(at))
    assert any(
        label.startswith("Notebook: this run in plain PyTorch") for label in download_labels(at)
    )  # transformers' text notebook
    assert any("tokenizer" in c.value for c in at.caption)
    assert not any("ImageNet photos" in m.value for m in at.markdown)  # no forgetting line for text
    at.radio(key="w:lang").set_value("ko").run()
    ok(at)
    assert any(label.startswith("ONNX Runtime용 모델") for label in download_labels(at))
    assert any(label.startswith("노트북: 이 실행을 순수 PyTorch로") for label in download_labels(at))
    assert english_in(at) == []


def kept_lite0_run(config, emit, should_stop):
    """kept_run with the default backbone on the shelf: a run the take-home notebook can rebuild."""
    out = kept_run(config, emit, should_stop)
    model = catalog.build_model("efficientnet_lite0", 10, pretrained=False, image_size=32)
    classes = tuple(str(i) for i in range(10))
    return dataclasses.replace(out, model=Finetuned(model, classes, 32, "efficientnet_lite0", config.to_dict()))


def test_a_run_the_notebook_can_rebuild_offers_it_in_the_learners_language():
    at = app("pages/3_finetune.py", run_fn=kept_lite0_run)
    at.button(key="start").click().run()
    assert wait_until_done(at, "finetune") == "done"
    at.run()
    ok(at)
    assert any(label.startswith("Notebook: this run in plain PyTorch") for label in download_labels(at))
    at.radio(key="w:lang").set_value("ko").run()
    assert any(label.startswith("노트북: 이 실행을 순수 PyTorch로") for label in download_labels(at))
    # the studio's own synthetic-pretrained ResNet has no plain-PyTorch notebook: no button for it
    other = finished("pages/3_finetune.py", "start", "finetune")
    assert not any("Notebook" in label for label in download_labels(other))


def test_two_onnx_downloads_at_once_both_deliver_the_model(monkeypatch):
    """Two tabs click ONNX together (3 of 3 tries: one failed; the exporter traces with
    process-wide state): both get a zip with the model, built once."""
    import threading

    from studio import takehome

    queue = JobQueue.started(workers=0)
    ids = [
        queue.shelf.keep(
            f"learner-{i}",
            Finetuned(
                catalog.build_model("studio_resnet", 2, pretrained=False, image_size=32), ("cat", "dog"), 32, "studio_resnet"
            ),
        )
        for i in range(2)
    ]
    monkeypatch.setattr(server, "job_queue", lambda: queue)
    got: dict[int, list[str]] = {}
    start = threading.Barrier(4)

    def click(i: int, learner: int) -> None:
        start.wait()
        got[i] = zipfile.ZipFile(io.BytesIO(takehome.bundle(f"learner-{learner}", ids[learner], "onnx"))).namelist()

    threads = [threading.Thread(target=click, args=(i, i % 2)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(got) == 4 and all("model/model.onnx" in names for names in got.values()), got
