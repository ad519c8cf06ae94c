"""Text models: frozen means frozen (LoRA too), groups are right, loading works offline, data errors are clear.

Every model here is a tiny randomly initialised BERT or DistilBERT saved into a temporary
folder (tests.helpers.text_tiny) and loaded through the same code path a hub id takes.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from tests.helpers.text_tiny import save_tiny_model
from tlcore.core import offline
from tlcore.core.events import Cancelled, Done, EvalEvent, Failed, History, Started, StepEvent
from tlcore.data import datasets
from tlcore.models import catalog
from tlcore.text import bert as models
from tlcore.text import sentences as text_data
from tlcore.text.batches import TextSource
from tlcore.text.fill_mask import fill_mask
from tlcore.train import recipe, strategies, trainer
from tlcore.train.config import RunConfig

CPU = torch.device("cpu")
FAMILIES = ("bert", "distilbert")  # the architectures behind every registered text backbone


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    return {fam: str(save_tiny_model(tmp_path_factory.mktemp(fam), family=fam)) for fam in FAMILIES}


@pytest.fixture(scope="module")
def sample():
    return catalog.load_dataset("sentiment_en", per_class=24, val_per_class=8, image_size=0, seed=0)


def plan_for(config, groups):
    return strategies.make_plan(
        config.strategy,
        groups,
        lr=config.lr,
        head_lr_mult=config.head_lr_mult,
        freeze_depth=config.freeze_depth,
        layer_decay=config.layer_decay,
    )


def fit_text(model, plan, data, *, epochs=2, batch_size=8, should_stop=lambda: False, cache=True, precision="auto"):
    history = History()
    source = TextSource(data, model.tokenizer, CPU, max_length=32)
    opts = trainer.FitOptions(epochs=epochs, batch_size=batch_size, log_every=1, cache_features=cache, precision=precision)
    result = trainer.fit(
        model, plan, source, opts, device=CPU, emit=history.append, should_stop=should_stop, classes=tuple(data.classes)
    )
    return history.snapshot(), result, source


def config_for(model_dir, **kw) -> RunConfig:
    base = dict(
        task="text",
        backbone=model_dir,
        dataset="sentiment_en",
        per_class=24,
        val_per_class=8,
        epochs=2,
        batch_size=8,
        lr=1e-3,
        head_lr_mult=10.0,
        device="cpu",
        log_every=1,
    )
    return RunConfig(**(base | kw))


# ----------------------------------------------------------------------------- registry and groups


@pytest.mark.fast
def test_registry_has_the_required_text_backbones_and_datasets():
    names = catalog.backbone_names("text")
    for required in ("bert_tiny", "distilbert_base", "bert_base", "klue_bert", "bert_multilingual", "minilm_l6"):
        assert required in names
    assert {"sentiment_en", "sentiment_ko", "text_csv", "sst2", "nsmc"} <= set(catalog.dataset_names(task="text"))
    assert catalog.backbone("bert_tiny").extra["hub_id"] == "prajjwal1/bert-tiny"
    with pytest.raises(ValueError, match="through tlcore.text.bert"):
        catalog.build_model("bert_tiny", 2, pretrained=False)


def test_importing_the_registries_does_not_import_transformers():
    code = "import sys, tlcore.models.backbones, tlcore.data.datasets, tlcore.train.config; print('transformers' in sys.modules, 'peft' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=os.path.dirname(os.path.dirname(__file__))
    )
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.fast
@pytest.mark.parametrize("family", FAMILIES)
def test_layer_groups_cover_every_parameter_once(tiny_dirs, family):
    model = models.build_text_model(tiny_dirs[family], 3, pretrained=True)
    assert model.group_names == ["embeddings", "layer0", "layer1", "head"]
    seen = [id(p) for g in model.groups.values() for p in g.parameters()]
    assert len(seen) == len(set(seen))  # no parameter in two groups
    assert set(seen) == {id(p) for p in model.hf.parameters()}  # and none left out
    assert sum(model.param_counts().values()) == sum(p.numel() for p in model.hf.parameters())
    head = {n for n, _ in model.groups["head"].named_parameters()}
    expected = {"bert": "bert__pooler__dense__weight", "distilbert": "pre_classifier__weight"}[family]
    assert expected in head and "classifier__weight" in head
    batch = TextSource(
        text_data.TextData(
            ["a", "b", "c"], ["the food was great", "bad"], torch.tensor([0, 1]), [], torch.zeros(0, dtype=torch.long)
        ),
        model.tokenizer,
        CPU,
    )
    assert model(batch.collate(batch.train_ids)).shape == (2, 3)  # (B, T) ids -> (B, num_classes)


# ----------------------------------------------------------------------------- freeze contracts


def test_partial_freeze_leaves_frozen_layers_unchanged(tiny_dirs, sample):
    model = models.build_text_model(tiny_dirs["bert"], 2, pretrained=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plan = plan_for(config_for(tiny_dirs["bert"], strategy="partial", freeze_depth=2), model.group_names)
    assert plan.frozen == ("embeddings", "layer0")
    snap, result, _ = fit_text(model, plan, sample)
    for group, module in model.groups.items():
        changed = [not torch.equal(p, before[f"groups.{group}.{n}"]) for n, p in module.named_parameters()]
        assert (not any(changed)) if group in plan.frozen else all(changed), group
    steps = [e for e in snap.events if isinstance(e, StepEvent)]
    assert steps and all(set(e.grad_norms) == {"layer1", "head"} for e in steps)  # frozen rows absent
    started = next(e for e in snap.events if isinstance(e, Started))
    assert started.trainable_params == model.param_counts()["layer1"] + model.param_counts()["head"]


def test_lora_trains_only_adapters_and_head(tiny_dirs, sample):
    model = models.build_text_model(tiny_dirs["distilbert"], 2, pretrained=True, lora_r=4)
    assert model.group_names == ["pretrained", "layer0", "layer1", "head"]
    adapters = [n for n, _ in model.groups["layer0"].named_parameters()]
    assert adapters and all("lora_" in n for n in adapters)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plan = plan_for(config_for(tiny_dirs["distilbert"], strategy="lora", lora_r=4), model.group_names)
    snap, _, _ = fit_text(model, plan, sample)
    for name, p in model.named_parameters():
        moved = not torch.equal(p, before[name])
        assert moved == (not name.startswith("groups.pretrained.")), name
    started = next(e for e in snap.events if isinstance(e, Started))
    share = models.lora_share(model)
    assert (started.trainable_params, started.total_params) == (share.trainable, share.total)
    # the adapted model starts as the pretrained one: LoRA's B matrices start at zero
    plain = models.build_text_model(tiny_dirs["distilbert"], 2, pretrained=True)
    fresh = models.build_text_model(tiny_dirs["distilbert"], 2, pretrained=True, lora_r=4)
    ids = {"input_ids": torch.tensor([[2, 40, 50, 3]]), "attention_mask": torch.ones(1, 4, dtype=torch.long)}
    with torch.no_grad():
        body = lambda m: m.hf.base_model(**ids).last_hidden_state  # noqa: E731
        assert torch.allclose(body(plain.eval()), body(fresh.eval()), atol=1e-6)


def test_lora_share_on_a_bert_base_sized_model_is_under_5_percent():
    from transformers import BertConfig, BertForSequenceClassification

    hf = BertForSequenceClassification(BertConfig(num_labels=2))  # bert-base shape, random weights
    models.add_lora(hf, r=8)
    share = models.lora_share(models.TextClassifier(hf, tokenizer=None, name="bert-base-config", lora_r=8))
    adapters = 12 * 2 * (2 * 8 * 768)  # 12 layers x (query, value) x (A: 8x768 + B: 768x8)
    head = (768 * 768 + 768) + (768 * 2 + 2)  # pooler + classifier
    assert share.trainable == adapters + head
    assert 100_000_000 < share.total < 120_000_000
    assert share.percent < 5.0
    assert str(share) == "trainable: 887K of 110M (0.81%)"  # the one readout, as everywhere


# ----------------------------------------------------------------------------- the run and its events


def test_run_text_emits_the_shared_event_stream(tiny_dirs):
    history = History()
    config = config_for(tiny_dirs["bert"], strategy="full", epochs=2)
    result = recipe.run(config, history.append)
    kinds = [type(e) for e in history.snapshot().events]
    assert kinds[0] is Started and kinds[-1] is Done and kinds.count(EvalEvent) == 2
    steps = [e for e in history.snapshot().events if isinstance(e, StepEvent)]
    assert list(steps[0].grad_norms) == ["embeddings", "layer0", "layer1", "head"]  # one row per layer
    assert all(v > 0 and v == v for e in steps for v in e.grad_norms.values())
    assert 0.0 <= result.val_acc <= 1.0 and len(result.predictions) == 16
    assert result.padding_share < 0.5
    assert result.train_per_s > 0 and result.examples_per_s > 0  # one name for any task
    df = history.snapshot().to_dataframe()
    assert {"train/loss", "val/acc", "grad_norm/layer1"} <= set(df.columns)


@pytest.mark.fast
def test_linear_probe_extracts_features_once_and_learns(tmp_path, sample):
    # BERT's own init (std 0.02) gives a random tiny model first-token vectors that barely differ from
    # sentence to sentence (std 0.003 across sentences): nothing a probe could learn, and its step
    # losses only wandered. Wider weights give each sentence its own vector, as a pretrained model does.
    folder = str(save_tiny_model(tmp_path, family="bert", init_range=0.2))
    torch.manual_seed(0)
    model = models.build_text_model(folder, 2, pretrained=True)
    plan = plan_for(config_for(folder, strategy="linear_probe", lr=1e-3), model.group_names)
    initial = copy.deepcopy(model.state_dict())
    # fp32, so the cached features can be held to the whole model's logits exactly (bf16 differs in the 3rd digit)
    snap, result, source = fit_text(model, plan, sample, epochs=3, precision="fp32")
    started = next(e for e in snap.events if isinstance(e, Started))
    assert started.cached_depth == 3 and source.cached  # embeddings + 2 layers computed once
    # cached features give the same logits as the whole model on the same sentences
    model.eval()
    with torch.no_grad():
        whole = model(source.collate(source.val_ids[:4]))
        cached = model.head_from_cls(source.val_feats[:4])
    assert torch.allclose(whole, cached, atol=1e-5)

    def train_loss() -> float:  # the whole training set at once, not one noisy batch
        with torch.no_grad():
            return F.cross_entropy(model.head_from_cls(source.train_feats), source.train_y).item()

    after = train_loss()
    model.load_state_dict(initial)
    assert after < train_loss()  # held for each of 40 seeds tried, by 0.025 at the least


@pytest.mark.fast
def test_cancel_stops_within_a_step(tiny_dirs):
    history = History()
    calls = iter(range(1000))
    recipe.run(config_for(tiny_dirs["bert"], strategy="full"), history.append, should_stop=lambda: next(calls) >= 3)
    events = history.snapshot().events
    assert isinstance(events[-1], Cancelled) and events[-1].step <= 3


@pytest.mark.fast
def test_bad_settings_fail_with_a_message(tiny_dirs):
    history = History()
    recipe.run(config_for(tiny_dirs["bert"], strategy="partial", freeze_depth=9), history.append)
    assert isinstance(history.snapshot().events[-1], Failed)
    assert "freeze depth must be 0..3" in history.snapshot().events[-1].message
    with pytest.raises(ValueError, match="text model"):
        RunConfig(task="image", backbone="bert_tiny", dataset="digits")


@pytest.mark.fast
def test_cli_finetune_text(tiny_dirs, capsys):
    from tlcore.cli import main

    code = main(
        [
            "finetune",
            "--task",
            "text",
            "--backbone",
            tiny_dirs["bert"],
            "--dataset",
            "sentiment_ko",
            "--strategy",
            "linear_probe",
            "--epochs",
            "1",
            "--per-class",
            "8",
            "--val-per-class",
            "4",
            "--device",
            "cpu",
        ]
    )
    assert code == 0 and "val/acc" in capsys.readouterr().out


@pytest.mark.fast
def test_cli_fill_mask(tiny_dirs, capsys):
    from tlcore.cli import main

    assert main(["fill-mask", "The cat is on the [MASK].", "--model", tiny_dirs["bert"], "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[MASK] #1:" and len(lines) == 4 and "The cat is on the " in lines[1]


def test_text_bench_times_both_loops_on_the_same_data(tiny_dirs):
    from tlcore.text.bench import bench

    r = bench(tiny_dirs["bert"], "sentiment_en", per_class=8, epochs=1, batch_size=8, lr=1e-3, device="cpu", repeats=1)
    assert r["sentences"] == 16 and r["epochs"] == 1
    assert r["ours_s_per_epoch"] > 0 and r["trainer_s_per_epoch"] > 0


# ----------------------------------------------------------------------------- batches


@pytest.mark.fast
def test_batches_pad_to_their_own_longest_sentence(sample, tiny_dirs):
    tok = models.build_text_model(tiny_dirs["bert"], 2, pretrained=True).tokenizer
    source = TextSource(sample, tok, CPU)
    seen = []
    for inputs, targets in source.train_batches(1, 8, torch.Generator().manual_seed(0)):
        lengths = inputs["attention_mask"].sum(1)
        assert inputs["input_ids"].shape[1] == int(lengths.max())  # dynamic padding
        seen += targets.tolist()
    assert sorted(seen) == sorted(sample.train_y.tolist())  # every sentence once per epoch
    global_max = max(len(s) for s in source.train_ids)
    padded_to_max = 1 - sum(map(len, source.train_ids)) / (global_max * len(source.train_ids))
    assert source.padding_share < padded_to_max / 2  # length buckets: far less padding


# ----------------------------------------------------------------------------- loading, offline


def test_saved_folder_and_prefilled_cache_load_offline(tiny_dirs, tmp_path):
    """A hub id found in a pre-filled HF cache loads with no network; an uncached one says what to run."""
    from huggingface_hub import constants  # noqa: F401  (the subprocess reads HF_HUB_CACHE at import)

    snapshot = tmp_path / "hub" / "models--prajjwal1--bert-tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in os.listdir(tiny_dirs["bert"]):
        (snapshot / f).write_bytes(open(os.path.join(tiny_dirs["bert"], f), "rb").read())
    (tmp_path / "hub" / "models--prajjwal1--bert-tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--prajjwal1--bert-tiny" / "refs" / "main").write_text("0" * 40)
    code = textwrap.dedent("""
        from tlcore.text import bert as models
        m = models.build_text_model("bert_tiny", 2, pretrained=True)
        print("groups", ",".join(m.group_names), models.is_cached("bert_tiny"), models.is_cached("bert_base"))
        try:
            models.build_text_model("bert_base", 2, pretrained=True)
        except models.TextModelUnavailable as e:
            print("error", e)
    """)
    env = os.environ | {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    assert "groups embeddings,layer0,layer1,head True False" in out.stdout, out.stderr[-2000:]
    assert "error bert_base is not cached" in out.stdout
    assert "python -m tlcore prefetch --backbones bert_base" in out.stdout


@pytest.mark.fast
def test_a_folder_without_a_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError):
        models.build_text_model(str(tmp_path), 2, pretrained=True)


# ----------------------------------------------------------------------------- fill-mask


@pytest.mark.fast
def test_fill_mask_on_a_tiny_model(tiny_dirs):
    model, tok = models.load_masked_lm(tiny_dirs["bert"])
    (guesses,) = fill_mask(model, tok, "The cat is on the [MASK].", top_k=4)
    assert len(guesses) == 4
    scores = [g.score for g in guesses]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0
    assert all(g.sentence.startswith("The cat is on the ") and "[MASK]" not in g.sentence for g in guesses)
    two = fill_mask(model, tok, "I [MASK] it, it was [MASK].", top_k=2)
    assert len(two) == 2 and two[1][0].sentence.startswith("I [MASK] it, it was ")
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        fill_mask(model, tok, "no mask here")


def test_fill_mask_refuses_a_model_without_an_mlm_head(tmp_path, tiny_dirs):
    hf, tok = models.load_classifier(tiny_dirs["bert"], 2, pretrained=True)
    hf.save_pretrained(tmp_path)  # a classifier checkpoint: no masked-word head inside
    tok.save_pretrained(tmp_path)
    with pytest.raises(models.TextModelUnavailable, match="masked-word head"):
        models.load_masked_lm(str(tmp_path))
    # prefetch still readies it for fine-tuning, and says what it cannot do
    assert models.prefetch_text([str(tmp_path)]).endswith("no masked-word head (fine-tuning only)")
    assert models.prefetch_text([tiny_dirs["bert"]]) == f"{tiny_dirs['bert']}: ready ({tiny_dirs['bert']})"


def test_models_built_by_threads_at_once_leave_transformers_as_it_was():
    """A class server builds text models in several threads (a race's parallel runs, a page's
    parameter count, the Guess button). transformers patches process-wide functions while it
    builds; unguarded, two builds at once left PreTrainedModel.tie_weights emptied for good and
    the masked-word demo refused studio_bert until a restart."""
    import threading

    from transformers.modeling_utils import PreTrainedModel

    from tlcore.text.mlm import MlmConfig, new_model

    tie_weights, failed = PreTrainedModel.tie_weights, []

    def build(kind: int) -> None:
        for n in range(3):
            try:
                if kind == 0:
                    models.load_masked_lm("studio_bert")
                elif kind == 1:  # a pretrained classifier, then one from random weights
                    models.load_classifier("studio_bert", 3, pretrained=n % 2 == 0)
                else:
                    new_model(MlmConfig(), vocab_size=500)
            except Exception as error:  # noqa: BLE001 -- every failure is the finding
                failed.append(repr(error))

    threads = [threading.Thread(target=build, args=(i % 3,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failed, failed[:3]
    assert PreTrainedModel.tie_weights is tie_weights
    model, _ = models.load_masked_lm("studio_bert")
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


# ----------------------------------------------------------------------------- data


@pytest.mark.fast
def test_offline_samples_are_balanced_with_a_fixed_split():
    for lang in ("en", "ko"):
        table = text_data.read_text_csv(text_data.SAMPLES[lang])
        assert len(table.texts) == len(set(table.texts)) >= 200
        for label in ("positive", "negative"):
            for split, n in (("train", 96), ("val", 24)):
                assert sum(1 for lab, s in zip(table.labels, table.splits, strict=True) if lab == label and s == split) == n
    data = catalog.load_dataset("sentiment_ko", per_class=10, val_per_class=100, image_size=0, seed=3)
    assert data.classes == ["negative", "positive"] and len(data.train_texts) == 20 and len(data.val_texts) == 48


@pytest.mark.fast
def test_csv_reader_refuses_missing_columns_and_single_labels():
    with pytest.raises(ValueError, match="no text column.*'review_text', 'label'"):
        text_data.parse_text_csv("review_text,label\nnice,1\n", name="x.csv")
    with pytest.raises(ValueError, match="no label column"):
        text_data.parse_text_csv("text,stars\nnice,5\n")
    with pytest.raises(ValueError, match="only one label .'pos'."):
        text_data.parse_text_csv("text,label\nnice,pos\ngreat,pos\n")
    with pytest.raises(ValueError, match="no row has both"):
        text_data.parse_text_csv("text,label\n,pos\n")
    with pytest.raises(ValueError, match="does not exist"):
        text_data.read_text_csv("/no/such/file.csv")


@pytest.mark.fast
def test_csv_reader_skips_empty_rows_and_reads_korean_encodings():
    content = "문장,label\n정말 좋아요,긍정\n   ,부정\n별로예요,\n최악이에요,부정\n\n".replace("문장", "text")
    for raw in (content.encode("utf-8"), content.encode("utf-8-sig"), content.encode("cp949")):
        table = text_data.parse_text_csv(raw, name="reviews.csv")
        assert table.texts == ["정말 좋아요", "최악이에요"] and table.labels == ["긍정", "부정"]
        assert table.skipped == [("row 3", "empty text"), ("row 4", "empty label")]
    tsv = text_data.parse_text_csv('id\tdocument\tlabel\n1\t"quoted" text\t1\n2\tbad\t0\n')
    assert tsv.texts == ['"quoted" text', "bad"]  # NSMC's layout; quotes are plain characters


@pytest.mark.fast
def test_csv_sampling_keeps_a_split_column_and_numeric_label_order():
    rows = "".join(f"s{i},{i % 3 * 5},{'val' if i % 4 == 0 else 'train'}\n" for i in range(60))
    table = text_data.parse_text_csv("text,label,split\n" + rows)
    data = text_data.sample_table(table, per_class=100, val_per_class=100, seed=0)
    assert data.classes == ["0", "5", "10"]
    assert all(int(t[1:]) % 4 == 0 for t in data.val_texts) and len(data.val_texts) == 15
    no_split = text_data.parse_text_csv("text,label\n" + "".join(f"s{i},{'ab'[i % 2]}\n" for i in range(10)))
    d = text_data.sample_table(no_split, per_class=3, val_per_class=2, seed=0)
    assert len(d.train_texts) == 6 and len(d.val_texts) == 4 and not set(d.train_texts) & set(d.val_texts)
    with pytest.raises(ValueError, match="label 'b' has only 1 row"):
        text_data.sample_table(text_data.parse_text_csv("text,label\nx,a\ny,a\nz,b\n"), per_class=5, val_per_class=5, seed=0)
    with pytest.raises(ValueError, match="label 'b' has no row with split=val"):
        text_data.sample_table(
            text_data.parse_text_csv("text,label,split\nx,a,train\ny,a,val\nz,b,train\n"), per_class=5, val_per_class=5, seed=0
        )


@pytest.mark.fast
def test_downloadable_sets_fail_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setattr(text_data, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(offline, "reachable", lambda url, timeout=3.0: False)
    with pytest.raises(datasets.DatasetUnavailable, match="prefetch --datasets nsmc"):
        text_data.load_download("nsmc")(per_class=5, val_per_class=5, seed=0)
    # a pre-filled cache loads with no network: NSMC's own file layout
    (tmp_path / "nsmc").mkdir()
    for name, n in (("ratings_train.txt", 12), ("ratings_test.txt", 6)):
        body = "".join(f"{i}\t리뷰 {i}\t{i % 2}\n" for i in range(n))
        (tmp_path / "nsmc" / name).write_text("id\tdocument\tlabel\n" + body, encoding="utf-8")
    data = text_data.load_download("nsmc")(per_class=4, val_per_class=2, seed=0)
    assert data.classes == ["negative", "positive"] and len(data.train_texts) == 8 and len(data.val_texts) == 4


@pytest.mark.fast
def test_the_masked_word_box_is_bounded_before_any_model_runs():
    from tlcore.core.messages import LearnerError
    from tlcore.text.fill_mask import MAX_CHARS, MAX_MASKS, fill_mask

    class NoModel:  # nothing may run: the limits are checked first
        def parameters(self):
            raise AssertionError("the model ran")

    with pytest.raises(LearnerError, match="at most") as long:
        fill_mask(NoModel(), None, "word " * MAX_CHARS)
    assert long.value.message.key == "mask.too_long"
    with pytest.raises(LearnerError) as many:
        fill_mask(NoModel(), None, "[MASK] " * (MAX_MASKS + 1))
    assert many.value.message.key == "mask.too_many"


@pytest.mark.fast
def test_a_csv_field_over_the_csv_limit_is_explained():
    from tlcore.text.sentences import parse_text_csv

    huge = b'text,label\n"' + b"a" * 200_000 + b'",pos\nnice,neg\n'
    with pytest.raises(ValueError, match="longer than 128 KB.*unclosed quote") as refused:
        parse_text_csv(huge, name="reviews.csv")
    assert refused.value.message.key == "csv.field_too_large"  # told in Korean too (engine.csv.*)


@pytest.mark.parametrize(
    "name",
    [n if n in ("studio_bert", "minilm_l6") else pytest.param(n, marks=pytest.mark.fast) for n in catalog.backbone_names("text")],
)
def test_freeze_contract_for_every_registered_text_backbone(name, tiny_dirs, sample):
    """Every registered text backbone freezes as the lesson says. The offline MiniLM is tested
    with its real weights; a hub model (not on this offline machine) through a tiny random
    model of its architecture family, built by the same code."""
    spec = catalog.backbone(name)
    family = "distilbert" if "distilbert" in spec.extra.get("hub_id", "") else "bert"
    source = name if catalog.weights_cached(name) else tiny_dirs[family]
    model = models.build_text_model(source, 2, pretrained=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plan = strategies.partial(model.group_names, lr=1e-3, head_lr_mult=10.0, freeze_depth=2)
    small = text_data.TextData(sample.classes, sample.train_texts[:8], sample.train_y[:8], sample.val_texts[:4], sample.val_y[:4])
    fit_text(model, plan, small, epochs=1, cache=False)
    for group, module in model.groups.items():
        changed = any(not torch.equal(p, before[f"groups.{group}.{n}"]) for n, p in module.named_parameters())
        assert changed == (group not in plan.frozen), (name, group)
