"""Korean is complete: no English sentence on a Korean page, engine messages included.

Every text element of each page (titles, markdown, captions, alerts, widget labels and
options, metrics, expanders, tabs) is scanned for common English words, after removing
what is meant to stay as written: code (`...`), quoted example sentences ("..."), the
language switch itself.
Proper names (ImageNet, EfficientNet, BERT, LoRA) and glossary terms in parentheses
are not common words, so they pass.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from tests.helpers.apptest import PAGES, app, charts, english_in, wait_until_done
from tests.helpers.fakes import fake_run, png, zip_of
from tlcore.core.events import Done, Failed, Started

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("page", PAGES + ["pages/5_text.py", "pages/6_class.py"])
def test_a_korean_page_has_no_english_sentence(page):
    at = app(page, lang="ko")
    assert not at.exception
    assert english_in(at) == []


@pytest.mark.parametrize("cell", ["cell:small:similar", "cell:large:different"])
def test_what_a_matrix_cell_runs_on_is_told_in_korean(cell):
    """The pair a cell sets (a switched backbone and why included) is said in Korean. (Clicked on
    the English page: AppTest formats widget labels outside the script, in English.)"""
    at = app("pages/2_strategy.py")
    at.button(key=cell).click().run()
    at.radio(key="w:lang").set_value("ko").run()
    assert not at.exception
    assert any("백본으로" in i.value for i in at.info), [i.value for i in at.info]
    assert english_in(at) == []


def korean_after_a_run(run_fn) -> tuple:
    """Start on the English page (AppTest formats widget labels outside the script, in
    English), let the run end, then switch to Korean and read."""
    at = app("pages/3_finetune.py", run_fn=run_fn)
    at.button(key="start").click().run()
    state = wait_until_done(at, "finetune")
    at.radio(key="w:lang").set_value("ko").run()
    return at, state


def test_the_korean_finished_run_and_its_results_are_korean():
    at, state = korean_after_a_run(fake_run)
    assert state == "done" and at.title[0].value == "미세 조정 실습"
    assert not at.exception
    assert english_in(at) == []


def failing_run(config, emit, should_stop):
    from tlcore.core.messages import LearnerError

    emit(Started(4, 2, ("stem", "head"), (), 1, 2, "CPU (test)", 2, 2, ("a", "b")))
    emit(Failed.of(LearnerError("run.out_of_memory", batch_size=64, image_size=224)))


def test_an_engine_failure_is_told_in_korean():
    at, state = korean_after_a_run(failing_run)
    assert state == "failed"
    errors = [e.value for e in at.error]
    assert errors and "메모리가 부족합니다" in errors[0] and "224" in errors[0]
    assert english_in(at) == []


@pytest.mark.fast
def test_every_engine_message_has_a_korean_translation_with_the_same_values():
    from tlcore.core.messages import EN

    ko = json.loads((ROOT / "assets" / "i18n" / "ko.json").read_text(encoding="utf-8"))
    field = re.compile(r"{(\w+)}")
    for key, english in EN.items():
        assert f"engine.{key}" in ko, key
        assert set(field.findall(ko[f"engine.{key}"])) == set(field.findall(english)), key


@pytest.mark.fast
def test_a_rejected_setting_is_explained_in_korean():
    from streamlit.testing.v1 import AppTest

    def show() -> None:
        import streamlit as st

        from studio.i18n import explain_error
        from tlcore.train.config import RunConfig

        st.session_state["lang"] = "ko"
        try:
            RunConfig(epochs=0)
        except ValueError as error:
            st.error(explain_error(error))

    at = AppTest.from_function(show).run()
    assert "epochs 값은 1에서" in at.error[0].value


def test_a_refused_upload_and_its_skipped_files_are_explained_in_korean():

    def upload(files: dict[str, bytes]):  # in English (AppTest formats options in English), then Korean
        at = app("pages/3_finetune.py")
        at.radio(key="w:data_source").set_value("upload").run()
        at.file_uploader(key="upload").set_value(("c.zip", zip_of(files), "application/zip")).run()
        return at.radio(key="w:lang").set_value("ko").run()

    good = {f"{cls}/{i}.png": png((90 * i, 40, 0)) for cls in ("cats", "dogs") for i in range(3)}
    at = upload({**good, "birds/a.png": b"%!PS-Adobe-3.0 not a picture"})
    errors = [e.value for e in at.error]
    assert errors and "쓸 수 있는 이미지가 없습니다: birds" in errors[0], errors
    assert "허용된 형식" in errors[0]  # the skipped file's reason, inside the refusal, in Korean too
    assert english_in(at) == []
    at = upload({**good, "cats/notes.txt": b"hello", "dogs/deep.png": b"\x89PNG broken"})
    assert not at.error and not at.exception
    reasons = [
        str(r) for frame in at.dataframe for column in frame.value.columns if column == "이유" for r in frame.value[column]
    ]
    assert sorted(reasons) == [
        "이미지 파일이 아님 (.png, .jpg 등이어야 함)",
        "허용된 형식(PNG, JPEG, BMP, GIF, WebP, TIFF)의 이미지가 아님",
    ]


def test_the_class_page_is_korean_for_the_teacher_too(monkeypatch):
    """Locked and unlocked (the job list, the share link's explanation), with a run listed."""

    monkeypatch.setenv("TLS_TEACHER_SECRET", "a-teacher-secret")
    at = app("pages/3_finetune.py")
    at.button(key="start").click().run()
    wait_until_done(at, "finetune")
    at.switch_page("pages/6_class.py").run()
    at.text_input(key="teacher_secret").input("a-teacher-secret")
    at.button[0].click()
    at.run()
    at.query_params["lang"] = "ko"
    at.session_state["lang"] = "ko"
    at.run()
    assert not at.exception
    assert any("교사 모드" in s.value for s in at.success)
    assert english_in(at) == []


FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def fashion_run(config, emit, should_stop):
    """A finished Fashion-MNIST fine-tune whose (tiny, real) model is kept for "Try it"."""
    import torch

    from tests.helpers.fakes import fake_run
    from tlcore.train.finetuned import Finetuned

    class Tiny(torch.nn.Module):  # (B, 3, H, W) uint8 -> (B, 10), as the app's models take pictures
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(3, len(FASHION))

        def forward(self, x):
            return self.head(x.float().mean((2, 3)) / 255)

    model = Tiny()
    events = []
    fake_run(config, events.append, should_stop)
    done = events.pop()
    result = dataclasses.replace(done.result, classes=list(FASHION))
    for event in events:
        emit(event)
    emit(Done(result))
    return dataclasses.replace(result, model=Finetuned(model, FASHION, 32, config.backbone))


def test_the_fine_tuned_models_classes_in_try_it_are_korean_like_the_preview():
    at, state = korean_after_a_run(fashion_run)
    assert state == "done" and at.session_state["dataset"] == "fashion_mnist"
    shown = " ".join(str(p.proto.text) for p in at.get("progress"))
    assert "바지" in shown or "운동화" in shown, shown[:500]  # Trouser, Sneaker in Korean
    assert "Trouser" not in shown and "Sneaker" not in shown
    captions = " ".join(c.value for c in at.caption)
    assert "**적은** 편" in captions or "**많은** 편" in captions
    assert "적음** 편" not in captions and "많음** 편" not in captions
    assert "efficientnet_lite0" not in captions  # the model by its name, not its registry key


def test_a_finished_race_names_its_strategies_in_korean():
    from tlcore.serve.jobs import JobQueue

    queue = JobQueue.started(fake_run)
    english = app("pages/4_compare.py", queue=queue, owner="racer")
    english.button(key="race_start").click().run()
    assert wait_until_done(english, "race") == "done"
    at = app("pages/4_compare.py", lang="ko", queue=queue, owner="racer")  # the same learner, in Korean
    assert english_in(at) == []
    # The legend: each trace's name, read from the chart's JSON (which may escape non-ASCII as \uXXXX)
    names = {trace.get("name") for c in charts(at) for trace in json.loads(c.proto.spec)["data"]}
    ko = json.loads((ROOT / "assets" / "i18n" / "ko.json").read_text(encoding="utf-8"))
    assert {ko["strategy.scratch"], ko["strategy.linear_probe"], ko["strategy.full"]} <= names, names
    assert not names & {"From scratch", "Linear probe (head only)", "linear_probe", "full"}, names


def test_the_korean_charts_name_the_layer_groups_in_korean():
    """The gradient-norm map, the latest norms and the drift bars say "2단계", not "stage2"."""
    at, state = korean_after_a_run(fake_run)
    assert state == "done" and not at.exception
    shown = json.dumps([json.loads(c.proto.spec) for c in charts(at)], ensure_ascii=False)
    assert "단계" in shown and "출력 헤드" in shown, shown[:400]
    assert not re.search(r'"(stem|stage\d|head)"', shown), re.findall(r'"(?:stem|stage\d|head)"', shown)[:5]


def test_the_korean_imagenet_names_are_a_korean_name_for_every_class():
    from tlcore.models.imagenet import SAMPLE_PHOTOS, categories

    names = json.loads((ROOT / "assets" / "i18n" / "imagenet_ko.json").read_text(encoding="utf-8"))
    assert len(names) == len(categories()) == 1000
    assert len(set(names)) == 1000  # the two "crane"s (bird, machine) and "maillot"s stay apart in Korean
    assert all(re.search(r"[가-힣]", n) and not re.search(r"[A-Za-z]", n) for n in names), [
        n for n in names if re.search(r"[A-Za-z]", n)
    ]
    cat = SAMPLE_PHOTOS[0]
    assert all("고양이" in names[i] for i in cat.accept[:2]), [names[i] for i in cat.accept]  # tabby, tiger cat


def test_the_pretrained_models_guesses_in_try_it_are_korean():
    """Page 3's "what the pretrained model already knows" names ImageNet's classes in Korean."""
    at = app("pages/3_finetune.py", lang="ko")
    assert not at.exception
    shown = [str(p.proto.text) for p in at.get("progress")]
    assert len(shown) == 5, shown
    assert all(re.search(r"[가-힣]", s) and not re.search(r"[A-Za-z]", s) for s in shown), shown
