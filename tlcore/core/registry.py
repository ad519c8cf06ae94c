"""A registry: named entries of one kind, in the order they were registered.

The studio has two, both filled in one place (`tlcore.models.catalog`): backbones and datasets.
Modules that define entries (tlcore.models.backbones, tlcore.data.datasets, tlcore.models.text_specs) only describe
them; nothing registers itself when imported, so a registry is complete whichever module a
process imports first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # "backbone", "dataset": named in error messages
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add an entry (it has a `name`); a second entry under the same name is a bug, so it raises."""
        name = entry.name
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._entries)}") from None

    def names(self, **where) -> list[str]:
        """Names of the entries whose attributes equal every given value (None: any)."""
        return [n for n, e in self._entries.items() if all(v is None or getattr(e, k) == v for k, v in where.items())]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
