"""A registry: named entries of one kind, in the order they were registered.

The engine's registries: backbones, datasets and families (`tlcore.models.catalog`) and tasks
(`tlcore.train.tasks`). The engine's own entries (tlcore.models.backbones, tlcore.data.datasets)
only describe themselves and the catalog registers them; a family above the train layer
(tlcore.text) registers its own, and a registry made with `load` runs it before its first read
(the catalog's `load_families`), so a registry is complete whichever module a process imports first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_LOADING = threading.RLock()  # one registry load at a time, in any thread


class Registry(Generic[T]):
    def __init__(self, kind: str, load: Callable[[], None] | None = None):
        self.kind = kind  # "backbone", "dataset": named in error messages
        self._entries: dict[str, T] = {}
        self._load = load  # run once, before the first read: what registers the rest of the entries
        self._pending = load is not None
        self._loading = False

    def _loaded(self) -> dict[str, T]:
        if self._pending:
            with _LOADING:  # other threads wait for the whole load; the loading thread reads what is there
                if self._pending and not self._loading:
                    self._loading = True
                    try:
                        self._load()
                        self._pending = False
                    finally:
                        self._loading = False
        return self._entries

    def register(self, entry: T) -> T:
        """Add an entry (it has a `name`); a second entry under the same name is a bug, so it raises."""
        name = entry.name
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._loaded()[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}") from None

    def names(self, **where) -> list[str]:
        """Names of the entries whose attributes equal every given value (None: any)."""
        return [n for n, e in self._loaded().items() if all(v is None or getattr(e, k) == v for k, v in where.items())]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[T]:
        return iter(self._loaded().values())

    def __len__(self) -> int:
        return len(self._loaded())
