"""The last fine-tuned models, kept in memory so a learner can try one on a new image.

A finished image or text run leaves its model here under a random, unguessable id (only the
run's own result knows it), with the run's settings, for "Try it" and for the download
(tlcore.serve.takehome). The store keeps the newest `MAX_KEPT` models within `MAX_BYTES` of weights
and forgets older ones, so a class server's memory stays bounded (EfficientNet-Lite0 is
about 15 MB, the offline MiniLM about 90 MB).

Not for: persisting runs (results and histories live in tlcore.core.events / tlcore.serve.jobs).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

MAX_KEPT = 16
MAX_BYTES = 384 * 2**20  # weights kept in all: 16 Lite0s (about 220 MB), or 4 MiniLMs (87 MB each)


@dataclass(frozen=True)
class Finetuned:
    model: torch.nn.Module  # on the CPU, eval mode
    classes: tuple[str, ...]
    image_size: int  # 0 for a text model
    backbone: str  # the backbone that really ran (an offline fallback, not always the config's)
    config: dict | None = None  # the run's RunConfig.to_dict()
    task: str = "image"


def model_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in {id(p): p for p in model.parameters()}.values())


_store: OrderedDict[str, Finetuned] = OrderedDict()
_lock = threading.Lock()


def keep(model: torch.nn.Module, classes, image_size: int, backbone: str, *, config: dict | None = None,
         task: str = "image") -> str:
    """Keep a trained model on the CPU; returns its id."""
    key = secrets.token_urlsafe(16)
    entry = Finetuned(model.to("cpu", memory_format=torch.contiguous_format).eval(), tuple(classes), image_size, backbone,
                      config, task)
    with _lock:
        _store[key] = entry
        while len(_store) > MAX_KEPT or (len(_store) > 1 and sum(model_bytes(e.model) for e in _store.values()) > MAX_BYTES):
            _store.popitem(last=False)
    return key


def get(key: str | None) -> Finetuned | None:
    with _lock:
        return _store.get(key) if key else None


def class_probabilities(entry: Finetuned, image: np.ndarray) -> list[tuple[str, float]]:
    """The fine-tuned model's probability for each of its task's classes, highest first."""
    from tlcore.models.imagenet import probabilities

    probs = probabilities(entry.model, image, entry.image_size).tolist()
    return sorted(zip(entry.classes, probs), key=lambda item: -item[1])
