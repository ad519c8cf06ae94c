"""Rows <-> objects: a queue's job as the row the run store writes, and a row read back as a
StoredJob (its histories compressed JSON, misclassified images as PNG, clocks as Unix times).

The learner's id is a secret (it is their cookie): a row holds its SHA-256 (`learner_key`). A
job read back as queued or running belongs to a server that stopped: it comes back interrupted,
with a message in each unfinished run (`as_interrupted`).

Not for: the table's columns (tlcore.serve.store.schema), writing or reading the file
(tlcore.serve.store.run_store), an admin's export (tlcore.serve.store.exports).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
import zlib
from dataclasses import dataclass
from typing import Any

from tlcore.core.events import Done, Failed, HistorySnapshot
from tlcore.core.messages import Message
from tlcore.serve.store.schema import INTERRUPTED, UNFINISHED


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


def interrupted_message() -> Failed:
    message = Message("run.interrupted")
    return Failed(str(message), message.key)


def job_row(job, histories: list[HistorySnapshot] | bytes | None) -> tuple:
    """The row a `tlcore.serve.jobs.Job` is written as (tlcore.serve.store.schema.NAMES), with its
    histories once it has ended: snapshots (packed here), or `pack()`ed already, or None."""
    wall = wall_clock()
    blob = pack(histories, job.started) if isinstance(histories, list) else histories
    elapsed = (job.finished - job.started) if job.finished and job.started else None
    return (
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


def wall_clock():
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
    return zlib.compress(json.dumps(data, ensure_ascii=False, default=plain).encode("utf-8"), 6)


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


def plain(value: Any) -> Any:
    """What json_safe let through but json cannot write: numpy scalars and the like."""
    if hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)


def stored(row) -> StoredJob:
    """A row read back (tlcore.serve.store.schema.columns' order) as a StoredJob, images decoded."""
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
