"""The run store read by an admin: every stored job exported (`.jsonl` whole jobs, `.csv` one row
per run), and a backup copy taken while a server may be writing; both read the file read-only.

- An admin exports everything with `python -m tlcore runs export --out runs.jsonl` (or `.csv`),
  reading the file read-only; learners appear as a short hash of their id.
- A copy while the server runs: `python -m tlcore runs backup --out copy.sqlite` (SQLite's
  online backup API, one consistent snapshot; never copy the file with `cp`).

What it is not: a results database to query for science (rows are whole jobs).
Not for: the commands' flags and their one-line errors (tlcore.serve.store.cli), the server's
own reads (tlcore.serve.store.run_store).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tlcore.core.events import json_safe
from tlcore.core.spreadsheet import safe_cell, safe_row
from tlcore.serve.store.codec import StoredJob, plain, stored
from tlcore.serve.store.files import create_private, read_only_connection
from tlcore.serve.store.run_store import RunStore
from tlcore.serve.store.schema import columns


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


def backup(source: RunStore | str | os.PathLike, out: str | os.PathLike) -> int:
    """Copy the store to `out` (a new file, 0600, one file without -wal) with SQLite's online
    backup API: one consistent snapshot, taken while a server may be writing (WAL: the copy's
    read never blocks the server's writes). Returns the jobs in the copy. An existing `out` is
    never overwritten (FileExistsError)."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists")
    src = read_only_connection(source.path if isinstance(source, RunStore) else source)
    try:
        columns(src)  # a run store at all: a jobs table
        out.parent.mkdir(parents=True, exist_ok=True)
        create_private(out)
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
    db = read_only_connection(path)
    try:
        select = columns(db)
        after = (-1.0, "")
        while True:
            rows = db.execute(
                f"SELECT {select} FROM jobs WHERE (submitted_at, id) > (?, ?) ORDER BY submitted_at, id LIMIT 100", after
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield stored(row)
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
                f.write(json.dumps(export_record(job), ensure_ascii=False, default=plain) + "\n")
            counted[0] += 1
    return counted[0]
