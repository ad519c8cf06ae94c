"""Bounded, least-recently-used stores (every cache of the engine and the app is one) and the size of tensors.

A class server runs for a day: whatever it keeps between requests (loaded datasets, frozen
features, pretrained templates, charts, feature spaces) must have a bound, and the oldest use
goes first. `LRU` is that one shape, thread-safe, bounded by a count (each entry weighs 1) or by
bytes (`weigh=tensor_bytes`), the bound a number or a setting read at every put; `tensor_bytes` is
the one place tensors' sizes are added up. A store keeps what its owner built: the owner asks
`get`, builds on a miss and `put`s (tlcore.data.datasets, tlcore.models.backbones), so the store
never calls back up into the layer that owns it.

Not for: what a learner keeps with rules of their own (tlcore.serve.kept_models: per learner and in all).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import torch

from tlcore.core import settings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def tensor_bytes(value) -> int:
    """The bytes the tensors in `value` hold: a tensor, or tensors in tuples, lists, dicts, a
    dataclass or a plain object's attributes (one level of attributes, nested containers)."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.numel()
    if isinstance(value, (tuple, list)):
        return sum(tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(tensor_bytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return sum(tensor_bytes(v) for v in vars(value).values() if isinstance(v, (torch.Tensor, tuple, list, dict)))
    return 0


class LRU(Generic[K, V]):
    """Entries by key, least recently used dropped first once their weights add up past `limit`.

    `weigh(value)` is an entry's weight (1 by default: `limit` is a count). `limit` may be a
    setting's name (tlcore.core.settings), read at every put, so an admin's change takes effect
    without a restart; `unit` is what one of its units weighs (2**20: a setting in MB bounding
    bytes). An entry heavier than `limit` on its own is refused, unless `keep_newest`: then it
    stays, alone (a dataset bigger than the bound is still kept for the race that loads it).
    Thread-safe; `get_or_make` runs its `make` outside the lock, so other callers' hits never wait
    for a slow make (where `make` is a higher layer's, its owner asks `get` and `put`s instead)."""

    def __init__(
        self,
        limit: float | str,
        *,
        unit: float = 1,
        weigh: Callable[[V], float] = lambda _v: 1,
        keep_newest: bool = False,
    ):
        self._limit, self.unit = limit, unit
        self.weigh = weigh
        self.keep_newest = keep_newest
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._total = 0.0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def limit(self) -> float:
        return (settings.get(self._limit) if isinstance(self._limit, str) else self._limit) * self.unit

    def get(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return default
            self._items.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: K, value: V) -> bool:
        """Keep `value` under `key` (the newest); False when it alone is over the limit and refused."""
        weight, limit = self.weigh(value), self.limit
        if weight > limit and not self.keep_newest:
            return False
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._total -= old[1]
            self._items[key] = (value, weight)
            self._total += weight
            while len(self._items) > 1 and self._total > limit:
                _, (_, dropped) = self._items.popitem(last=False)
                self._total -= dropped
        return True

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        found = self.get(key, _MISSING)
        if found is not _MISSING:
            return found
        value = make()  # outside the lock
        self.put(key, value)
        return value

    def pop(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            found = self._items.pop(key, None)
            if found is None:
                return default
            self._total -= found[1]
            return found[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._total = 0.0
            self.hits = self.misses = 0

    def items(self) -> list[tuple[K, V]]:
        """A copy, oldest first."""
        with self._lock:
            return [(k, v) for k, (v, _) in self._items.items()]

    @property
    def total(self) -> float:
        """The kept entries' weights added up (bytes, or the count)."""
        with self._lock:
            return self._total

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items


_MISSING: object = object()
