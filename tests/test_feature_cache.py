"""Frozen-prefix features kept between runs (tlcore.data.feature_cache).

Contracts: a second run with the same frozen weights on the same examples reuses the first
run's features and trains to the very same result; anything the features depend on (the
examples, the prefix's weights, its depth) makes a new entry; the cache stays within its bytes.
"""

from __future__ import annotations

import pytest
import torch

from tlcore.data import feature_cache
from tlcore.train.config import RunConfig
from tlcore.train.recipe import load_run_data, run

pytestmark = pytest.mark.usefixtures("no_warm_up")  # the hit counts are this module's runs' alone

BASE = RunConfig(
    backbone="efficientnet_lite0",
    dataset="digits",
    strategy="partial",
    freeze_depth=3,
    per_class=4,
    val_per_class=2,
    image_size=32,
    epochs=1,
    batch_size=20,
    seed=0,
)


def _run(config):
    result = run(config, lambda e: None, data=load_run_data(config))
    assert result is not None
    return result


def test_a_second_run_on_the_same_frozen_prefix_reuses_its_features_and_trains_the_same():
    feature_cache.shared.clear()
    first = _run(BASE)
    assert (feature_cache.shared.hits, feature_cache.shared.misses) == (0, 1)
    second = _run(BASE.replace(lr=BASE.lr))  # another learner, the same settings
    assert (feature_cache.shared.hits, feature_cache.shared.misses) == (1, 1)
    assert second.predictions == first.predictions and second.val_loss == first.val_loss
    assert second.cached_depth == 3


def test_other_examples_or_another_depth_never_get_someone_elses_features():
    feature_cache.shared.clear()
    _run(BASE)
    _run(BASE.replace(seed=1))  # another sample of the digits
    _run(BASE.replace(freeze_depth=2))
    _run(BASE.replace(strategy="linear_probe"))  # the whole body frozen: a deeper prefix
    assert (feature_cache.shared.hits, feature_cache.shared.misses) == (0, 4)


@pytest.mark.fast
def test_the_digest_follows_the_weights_not_the_names():
    from tlcore.models import catalog

    a = catalog.build_model("efficientnet_lite0", 10, pretrained=True, image_size=32)
    b = catalog.build_model("efficientnet_lite0", 10, pretrained=True, image_size=32)
    assert feature_cache.prefix_digest(a, 3) == feature_cache.prefix_digest(b, 3)
    with torch.no_grad():
        next(b.groups["stage2"].parameters()).add_(1e-3)
    assert feature_cache.prefix_digest(a, 2) == feature_cache.prefix_digest(b, 2)  # stage2 is not in a depth-2 prefix
    assert feature_cache.prefix_digest(a, 3) != feature_cache.prefix_digest(b, 3)
    b.groups["stage1"].eval()
    bn = next(m for m in b.groups["stage1"].modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean.add_(1.0)  # BatchNorm statistics count too
    assert feature_cache.prefix_digest(a, 2) != feature_cache.prefix_digest(b, 2)


@pytest.mark.fast
def test_the_cache_keeps_within_its_bytes_dropping_the_least_recently_used():
    from tlcore.core.bounded import LRU, tensor_bytes

    cache = LRU(3 * 4000, weigh=tensor_bytes)  # feature_cache.shared's shape
    one = lambda: (torch.zeros(1000),)  # noqa: E731 -- 4000 bytes each
    cache.put("a", one())
    cache.put("b", one())
    cache.put("c", one())
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("d", one())
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("d") is not None
    assert cache.total <= cache.limit
    cache.put("huge", (torch.zeros(10_000),))  # larger than the whole budget: not kept, nothing dropped
    assert cache.get("huge") is None and cache.get("c") is not None


def test_a_text_linear_probe_reuses_the_encoders_sentence_features(tmp_path):
    from tests.helpers.text_tiny import save_tiny_model

    model_dir = str(save_tiny_model(tmp_path / "bert", family="bert"))
    config = RunConfig(
        task="text",
        backbone=model_dir,
        dataset="sentiment_en",
        strategy="linear_probe",
        per_class=12,
        val_per_class=4,
        epochs=1,
        batch_size=8,
        lr=1e-2,
        device="cpu",
    )
    feature_cache.shared.clear()
    first, second = _run(config), _run(config)
    assert (feature_cache.shared.hits, feature_cache.shared.misses) == (1, 1)
    assert second.predictions == first.predictions and second.cached_depth == first.cached_depth > 0
    _run(config.replace(seed=1))  # other sentences: computed anew
    assert feature_cache.shared.misses == 2


def test_on_a_cpu_the_prefix_is_computed_a_bounded_number_of_pixels_at_a_time(monkeypatch):
    """Issue 29 (the server's peak memory): 256 images at 96 px through Lite0 at once held about
    800 MB of activations; on a CPU a pass takes at most CPU_PREFIX_PIXELS, and the features are
    the same as those of one big pass."""
    from tlcore.data import datasets
    from tlcore.models import catalog
    from tlcore.train import image_batches

    feature_cache.shared.clear()
    n, size = 50, 48
    data = datasets.ImageData(
        ["a", "b"],
        torch.randint(0, 255, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)),
        torch.arange(n) % 2,
        torch.randint(0, 255, (10, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)),
        torch.arange(10) % 2,
    )
    model = catalog.build_model("efficientnet_lite0", 2, pretrained=False, image_size=size).eval()
    passes = []
    forward_to = model.forward_to
    monkeypatch.setattr(model, "forward_to", lambda x, depth: (passes.append(len(x)), forward_to(x, depth))[1])
    monkeypatch.setattr(image_batches, "CPU_PREFIX_PIXELS", 16 * size * size)
    chunked = image_batches.TensorSource(data, torch.device("cpu"), augment="none")
    assert chunked.prepare(model, 3, 64, lambda: torch.no_grad()) == 3
    assert passes[1:] == [16, 16, 16, 2, 10]  # (the first: a one-image probe of the features' size)
    feature_cache.shared.clear()
    monkeypatch.setattr(image_batches, "CPU_PREFIX_PIXELS", 1_000 * size * size)
    passes.clear()
    whole = image_batches.TensorSource(data, torch.device("cpu"), augment="none")
    whole.prepare(model, 3, 64, lambda: torch.no_grad())
    assert passes[1:] == [50, 10]
    torch.testing.assert_close(chunked.train_x, whole.train_x)
    torch.testing.assert_close(chunked.val_x, whole.val_x)
