"""Contracts a teacher relies on: frozen means frozen, counts are right, events are in order."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tlcore import cli
from tlcore.core import metrics, offline
from tlcore.core.events import Cancelled, Done, EvalEvent, Failed, History, Started
from tlcore.data import datasets
from tlcore.models import backbones, catalog
from tlcore.train import image_batches, recipe, strategies, trainer
from tlcore.train.config import RunConfig

VISION = catalog.backbone_names("vision")
SMALL_VISION = ("studio_resnet", "efficientnet_lite0", "mobilenet_v3_large", "resnet18")  # built in the fast tier's time


def tiny_data(classes=3, per_class=8, size=32, seed=0) -> datasets.ImageData:
    """Separable coloured squares: class c is mostly channel c."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        y = torch.arange(classes).repeat_interleave(n)
        x = torch.randint(0, 80, (len(y), 3, size, size), generator=g, dtype=torch.uint8)
        x[torch.arange(len(y)), y % 3] += 150
        return x, y

    tx, ty = make(per_class)
    vx, vy = make(4)
    return datasets.ImageData([f"c{i}" for i in range(classes)], tx, ty, vx, vy)


def fit_plan(model, plan, data, epochs=2, **kw):
    history = History()
    source = image_batches.TensorSource(data, torch.device("cpu"), kw.pop("augment", "flip"))
    opts = trainer.FitOptions(epochs=epochs, batch_size=8, log_every=1, **kw)
    result = trainer.fit(model, plan, source, opts, device=torch.device("cpu"), emit=history.append, classes=tuple(data.classes))
    return history.snapshot(), result


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.fast) if n in SMALL_VISION else n for n in VISION])
def test_every_vision_backbone_gives_batch_by_classes(name):
    size = 32
    model = catalog.build_model(name, 7, pretrained=False, image_size=size).eval()
    with torch.no_grad():
        out = model(torch.randint(0, 255, (2, 3, size, size), dtype=torch.uint8))
    assert out.shape == (2, 7)
    counts = model.param_counts()
    assert list(counts) == model.group_names and model.group_names[-1] == "head"
    assert len(counts) >= 4 and all(n > 0 for n in counts.values())
    assert sum(counts.values()) == sum(p.numel() for p in model.parameters())
    # splitting at any group boundary gives the same logits as the whole network
    with torch.no_grad():
        x = torch.rand(2, 3, size, size)
        k = len(counts) // 2
        assert torch.allclose(model.forward_from(model.forward_to(x, k), k), model(x), atol=1e-4)


@pytest.mark.fast
def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="twice"):
        catalog.BACKBONES.register(catalog.backbone("resnet18"))
    with pytest.raises(ValueError, match="unknown backbone"):
        catalog.backbone("resnet19")
    with pytest.raises(ValueError, match="twice"):
        catalog.DATASETS.register(catalog.dataset("digits"))


@pytest.mark.parametrize("depth", [0, 2, pytest.param(4, marks=pytest.mark.fast), pytest.param(5, marks=pytest.mark.fast)])
def test_partial_freeze_contract(depth):
    """Frozen groups (weights and BN statistics) do not move; every trainable group does."""
    torch.manual_seed(0)
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = strategies.partial(model.group_names, lr=1e-2, head_lr_mult=1.0, freeze_depth=depth)
    snap, result = fit_plan(model, plan, tiny_data())
    frozen = model.group_names[:depth]
    for key, value in model.state_dict().items():
        group = key.split(".")[1]
        if key.endswith("num_batches_tracked"):
            continue
        if group in frozen:
            assert torch.equal(value, before[key]), f"{key} moved although {group} is frozen"
    for group in model.group_names[depth:]:
        weights = [k for k in before if k.startswith(f"groups.{group}.") and k.endswith("weight")]
        assert any(not torch.equal(model.state_dict()[k], before[k]) for k in weights), f"{group} did not train"
    trainable = sum(n for g, n in model.param_counts().items() if g not in frozen)
    assert snap.started.trainable_params == result.trainable_params == trainable
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.fast
def test_bn_trap_switch_lets_frozen_statistics_drift():
    torch.manual_seed(0)
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=32)
    stem_mean = model.groups["stem"][1].running_mean.clone()
    plan = strategies.linear_probe(model.group_names, lr=1e-2, head_lr_mult=1.0)
    fit_plan(model, plan, tiny_data(), bn_frozen_eval=False)
    assert not torch.equal(model.groups["stem"][1].running_mean, stem_mean)
    assert not model.groups["stem"][1].weight.requires_grad  # the weights stayed frozen all along


@pytest.mark.fast
def test_grad_norms_present_for_trainable_absent_for_frozen_and_events_in_order():
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=32)
    plan = strategies.partial(model.group_names, lr=1e-2, head_lr_mult=1.0, freeze_depth=3)
    snap, result = fit_plan(model, plan, tiny_data(), epochs=2)
    kinds = [type(e) for e in snap.events]
    assert kinds[0] is Started
    assert EvalEvent in kinds
    steps = snap.steps
    assert [s.step for s in steps] == list(range(1, len(steps) + 1))
    assert all(set(s.grad_norms) == {"stage3", "stage4", "head"} for s in steps)
    assert all(v > 0 and v == v for s in steps for v in s.grad_norms.values())
    assert all(set(s.frozen) == {"stem", "stage1", "stage2"} for s in steps)
    evals = snap.evals
    assert [e.epoch for e in evals] == [1, 2]
    assert all(evals[0].step <= s.step for s in steps if s.epoch == 2)
    assert result.cached_depth == 3  # the frozen prefix ran once, not every epoch
    # throughput of the trained part, the median epoch (what the race table compares)
    rates = sorted(e.examples_per_s for e in evals)
    assert result.train_per_s == pytest.approx((rates[0] + rates[1]) / 2)
    df = snap.to_dataframe()
    assert {"train/loss", "val/loss", "val/acc", "lr", "grad_norm/head"} <= set(df.columns)
    assert "grad_norm/stem" not in df.columns


def test_gradual_unfreezing_unfreezes_one_group_per_epoch():
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=32)
    plan = strategies.gradual(model.group_names, lr=1e-2, head_lr_mult=1.0)
    snap, _ = fit_plan(model, plan, tiny_data(), epochs=3)
    by_epoch = {s.epoch: set(s.grad_norms) for s in snap.steps}
    assert by_epoch[1] == {"head"} and by_epoch[2] == {"stage4", "head"} and by_epoch[3] == {"stage3", "stage4", "head"}


@pytest.mark.fast
def test_layerwise_decay_rates_shrink_towards_the_input():
    plan = strategies.full_llrd(["stem", "s1", "s2", "head"], lr=1.0, head_lr_mult=10.0, layer_decay=0.5)
    assert plan.lrs == {"stem": 0.25, "s1": 0.5, "s2": 1.0, "head": 10.0}


@pytest.mark.fast
def test_cancel_stops_within_one_step():
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=32)
    plan = strategies.full(model.group_names, lr=1e-2, head_lr_mult=1.0)
    history, calls = History(), {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 3

    source = image_batches.TensorSource(tiny_data(per_class=40), torch.device("cpu"))
    result = trainer.fit(
        model,
        plan,
        source,
        trainer.FitOptions(epochs=5, batch_size=8, log_every=1),
        device=torch.device("cpu"),
        emit=history.append,
        should_stop=should_stop,
    )
    snap = history.snapshot()
    assert result is None and isinstance(snap.final, Cancelled)
    assert snap.final.step == 3 and len(snap.steps) == 3


def test_tiny_fit_on_real_digits_beats_stated_accuracy():
    """Scratch on scikit-learn's digits at 16 px, 30 per class, 8 epochs: well above chance (10%)."""
    history = History()
    cfg = RunConfig(
        backbone="studio_resnet",
        dataset="digits",
        strategy="scratch",
        pretrained="no",
        per_class=30,
        val_per_class=20,
        image_size=16,
        epochs=8,
        batch_size=32,
        lr=3e-3,
        seed=0,
    )
    result = recipe.run(cfg, history.append)
    assert result is not None, history.snapshot().final
    assert result.val_acc >= 0.7
    assert isinstance(history.snapshot().final, Done)
    assert sum(map(sum, result.confusion)) == 200


def test_same_seed_same_run():
    cfg = RunConfig(
        backbone="studio_resnet",
        dataset="digits",
        strategy="full",
        pretrained="no",
        per_class=5,
        val_per_class=5,
        image_size=16,
        epochs=1,
        batch_size=16,
    )
    a, b = recipe.run(cfg, lambda e: None), recipe.run(cfg, lambda e: None)
    assert a.predictions == b.predictions and a.val_loss == pytest.approx(b.val_loss, rel=1e-5)


@pytest.mark.fast
def test_lr_schedule_warms_up_then_decays():
    f = [trainer.lr_factor(s, 100, 10) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[9:], f[10:])) and f[-1] < 0.01


@pytest.mark.fast
@pytest.mark.parametrize(
    "sim,size,strategy",
    [
        ("similar", "small", "linear_probe"),
        ("similar", "large", "partial"),
        ("different", "small", "partial"),
        ("different", "large", "full"),
    ],
)
def test_matrix_recommendations(sim, size, strategy):
    rec = strategies.recommend(sim, size, num_groups=6)
    assert rec.strategy == strategy
    assert rec.reason_en and rec.reason_ko and rec.reason_en != rec.reason_ko
    frozen = {"linear_probe": 5, "full": 0}.get(strategy)
    if frozen is not None:
        assert rec.freeze_depth == frozen
    # the more similar and the smaller, the more is frozen
    depth = {(s, z): strategies.recommend(s, z).freeze_depth for s in ("similar", "different") for z in ("small", "large")}
    assert (
        depth[("similar", "small")] > depth[("similar", "large")] >= depth[("different", "small")] > depth[("different", "large")]
    )
    with pytest.raises(ValueError):
        strategies.recommend("alike", "small")


@pytest.mark.fast
def test_trainable_readout():
    assert str(metrics.Trainable(1_200_000, 11_200_000)) == "trainable: 1.2M of 11.2M (10.7%)"
    assert metrics.Trainable(66_000, 110_000_000).values()["percent"] == "0.06"  # LoRA-sized shares keep two decimals


@pytest.mark.fast
def test_config_validates_and_round_trips():
    cfg = RunConfig(backbone="studio_resnet", strategy="full", lr=3e-4, epochs=5)
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert "--strategy full" in cfg.to_cli() and "--epochs 5" in cfg.to_cli()
    default_cli = RunConfig().to_cli()  # what a learner must not have to guess, even at the defaults
    for flag in ("--backbone", "--dataset", "--strategy", "--freeze-depth", "--epochs", "--per-class"):
        assert flag in default_cli
    for bad, match in [
        ({"lr": 0.0}, "lr must be between"),
        ({"epochs": 0}, "epochs"),
        ({"strategy": "freeze"}, "strategy must be one of"),
        ({"backbone": "nope"}, "unknown backbone"),
        ({"dataset": "nope"}, "unknown dataset"),
        ({"per_class": 2.5}, "whole number"),
    ]:
        with pytest.raises(ValueError, match=match):
            RunConfig(**bad)
    with pytest.raises(ValueError, match="unknown setting"):
        RunConfig.from_dict({"lr": 0.1, "speed": 3})


@pytest.mark.fast
def test_run_reports_bad_freeze_depth_as_failed_event():
    history = History()
    cfg = RunConfig(
        backbone="studio_resnet", strategy="partial", freeze_depth=9, pretrained="no", per_class=2, val_per_class=2, image_size=16
    )
    assert recipe.run(cfg, history.append) is None
    final = history.snapshot().final
    assert isinstance(final, Failed) and "freeze depth must be 0..5" in final.message


# ----------------------------------------------------------------------------- weights and data


def test_imagenet_weights_load_from_a_prefilled_cache_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(offline, "reachable", lambda *a, **k: pytest.fail("must not touch the network"))
    import torchvision

    reference = torchvision.models.resnet18(weights=None)
    path = backbones.weights_path(catalog.backbone("resnet18"))
    assert path.name == "resnet18-f37072fd.pth" and str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), path)
    assert catalog.weights_cached("resnet18")
    model = catalog.build_model("resnet18", 4, pretrained=True, image_size=32)
    assert torch.equal(model.groups["stage2"][0].conv1.weight, reference.layer2[0].conv1.weight)
    assert model.pretrained_from.startswith("ImageNet")


@pytest.mark.fast
def test_missing_weights_offline_give_one_clear_line_and_a_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(offline, "reachable", lambda *a, **k: False)
    with pytest.raises(backbones.WeightsUnavailable, match="prefetch --backbones resnet50"):
        catalog.build_model("resnet50", 4, pretrained=True, image_size=32)
    name, pretrained, note = catalog.resolve_pretrained("resnet50", "auto")
    if catalog.weights_cached(catalog.offline_default()):
        assert (
            (name, pretrained) == (catalog.offline_default(), True)
            and "offline backbone" in str(note)
            and note.key == "weights.fallback"
        )
    else:
        assert (name, pretrained) == ("resnet50", False) and "random init" in str(note)
    with pytest.raises(backbones.WeightsUnavailable):
        catalog.resolve_pretrained("resnet50", "yes")
    # what the caller knows of the network replaces the probe (the app probes once per session)
    monkeypatch.setattr(offline, "reachable", lambda *a, **k: pytest.fail("the caller said it is offline"))
    assert catalog.resolve_pretrained("resnet50", "auto", online=False)[:2] == (name, pretrained)
    assert catalog.resolve_pretrained("resnet50", "auto", online=True)[:2] == ("resnet50", True)


@pytest.mark.fast
def test_torchvision_dataset_from_a_prefilled_cache(tmp_path, monkeypatch):
    """FashionMNIST's real loader reads idx files we write; no download is attempted."""
    import numpy as np

    monkeypatch.setattr(offline, "reachable", lambda *a, **k: pytest.fail("no network"))
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 10)):
        images = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(np.array([2051, n, 28, 28], dtype=">i4").tobytes() + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([2049, n], dtype=">i4").tobytes() + labels.tobytes())
    data = catalog.dataset("fashion_mnist").load(per_class=3, val_per_class=2, image_size=32, seed=0, root=str(tmp_path))
    assert data.num_classes == 10 and data.train_x.shape == (30, 3, 32, 32) and data.val_x.shape == (20, 3, 32, 32)
    assert data.train_x.dtype == torch.uint8


@pytest.mark.fast
def test_offline_datasets_split_per_class_with_a_seed():
    a = catalog.load_dataset("digits", per_class=5, val_per_class=10, image_size=24, seed=1)
    b = catalog.load_dataset("digits", per_class=50, val_per_class=10, image_size=24, seed=1)
    assert a.train_x.shape == (50, 3, 24, 24) and a.val_x.shape == (100, 3, 24, 24)
    assert torch.equal(a.val_x, b.val_x)  # the test set does not change with the training size
    assert torch.bincount(a.train_y).tolist() == [5] * 10
    assert set(catalog.dataset_names(kind="offline", task="image")) >= {"digits", "synthetic_novel", "digits_textured"}
    sims = {catalog.similarity(n, "synthetic") for n in catalog.dataset_names(kind="offline", task="image")}
    assert sims == {"similar", "different"}


def _png(path, color):
    from PIL import Image

    Image.new("RGB", (12, 10), color).save(path)


@pytest.mark.fast
def test_image_folder_skips_corrupt_and_non_image_files(tmp_path):
    for cls, color in (("cat", (200, 0, 0)), ("고양이", (0, 200, 0))):
        (tmp_path / cls).mkdir()
        for i in range(4):
            _png(tmp_path / cls / f"{i}.png", color)
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "cat" / "notes.txt").write_text("hello")
    data = datasets.load_folder(per_class=10, val_per_class=1, image_size=16, seed=0, root=tmp_path)
    assert data.classes == ["cat", "고양이"] and len(data.train_y) + len(data.val_y) == 8
    reasons = dict((p.split("/")[-1], r) for p, r in data.skipped)
    assert "not an image in an accepted format" in reasons["broken.png"] and "not an image" in reasons["notes.txt"]


@pytest.mark.fast
def test_image_folder_refuses_empty_class_and_single_class(tmp_path):
    (tmp_path / "a").mkdir()
    _png(tmp_path / "a" / "1.png", (1, 2, 3))
    _png(tmp_path / "a" / "2.png", (1, 2, 3))
    with pytest.raises(ValueError, match="at least two classes"):
        datasets.load_folder(per_class=5, val_per_class=1, image_size=16, seed=0, root=tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.txt").write_text("no images here")
    with pytest.raises(ValueError, match="hold no usable images: b"):
        datasets.load_folder(per_class=5, val_per_class=1, image_size=16, seed=0, root=tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        datasets.load_folder(per_class=5, val_per_class=1, image_size=16, seed=0, root=tmp_path / "nope")


# ----------------------------------------------------------------------------- CLI and boundaries


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tlcore", *args], capture_output=True, text=True, timeout=timeout)


def test_cli_finetune_smoke_and_outputs(tmp_path):
    out = _cli(
        "finetune",
        "--backbone",
        "studio_resnet",
        "--dataset",
        "digits",
        "--per-class",
        "3",
        "--val-per-class",
        "3",
        "--image-size",
        "16",
        "--epochs",
        "1",
        "--pretrained",
        "no",
        "--strategy",
        "full",
        "--out",
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    assert "val/acc" in out.stdout
    assert {"history.csv", "history.json", "config.json"} <= {p.name for p in tmp_path.iterdir()}
    assert RunConfig.from_json((tmp_path / "config.json").read_text()).strategy == "full"


def test_cli_bad_values_give_clear_errors(capsys):
    # Through the real entry point once (exit code, no traceback), then in this process: each
    # `python -m tlcore` costs a few seconds of imports.
    out = _cli("finetune", "--lr", "5")
    assert out.returncode == 2 and "lr must be between" in out.stderr and "Traceback" not in out.stderr

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = cli.main(list(args))
        except SystemExit as done:  # argparse: --help, or a value it refuses itself
            code = done.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, _, err = run("finetune", "--backbone", "resnet19")
    assert code == 2 and "unknown backbone 'resnet19'" in err
    code, _, err = run("compare", "--strategies", "scratch,wild")
    assert code == 2 and "strategy must be one of" in err
    code, helptext, _ = run("finetune", "--help")
    assert code == 0
    for flag in ("--freeze-depth", "--per-class", "--layer-decay", "--bn-frozen-eval"):
        assert flag in helptext


def test_cli_compare_prints_one_row_per_strategy():
    out = _cli(
        "compare",
        "--backbone",
        "studio_resnet",
        "--dataset",
        "digits",
        "--strategies",
        "scratch,linear_probe",
        "--per-class",
        "3",
        "--val-per-class",
        "3",
        "--image-size",
        "16",
        "--epochs",
        "1",
        "--pretrained",
        "no",
    )
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.strip().startswith(("scratch", "linear_probe"))]
    assert len(lines) == 2


def test_no_engine_module_imports_streamlit_or_plotly():
    """Every module under tlcore, read as code (an AST scan): no import of streamlit or plotly
    anywhere, not even inside a function, so the engine runs where the app cannot (a GPU box)."""
    import ast
    from pathlib import Path

    root = Path(trainer.__file__).parents[1]  # tlcore/, every package in it
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.relative_to(root)}:{node.lineno} {n}" for n in names if n.split(".")[0] in ("streamlit", "plotly")
            ]
    assert len(list(root.rglob("*.py"))) > 30  # the scan saw the engine
    assert not offenders, offenders


@pytest.mark.parametrize(
    "first",
    [
        "tlcore.data.datasets",
        "tlcore.models.backbones",
        "tlcore.text.specs",
        "tlcore.text.tasks",
        "tlcore.train.config",
        "tlcore.train.trainer",
        "tlcore.models.catalog",
    ],
)
def test_registries_are_complete_in_a_fresh_process_whatever_is_imported_first(first):
    code = (
        f"import {first}\nfrom tlcore.models import catalog\n"
        "print(len(catalog.backbone_names('vision')), len(catalog.backbone_names('text')),"
        " len(catalog.dataset_names(task='image')), len(catalog.dataset_names(task='text')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    expected = [
        len(catalog.backbone_names("vision")),
        len(catalog.backbone_names("text")),
        len(catalog.dataset_names(task="image")),
        len(catalog.dataset_names(task="text")),
    ]
    assert [int(n) for n in out.stdout.split()] == expected and min(expected) >= 5


def test_bench_times_both_loops_on_the_same_training_images(monkeypatch):
    """Scaled-down benchmark: counted at each model's head, both loops really train on every
    training image once per epoch (a loop that skipped work would look fast)."""
    from tlcore.lab import bench

    seen: list[int] = []  # training examples through the head, one entry per built model
    build = catalog.build_model

    def counting_build(*args, **kwargs):
        model = build(*args, **kwargs)
        seen.append(0)
        slot = len(seen) - 1

        def count(module, inputs):
            if module.training:
                seen[slot] += inputs[0].shape[0]

        model.groups["head"].register_forward_pre_hook(count)
        return model

    monkeypatch.setattr(catalog, "build_model", counting_build)
    rows = bench.bench(
        "studio_resnet", "digits", per_class=4, image_size=16, epochs=2, batch_size=16, device=torch.device("cpu"), workers=0
    )
    assert [r["mode"] for r in rows] == ["full", "linear_probe"]
    for r in rows:
        assert r["train_images"] == 40 and r["val_images"] == 200
        assert r["reference_img_s"] > 0 and r["ours_img_s"] > 0
    assert seen == [80, 80, 80, 80]  # (reference, ours) x (full, linear probe): 40 images x 2 epochs


# ----------------------------------------------------------------------------- rates that reach the optimizer

# The rates each strategy must give each group, written out here from the lesson (not from
# tlcore.train.strategies): base lr L, head multiplier M, layer decay D; groups stem..stage4, head.
L, M, D = 1e-3, 10.0, 0.5
BODY = ["stem", "stage1", "stage2", "stage3", "stage4"]
EXPECTED_RATES = {
    "scratch": {g: L for g in BODY + ["head"]},
    "linear_probe": {"head": L * M},
    "partial": {"stage2": L, "stage3": L, "stage4": L, "head": L * M},  # freeze depth 2
    "full": {g: L for g in BODY} | {"head": L * M},
    "full_llrd": {g: L * D ** (4 - i) for i, g in enumerate(BODY)} | {"head": L * M},
    "gradual": {"head": L * M},  # epoch 1: only the head
}


@pytest.mark.fast
@pytest.mark.parametrize("strategy", sorted(EXPECTED_RATES))
def test_each_groups_learning_rate_reaches_the_optimizer(strategy):
    """Measured on the weights, not read from the plan: Adam's first step moves each weight
    by lr * g / (|g| + eps), i.e. by almost exactly its group's rate wherever the gradient is
    not tiny. A trainer or optimizer that ignored per-group rates moves them all alike."""
    torch.manual_seed(0)
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=16)
    plan = strategies.make_plan(strategy, model.group_names, lr=L, head_lr_mult=M, freeze_depth=2, layer_decay=D)
    before = {g: [p.detach().clone() for p in m.parameters()] for g, m in model.groups.items()}
    data = tiny_data(per_class=2, size=16)  # 6 images, one step of 8
    snap, _ = fit_plan(model, plan, data, epochs=1, weight_decay=0.0, precision="fp32", bn_frozen_eval=True)
    moved = {}
    for g, m in model.groups.items():
        steps = [(p.detach() - p0).abs().max().item() for p, p0 in zip(m.parameters(), before[g])]
        moved[g] = max(steps)
    expected = EXPECTED_RATES[strategy]
    for g in model.group_names:
        if g in expected:
            assert moved[g] == pytest.approx(expected[g], rel=0.02), (g, moved)
        else:
            assert moved[g] == 0.0, (g, "frozen group moved")
    step = snap.steps[0]
    assert step.lr == pytest.approx(L)  # the logged `lr` is the rate the learner set
    assert step.lrs == pytest.approx(expected)  # and every trained group's own rate


@pytest.mark.fast
def test_history_table_has_every_groups_rate():
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=16)
    plan = strategies.make_plan("full_llrd", model.group_names, lr=L, head_lr_mult=M, layer_decay=D)
    snap, _ = fit_plan(model, plan, tiny_data(per_class=2, size=16), epochs=1, precision="fp32")
    table = snap.to_dataframe()
    assert {f"lr/{g}" for g in model.group_names} <= set(table.columns)
    assert table["lr/stem"].dropna().iloc[0] == pytest.approx(L * D**4)


# ----------------------------------------------------------------------------- the command line


@pytest.mark.fast
@pytest.mark.parametrize(
    "config",
    [
        RunConfig(),
        RunConfig(
            strategy="full_llrd",
            layer_decay=0.5,
            lr=3e-4,
            epochs=7,
            seed=3,
            augment="crop_flip",
            bn_frozen_eval=False,
            optimizer="sgd",
            precision="fp32",
            dataset="digits",
            per_class=12,
        ),
        RunConfig(task="text", backbone="minilm_l6", dataset="sentiment_en", strategy="lora", lora_r=4, max_length=48),
        RunConfig(dataset="folder", data_root="/tmp/my photos/cats & dogs", strategy="partial", freeze_depth=0),
    ],
    ids=["defaults", "every-kind-of-setting", "text-lora", "folder-with-spaces"],
)
def test_to_cli_parsed_back_by_the_cli_gives_the_same_config(config):
    import shlex

    from tlcore import cli

    words = shlex.split(config.to_cli())
    assert words[:4] == ["python", "-m", "tlcore", "finetune"]
    args = cli.build_parser().parse_args(words[3:])
    assert cli.config_from_args(args) == config


def readme_commands() -> list[str]:
    """Every `python -m tlcore ...` line of the README's code blocks (continuations joined)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    commands, blocks = [], text.split("```")[1::2]
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("python -m tlcore "):
                commands.append(line)
    return commands


@pytest.mark.fast
def test_every_tlcore_command_in_the_readme_parses():
    """Each README command line parses with the real parser (a wrong flag fails here); '...' stands
    for 'see the command's help' and is checked as `--help`."""
    import shlex

    from tlcore import cli

    commands = readme_commands()
    assert len(commands) >= 10
    parser = cli.build_parser()
    for line in commands:
        words = shlex.split(line)[3:]
        if "..." in words:
            words = words[: words.index("...")] + ["--help"]
        try:
            parser.parse_args(words)
        except SystemExit as e:
            assert e.code == 0 and words[-1] == "--help", f"README line does not parse: {line}"


# ----------------------------------------------------------------------------- contracts of every backbone and batch source


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.fast) if n == "studio_resnet" else n for n in VISION])
def test_freeze_contract_for_every_vision_backbone(name):
    """Tiny inputs, one partial fine-tune: the frozen half (weights and BN statistics) does not
    move, every trained group does, and the count of trainable parameters is the truth."""
    torch.manual_seed(0)
    model = catalog.build_model(name, 3, pretrained=False, image_size=32)
    depth = (len(model.group_names) - 1) // 2
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = strategies.partial(model.group_names, lr=1e-2, head_lr_mult=1.0, freeze_depth=depth)
    snap, result = fit_plan(model, plan, tiny_data(per_class=3), epochs=1, precision="fp32")
    frozen = model.group_names[:depth]
    for key, value in model.state_dict().items():
        if key.split(".")[1] in frozen and not key.endswith("num_batches_tracked"):
            assert torch.equal(value, before[key]), f"{key} moved although frozen"
    for group in model.group_names[depth:]:
        keys = [k for k in before if k.startswith(f"groups.{group}.") and before[k].is_floating_point()]
        assert any(not torch.equal(model.state_dict()[k], before[k]) for k in keys), f"{group} did not train"
    assert result.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.fast
def test_cached_features_with_flips_equal_the_uncached_forward():
    """The frozen prefix run once (and once more on the flipped images) gives exactly the
    features the model computes on the fly, for training images, flipped ones and validation."""
    torch.manual_seed(0)
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=32).eval()
    data = tiny_data(per_class=4)
    source = image_batches.TensorSource(data, torch.device("cpu"), "flip")
    assert source.prepare(model, 3, batch_size=4, autocast=lambda: torch.autocast("cpu", enabled=False)) == 3
    with torch.no_grad():
        assert torch.allclose(source.train_x, model.forward_to(data.train_x, 3), atol=1e-5)
        assert torch.allclose(source.train_flipped, model.forward_to(data.train_x.flip(-1), 3), atol=1e-5)
        assert torch.allclose(source.val_x, model.forward_to(data.val_x, 3), atol=1e-5)
        logits = source.forward(model, source.val_x)
        assert torch.allclose(logits, model(data.val_x), atol=1e-4)  # the suffix on cached features = the whole net
    # a training batch picks, per example, the stored flipped or plain features
    g = torch.Generator().manual_seed(1)
    inputs, targets = next(source.train_batches(1, 6, g))
    plain, flipped = source.train_x, source.train_flipped
    for row, y in zip(inputs, targets):
        assert any(torch.equal(row, c) for c in plain[data.train_y == y]) or any(
            torch.equal(row, c) for c in flipped[data.train_y == y]
        )


@pytest.mark.fast
def test_crop_flip_zooms_and_shifts_each_image_on_the_device():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    x[:, :, 8:24, 8:24] = 200  # a bright square in the middle
    out = image_batches.random_resized_crop(x, g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    bright = (out[:, 0] > 100).flatten(1).sum(1).float()
    assert (bright >= 16 * 16).all()  # a crop of 70..100% zooms in: the square never shrinks
    assert len(set(bright.tolist())) > 1  # each image gets its own crop
    flat = torch.full((2, 3, 16, 16), 77, dtype=torch.uint8)
    assert torch.equal(image_batches.random_resized_crop(flat, g), flat)  # no new colours, no black borders
    same = image_batches.random_resized_crop(x, torch.Generator().manual_seed(5))
    assert torch.equal(same, image_batches.random_resized_crop(x, torch.Generator().manual_seed(5)))  # seeded


@pytest.mark.parametrize("average", [True, False])
def test_short_runs_average_batchnorm_statistics_with_a_switch(average):
    """A 20-step run with BN momentum 0.1 would be evaluated with statistics that still
    remember their start; short runs keep the plain average of this run's batches instead."""
    torch.manual_seed(0)
    model = catalog.build_model("studio_resnet", 3, pretrained=False, image_size=16)
    bn = next(m for m in model.groups["stage4"].modules() if isinstance(m, torch.nn.BatchNorm2d))
    batch_means = []
    bn.register_forward_pre_hook(lambda m, i: batch_means.append(i[0].mean((0, 2, 3)).detach().clone()) if m.training else None)
    plan = strategies.full(model.group_names, lr=1e-3, head_lr_mult=1.0)
    fit_plan(model, plan, tiny_data(per_class=8, size=16), epochs=2, precision="fp32", average_bn_short_runs=average)
    plain_average = torch.stack(batch_means).mean(0)
    assert len(batch_means) == 6  # 24 images, batches of 8, two epochs
    if average:
        assert bn.momentum is None and torch.allclose(bn.running_mean, plain_average, atol=1e-5)
    else:
        assert bn.momentum == 0.1 and not torch.allclose(bn.running_mean, plain_average, atol=1e-3)


@pytest.mark.fast
def test_no_batch_of_one_example_is_made():
    """9 images in batches of 8 once made a last batch of one, which BatchNorm cannot train on
    at 1x1 (EfficientNet-Lite0 at 32 px crashed); the step count stays ceil(n / batch)."""
    for n, batch in [(9, 8), (17, 8), (16, 8), (65, 64), (5, 4)]:
        sizes = [len(b) for b in image_batches.split_batches(torch.randperm(n), batch)]
        assert sum(sizes) == n and len(sizes) == -(-n // batch) and min(sizes) >= 2, (n, batch, sizes)
    order = torch.randperm(9)
    assert torch.equal(torch.cat(image_batches.split_batches(order, 8)), order)  # every example once, in order


@pytest.mark.fast
def test_the_one_freeze_depth_rule():
    """What the widgets write: a strategy's own depth, kept within the body (strategies.depth_for),
    and a depth that really is partial for 'partial' (strategies.partial_depth)."""
    body = 5
    assert strategies.depth_for("linear_probe", 2, body) == body
    assert [strategies.depth_for("partial", d, body) for d in (-1, 0, 3, 5, 9)] == [0, 0, 3, 5, 5]
    assert {strategies.depth_for(s, 3, body) for s in ("scratch", "full", "full_llrd", "gradual", "lora")} == {0}
    assert [strategies.partial_depth(d, body) for d in (0, 1, 4, 5, 7)] == [2, 1, 4, 2, 2]
    assert strategies.partial_depth(0, 1) == 1  # a one-group body still freezes something
    # and a plan never freezes more than the body, whatever depth reaches it
    groups = ["stem", "stage1", "stage2", "head"]
    assert strategies.make_plan("partial", groups, lr=1.0, head_lr_mult=1.0, freeze_depth=9).frozen == (
        "stem",
        "stage1",
        "stage2",
    )
