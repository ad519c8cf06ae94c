"""Image batches for tlcore.train.trainer.fit: a small dataset kept whole on the device, batches as index slices.

`TensorSource` keeps a run's images on the device as uint8; augmentation (flips, random crops)
runs there too, and a frozen prefix's features can be computed once (`prepare`, kept between
runs by tlcore.data.feature_cache) so only the trained suffix runs every step. `StreamSource`
serves batches drawn fresh from an endless stream (pretraining on procedural images). Both keep
the batch-source contract (tlcore.data.sources.BatchSource), as the text family's
tlcore.text.batches.TextSource does; they run the model, so they live here, above tlcore.models.

Not for: reading or splitting datasets (tlcore.data.datasets), or which prefix is cached (the
rule: tlcore.data.sources.frozen_prefix, cache_depth).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from typing_extensions import override

from tlcore.core.bounded import tensor_bytes
from tlcore.data import datasets, feature_cache
from tlcore.data.sources import BatchSource, cache_depth

CACHE_BUDGET_BYTES = 2 * 1024**3  # cached features larger than this are not kept
# On a CPU, a frozen prefix's features are computed this many pixels' worth of images at a time
# (64 images at 96 px; fewer as they grow): the activations of 4 batches at once (256 images of
# Fashion-MNIST at 96 px through Lite0) held about 800 MB at their peak, on the class server that
# also serves every page (issue 29: the server's peak memory), for no gain in speed.
CPU_PREFIX_PIXELS = 64 * 96 * 96


class TensorSource(BatchSource):
    """A small image dataset kept whole on the device; batches are index slices.

    train_x: (N, 3, S, S) uint8. With a frozen prefix of depth k, `prepare` replaces the
    images by the prefix's features (computed once, in eval mode, without gradients); with
    flip augmentation the features of the flipped images are cached too, and each batch
    picks one of the two per example.
    """

    def __init__(self, data: datasets.ImageData, device: torch.device, augment: str = "flip", channels_last: bool = False):
        self.device, self.augment, self.channels_last = device, augment, channels_last
        self.train_x = data.train_x.to(device)
        self.train_y = data.train_y.to(device)
        self.val_x = data.val_x.to(device)
        self.val_y = data.val_y.to(device)
        self.depth = 0  # groups already applied to the stored tensors
        self.train_flipped = None  # cached features of flipped training images

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    @property
    def n_val(self) -> int:
        return len(self.val_y)

    def can_cache(self) -> bool:
        return cache_depth("image", 1, 2, augment=self.augment) > 0

    @torch.no_grad()
    def prepare(self, model, depth: int, batch_size: int, autocast, *, share: bool = True) -> int:
        """Run the frozen prefix once over all images; returns the depth actually cached. `share`:
        found in and kept for the process (tlcore.data.feature_cache); not for weights no run will
        train from again (a random or a fine-tuned body shown in the feature space)."""
        depth = cache_depth("image", depth, len(model.groups), augment=self.augment)
        if depth == 0 or not hasattr(model, "forward_to"):
            return 0
        was_training = model.training
        model.eval()

        chunk = batch_size * 4
        if self.device.type == "cpu":
            chunk = max(1, min(chunk, CPU_PREFIX_PIXELS // max(1, self.train_x.shape[-1] * self.train_x.shape[-2])))

        def features(x):
            outs = []
            for i in range(0, len(x), chunk):
                with autocast():
                    outs.append(model.forward_to(self._layout(x[i : i + chunk]), depth))
            return torch.cat(outs)

        probe = features(self.train_x[:1])
        copies = 2 if self.augment == "flip" else 1
        need = tensor_bytes(probe[0]) * (self.n_train * copies + self.n_val)  # one example's features, times all
        if need > CACHE_BUDGET_BYTES:
            model.train(was_training)
            return 0
        # the same weights on the same images: computed once per process (tlcore.data.feature_cache)
        key = feature_cache.digest(
            "image",
            feature_cache.prefix_digest(model, depth),
            self.augment,
            feature_cache.autocast_digest(autocast),
            str(self.device),
            self.train_x,
            self.val_x,
        )
        found = feature_cache.shared.get(key) if share else None
        if found is None:
            train, val = features(self.train_x), features(self.val_x)
            flipped = features(self.train_x.flip(-1)) if self.augment == "flip" else None
            if share:
                feature_cache.shared.put(key, (train, val, flipped))
        else:
            train, val, flipped = found
        self.train_x, self.val_x, self.train_flipped, self.depth = train, val, flipped, depth
        model.train(was_training)
        return depth

    def features_to_float(self) -> None:
        self.train_x, self.val_x = self.train_x.float(), self.val_x.float()
        if self.train_flipped is not None:
            self.train_flipped = self.train_flipped.float()

    def _layout(self, x):
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def _augment(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self.train_x[idx]
        if self.augment == "none":
            return x
        flip = torch.rand(len(idx), generator=generator) < 0.5
        flip = flip.to(self.device)
        if self.depth > 0:  # cached features: choose the stored flipped copy per example
            return torch.where(flip.view(-1, *[1] * (x.ndim - 1)), self.train_flipped[idx], x)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if self.augment == "crop_flip":
            x = random_resized_crop(x, generator)
        return x

    @override
    def train_batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterator:
        order = torch.randperm(self.n_train, generator=generator).to(self.device)
        for idx in split_batches(order, batch_size):
            yield self._layout(self._augment(idx, generator)), self.train_y[idx]

    def eval_batches(self, batch_size: int) -> Iterator:
        # training's batch size, not larger: the same predictions, and Lite0's 200 validation
        # images at 96 px took 0.42 s in batches of 64 against 0.50 s in one of 256 (one thread)
        for i in range(0, self.n_val, batch_size):
            yield self._layout(self.val_x[i : i + batch_size]), self.val_y[i : i + batch_size]

    def forward(self, model, inputs):
        return model.forward_from(inputs, self.depth) if self.depth else model(inputs)


def split_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Consecutive batches of `batch_size`; a last batch of one example is never made (BatchNorm
    cannot train on one example once the image is pooled to 1x1: 9 images in batches of 8 were a
    crash): the last two batches then share their examples (for batch sizes of 3 or more), and
    the number of steps is the same."""
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        tail = torch.cat(batches[-2:])
        batches[-2:] = [tail[: len(tail) // 2 + 1], tail[len(tail) // 2 + 1 :]]
    return batches


def random_resized_crop(x: torch.Tensor, generator: torch.Generator, scale=(0.7, 1.0)) -> torch.Tensor:
    """Per-example random zoom and shift on the device in one grid_sample: (B,3,S,S) uint8 -> same."""
    b = x.shape[0]
    s = torch.empty(b).uniform_(math.sqrt(scale[0]), math.sqrt(scale[1]), generator=generator)
    tx = (torch.rand(b, generator=generator) * 2 - 1) * (1 - s)
    ty = (torch.rand(b, generator=generator) * 2 - 1) * (1 - s)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = s, s, tx, ty
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


class StreamSource(BatchSource):
    """Fresh batches from an endless stream of (uint8 images, labels), `steps` per epoch, and a
    fixed validation set: pretraining through the same `fit` as every fine-tune. Nothing is
    cached (every group trains) and nothing repeats (each image is drawn once)."""

    def __init__(
        self,
        stream: Iterator,
        steps: int,
        batch_size: int,
        val_x: torch.Tensor,
        val_y: torch.Tensor,
        device: torch.device,
        channels_last: bool = False,
    ):
        self.stream, self.steps, self.device, self.channels_last = stream, steps, device, channels_last
        self.n_train = steps * batch_size  # examples per epoch
        self.val_x, self.val_y = val_x, val_y.to(device)
        self.depth = 0

    @property
    def n_val(self) -> int:
        return len(self.val_y)

    @override
    def prepare(self, model, depth: int, batch_size: int, autocast) -> int:
        return 0  # a stream has nothing to cache

    def features_to_float(self) -> None:
        pass

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    @override
    def train_batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterator:
        for _ in range(self.steps):
            x, y = next(self.stream)
            yield self._layout(x), y.to(self.device)

    def eval_batches(self, batch_size: int) -> Iterator:
        for i in range(0, self.n_val, batch_size * 4):
            yield self._layout(self.val_x[i : i + batch_size * 4]), self.val_y[i : i + batch_size * 4]

    def forward(self, model, inputs):
        return model(inputs)
