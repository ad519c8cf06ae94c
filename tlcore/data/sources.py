"""What the training loop reads of its data: the batch-source contract, and the one cached-prefix rule.

`BatchSource` is what tlcore.train.trainer.fit asks of a run's batches (n_train, n_val, val_y,
prepare, train_batches, eval_batches, forward); the sources that implement it run the model, so
they live in layers that may call it: images in tlcore.train.image_batches, sentences in
tlcore.text.batches. `frozen_prefix` and `cache_depth` say which leading groups a source computes
once, read alike by the trainer, the sources and the time estimate.

Not for: the sources themselves (named above), or datasets (tlcore.data.datasets).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import torch


class BatchSource(Protocol):
    """What trainer.fit reads of its data: tlcore.train.image_batches' TensorSource (images on the
    device) and StreamSource (pretraining's endless images), tlcore.text.batches.TextSource (sentences)."""

    n_train: int  # training examples per epoch
    n_val: int
    val_y: torch.Tensor  # (n_val,) int64 on the device, in eval_batches' order

    def prepare(self, model, depth: int, batch_size: int, autocast) -> int:
        """Compute the first `depth` frozen groups once, if this source can; the depth cached."""
        ...

    def features_to_float(self) -> None:
        """Cached bf16 features become fp32 (training runs in fp32)."""
        ...

    def train_batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterator:
        """(inputs, targets) for one epoch, shuffled by `generator`."""
        ...

    def eval_batches(self, batch_size: int) -> Iterator:
        """(inputs, targets) over the validation split, in order."""
        ...

    def forward(self, model, inputs) -> torch.Tensor:
        """The model's logits (B, num_classes) for one batch (from cached features where there are)."""
        ...


# ----------------------------------------------------------------------------- the cached-prefix rule
# One rule, read by the trainer (what it asks a source to cache), by the sources (what they
# cache) and by the time estimate (tlcore.train.time_estimate: what a run will cost).


def frozen_prefix(groups: list[str], frozen_all_run, *, cache_features: bool = True, bn_frozen_eval: bool = True) -> int:
    """How many leading groups stay frozen for the whole run (never the head). With BatchNorm
    in eval mode their output never changes, so it can be computed once; 0 when caching is off."""
    prefix = 0
    if cache_features and bn_frozen_eval:
        while prefix < len(groups) - 1 and groups[prefix] in frozen_all_run:
            prefix += 1
    return prefix


def cache_depth(task: str, prefix: int, n_groups: int, *, augment: str = "none", cls_features: bool = True) -> int:
    """How many of a `prefix` of frozen groups a batch source computes once.

    images: all of them, when the augmentation is none or a flip (a flip is cached as a second
    copy); a random crop changes the input every epoch, so nothing is cached.
    text: only the whole encoder (prefix = every group but the head), as one [CLS] vector per
    sentence, and only for models whose head reads that vector (cls_features: no LoRA adapters).
    """
    if prefix <= 0:
        return 0
    if task == "text":
        return prefix if prefix >= n_groups - 1 and cls_features else 0
    return prefix if augment in ("none", "flip") else 0
