"""Finished runs on disk (SQLite), so a server restart loses no learner's work.

The job queue keeps its jobs in memory; this store keeps a copy of each one: a row when it
is submitted, again when it starts, and its whole event stream when it ends. After a restart
a learner (the same cookie) finds their runs again (`JobQueue.get` and `JobQueue.latest` read
them back from here), and a job that was queued or running when the server stopped is marked
`interrupted` instead of silently vanishing. An admin exports everything with
`python -m tlcore runs export --out runs.jsonl` (or `.csv`).

What it is not: a queue (nothing is ever run from here) or a results database to query
for science; rows are whole jobs, histories compressed JSON.

- Python's own `sqlite3`, WAL mode (readers never wait on the writer), one connection
  guarded by a lock (the queue's worker threads and the pages' threads all write here).
- The learner's id is a secret (it is their cookie): only its SHA-256 is stored, so the
  file, an export or a backup cannot be used to act as a learner.
- Bounded: the latest `max_runs` finished jobs are kept (`$TLS_MAX_STORED_RUNS`, 2000).
- The file is `$TLS_STATE_DIR/runs.sqlite` (default `~/.cache/tlstudio/`, beside the time
  estimator's `timings.json`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlcore.events import Done, Failed, HistorySnapshot, json_safe
from tlcore.messages import Message

MAX_RUNS = int(os.environ.get("TLS_MAX_STORED_RUNS", "2000"))  # a default fine-tune is about 60 KB
UNFINISHED = ("queued", "running")
INTERRUPTED = "interrupted"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
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
    elapsed_s REAL
);
CREATE INDEX IF NOT EXISTS jobs_learner_tag ON jobs (learner, tag, submitted_at);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_at);
"""


def default_path() -> Path:
    """`$TLS_STATE_DIR/runs.sqlite`; the state folder is chosen as for the time estimates."""
    from tlcore.estimate import state_file

    return state_file().parent / "runs.sqlite"


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


def interrupted_message() -> Failed:
    message = Message("run.interrupted")
    return Failed(str(message), message.key)


class RunStore:
    def __init__(self, path: str | os.PathLike | None = None, *, max_runs: int = MAX_RUNS):
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_runs = max_runs
        self._lock = threading.Lock()
        # One connection shared by the queue's threads; the lock makes its use serial.
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0, isolation_level=None)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a power cut may lose the last commit, never corrupt
            self._db.executescript(_SCHEMA)
        try:
            self.path.chmod(0o600)  # learners' runs: readable by the server's user only
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- written by the queue ---
    def save(self, job, histories: list[HistorySnapshot] | bytes | None = None) -> None:
        """Write (or rewrite) one job: a `tlcore.jobs.Job`, with its histories once it has ended
        (snapshots, or `pack()`ed already, which takes the time: a caller may do it beforehand)."""
        wall = _wall_clock()
        blob = pack(histories, job.started) if isinstance(histories, list) else histories
        elapsed = (job.finished - job.started) if job.finished and job.started else None
        row = (job.id, learner_key(job.owner), job.tag, job.state, json.dumps(list(job.labels), ensure_ascii=False),
               json.dumps([c.to_dict() for c in job.configs], ensure_ascii=False), blob,
               wall(job.submitted), wall(job.started), wall(job.finished), elapsed)
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, learner, tag, state, labels, configs, histories, submitted_at, started_at,"
                " finished_at, elapsed_s) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
                " state=excluded.state, histories=COALESCE(excluded.histories, histories),"
                " started_at=excluded.started_at, finished_at=excluded.finished_at, elapsed_s=excluded.elapsed_s",
                row)
            if job.state not in UNFINISHED:
                self._prune()

    def interrupt_unfinished(self) -> int:
        """At start-up: jobs written as queued or running belong to a server that stopped."""
        with self._lock:
            cur = self._db.execute("UPDATE jobs SET state=?, finished_at=COALESCE(finished_at, ?) "
                                   "WHERE state IN (?, ?)", (INTERRUPTED, time.time(), *UNFINISHED))
            return cur.rowcount

    def _prune(self) -> None:  # caller holds the lock
        self._db.execute(
            "DELETE FROM jobs WHERE state NOT IN (?, ?) AND id NOT IN (SELECT id FROM jobs WHERE state NOT IN (?, ?)"
            " ORDER BY finished_at DESC LIMIT ?)", (*UNFINISHED, *UNFINISHED, self.max_runs))

    # --- read back ---
    def load(self, job_id: str) -> StoredJob | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _stored(row) if row else None

    def latest(self, owner: str, tag: str) -> str | None:
        """The id of this learner's most recent job of this kind, if any."""
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE learner=? AND tag=? ORDER BY submitted_at DESC LIMIT 1",
                                   (learner_key(owner), tag)).fetchone()
        return row[0] if row else None

    def all(self) -> Iterator[StoredJob]:
        """Every stored job, oldest first (read in pages of 100: the file can be large)."""
        after = (-1.0, "")
        while True:
            with self._lock:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE (submitted_at, id) > (?, ?) "
                                        "ORDER BY submitted_at, id LIMIT 100", after).fetchall()
            if not rows:
                return
            for row in rows:
                yield _stored(row)
            after = (rows[-1][7], rows[-1][0])

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


_COLUMNS = "id, learner, tag, state, labels, configs, histories, submitted_at, started_at, finished_at, elapsed_s"


def _wall_clock():
    """Turn the queue's time.monotonic() values into Unix times (what survives a restart)."""
    offset = time.time() - time.monotonic()
    return lambda mono: None if mono is None else mono + offset


def pack(histories: list[HistorySnapshot], started: float | None) -> bytes:
    """A job's histories as stored: compressed JSON, misclassified images as PNG."""
    # Arrival times are kept relative to the job's start: only their differences mean anything.
    origin = started or 0.0
    data = [snap.to_dict() | {"times": [round(t - origin, 3) for t in snap.times], "images": _mistake_images(snap)}
            for snap in histories]
    return zlib.compress(json.dumps(data, ensure_ascii=False, default=_plain).encode("utf-8"), 6)


def _mistake_images(snap: HistorySnapshot) -> list[str | None]:
    """The misclassified examples' images (H, W, 3) uint8 as PNG (base64): the results page
    shows them, and JSON cannot hold an array. A few KB each at the app's image sizes."""
    import base64

    from PIL import Image

    out = []
    for item in (snap.result or {}).get("misclassified") or []:
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

    items = [dict(item) for item in snap.final.result.get("misclassified") or []]
    for item, png in zip(items, images):
        if png:
            item["image"] = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB"))
    final = Done(snap.final.result | {"misclassified": items})
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
    (job_id, learner, tag, state, labels, configs, blob, submitted, started, finished, elapsed) = row
    configs = json.loads(configs)
    runs = []
    if blob:
        for data in json.loads(zlib.decompress(blob)):
            runs.append(_with_images(HistorySnapshot.from_dict(data, tuple(data.get("times", ()))),
                                     data.get("images") or []))
    runs += [HistorySnapshot((), config) for config in configs[len(runs):]]
    if state == INTERRUPTED:  # say why, in the run itself: the page shows a run's Failed as its end
        failed = interrupted_message()
        runs = [r if r.final is not None else
                HistorySnapshot(r.events + (failed,), r.config, r.times + (r.times[-1] if r.times else 0.0,) * bool(r.times))
                for r in runs]
    return StoredJob(job_id, learner, tag, state, json.loads(labels), configs, runs, submitted, started, finished,
                     elapsed)


# ----------------------------------------------------------------------------- export


def export_rows(job: StoredJob) -> list[dict[str, Any]]:
    """One flat row per run of a job (the CSV form): who (hashed), when, settings, outcome."""
    rows = []
    for i, (label, snap) in enumerate(zip(job.labels, job.runs)):
        final, result = snap.final, snap.result or {}
        rows.append({
            "job": job.id, "run": i, "learner": job.learner[:12], "tag": job.tag, "job_state": job.state,
            "label": label, "outcome": type(final).__name__ if final else "",
            "message": getattr(final, "message", ""),
            "submitted": _iso(job.submitted_at), "started": _iso(job.started_at), "finished": _iso(job.finished_at),
            "elapsed_s": job.elapsed_s,
            "val_acc": result.get("val_acc"), "best_val_acc": result.get("best_val_acc"),
            "steps": len(snap.steps), "config": json.dumps(snap.config or {}, ensure_ascii=False, sort_keys=True),
        })
    return rows


def export_record(job: StoredJob) -> dict[str, Any]:
    """The whole job (the JSONL form): everything in `export_rows`, plus each run's events."""
    return {
        "job": job.id, "learner": job.learner[:12], "tag": job.tag, "state": job.state, "labels": job.labels,
        "submitted": _iso(job.submitted_at), "started": _iso(job.started_at), "finished": _iso(job.finished_at),
        "elapsed_s": job.elapsed_s, "configs": job.configs,
        "runs": [json_safe(snap.to_dict()) for snap in job.runs],
    }


def _iso(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)) if stamp else ""


def export(store: RunStore, out) -> int:
    """Write every stored job to `out` (.csv: one row per run; else JSON lines, one job each)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    jobs = 0
    with open(out, "w", encoding="utf-8", newline="") as f:
        writer = None
        for job in store.all():
            jobs += 1
            if out.suffix.lower() == ".csv":
                for row in export_rows(job):
                    if writer is None:
                        writer = csv.DictWriter(f, fieldnames=list(row))
                        writer.writeheader()
                    writer.writerow(row)
            else:
                f.write(json.dumps(export_record(job), ensure_ascii=False, default=_plain) + "\n")
    return jobs


def register_cli(sub) -> None:
    p = sub.add_parser("runs", help="the class server's stored runs (SQLite): export them",
                       description="Runs the class server finished (and those a restart interrupted) are kept in "
                                   "SQLite ($TLS_STATE_DIR/runs.sqlite). Learners appear as a short hash of their id.")
    runs = p.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    e = runs.add_parser("export", help="write every stored run to a .jsonl (whole jobs, events included) or .csv "
                                       "(one row per run) file")
    e.add_argument("--out", required=True, help="output file; .csv for a table, anything else for JSON lines")
    e.add_argument("--db", default="", help="the SQLite file (default: $TLS_STATE_DIR/runs.sqlite)")
    e.set_defaults(func=_cmd_export)


def _cmd_export(args) -> int:
    path = Path(args.db) if args.db else default_path()
    if not path.exists():
        print(f"error: no stored runs at {path}", file=sys.stderr)
        return 1
    store = RunStore(path)
    try:
        jobs = export(store, args.out)
    finally:
        store.close()
    print(f"wrote {jobs} job(s) to {args.out}")
    return 0


def open_default() -> RunStore | None:
    """The server's store, or None (and a logged warning) when the state folder is unwritable:
    a class goes on without persistence rather than not at all."""
    try:
        return RunStore()
    except (OSError, sqlite3.Error) as error:
        logging.getLogger(__name__).warning("finished runs will not be stored: %s", error)
        return None
