"""The server's run store: `RunStore`, one SQLite file written by one writer thread, read by the
pages, and what it does when the file cannot be used (locked, damaged, replaced, unwritable).

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
- The quotas per learner and the backstop (tlcore.serve.store.quotas) run in the writer's
  transaction, after a finished job's row.
- A server stopped on purpose writes what waits (atexit, a few seconds at most).

Not for: the schema (tlcore.serve.store.schema), rows <-> objects (tlcore.serve.store.codec),
an admin's export or backup (tlcore.serve.store.exports), the states' names (tlcore.serve.store.faults).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import threading
import time
import weakref
import zlib
from pathlib import Path

from tlcore.core import settings
from tlcore.core.events import HistorySnapshot
from tlcore.serve.class_limits import STORED_MB_PER_LEARNER, STORED_RUNS_PER_LEARNER
from tlcore.serve.store.codec import JobTimes, StoredJob, job_row, learner_key, stored
from tlcore.serve.store.faults import DAMAGED, NEWER, NOT_SQLITE, OK, STUCK, UNWRITABLE, StoreError, StoreHealth, fault_of
from tlcore.serve.store.files import create_private, default_path, identity, make_private, stamp
from tlcore.serve.store.quotas import backstop, prune_learner
from tlcore.serve.store.schema import COLUMNS, INTERRUPTED, SCHEMA_VERSION, UNFINISHED, UPSERT, columns, migrate

# The backstop, everyone's finished jobs together: $TLS_MAX_STORED_RUNS (2000; a default fine-tune is about 60 KB)
BUSY_S = 1.0  # one write attempt waits at most this long for another program's lock
READ_BUSY_S = 0.3  # a page's read waits at most this long
RETRY_S, RETRY_MAX_S = 1.0, 30.0  # a failed write is tried again after 1, 2, 4, ... 30 s
# Rows kept in memory for a file that cannot be written: $TLS_STORE_WAITING_MB (64)
FINAL_WAIT_S = 2.0  # a healthy store: the worker waits this long at most for a finished job's row
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
        self._columns = COLUMNS
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
            while self._waiting and not self._closed and not (self._state in STUCK and self._rounds > first):
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
        self._wait(job.id, job_row(job, histories))

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
            reopen = self._db is None or identity(self.path) != self._opened  # moved aside or replaced
            stuck = self._state in STUCK
            # Another program wrote the file since this store last did (a damaged page?): open it
            # again, so that the check reads the file and not this connection's cached pages.
            reopen = reopen or (not stuck and self._stamp is not None and stamp(self.path) != self._stamp)
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
                self._stamp = stamp(self.path)
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
                    db.execute(UPSERT, row)
                    if row[3] not in UNFINISHED:
                        finished.add(row[1])
            for learner in sorted(finished):  # each learner's quota: their own oldest go
                prune_learner(db, learner, self.runs_per_learner, self.bytes_per_learner)
            if finished:
                backstop(db, self.max_runs)
            db.execute("COMMIT")
            written = stamp(self.path)  # a checkpoint may have written the file: that change is ours
        except (sqlite3.Error, OSError) as error:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            with self._cv:
                self._fail(error)
            return False
        with self._cv:
            self._stamp = written
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
            create_private(self.path)
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
                migrate(db, version)
            reader = sqlite3.connect(self.path, check_same_thread=False, timeout=READ_BUSY_S, isolation_level=None)
            reader.execute("PRAGMA query_only=ON")
            select = columns(reader)
            make_private(self.path)  # a run store: it and its -wal and -shm private
        except (sqlite3.Error, OSError, StoreError) as error:
            for conn in (db, reader):
                if conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        conn.close()
            self._swap(None, None)
            with self._cv:
                self._opened = identity(self.path)
                self._fail(error)
            return False
        self._swap(db, reader, select)
        return True

    def _swap(self, db: sqlite3.Connection | None, reader: sqlite3.Connection | None, columns: str = "") -> None:
        """Put new connections in place (None: none) and close the old ones."""
        with self._read_lock:  # no page reads through the old reader while it is closed
            with self._cv:
                old = (self._db, self._reader)
                self._db, self._reader, self._checked = db, reader, False
                if db is not None:
                    self._columns, self._opened = columns or self._columns, identity(self.path)
                    self._stamp = stamp(self.path)
                    if self._state in (*STUCK, UNWRITABLE) or not self._waiting:
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
            reader, stuck = self._reader, self._state in STUCK
        if reader is None or stuck:
            return None
        try:
            with self._read_lock:
                return reader.execute(sql, args).fetchall()
        except (sqlite3.Error, OSError) as error:
            with self._cv:
                if fault_of(error) in STUCK:
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
            return stored(row)  # decoding (images are PNG) happens here, outside every lock
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


@atexit.register
def _flush_at_exit() -> None:
    """A server stopped on purpose writes what waits (a few seconds at most)."""
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.flush(3.0)


def _size(row: tuple) -> int:
    return sum(len(v) for v in row if isinstance(v, (str, bytes)))


def open_default(limits=None) -> RunStore | None:
    """The server's store, with the class's quotas per learner (`limits`: a tlcore.serve.class_limits.ClassLimits;
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
