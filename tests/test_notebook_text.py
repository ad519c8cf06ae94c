"""The take-home notebook of a text run (tlcore.takehome.notebook_text): the run again in plain
PyTorch + transformers (+ peft for LoRA).

Contracts: executed headless (nbclient, a real Jupyter kernel) it trains a tiny BERT run, draws
its curves and reaches the studio's accuracy and validation loss on the same seed; run in this
process it is the studio's run bit for bit (the same validation loss every epoch, exactly):
the sentences and their order, the tokens and padding, the head's (and LoRA's) random start,
dropout, the batch order, the freeze, the learning rates and their schedule, and a linear
probe's features computed once all match, for BERT's head and DistilBERT's; it evaluates the
downloaded weights (LoRA's adapters too) to the studio's accuracy; it explains in Korean with
the same code; a run it cannot carry is refused in words; the CLI writes it beside a saved model.
"""

from __future__ import annotations

import json
from dataclasses import replace

import nbformat
import pytest

from tests.test_notebook import _cells_of, _run_in_process
from tlcore import cli
from tlcore.core.events import EvalEvent
from tlcore.core.messages import LearnerError
from tlcore.takehome import model_files, notebook, notebook_cells, notebook_text
from tlcore.takehome.record import RunMetrics, TakeHome
from tlcore.train.config import RunConfig
from tlcore.train.recipe import load_run_data, run


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    """The tiny saved BERT and DistilBERT (random weights, real loading code), once per module."""
    from tests.helpers.text_tiny import save_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    return {family: str(save_tiny_model(root / family, family=family)) for family in ("bert", "distilbert")}


def _tiny(model_dir: str, strategy: str = "full") -> RunConfig:
    """Tiny but real: 24 training and 12 validation sentences, 2 epochs of 3 steps. fp32: the same
    arithmetic on any CPU (auto picks bf16 on some)."""
    return RunConfig(
        task="text",
        backbone=model_dir,
        dataset="sentiment_en",
        strategy=strategy,
        freeze_depth=1,
        per_class=12,
        val_per_class=6,
        epochs=2,
        batch_size=8,
        lr=3e-3,
        head_lr_mult=3.0,
        lora_r=4,
        max_length=32,
        precision="fp32",
        seed=3,
        device="cpu",
        log_every=1,
    )


def _studio(config: RunConfig):
    """The app's own run: its result, its EvalEvents, the kept model and the download's record."""
    events = []
    result = run(config, events.append)
    assert result is not None, events[-1]
    entry = result.model.on_cpu()
    return result, [e for e in events if isinstance(e, EvalEvent)], entry, TakeHome.of(entry, result)


@pytest.fixture(scope="module")
def studio_run(model_dirs):
    return _studio(_tiny(model_dirs["bert"]))


@pytest.fixture(autouse=True)
def _quiet_transformers_restored():
    """The notebook silences transformers' logging and progress bars; put them back for other tests."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    yield
    logging.set_verbosity(level)
    logging.enable_progress_bar()


def _cells(nb, **settings) -> list[str]:
    """The notebook's code, with settings changed in its settings cell and its plot left out."""
    return _cells_of([c.source for c in nb.cells if c.cell_type == "code" and "if history:" not in c.source], **settings)


@pytest.mark.slow  # a Jupyter kernel importing torch and transformers: about 15 s
def test_the_notebook_runs_headless_and_reaches_the_studios_accuracy(studio_run, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv("MPLBACKEND", raising=False)  # as in tests/test_notebook.py: a learner's Jupyter has none
    result, _, _, record = studio_run
    nb = notebook.build(record, lang="en")
    nbformat.validate(nb)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {tag: cell.outputs for cell in nb.cells for tag in cell.metadata.get("tags", [])}
    found = json.loads(outputs["result"][0]["text"])
    # Measured: 50.0% both and the same loss to the last digit (the tiny random BERT learns nothing
    # in 6 steps; what is compared is the arithmetic). One sentence of 12 is what a kernel on other
    # threads could move; the loss would show any real difference long before.
    assert found["val_examples"] == 12
    assert abs(found["val_acc"] - result.val_acc) <= 1 / 12, (found, result.val_acc)
    assert found["val_loss"] == pytest.approx(result.val_loss, abs=1e-5)
    texts = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "24 training and 12 validation sentences of 2 classes" in texts
    assert "frozen at the start: nothing" in texts and "epoch 2:" in texts
    assert any("image/png" in o.get("data", {}) for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs)


@pytest.mark.parametrize(
    "family, strategy",
    [
        ("bert", "full"),
        ("bert", "linear_probe"),
        pytest.param("distilbert", "linear_probe", marks=pytest.mark.fast),
        ("bert", "gradual"),
        ("bert", "full_llrd"),
    ],
)
def test_in_process_it_is_the_studios_run_bit_for_bit(model_dirs, family, strategy):
    config = _tiny(model_dirs[family], strategy)
    result, evals, _, record = _studio(config)
    scope = _run_in_process(_cells(notebook.build(record)))
    history = scope["history"]
    # Exactly: the same operations on the same numbers in the same order (one kernel, one thread count).
    assert history["val/loss"] == [e.val_loss for e in evals]
    assert history["val/acc"] == pytest.approx([e.val_acc for e in evals], abs=1e-6)  # the studio's is a float32
    data = load_run_data(config)  # the sentences it carries are the studio's, in the studio's order
    assert [t for _, t in scope["train_sentences"]] == data.train_texts
    assert [t for _, t in scope["val_sentences"]] == data.val_texts
    assert scope["train_y"].tolist() == data.train_y.tolist()
    assert scope["FEATURES_ONCE"] == (strategy == "linear_probe")  # the studio's feature cache, computed once
    assert scope["GROUPS"] == list(record.groups) == ["embeddings", "layer0", "layer1", "head"]
    norms = history["grad_norm/head"]
    assert len(norms) == 6 and all(n > 0 for n in norms)  # a trained group: a norm every step
    if strategy == "linear_probe":
        assert all(n != n for n in history["grad_norm/embeddings"])  # a frozen group: none (NaN), not zero


@pytest.mark.parametrize("family", ["bert", "distilbert"])
def test_lora_adapters_are_the_studios_too(model_dirs, family, tmp_path):
    pytest.importorskip("peft")
    result, evals, entry, record = _studio(_tiny(model_dirs[family], "lora"))
    scope = _run_in_process(_cells(notebook.build(record)))
    assert scope["history"]["val/loss"] == [e.val_loss for e in evals]
    assert scope["GROUPS"] == ["pretrained", "layer0", "layer1", "head"]
    assert all(n != n for n in scope["history"]["grad_norm/pretrained"])  # the pretrained weights never train
    assert all(n > 0 for n in scope["history"]["grad_norm/layer1"])  # the adapters do
    assert scope["trainable"] == result.trainable_params and scope["total"] == result.total_params
    # the downloaded weights, adapters included, load by name into the notebook's model
    model_files.save(entry, tmp_path, parts=("weights",))
    scope = _run_in_process(
        _cells(notebook.build(record), USE_EXPORTED_WEIGHTS=True, WEIGHTS=str(tmp_path / "model.safetensors"))
    )
    assert scope["history"] is None and scope["val_acc"] == pytest.approx(result.val_acc, abs=1e-6)


def test_it_evaluates_the_downloaded_weights_to_the_studios_accuracy(studio_run, tmp_path):
    result, _, entry, record = studio_run
    model_files.save(entry, tmp_path, parts=("weights",))
    scope = _run_in_process(
        _cells(notebook.build(record), USE_EXPORTED_WEIGHTS=True, WEIGHTS=str(tmp_path / "model.safetensors"))
    )
    assert scope["history"] is None  # nothing trained
    assert scope["val_acc"] == pytest.approx(result.val_acc, abs=1e-6)
    assert scope["val_loss"] == pytest.approx(result.val_loss, abs=1e-6)


@pytest.mark.fast
def test_a_korean_learner_gets_the_explanations_in_korean_and_the_same_code(studio_run):
    result, _, _, record = studio_run
    en, ko = (notebook.build(record, lang=lang) for lang in ("en", "ko"))
    assert [c.source for c in en.cells if c.cell_type == "code"] == [c.source for c in ko.cells if c.cell_type == "code"]
    korean = [c.source for c in ko.cells if c.cell_type == "markdown"]
    assert len(korean) == len([c for c in en.cells if c.cell_type == "markdown"]) == 10
    assert all(any("\uac00" <= ch <= "\ud7a3" for ch in md) for md in korean)
    assert "$" not in "".join(korean)  # every placeholder filled
    assert f"{result.val_acc:.1%}" in korean[0] and "sentiment_en" in korean[0]
    assert "24" in korean[2] and "layer0, layer1" in korean[4]


@pytest.mark.fast
def test_the_text_lessons_have_the_same_sections_in_both_languages():
    assert list(notebook_cells.sections("en", "notebook_text")) == list(notebook_cells.sections("ko", "notebook_text"))


@pytest.mark.fast
def test_a_text_run_it_cannot_carry_is_refused_in_words(studio_run, tmp_path):
    record = studio_run[3]
    assert notebook.supported(record)  # what the download offers the button by (studio.takehome)
    many = replace(record, config=record.config.replace(per_class=5000), metrics=RunMetrics())
    gone = replace(record, config=record.config.replace(dataset="text_csv", data_root=str(tmp_path / "deleted.csv")))
    for refused, key in ((many, "notebook.text_too_big"), (gone, "notebook.text_data_gone")):
        assert not notebook.supported(refused)
        with pytest.raises(LearnerError) as caught:
            notebook.build(refused)
        assert caught.value.message.key == key
    with pytest.raises(LearnerError, match=f"at most {notebook_text.MAX_SENTENCES}"):
        notebook.require_supported(many)


@pytest.mark.fast
def test_the_cli_writes_a_text_runs_notebook_beside_its_saved_model(studio_run, tmp_path):
    result, _, entry, _ = studio_run
    model_files.save(entry, tmp_path, parts=("weights",), metrics=result)
    assert cli.main(["notebook", "--model", str(tmp_path), "--lang", "ko"]) == 0
    nb = nbformat.read(tmp_path / notebook.NAME, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.tlcore["task"] == "text" and nb.metadata.tlcore["lang"] == "ko"
    assert f"STUDIO_VAL_ACC = {result.val_acc!r}" in nb.cells[3].source
