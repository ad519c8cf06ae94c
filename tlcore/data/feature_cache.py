"""A frozen prefix's features, kept between runs and found again by what they were computed from.

A frozen prefix (tlcore.data.sources.frozen_prefix) gives the same features for the same
weights and the same examples, whoever starts the run: a class of 30 pressing Start on the
default settings would compute the very same tensors 30 times, and a learner who changes only
the learning rate would compute them again. So the features are kept, process-wide, under a
digest of everything they depend on: the prefix's parameters and buffers (bytes, not names: a
fine-tuned body never matches its pretrained start), the examples' bytes, and how they were
computed (depth, precision, device, augmentation). A run that finds them skips the pass over
its data; one that does not computes and offers them. Nothing is trusted by name, so an
upload, another seed or another backbone can never be served someone else's features.

Bounded by bytes (`TLS_FEATURE_CACHE_MB`, 256 MB by default; least recently used go first);
the tensors are shared read-only by the runs that use them (sources index into them, never
write). Hashing costs about 1 ms per MB (the default demo: 11 MB of images, 0.2 MB of weights).

Not for: models (tlcore.serve.kept_models) or the feature-space views (tlcore.explain.feature_space).
"""

from __future__ import annotations

import array
import hashlib
import itertools

import torch

from tlcore.core.bounded import LRU, tensor_bytes


def _update(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(value, list) and value and all(isinstance(v, list) and all(type(i) is int for i in v) for v in value):
        # token ids: a list of lists of ints, hashed as two arrays (lengths, then every id)
        h.update(b"ids")
        h.update(array.array("q", map(len, value)).tobytes())
        h.update(array.array("q", itertools.chain.from_iterable(value)).tobytes())
    elif isinstance(value, (list, tuple)):
        h.update(f"[{len(value)}".encode())
        for v in value:
            _update(h, v)
    else:
        h.update(repr(value).encode())
    h.update(b"|")


def digest(*parts) -> str:
    """A hex digest of tensors (dtype, shape and bytes), nested lists and plain values."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        _update(h, part)
    return h.hexdigest()


def modules_digest(modules) -> str:
    """The digest of some modules' parameters and buffers, in order (what their output depends on)."""
    h = hashlib.blake2b(digest_size=16)
    for module in modules:
        h.update(type(module).__name__.encode())
        for name, tensor in (*module.named_parameters(), *module.named_buffers()):
            h.update(name.encode())
            _update(h, tensor)
    return h.hexdigest()


def prefix_digest(model, depth: int) -> str:
    """What the first `depth` groups of a grouped model compute from: the architecture's name,
    the groups' weights and buffers, and the model's own buffers (the input normalisation)."""
    own = [t for _, t in model.named_buffers(recurse=False)]
    name = (type(model).__name__, getattr(model, "backbone_name", ""))
    return digest(name, depth, own, modules_digest(list(model.groups.values())[:depth]))


def autocast_digest(autocast) -> tuple:
    """How a no-grad pass computes under `autocast` (a factory of torch.autocast contexts)."""
    ctx = autocast()
    return (str(getattr(ctx, "device", "")), str(getattr(ctx, "fast_dtype", "")), bool(getattr(ctx, "_enabled", False)))


# Tuples of tensors by key, the least recently used dropped first beyond the budget; a tuple
# larger than the whole budget is not kept.
shared: LRU[str, tuple] = LRU("TLS_FEATURE_CACHE_MB", unit=2**20, weigh=tensor_bytes)
