"""A job as the queue keeps it and as pages see it: the `Job` record (its runs' configs and
Histories, state, owner, times, why it stopped), the frozen views taken under the queue's lock
(`JobView` for the owner's page, `JobSummary` for the teacher's list), a job's random id, a
finished job read back from its stored row (`job_from_stored`), and `HeldDone`, a run's event
stream into its History that holds the final Done until the server has decided about the model.

Not for: the queue, its line and its workers (tlcore.serve.jobs), what a queue is built from
(tlcore.serve.queue_options), the rows on disk (tlcore.serve.store).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from dataclasses import dataclass, field

from tlcore.core.events import Done, History, HistorySnapshot
from tlcore.serve.store import UNFINISHED as ACTIVE_STATES  # a job in one of these states has not ended
from tlcore.serve.store import StoredJob, as_interrupted
from tlcore.train.config import RunConfig


def new_job_id() -> str:
    """128 random bits: one learner's job ids say nothing about another's."""
    return f"job-{secrets.token_urlsafe(16)}"


@dataclass
class Job:
    id: str
    owner: str
    configs: list[RunConfig]
    labels: list[str]
    histories: list[History]
    state: str = "queued"  # queued | running | done | failed | cancelled | interrupted (by a server restart)
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    last_seen: float = field(default_factory=time.monotonic)
    stop_requested: bool = False
    tag: str = ""  # what the owner calls this job (the page's slot: "finetune", "race", ...)
    priority: int = 0  # the teacher's jobs (1) go before the students' (0); FIFO within
    note: str = ""  # why it was stopped when the learner did not stop it: time_limit | closed | teacher
    where: str = ""  # "local": a Ray queue's run that found no cluster and trained on the server
    address: str | None = None  # the client address it was started from (None: unknown); never stored
    keep_model: bool = False  # the learner's own run (Fine-tune, Text): its (last run's) model goes on the shelf

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


@dataclass(frozen=True)
class JobView:
    """What a page needs to draw a job, taken under the queue's lock."""

    id: str
    state: str
    position: int  # 0 = running or done; 1 = next in line; ...
    labels: tuple[str, ...]
    runs: tuple[HistorySnapshot, ...]
    configs: tuple[RunConfig, ...]
    elapsed_s: float
    note: str = ""  # why it was stopped, when the learner did not stop it (see Job.note)
    where: str = ""  # see Job.where

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def current(self) -> int:
        """Index of the run in progress (or the last one)."""
        for i, snap in enumerate(self.runs):
            if snap.final is None:
                return i
        return len(self.runs) - 1


@dataclass(frozen=True)
class JobSummary:
    """One row of the teacher's view of the queue (the owner id is the learner's secret: a page
    shows `studio.teacher.nickname(owner)`, never the id)."""

    id: str
    owner: str
    state: str
    position: int
    labels: tuple[str, ...]
    configs: tuple[RunConfig, ...]
    elapsed_s: float
    priority: int
    note: str
    submitted: float
    address: str | None = None  # the client address it was started from (the teacher's view only)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


class HeldDone:
    """A run's event stream into its History, holding back the final Done until the server has
    decided about the run's model: the page then sees the result with the model's id in it, or
    without, never one and then the other. Reads (snapshot, len) see the held Done."""

    def __init__(self, history: History):
        self.history = history
        self.done: Done | None = None
        self._at = 0.0

    def append(self, event) -> None:
        if isinstance(event, Done) and self.done is None:
            self.done, self._at = event, time.monotonic()
            return
        self.release()  # anything after a Done (there should be nothing): in order
        self.history.append(event)

    __call__ = append

    def release(self, model_id: str | None = None) -> None:
        """The held Done into the History, with the kept model's id in its result."""
        done, self.done = self.done, None
        if done is not None:
            self.history.append(Done(dataclasses.replace(done.result, model_id=model_id)) if model_id else done)

    def snapshot(self) -> HistorySnapshot:
        snap = self.history.snapshot()
        if self.done is None:
            return snap
        return HistorySnapshot(snap.events + (self.done,), snap.config, snap.times + (self._at,))

    def __len__(self) -> int:
        return len(self.history) + (self.done is not None)


def job_from_stored(stored: StoredJob, owner: str) -> Job | None:
    """A finished Job again, from its stored row (None if its settings no longer load)."""
    try:
        configs = [RunConfig.from_dict(c) for c in stored.configs]
    except (ValueError, TypeError):
        logging.getLogger(__name__).warning("stored job %s has settings this version cannot load", stored.id)
        return None
    stored = as_interrupted(stored)  # queued or running on disk, unknown here: a stopped server's
    to_mono = time.monotonic() - time.time()  # Unix time -> this process's monotonic clock
    histories = [History(snap.config, list(snap.events), list(snap.times)) for snap in stored.runs]
    finished = stored.finished_at or (stored.started_at or stored.submitted_at)
    return Job(
        stored.id,
        owner,
        configs,
        list(stored.labels),
        histories,
        state=stored.state,
        submitted=stored.submitted_at + to_mono,
        started=(stored.started_at + to_mono) if stored.started_at else None,
        finished=(finished + to_mono) if finished else None,
        tag=stored.tag,
        note=stored.note,
        priority=stored.priority,
    )
