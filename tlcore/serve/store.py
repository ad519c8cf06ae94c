"""Finished runs on disk (SQLite), so a server restart loses no learner's work.

The job queue keeps its jobs in memory; this store keeps a copy of each one: a row when it
is submitted, again when it starts, and its whole event stream when it ends. After a restart
a learner (the same cookie) finds their runs again (`JobQueue.get` and `JobQueue.latest` read
them back from here), and a job that was queued or running when the server stopped is marked
`interrupted` instead of silently vanishing. An admin exports everything with
`python -m tlcore runs export --out runs.jsonl` (or `.csv`), reading the file read-only.

What it is not: a queue (nothing is ever run from here) or a results database to query
for science; rows are whole jobs, histories compressed JSON.

No fault of the file may stop a class: persistence is a convenience, the class is not.
- Writes never wait in a page's thread or under the queue's lock: `save` puts the row in a
  bounded waiting list and returns; one writer thread writes the waiting rows in one
  transaction, each attempt bounded by `busy_s`, retried with back-off while they wait (a
  file another program holds locked is written once the lock is gone).
- Reads (a page after a restart) wait at most `READ_BUSY_S` and never raise: a read that
  fails is "not stored", and a row still waiting to be written is read from the list.
- A damaged file (SQLite finds a bad page, when the file is opened and again whenever another
  program has written it since this store's last write), a file that is not SQLite or was
  written by a newer version is never written to; `health()` says what is wrong (the Class page tells the
  teacher) until the file is moved aside or replaced, which the writer notices by itself.
- Python's own `sqlite3` in WAL mode, so the writer's transactions do not block reads; one
  connection for the writer thread and one for readers, which every page shares behind one
  lock (a read is one indexed row, brief; pages wait on each other, not on the writer).
- Private: the file and its `-wal` and `-shm` companions are 0600 (created so: SQLite gives
  the companions the database file's mode); the learner's id is a secret (it is their
  cookie), so only its SHA-256 is stored.
- Versioned: `PRAGMA user_version` holds the schema's version; an older file is migrated
  when it is opened (version 0, the first unversioned schema, gains `note` and `priority`).
- Bounded per learner: each learner keeps their latest `runs_per_learner` finished jobs and
  at most `mb_per_learner` MB of them (the class's quotas, tlcore.serve.class_limits); past either, the
  learner's own oldest go, never another learner's (their newest of each page always stays,
  whatever its size). One cookie posting 2,000 tiny runs keeps 50 and flushes no one else's.
- Bounded in all, as a backstop: at most `max_runs` finished jobs of everyone are kept
  (`$TLS_MAX_STORED_RUNS`, 2000), taken from the learner with the most (`fair_keep`), never
  first-in-first-out across learners.
- Readers elsewhere are safe: the file is never opened outside SQLite while a connection holds
  it (see `_private`), so another program's `sqlite3` cannot checkpoint and delete the WAL under
  the server. A copy while the server runs: `python -m tlcore runs backup --out copy.sqlite`
  (SQLite's online backup API, one consistent snapshot; never copy the file with `cp`).
- The file is `$TLS_STATE_DIR/runs.sqlite` (default `~/.cache/tlstudio/`, beside the time
  estimator's `timings.json`).
"""

from __future__ import annotations

import atexit
import contextlib
import csv
import dataclasses
import hashlib
import heapq
import io
import json
import logging
import os
import sqlite3
import sys
import threading
import time
import urllib.parse
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlcore.core import offline, settings
from tlcore.core.events import Done, Failed, HistorySnapshot, json_safe
from tlcore.core.messages import Message
from tlcore.core.spreadsheet import safe_cell, safe_row
from tlcore.serve.class_limits import STORED_MB_PER_LEARNER, STORED_RUNS_PER_LEARNER

# The backstop, everyone's finished jobs together: $TLS_MAX_STORED_RUNS (2000; a default fine-tune is about 60 KB)
UNFINISHED = ("queued", "running")
INTERRUPTED = "interrupted"
SCHEMA_VERSION = 1  # PRAGMA user_version; 0 is the first, unversioned schema (no note, no priority)
BUSY_S = 1.0  # one write attempt waits at most this long for another program's lock
READ_BUSY_S = 0.3  # a page's read waits at most this long
RETRY_S, RETRY_MAX_S = 1.0, 30.0  # a failed write is tried again after 1, 2, 4, ... 30 s
# Rows kept in memory for a file that cannot be written: $TLS_STORE_WAITING_MB (64)
FINAL_WAIT_S = 2.0  # a healthy store: the worker waits this long at most for a finished job's row

# The store's states, as `health()` reports them (the Class page has a line for each but ok).
OK, LOCKED, DAMAGED, NOT_SQLITE, NEWER, UNWRITABLE = "ok", "locked", "damaged", "not_sqlite", "newer", "unwritable"
_STUCK = (DAMAGED, NOT_SQLITE, NEWER)  # never written to until the file is moved aside or replaced

# The current schema, as a new file gets it.
_CREATE = (
    """CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    learner TEXT NOT NULL,        -- sha256 of the owner id (the cookie), never the id itself
    tag TEXT NOT NULL,            -- the page's slot: finetune, race, text, ...
    state TEXT NOT NULL,          -- queued | running | done | failed | cancelled | interrupted
    labels TEXT NOT NULL,         -- JSON list, one per run
    configs TEXT NOT NULL,        -- JSON list of RunConfig dicts
    histories BLOB,               -- zlib(JSON list of HistorySnapshot.to_dict() + "times")
    submitted_at REAL NOT NULL,   -- Unix time
    started_at REAL,
    finished_at REAL,
    elapsed_s REAL,
    note TEXT NOT NULL DEFAULT '',   -- why it was stopped when the learner did not: time_limit | closed | teacher
    priority INTEGER NOT NULL DEFAULT 0  -- 1: a teacher's job
)""",
    "CREATE INDEX jobs_learner_tag ON jobs (learner, tag, submitted_at)",
    "CREATE INDEX jobs_finished ON jobs (finished_at)",
)
# Step i takes a file from version i to i + 1 (in one transaction with the new user_version).
_MIGRATIONS = {
    0: (
        "ALTER TABLE jobs ADD COLUMN note TEXT NOT NULL DEFAULT ''",  # 0: the first, unversioned schema
        "ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    ),
}


def default_path() -> Path:
    """`$TLS_STATE_DIR/runs.sqlite`, beside the time estimates (tlcore.core.offline.state_dir)."""
    return offline.state_dir() / "runs.sqlite"


def learner_key(owner: str) -> str:
    """What the store keeps instead of the owner's secret id."""
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredJob:
    """One job as read back from disk (clock values are Unix times)."""

    id: str
    learner: str
    tag: str
    state: str
    labels: list[str]
    configs: list[dict[str, Any]]
    runs: list[HistorySnapshot]
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    elapsed_s: float | None
    note: str = ""  # why it was stopped when the learner did not stop it (tlcore.serve.jobs.Job.note)
    priority: int = 0  # 1: a teacher's job


@dataclass(frozen=True)
class JobTimes:
    """A stored job's clocks (Unix times), read without its histories (RunStore.times)."""

    id: str
    learner: str  # learner_key of the owner
    submitted_at: float
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class StoreHealth:
    """What the Class page tells the teacher about the store."""

    state: str  # ok | locked | damaged | not_sqlite | newer | unwritable
    path: str
    detail: str = ""  # SQLite's or the system's own words
    waiting: int = 0  # jobs whose latest row waits to be written
    dropped: int = 0  # rows given up on (the waiting list was full); those runs live in memory only


def interrupted_message() -> Failed:
    message = Message("run.interrupted")
    return Failed(str(message), message.key)


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


def _create(path: Path) -> None:
    """A missing file made 0600 before SQLite opens it (SQLite then gives its -wal and -shm
    the same mode). Only a file that does not exist yet is opened here: see `_private`."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))


def _private(path: Path) -> None:
    """Companions an older version left readable made private (by their names: chmod opens
    nothing). Never open the database itself while a connection holds it: closing any
    descriptor of a file drops every POSIX lock this process holds on it, SQLite's shared lock
    included, and then a reader in another program (a teacher's sqlite3, a backup) took itself
    for the last connection, checkpointed and deleted the WAL under the server: every run
    written after it was lost. Whether the file is SQLite at all, SQLite says (`_open`; it reads a
    non-empty file shorter than one page, 512 bytes, as an empty database, so its size says)."""
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        try:
            if name.exists() and name.stat().st_mode & 0o077:
                name.chmod(0o600)
        except OSError:
            pass  # not ours to change: SQLite says so if it matters


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _stamp(path: Path) -> tuple[int, int] | None:
    """When the file was last written, and its size: another program's write changes it (this
    store's own writes go to the WAL, and its checkpoints are noted after each transaction)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _columns(db: sqlite3.Connection) -> str:
    """The SELECT list for a file of any version (an unversioned file has no note or priority)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if not have:
        raise StoreError(NOT_SQLITE, "no jobs table")
    return ", ".join(name if name in have else f"{default} AS {name}" for name, default in zip(_NAMES, _DEFAULTS))


_NAMES = (
    "id",
    "learner",
    "tag",
    "state",
    "labels",
    "configs",
    "histories",
    "submitted_at",
    "started_at",
    "finished_at",
    "elapsed_s",
    "note",
    "priority",
)
_DEFAULTS = ("''", "''", "''", "''", "'[]'", "'[]'", "NULL", "0", "NULL", "NULL", "NULL", "''", "0")
_COLUMNS = ", ".join(_NAMES)
_UPSERT = (
    f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * len(_NAMES))}) ON CONFLICT(id) DO UPDATE SET"
    " state=excluded.state, histories=COALESCE(excluded.histories, histories),"
    " started_at=excluded.started_at, finished_at=excluded.finished_at, elapsed_s=excluded.elapsed_s,"
    " note=excluded.note, priority=excluded.priority"
)
# A learner's finished jobs past their quota, newest first: the row count, then the bytes so
# far (histories, settings and labels; length() of a blob reads no page of it). `running` only
# grows, so what goes is always the oldest. Their newest of each page (tag) always stays: it is
# the run that page shows them again after a restart (JobQueue.latest).
_PRUNE_LEARNER = (
    "DELETE FROM jobs WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER newest AS n,"
    " SUM(COALESCE(length(histories), 0) + length(configs) + length(labels)) OVER newest AS running,"
    " ROW_NUMBER() OVER (PARTITION BY tag ORDER BY finished_at DESC, submitted_at DESC) AS of_tag"
    " FROM jobs WHERE learner=? AND state NOT IN (?, ?)"
    " WINDOW newest AS (ORDER BY finished_at DESC, submitted_at DESC ROWS UNBOUNDED PRECEDING))"
    " WHERE of_tag > 1 AND (n > ? OR running > ?))"
)
_ANY_SIZE = 2**62  # _PRUNE_LEARNER's byte bound when only the count matters
_INTERRUPT = "*interrupt"  # the waiting list's key for "mark the last server's unfinished jobs"


class RunStore:
    """The server's run store: `save` from the queue (never waits), `load`/`latest` for pages
    (brief, never raise), `health` for the teacher, `flush`/`close` at the end."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        max_runs: int | None = None,
        busy_s: float = BUSY_S,
        retry_s: float = RETRY_S,
        waiting_mb: float | None = None,
        runs_per_learner: int = STORED_RUNS_PER_LEARNER,
        mb_per_learner: float = STORED_MB_PER_LEARNER,
    ):
        self.path = Path(path) if path is not None else default_path()
        self.max_runs = settings.get("TLS_MAX_STORED_RUNS") if max_runs is None else max_runs  # the backstop
        self.runs_per_learner = runs_per_learner  # one learner's finished jobs ...
        self.bytes_per_learner = int(mb_per_learner * 2**20)  # ... and their bytes (the quotas, tlcore.serve.class_limits)
        self.busy_s, self.retry_s = busy_s, retry_s
        self.waiting_bytes = int((settings.get("TLS_STORE_WAITING_MB") if waiting_mb is None else waiting_mb) * 2**20)
        self._read_lock = threading.Lock()  # the readers' connection, one page at a time
        self._cv = threading.Condition()  # guards everything below
        self._db: sqlite3.Connection | None = None  # the writer thread's
        self._reader: sqlite3.Connection | None = None
        self._opened: tuple[int, int] | None = None  # (device, inode) of the file the connections hold
        self._columns = _COLUMNS
        self._state, self._detail = OK, ""
        self._waiting: dict[str, tuple] = {}  # job id (or _INTERRUPT) -> its latest row, in first-saved order
        self._waiting_size = 0
        self._dropped = 0
        self._attempt = 0  # failed write attempts in a row (the back-off)
        self._next_try = 0.0
        self._rounds = 0  # write attempts made (flush waits for one more)
        self._closed = False
        self._checked = False  # PRAGMA quick_check done on the open file (in the writer thread)
        self._stamp: tuple[int, int] | None = None  # the file's (mtime, size) after this store last wrote or checked it
        self._open()  # a page may read at once; a file that cannot be opened now is opened by the writer later
        self._writer = threading.Thread(target=self._write_forever, name="tlcore-store-writer", daemon=True)
        self._writer.start()
        _OPEN_STORES.add(self)

    # --- what the server asks ---
    def health(self) -> StoreHealth:
        with self._cv:
            return StoreHealth(
                self._state, str(self.path), self._detail, sum(1 for key in self._waiting if key != _INTERRUPT), self._dropped
            )

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every waiting row is written (True), or `timeout` seconds (False; after one
        more attempt for a file that is never written to: it may have been moved aside)."""
        end = time.monotonic() + timeout
        with self._cv:
            self._next_try = 0.0
            self._cv.notify_all()
            first = self._rounds
            while self._waiting and not self._closed and not (self._state in _STUCK and self._rounds > first):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.1))
            return not self._waiting

    def written(self, job_id: str, timeout: float) -> bool:
        """Wait at most `timeout` seconds until this job's latest row is on disk; at once
        False when the store is not healthy (no page or worker waits on a faulty file)."""
        end = time.monotonic() + timeout
        with self._cv:
            while job_id in self._waiting:
                left = end - time.monotonic()
                if left <= 0 or self._state != OK or self._closed:
                    return False
                self._cv.wait(min(left, 0.05))
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Write what waits (at most `timeout` seconds), then let go of the file."""
        self.flush(timeout)
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._writer.join(timeout)
        self._swap(None, None)
        _OPEN_STORES.discard(self)

    # --- written by the queue (never waits) ---
    def save(self, job, histories: list[HistorySnapshot] | bytes | None = None) -> None:
        """Put one job's row (a `tlcore.serve.jobs.Job`, with its histories once it has ended:
        snapshots, or `pack()`ed already, which takes the time: a caller may do it beforehand)
        in the waiting list; the writer thread writes it. Returns at once."""
        wall = _wall_clock()
        blob = pack(histories, job.started) if isinstance(histories, list) else histories
        elapsed = (job.finished - job.started) if job.finished and job.started else None
        row = (
            job.id,
            learner_key(job.owner),
            job.tag,
            job.state,
            json.dumps(list(job.labels), ensure_ascii=False),
            json.dumps([c.to_dict() for c in job.configs], ensure_ascii=False),
            blob,
            wall(job.submitted),
            wall(job.started),
            wall(job.finished),
            elapsed,
            job.note,
            int(job.priority),
        )
        self._wait(job.id, row)

    def interrupt_unfinished(self) -> None:
        """At start-up: jobs written as queued or running belong to a server that stopped. Done
        first, before any row of this server's is written (the writer keeps the saved order)."""
        self._wait(_INTERRUPT, (time.time(),))

    def _wait(self, key: str, row: tuple) -> None:
        with self._cv:
            if self._closed:
                return
            old = self._waiting.get(key)
            if old is not None:
                self._waiting_size -= _size(old)
                if len(row) > 6 and row[6] is None:  # a row without histories keeps the ones waiting
                    row = row[:6] + (old[6],) + row[7:]
            self._waiting[key] = row
            self._waiting_size += _size(row)
            self._drop_over_budget()
            self._cv.notify_all()

    def _drop_over_budget(self) -> None:  # caller holds _cv
        """A file that cannot be written for long: keep the newest rows, give up the oldest
        finished ones (their runs are still in the server's memory)."""
        for key in list(self._waiting):
            if self._waiting_size <= self.waiting_bytes:
                return
            row = self._waiting[key]
            if key != _INTERRUPT and row[3] not in UNFINISHED:
                del self._waiting[key]
                self._waiting_size -= _size(row)
                self._dropped += 1
                logging.getLogger(__name__).warning("run store: job %s not saved (the waiting list is full)", key)

    # --- the writer thread ---
    def _write_forever(self) -> None:
        while True:
            with self._cv:
                while not self._closed and not (self._due() and (self._waiting or self._db is None)):
                    wait = None if not self._waiting and self._db is not None else max(0.01, self._next_try - time.monotonic())
                    self._cv.wait(wait if wait is not None else 5.0)
                if self._closed:
                    return
                batch = list(self._waiting.items())
            try:
                wrote = self._write(batch)
            except BaseException as error:  # noqa: BLE001 -- the writer must outlive any one file's problem
                logging.getLogger(__name__).exception("run store: writing failed")
                with self._cv:
                    self._fail(error)
                wrote = False
            with self._cv:
                if wrote:
                    for key, row in batch:
                        if self._waiting.get(key) is row:
                            del self._waiting[key]
                            self._waiting_size -= _size(row)
                    self._attempt, self._next_try = 0, 0.0
                else:
                    self._next_try = time.monotonic() + min(RETRY_MAX_S, self.retry_s * 2**self._attempt)
                    self._attempt = min(self._attempt + 1, 10)
                self._rounds += 1
                self._cv.notify_all()

    def _due(self) -> bool:  # caller holds _cv
        return time.monotonic() >= self._next_try

    def _write(self, batch: list[tuple[str, tuple]]) -> bool:
        """One attempt: (re)open the file if needed, then every waiting row in one transaction."""
        with self._cv:
            reopen = self._db is None or _identity(self.path) != self._opened  # moved aside or replaced
            stuck = self._state in _STUCK
            # Another program wrote the file since this store last did (a damaged page?): open it
            # again, so that the check reads the file and not this connection's cached pages.
            reopen = reopen or (not stuck and self._stamp is not None and _stamp(self.path) != self._stamp)
        if reopen:
            if not self._open():
                return False
        elif stuck:
            return False  # never written to; once moved aside or replaced, it is opened again
        with self._cv:
            db, check = self._db, not self._checked
        if check:  # a damaged page anywhere is found now, not at some later write
            try:
                answer = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            except sqlite3.Error as error:
                answer = error
            with self._cv:
                self._checked = not isinstance(answer, sqlite3.Error) or fault_of(answer) == DAMAGED
                if answer != "ok":
                    self._fail(answer if isinstance(answer, sqlite3.Error) else StoreError(DAMAGED, str(answer)))
                    return False
                self._stamp = _stamp(self.path)
        if not batch:
            return True
        finished: set[str] = set()  # learners with a finished job in this batch
        try:
            db.execute("BEGIN IMMEDIATE")  # waits busy_s at most for another program's lock
            for key, row in batch:
                if key == _INTERRUPT:
                    db.execute(
                        "UPDATE jobs SET state=?, finished_at=COALESCE(finished_at, ?) WHERE state IN (?, ?)",
                        (INTERRUPTED, row[0], *UNFINISHED),
                    )
                else:
                    db.execute(_UPSERT, row)
                    if row[3] not in UNFINISHED:
                        finished.add(row[1])
            for learner in sorted(finished):  # each learner's quota: their own oldest go
                db.execute(_PRUNE_LEARNER, (learner, *UNFINISHED, self.runs_per_learner, self.bytes_per_learner))
            if finished:
                _backstop(db, self.max_runs)
            db.execute("COMMIT")
            stamp = _stamp(self.path)  # a checkpoint may have written the file: that change is ours
        except (sqlite3.Error, OSError) as error:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            with self._cv:
                self._fail(error)
            return False
        with self._cv:
            self._stamp = stamp
            if self._state != OK:
                logging.getLogger(__name__).warning("run store %s: writing again", self.path)
            self._state, self._detail = OK, ""
        return True

    # --- opening (by __init__ and then the writer thread only; no lock held while SQLite waits) ---
    def _open(self) -> bool:
        """Open (or open again) the file: private, WAL, this version's schema. False, with the
        state set, when it cannot be used now."""
        db = reader = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create(self.path)
            if 0 < self.path.stat().st_size < 512:  # SQLite would take it for an empty database
                raise StoreError(NOT_SQLITE, "file is not a database (shorter than one page)")
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=self.busy_s, isolation_level=None)
            # The first read: a file that is not SQLite fails here (SQLITE_NOTADB) and is left exactly
            # as it is, its mode included (it may be anyone's).
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(NEWER, f"schema version {version}; this version of the app writes {SCHEMA_VERSION}")
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and "jobs" not in tables:  # touched in no way, its journal mode included
                raise StoreError(NOT_SQLITE, "an SQLite file of another program (no jobs table)")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut may lose the last commit, never corrupt
            if version < SCHEMA_VERSION:
                _migrate(db, version)
            reader = sqlite3.connect(self.path, check_same_thread=False, timeout=READ_BUSY_S, isolation_level=None)
            reader.execute("PRAGMA query_only=ON")
            columns = _columns(reader)
            _private(self.path)  # a run store: it and its -wal and -shm private
        except (sqlite3.Error, OSError, StoreError) as error:
            for conn in (db, reader):
                if conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
            self._swap(None, None)
            with self._cv:
                self._opened = _identity(self.path)
                self._fail(error)
            return False
        self._swap(db, reader, columns)
        return True

    def _swap(self, db: sqlite3.Connection | None, reader: sqlite3.Connection | None, columns: str = "") -> None:
        """Put new connections in place (None: none) and close the old ones."""
        with self._read_lock:  # no page reads through the old reader while it is closed
            with self._cv:
                old = (self._db, self._reader)
                self._db, self._reader, self._checked = db, reader, False
                if db is not None:
                    self._columns, self._opened = columns or self._columns, _identity(self.path)
                    self._stamp = _stamp(self.path)
                    if self._state in (*_STUCK, UNWRITABLE) or not self._waiting:
                        if self._state != OK:
                            logging.getLogger(__name__).warning("run store %s: usable again", self.path)
                        self._state, self._detail = OK, ""
            for conn in old:
                if conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()

    def _fail(self, error: BaseException) -> None:  # caller holds _cv
        state, detail = fault_of(error), str(error) or type(error).__name__
        if (state, detail) != (self._state, self._detail):
            logging.getLogger(__name__).warning(
                "run store %s: %s (%s); the class goes on, runs wait in memory", self.path, state, detail
            )
        self._state, self._detail = state, detail

    # --- read back (pages; never raise, never wait long) ---
    def _read(self, sql: str, args: tuple = ()) -> list[tuple] | None:
        with self._cv:
            reader, stuck = self._reader, self._state in _STUCK
        if reader is None or stuck:
            return None
        try:
            with self._read_lock:
                return reader.execute(sql, args).fetchall()
        except (sqlite3.Error, OSError) as error:
            with self._cv:
                if fault_of(error) in _STUCK:
                    self._fail(error)
            logging.getLogger(__name__).warning("run store: a read failed: %s", error)
            return None

    def load(self, job_id: str) -> StoredJob | None:
        """The stored job, or None (not stored, or the file cannot be read now)."""
        with self._cv:
            row = self._waiting.get(job_id)
        if row is None:
            rows = self._read(f"SELECT {self._columns} FROM jobs WHERE id=?", (job_id,))
            row = rows[0] if rows else None
        if row is None:
            return None
        try:
            return _stored(row)  # decoding (images are PNG) happens here, outside every lock
        except (ValueError, zlib.error, TypeError, KeyError) as error:
            logging.getLogger(__name__).warning("stored job %s cannot be read back: %s", job_id, error)
            return None

    def latest(self, owner: str, tag: str) -> str | None:
        """The id of this learner's most recent job of this kind, if any."""
        key = learner_key(owner)
        with self._cv:
            waiting = [
                (row[7], row[0]) for k, row in self._waiting.items() if k != _INTERRUPT and row[1] == key and row[2] == tag
            ]
        rows = (
            self._read(
                "SELECT submitted_at, id FROM jobs WHERE learner=? AND tag=? ORDER BY submitted_at DESC LIMIT 1", (key, tag)
            )
            or []
        )
        found = max([*waiting, *rows], default=None)
        return found[1] if found else None

    def times(self, since: float = 0.0) -> list[JobTimes]:
        """Every job on disk submitted at or after `since` (Unix time), oldest first: its id,
        learner key and clock values, no history decoded (for load tests and timing tools).
        Empty when the file cannot be read now."""
        rows = self._read(
            "SELECT id, learner, submitted_at, started_at, finished_at FROM jobs WHERE submitted_at >= ?"
            " ORDER BY submitted_at, id",
            (since,),
        )
        return [JobTimes(*row) for row in rows or []]

    def count(self, owner: str | None = None) -> int:
        """Jobs on disk, everyone's or one learner's (0 when the file cannot be read)."""
        rows = (
            self._read("SELECT COUNT(*) FROM jobs")
            if owner is None
            else self._read("SELECT COUNT(*) FROM jobs WHERE learner=?", (learner_key(owner),))
        )
        return rows[0][0] if rows else 0


_OPEN_STORES: weakref.WeakSet[RunStore] = weakref.WeakSet()


def fair_keep(counts: dict[str, int], limit: int) -> dict[str, int]:
    """How many finished jobs each learner keeps so that at most `limit` stay in all, taking one
    at a time from whoever has the most (a class's quiet learners keep theirs while one who posts
    thousands loses their own oldest). `counts`: learner -> finished jobs."""
    keep = dict(counts)
    most = [(-n, learner) for learner, n in counts.items()]
    heapq.heapify(most)
    for _ in range(max(0, sum(counts.values()) - limit)):
        n, learner = heapq.heappop(most)
        keep[learner] = -n - 1
        heapq.heappush(most, (n + 1, learner))
    return keep


def _backstop(db: sqlite3.Connection, max_runs: int) -> None:
    """Everyone's finished jobs past `max_runs` (the backstop under the quotas per learner): each
    learner's share by `fair_keep`, their own oldest going first; then, only if every learner's
    newest of each page (always kept by the share) is still too many, the oldest of everyone."""
    counts = dict(db.execute("SELECT learner, COUNT(*) FROM jobs WHERE state NOT IN (?, ?) GROUP BY learner", UNFINISHED))
    if sum(counts.values()) <= max_runs:
        return
    for learner, keep in fair_keep(counts, max_runs).items():
        if keep < counts[learner]:
            db.execute(_PRUNE_LEARNER, (learner, *UNFINISHED, keep, _ANY_SIZE))
    db.execute(
        "DELETE FROM jobs WHERE state NOT IN (?, ?) AND id NOT IN (SELECT id FROM jobs WHERE state NOT IN"
        " (?, ?) ORDER BY finished_at DESC LIMIT ?)",
        (*UNFINISHED, *UNFINISHED, max_runs),
    )


@atexit.register
def _flush_at_exit() -> None:
    """A server stopped on purpose writes what waits (a few seconds at most)."""
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.flush(3.0)


def _size(row: tuple) -> int:
    return sum(len(v) for v in row if isinstance(v, (str, bytes)))


def _migrate(db: sqlite3.Connection, version: int) -> None:
    """From `version` to SCHEMA_VERSION in one transaction; a new file gets the current schema."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='jobs'").fetchone():
            steps = _CREATE  # a new, empty file (_open refuses another program's database)
        else:
            steps = tuple(statement for step in range(version, SCHEMA_VERSION) for statement in _MIGRATIONS[step])
        for statement in steps:
            db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _wall_clock():
    """Turn the queue's time.monotonic() values into Unix times (what survives a restart)."""
    offset = time.time() - time.monotonic()
    return lambda mono: None if mono is None else mono + offset


def pack(histories: list[HistorySnapshot], started: float | None) -> bytes:
    """A job's histories as stored: compressed JSON, misclassified images as PNG."""
    # Arrival times are kept relative to the job's start: only their differences mean anything.
    origin = started or 0.0
    data = [
        snap.to_dict() | {"times": [round(t - origin, 3) for t in snap.times], "images": _mistake_images(snap)}
        for snap in histories
    ]
    return zlib.compress(json.dumps(data, ensure_ascii=False, default=_plain).encode("utf-8"), 6)


def _mistake_images(snap: HistorySnapshot) -> list[str | None]:
    """The misclassified examples' images (H, W, 3) uint8 as PNG (base64): the results page
    shows them, and JSON cannot hold an array. A few KB each at the app's image sizes."""
    import base64

    from PIL import Image

    out = []
    for item in snap.result.misclassified if snap.result else []:
        image = item.get("image") if isinstance(item, dict) else None
        if image is None or getattr(image, "ndim", 0) != 3:
            out.append(None)
            continue
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=6)
        out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
    return out


def _with_images(snap: HistorySnapshot, images: list[str | None]) -> HistorySnapshot:
    if not any(images) or not isinstance(snap.final, Done):
        return snap
    import base64

    import numpy as np
    from PIL import Image

    items = [dict(item) for item in snap.final.result.misclassified]
    for item, png in zip(items, images):
        if png:
            item["image"] = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"))
    final = Done(dataclasses.replace(snap.final.result, misclassified=items))
    return HistorySnapshot(snap.events[:-1] + (final,), snap.config, snap.times)


def _plain(value: Any) -> Any:
    """What json_safe let through but json cannot write: numpy scalars and the like."""
    if hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)


def _stored(row) -> StoredJob:
    (job_id, learner, tag, state, labels, configs, blob, submitted, started, finished, elapsed, note, priority) = row
    configs = json.loads(configs)
    runs = []
    if blob:
        for data in json.loads(zlib.decompress(blob)):
            runs.append(_with_images(HistorySnapshot.from_dict(data, tuple(data.get("times", ()))), data.get("images") or []))
    runs += [HistorySnapshot((), config) for config in configs[len(runs) :]]
    if state == INTERRUPTED:  # say why, in the run itself: the page shows a run's Failed as its end
        runs = _interrupted(runs)
    return StoredJob(
        job_id,
        learner,
        tag,
        state,
        json.loads(labels),
        configs,
        runs,
        submitted,
        started,
        finished,
        elapsed,
        note or "",
        int(priority or 0),
    )


def _interrupted(runs: list[HistorySnapshot]) -> list[HistorySnapshot]:
    failed = interrupted_message()
    return [
        r
        if r.final is not None
        else HistorySnapshot(r.events + (failed,), r.config, r.times + (r.times[-1] if r.times else 0.0,) * bool(r.times))
        for r in runs
    ]


def as_interrupted(job: StoredJob) -> StoredJob:
    """A job stored as queued or running, read back by a server that does not run it: it was
    interrupted (the store may not have marked it yet: a file locked at start)."""
    if job.state not in UNFINISHED:
        return job
    return dataclasses.replace(job, state=INTERRUPTED, runs=_interrupted(job.runs))


# ----------------------------------------------------------------------------- export


def export_rows(job: StoredJob) -> list[dict[str, Any]]:
    """One flat row per run of a job (the CSV form): who (hashed), when, settings, outcome."""
    rows = []
    for i, (label, snap) in enumerate(zip(job.labels, job.runs)):
        final, result = snap.final, snap.result
        rows.append(
            {
                "job": job.id,
                "run": i,
                "learner": job.learner[:12],
                "tag": job.tag,
                "job_state": job.state,
                "note": job.note,
                "priority": job.priority,
                "label": label,
                "outcome": type(final).__name__ if final else "",
                "message": getattr(final, "message", ""),
                "submitted": _iso(job.submitted_at),
                "started": _iso(job.started_at),
                "finished": _iso(job.finished_at),
                "elapsed_s": job.elapsed_s,
                "val_acc": result.val_acc if result else None,
                "best_val_acc": result.best_val_acc if result else None,
                "steps": len(snap.steps),
                "config": json.dumps(snap.config or {}, ensure_ascii=False, sort_keys=True),
            }
        )
    return rows


def export_record(job: StoredJob) -> dict[str, Any]:
    """The whole job (the JSONL form): everything in `export_rows`, plus each run's events."""
    return {
        "job": job.id,
        "learner": job.learner[:12],
        "tag": job.tag,
        "state": job.state,
        "labels": job.labels,
        "submitted": _iso(job.submitted_at),
        "started": _iso(job.started_at),
        "finished": _iso(job.finished_at),
        "elapsed_s": job.elapsed_s,
        "note": job.note,
        "priority": job.priority,
        "configs": job.configs,
        "runs": [json_safe(snap.to_dict()) for snap in job.runs],
    }


def _iso(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)) if stamp else ""


def _read_only_connection(path: str | os.PathLike) -> sqlite3.Connection:
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


def backup(source: RunStore | str | os.PathLike, out: str | os.PathLike) -> int:
    """Copy the store to `out` (a new file, 0600, one file without -wal) with SQLite's online
    backup API: one consistent snapshot, taken while a server may be writing (WAL: the copy's
    read never blocks the server's writes). Returns the jobs in the copy. An existing `out` is
    never overwritten (FileExistsError)."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists")
    src = _read_only_connection(source.path if isinstance(source, RunStore) else source)
    try:
        _columns(src)  # a run store at all: a jobs table
        out.parent.mkdir(parents=True, exist_ok=True)
        _create(out)
        dst = sqlite3.connect(out)
        try:
            src.backup(dst)  # every page in one step: one read transaction, one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # a copy is one file
            return dst.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()


def read_only(path: str | os.PathLike) -> Iterator[StoredJob]:
    """Every job stored in the file at `path`, oldest first, read in pages of 100 (the file can
    be large) from a read-only connection: nothing in the file, nor its mode, changes."""
    db = _read_only_connection(path)
    try:
        columns = _columns(db)
        after = (-1.0, "")
        while True:
            rows = db.execute(
                f"SELECT {columns} FROM jobs WHERE (submitted_at, id) > (?, ?) ORDER BY submitted_at, id LIMIT 100", after
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _stored(row)
            after = (rows[-1][7], rows[-1][0])
    finally:
        db.close()


def export(source: RunStore | str | os.PathLike, out, counted: list[int] | None = None) -> int:
    """Write every stored job to `out` (.csv: one row per run; else JSON lines, one job each);
    `counted` (a one-item list), when given, holds the jobs written so far if reading fails."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    counted = counted if counted is not None else [0]
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = None
        for job in read_only(source.path if isinstance(source, RunStore) else source):
            if out.suffix.lower() == ".csv":
                for row in export_rows(job):
                    if writer is None:
                        writer = csv.DictWriter(f, fieldnames=[safe_cell(k) for k in row])
                        writer.writeheader()
                    writer.writerow(safe_row(row))  # labels, tags, messages: no cell runs as a formula
            else:
                f.write(json.dumps(export_record(job), ensure_ascii=False, default=_plain) + "\n")
            counted[0] += 1
    return counted[0]


def register_cli(sub) -> None:
    p = sub.add_parser(
        "runs",
        help="the class server's stored runs (SQLite): export them, or back them up",
        description="Runs the class server finished (and those a restart interrupted) are kept in "
        "SQLite ($TLS_STATE_DIR/runs.sqlite). Learners appear as a short hash of their id.",
    )
    runs = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    for name, func, out_help, action_help in (
        (
            "export",
            _cmd_export,
            "output file; .csv for a table, anything else for JSON lines",
            "write every stored run to a .jsonl (whole jobs, events included) or .csv (one row per run) file; "
            "the store is opened read-only",
        ),
        (
            "backup",
            _cmd_backup,
            "the copy: a new file (an existing one is never overwritten)",
            "copy the store to a new SQLite file while the server runs (SQLite's online backup API: one "
            "consistent snapshot; the server's file is only read)",
        ),
    ):
        action = runs.add_parser(name, help=action_help)
        action.add_argument("--out", required=True, help=out_help)
        action.add_argument("--db", default="", help="the SQLite file (default: $TLS_STATE_DIR/runs.sqlite)")
        action.set_defaults(func=func)


_EXPORT_FAULTS = {
    LOCKED: "it is locked by another program; try again in a moment",
    DAMAGED: "the file is damaged",
    NOT_SQLITE: "it is not a run store (not an SQLite file, or no jobs table)",
    UNWRITABLE: "it cannot be read",
}


def _cmd_export(args) -> int:
    """One line on stderr and exit status 1 for a file that cannot be read: no traceback."""
    path = Path(args.db) if args.db else default_path()
    if not path.exists():
        print(f"error: no stored runs at {path}", file=sys.stderr)
        return 1
    counted = [0]
    try:
        jobs = export(path, args.out, counted)
    except (sqlite3.Error, StoreError) as error:
        why, detail = _EXPORT_FAULTS.get(fault_of(error), "it cannot be read"), str(error)
    except (ValueError, zlib.error) as error:  # a row whose contents cannot be decoded
        why, detail = _EXPORT_FAULTS[DAMAGED], str(error)
    except OSError as error:
        why, detail = f"cannot write {args.out}", str(error)
    else:
        print(f"wrote {jobs} job(s) to {args.out}")
        return 0
    partial = f"; {counted[0]} job(s) read before it are in {args.out}" if counted[0] else ""
    print(f"error: {path}: {why} ({detail}){partial}".replace("\n", " "), file=sys.stderr)
    return 1


def _cmd_backup(args) -> int:
    """One line on stderr and exit status 1 when no copy can be made: no traceback."""
    path = Path(args.db) if args.db else default_path()
    if not path.exists():
        print(f"error: no stored runs at {path}", file=sys.stderr)
        return 1
    try:
        jobs = backup(path, args.out)
    except FileExistsError:
        print(f"error: {args.out} exists; name a new file (a backup never overwrites one)", file=sys.stderr)
        return 1
    except (sqlite3.Error, StoreError) as error:
        Path(args.out).unlink(missing_ok=True)
        why = _EXPORT_FAULTS.get(fault_of(error), "it cannot be read")
        print(f"error: {path}: {why} ({error})".replace("\n", " "), file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write {args.out} ({error})", file=sys.stderr)
        return 1
    print(f"copied {jobs} job(s) to {args.out}")
    return 0


def open_default(limits=None) -> RunStore | None:
    """The server's store, with the class's quotas per learner (`limits`: a tlcore.serve.class_limits.Caps;
    None: the defaults). A file that cannot be used now (locked, damaged, not SQLite, an
    unwritable folder) still gives a store: it says so in `health()` and writes once it can.
    None only when the store itself cannot be made (logged): the class goes on without it."""
    try:
        if limits is None:
            return RunStore()
        return RunStore(runs_per_learner=limits.stored_runs_per_learner, mb_per_learner=limits.stored_mb_per_learner)
    except Exception as error:  # noqa: BLE001 -- persistence must never stop a class
        logging.getLogger(__name__).warning("finished runs will not be stored: %s", error)
        return None
