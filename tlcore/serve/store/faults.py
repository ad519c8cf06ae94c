"""The run store's states, as `RunStore.health()` reports them to the Class page, the error for a
file that cannot be used as a run store, and which state an error of SQLite or the system means.

A damaged file, a file that is not SQLite or one written by a newer version (STUCK) is never
written to until it is moved aside or replaced; a locked or unwritable one is tried again.

Not for: noticing or handling a fault (tlcore.serve.store.run_store), a command's words for one
(tlcore.serve.store.cli).
"""

from __future__ import annotations

from dataclasses import dataclass

# The store's states, as `health()` reports them (the Class page has a line for each but ok).
OK, LOCKED, DAMAGED, NOT_SQLITE, NEWER, UNWRITABLE = "ok", "locked", "damaged", "not_sqlite", "newer", "unwritable"
STUCK = (DAMAGED, NOT_SQLITE, NEWER)  # never written to until the file is moved aside or replaced


@dataclass(frozen=True)
class StoreHealth:
    """What the Class page tells the teacher about the store."""

    state: str  # ok | locked | damaged | not_sqlite | newer | unwritable
    path: str
    detail: str = ""  # SQLite's or the system's own words
    waiting: int = 0  # jobs whose latest row waits to be written
    dropped: int = 0  # rows given up on (the waiting list was full); those runs live in memory only


class StoreError(Exception):
    """The file cannot be used as a run store; `state` says why (one of the states above)."""

    def __init__(self, state: str, detail: str):
        super().__init__(detail)
        self.state, self.detail = state, detail


def fault_of(error: BaseException) -> str:
    """A store state for an error SQLite or the system raised."""
    if isinstance(error, StoreError):
        return error.state
    code = getattr(error, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (5, 6):  # SQLITE_BUSY, SQLITE_LOCKED
        return LOCKED
    if primary == 11:  # SQLITE_CORRUPT
        return DAMAGED
    if primary == 26:  # SQLITE_NOTADB
        return NOT_SQLITE
    text = str(error).lower()
    if "locked" in text or "busy" in text:
        return LOCKED
    if "malformed" in text or "corrupt" in text:
        return DAMAGED
    if "not a database" in text:
        return NOT_SQLITE
    return UNWRITABLE  # read-only, cannot open, disk I/O, disk full, permissions
