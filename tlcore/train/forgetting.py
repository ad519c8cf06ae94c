"""Forgetting, measured: does the fine-tuned network still know what it knew?

Fine-tuning replaces an ImageNet backbone's 1000-class head with a new one and (unless the
body is frozen) moves the body's weights. To see what that costs the original task, the
original ImageNet head is kept and put back on top of the fine-tuned body, and both the
pretrained network and the fine-tuned body + old head classify the same real ImageNet photos:

    pretrained:           body_0 -> head_imagenet   recognises k of N photos
    after the fine-tune:  body_T -> head_imagenet   recognises n of N photos

A linear probe leaves the body untouched (BatchNorm of frozen groups in eval mode), so n = k
exactly; the more of the body trains, the more of the old knowledge can be overwritten
("catastrophic forgetting").

The photos ship offline: scikit-image's sample photos with an accepted ImageNet answer
(tlcore.models.imagenet.SAMPLE_PHOTOS), and, where the `foolbox` wheel is installed, the 20 ImageNet
validation JPEGs it carries as data files (`foolbox/data/imagenet_<i>_<class id>.jpg`). They
are read as files; foolbox's code is never imported.

Photos are scored at 224 px, the resolution ImageNet was learned at, whatever size the
fine-tune used: the question is what the network still knows of its first task.

Not for: training (tlcore.train.trainer), the Try-it panel's top-5 (tlcore.models.imagenet.top_k) or
the experiment over strategies and seeds (tlcore.lab.forgetting_experiment).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tlcore.models import catalog
from tlcore.models.imagenet import SAMPLE_PHOTOS, categories, imagenet_model, sample_photo, to_input

SIZE = 224  # ImageNet's resolution
# photos scored at a time: the same answers, and no activation over 64 MB (24 at once made
# 115 MB blocks, which the C heap maps fresh from the system every time: tlcore.serve.machine.keep_freed_memory)
PHOTOS_AT_ONCE = 8
FOOLBOX_NAME = re.compile(r"imagenet_(\d+)_(\d+)\.jpe?g$")


@dataclass(frozen=True)
class Photo:
    name: str  # "chelsea" (scikit-image) or "imagenet_07_609" (ImageNet validation, via foolbox's wheel)
    accept: tuple[int, ...]  # ImageNet class ids counted as right
    path: str = ""  # a JPEG file; "" = a scikit-image sample photo


def foolbox_files() -> list[Path]:
    """The ImageNet validation JPEGs inside an installed foolbox wheel (read as files, never imported)."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("foolbox")
    except importlib.metadata.PackageNotFoundError:
        return []
    files = [dist.locate_file(f) for f in dist.files or () if FOOLBOX_NAME.search(str(f))]
    return sorted(Path(str(f)) for f in files if Path(str(f)).is_file())


def photos() -> tuple[Photo, ...]:
    """Every offline ImageNet photo with a known answer: scikit-image's, then foolbox's."""
    own = tuple(Photo(p.name, p.accept) for p in SAMPLE_PHOTOS if p.accept)
    validation = tuple(Photo(f.stem, (int(FOOLBOX_NAME.search(f.name).group(2)),), str(f)) for f in foolbox_files())
    return own + validation


@functools.lru_cache(maxsize=2)
def photo_batch(size: int = SIZE) -> tuple[torch.Tensor, tuple[Photo, ...]]:
    """(N, 3, size, size) uint8: every photo, centre square resized, decoded once per process."""
    from PIL import Image

    items = photos()
    images = []
    for p in items:
        image = np.asarray(Image.open(p.path).convert("RGB")) if p.path else sample_photo(p.name)
        images.append(to_input(image, size))
    return torch.cat(images), items


def imagenet_head(backbone: str) -> torch.nn.Module:
    """A copy of the backbone's pretrained 1000-class head (pooling + classifier), on the CPU."""
    return copy.deepcopy(imagenet_model(backbone, SIZE).groups["head"]).eval()


def applies(backbone: str, strategy: str, pretrained: bool) -> bool:
    """Only an ImageNet-pretrained vision body has an ImageNet head to go back to."""
    try:
        spec = catalog.backbone(backbone)
    except ValueError:
        return False
    return pretrained and strategy != "scratch" and spec.family == "vision" and spec.pretrained_on == "imagenet"


@torch.no_grad()
def top1(model, head: torch.nn.Module, size: int = SIZE, *, start: int = 0, features: torch.Tensor | None = None) -> list[int]:
    """The ImageNet class each photo gets from `model`'s body (every group but its own head)
    followed by `head`: (N, 3, S, S) -> (N, 1280, S/32, S/32) -> (N, 1000) -> N class ids.
    With `features` (the photos after the first `start` groups), only the groups after them run."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    head = head.to(device).eval()
    try:
        body = list(model.groups.values())[:-1]
        if features is None:
            images, _ = photo_batch(size)
            features = model.forward_to(images.contiguous(memory_format=torch.channels_last).to(device), 0)
            start = 0
        answers = []
        for x in features.split(PHOTOS_AT_ONCE):
            for module in body[start:]:
                x = module(x)
            answers += head(x.float()).argmax(-1).tolist()
        return answers
    finally:
        model.train(was_training)


@functools.lru_cache(maxsize=4)
def _pretrained(backbone: str, device: str):
    """The pretrained network with its ImageNet head, on `device`, laid out as `measure` lays
    out a fine-tuned body (channels_last), so an unchanged body gets the very same answers."""
    return copy.deepcopy(imagenet_model(backbone, SIZE)).to(device, memory_format=torch.channels_last).eval()


@functools.lru_cache(maxsize=4)
def pretrained_top1(backbone: str, device: str = "cpu") -> tuple[int, ...]:
    """What the untouched pretrained network answers for each photo (once per backbone, device
    and process), computed the way `measure` scores a fine-tuned body."""
    model = _pretrained(backbone, device)
    return tuple(top1(model, model.groups["head"]))


@functools.lru_cache(maxsize=8)
@torch.no_grad()
def _pretrained_features(backbone: str, device: str, depth: int) -> torch.Tensor:
    """The photos after the pretrained network's first `depth` groups (once per process), computed
    `PHOTOS_AT_ONCE` at a time: the same features, and a page 4 sweep's first run at depth 3 peaked
    441 MB over its start with all 24 photos at once (their activations at 224 px)."""
    images, _ = photo_batch(SIZE)
    model = _pretrained(backbone, device)
    photos = images.contiguous(memory_format=torch.channels_last).to(device)
    return torch.cat([model.forward_to(chunk, depth) for chunk in photos.split(PHOTOS_AT_ONCE)])


def unchanged_prefix(model, backbone: str) -> int:
    """How many leading groups of the body are still the pretrained network's, bit for bit
    (weights and BatchNorm statistics): a part frozen for the whole run. Their output on the
    photos is the pretrained network's, so it is computed once per process, not per run."""
    reference = _pretrained(backbone, str(next(model.parameters()).device))
    depth = 0
    for name in list(model.groups)[:-1]:
        mine, theirs = model.groups[name].state_dict(), reference.groups[name].state_dict()
        if mine.keys() != theirs.keys() or not all(torch.equal(mine[k], theirs[k].to(mine[k].device)) for k in mine):
            break
        depth += 1
    return depth


def _batchnorms(model) -> dict[str, torch.nn.Module]:
    """The body's BatchNorm layers by name (the head has none worth keeping)."""
    return {
        n: m
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not n.startswith("groups.head")
    }


@contextlib.contextmanager
def imagenet_statistics(model, backbone: str):
    """Inside: the body's BatchNorm running statistics are the pretrained network's (ImageNet's),
    its fine-tuned weights untouched; restored on leaving.

    A fine-tune re-estimates every trainable BatchNorm's mean and variance on the new data
    (short runs average them over the run: tlcore.train.trainer), so a body can fail on ImageNet
    photos because its normalisation now expects grey clothes, with weights that still know
    ImageNet. Scoring both ways tells the two apart."""
    mine, pretrained = _batchnorms(model), _batchnorms(imagenet_model(backbone, SIZE))
    saved = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in mine.items()}
    try:
        for n, m in mine.items():
            m.running_mean.copy_(pretrained[n].running_mean)
            m.running_var.copy_(pretrained[n].running_var)
        yield
    finally:
        for n, m in mine.items():
            m.running_mean.copy_(saved[n][0])
            m.running_var.copy_(saved[n][1])


def _same_statistics(model, backbone: str) -> bool:
    pretrained = _batchnorms(imagenet_model(backbone, SIZE))
    return all(
        torch.equal(m.running_mean.cpu(), pretrained[n].running_mean)
        and torch.equal(m.running_var.cpu(), pretrained[n].running_var)
        for n, m in _batchnorms(model).items()
    )


@torch.no_grad()
def measure(model, backbone: str) -> dict:
    """The photos the pretrained network recognised and the ones the fine-tuned body recognises
    through the old ImageNet head (after_bn: the same with ImageNet's BatchNorm statistics put
    back, None for a body without BatchNorm). JSON-safe: stored with the run's result."""
    t0 = time.perf_counter()
    before = pretrained_top1(backbone, str(next(model.parameters()).device))
    head = imagenet_head(backbone)
    # channels_last: about twice as fast for these convolutions on a CPU (measured, 24 photos:
    # 0.45 s against 1.0 s); the run's model is kept (tlcore.train.finetuned) in the usual layout after.
    model.to(memory_format=torch.channels_last)
    device = str(next(model.parameters()).device)
    start = unchanged_prefix(model, backbone)  # the frozen part's output: the pretrained network's
    features = _pretrained_features(backbone, device, start) if start else None
    after = top1(model, head, start=start, features=features)
    after_bn = None
    if _batchnorms(model):
        if _same_statistics(model, backbone):  # a frozen body (linear probe): nothing to put back
            after_bn = after
        else:
            with imagenet_statistics(model, backbone):
                after_bn = top1(model, head, start=start, features=features)
    _, items = photo_batch(SIZE)
    names = categories()
    rows = [
        {
            "photo": p.name,
            "answer": names[p.accept[0]],
            "before": names[b],
            "after": names[a],
            "ids": [p.accept[0], b, a],  # answer, before, after as class ids (names can repeat: "crane")
            "right_before": b in p.accept,
            "right_after": a in p.accept,
        }
        for p, b, a in zip(items, before, after, strict=True)
    ]
    return {
        "backbone": backbone,
        "total": len(rows),
        "size": SIZE,
        "before": sum(r["right_before"] for r in rows),
        "after": sum(r["right_after"] for r in rows),
        "after_bn": None if after_bn is None else sum(a in p.accept for a, p in zip(after_bn, items)),
        "photos": rows,
        "seconds": round(time.perf_counter() - t0, 3),
    }
