"""Finished runs on disk (SQLite), so a server restart loses no learner's work: one package, one
subject a module, and this facade that keeps the names the queue, the pages, the tools and the
tests use (`store.RunStore`, `store.learner_key`, `store.open_default`, ...).

The job queue keeps its jobs in memory; this store keeps a copy of each one: a row when it
is submitted, again when it starts, and its whole event stream when it ends. After a restart
a learner (the same cookie) finds their runs again (`JobQueue.get` and `JobQueue.latest` read
them back from here), and a job that was queued or running when the server stopped is marked
`interrupted` instead of silently vanishing. An admin exports everything with
`python -m tlcore runs export --out runs.jsonl` (or `.csv`), reading the file read-only.

- faults: the store's states (`health()`: ok, locked, damaged, ...), StoreError, `fault_of`
- files: the file (`$TLS_STATE_DIR/runs.sqlite`), made private, its identity, read-only connections
- schema: the jobs table, its version and migrations, the columns read and the row written
- quotas: each learner's quota and the backstop for everyone's (`fair_keep`)
- codec: rows <-> objects (`StoredJob`, `pack`, `learner_key`, `as_interrupted`)
- run_store: `RunStore` (one writer thread, the pages' reads, every fault of the file), `open_default`
- exports: `export` (.jsonl, .csv) and `backup` (SQLite's online backup), read-only
- cli: `python -m tlcore runs export|backup`

Not for: a queue (nothing is ever run from here: tlcore.serve.jobs) or a results database to
query for science; rows are whole jobs, histories compressed JSON.
"""

from __future__ import annotations

from tlcore.serve.store.codec import JobTimes, StoredJob, as_interrupted, interrupted_message, learner_key, pack
from tlcore.serve.store.exports import backup, export, export_record, export_rows, read_only
from tlcore.serve.store.faults import (
    DAMAGED,
    LOCKED,
    NEWER,
    NOT_SQLITE,
    OK,
    UNWRITABLE,
    StoreError,
    StoreHealth,
    fault_of,
)
from tlcore.serve.store.files import default_path
from tlcore.serve.store.quotas import fair_keep
from tlcore.serve.store.run_store import (
    BUSY_S,
    FINAL_WAIT_S,
    READ_BUSY_S,
    RETRY_MAX_S,
    RETRY_S,
    RunStore,
    open_default,
)
from tlcore.serve.store.schema import INTERRUPTED, SCHEMA_VERSION, UNFINISHED

__all__ = [
    "BUSY_S", "DAMAGED", "FINAL_WAIT_S", "INTERRUPTED", "LOCKED", "NEWER", "NOT_SQLITE", "OK", "READ_BUSY_S",
    "RETRY_MAX_S", "RETRY_S", "SCHEMA_VERSION", "UNFINISHED", "UNWRITABLE", "JobTimes", "RunStore", "StoreError",
    "StoreHealth", "StoredJob", "as_interrupted", "backup", "default_path", "export", "export_record", "export_rows",
    "fair_keep", "fault_of", "interrupted_message", "learner_key", "open_default", "pack", "read_only",
]  # fmt: skip
