"""The run store's SQLite schema: the jobs table, its version and migrations, the columns a file
of any version is read with, and the row a job is written as (one upsert).

- Versioned: `PRAGMA user_version` holds the schema's version; an older file is migrated
  when it is opened (version 0, the first unversioned schema, gains `note` and `priority`).
- Rows are whole jobs, histories compressed JSON (tlcore.serve.store.codec).

Not for: which rows are kept (tlcore.serve.store.quotas), opening the file or writing it
(tlcore.serve.store.run_store).
"""

from __future__ import annotations

import contextlib
import sqlite3

from tlcore.serve.store.faults import NOT_SQLITE, StoreError

UNFINISHED = ("queued", "running")
INTERRUPTED = "interrupted"
SCHEMA_VERSION = 1  # PRAGMA user_version; 0 is the first, unversioned schema (no note, no priority)

# The current schema, as a new file gets it.
CREATE = (
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
MIGRATIONS = {
    0: (
        "ALTER TABLE jobs ADD COLUMN note TEXT NOT NULL DEFAULT ''",  # 0: the first, unversioned schema
        "ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0",
    ),
}

NAMES = (
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
DEFAULTS = ("''", "''", "''", "''", "'[]'", "'[]'", "NULL", "0", "NULL", "NULL", "NULL", "''", "0")
COLUMNS = ", ".join(NAMES)
UPSERT = (
    f"INSERT INTO jobs ({COLUMNS}) VALUES ({', '.join('?' * len(NAMES))}) ON CONFLICT(id) DO UPDATE SET"
    " state=excluded.state, histories=COALESCE(excluded.histories, histories),"
    " started_at=excluded.started_at, finished_at=excluded.finished_at, elapsed_s=excluded.elapsed_s,"
    " note=excluded.note, priority=excluded.priority"
)


def columns(db: sqlite3.Connection) -> str:
    """The SELECT list for a file of any version (an unversioned file has no note or priority)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    if not have:
        raise StoreError(NOT_SQLITE, "no jobs table")
    return ", ".join(name if name in have else f"{default} AS {name}" for name, default in zip(NAMES, DEFAULTS))


def migrate(db: sqlite3.Connection, version: int) -> None:
    """From `version` to SCHEMA_VERSION in one transaction; a new file gets the current schema."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='jobs'").fetchone():
            steps = CREATE  # a new, empty file (RunStore._open refuses another program's database)
        else:
            steps = tuple(statement for step in range(version, SCHEMA_VERSION) for statement in MIGRATIONS[step])
        for statement in steps:
            db.execute(statement)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
