"""The run store's file on disk: where it is, made private, what identifies it and its last write,
and a connection that reads it without changing it.

- The file is `$TLS_STATE_DIR/runs.sqlite` (default `~/.cache/tlstudio/`, beside the time
  estimator's `timings.json`).
- Private: the file and its `-wal` and `-shm` companions are 0600 (created so: SQLite gives
  the companions the database file's mode); the learner's id is a secret (it is their
  cookie), so only its SHA-256 is stored (tlcore.serve.store.codec.learner_key).
- Readers elsewhere are safe: the file is never opened outside SQLite while a connection holds
  it (see `make_private`), so another program's `sqlite3` cannot checkpoint and delete the WAL
  under the server.

Not for: what is in the file (tlcore.serve.store.schema), the server's connections to it
(tlcore.serve.store.run_store).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
from pathlib import Path

from tlcore.core import offline
from tlcore.serve.store.faults import UNWRITABLE, StoreError


def default_path() -> Path:
    """`$TLS_STATE_DIR/runs.sqlite`, beside the time estimates (tlcore.core.offline.state_dir)."""
    return offline.state_dir() / "runs.sqlite"


def create_private(path: Path) -> None:
    """A missing file made 0600 before SQLite opens it (SQLite then gives its -wal and -shm
    the same mode). Only a file that does not exist yet is opened here: see `make_private`."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def make_private(path: Path) -> None:
    """Companions an older version left readable made private (by their names: chmod opens
    nothing). Never open the database itself while a connection holds it: closing any
    descriptor of a file drops every POSIX lock this process holds on it, SQLite's shared lock
    included, and then a reader in another program (a teacher's sqlite3, a backup) took itself
    for the last connection, checkpointed and deleted the WAL under the server: every run
    written after it was lost. Whether the file is SQLite at all, SQLite says (`RunStore._open`; it
    reads a non-empty file shorter than one page, 512 bytes, as an empty database, so its size says)."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if name.exists() and name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except OSError:
            pass  # not ours to change: SQLite says so if it matters


def identity(path: Path) -> tuple[int, int] | None:
    """The file's (device, inode): another file there (moved aside, replaced) has another."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def stamp(path: Path) -> tuple[int, int] | None:
    """When the file was last written, and its size: another program's write changes it (this
    store's own writes go to the WAL, and its checkpoints are noted after each transaction)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def read_only_connection(path: str | os.PathLike) -> sqlite3.Connection:
    """A connection that changes nothing in the file, nor its mode."""
    path = Path(path).resolve()
    if not path.is_file():
        raise StoreError(UNWRITABLE, "no such file")
    uri = "file:" + urllib.parse.quote(str(path))
    # No -wal beside it: no server has it open, and nothing is created or locked (a -shm made
    # by an admin's export could leave the server unable to open its own file). With a -wal:
    # a server may be writing, read as a reader of a live database.
    live = Path(f"{path}-wal").exists()
    return sqlite3.connect(f"{uri}?mode=ro" if live else f"{uri}?immutable=1", uri=True, timeout=5.0)
