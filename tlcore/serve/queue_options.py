"""What a job queue is built from: `QueueOptions`, its settings in one frozen value (runs at a
time, GPUs and their pinning, a CPU server's plan, the store, the class's limits, the shelf, the
workers' priority, when a page that stopped polling loses its run), and the rules that turn them
into workers: one worker per GPU, worker i pinned to GPU i; else a CPU plan's workers; else
`workers`.

Not for: the queue itself (tlcore.serve.jobs), a CPU server's plan (tlcore.serve.cores), the
class's limits (tlcore.serve.class_limits), where a server's queue comes from (tlcore.serve).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tlcore.core.events import HistorySnapshot
from tlcore.serve import cores, machine
from tlcore.serve.class_limits import ClassLimits
from tlcore.serve.kept_models import KeptModels
from tlcore.serve.store import RunStore
from tlcore.train.config import RunConfig


@dataclass(frozen=True)
class QueueOptions:
    """A queue's settings; `JobQueue.started(run_fn, workers=2, limits=limits)` builds this from its keywords.

    workers: runs at a time. stale_after_s: a job whose page has not polled this long is
    cancelled (a closed laptop lid does not hold the class's GPU). max_finished: ended jobs kept
    in memory beyond each learner's latest of each kind. on_run_done: called with every finished
    run (the time estimator learns from it). store: finished runs on disk, so a restart loses none
    (tlcore.serve.store). gpus: with N GPUs, one worker per GPU, worker i pinned to GPU i (its
    thread's current CUDA device, so "cuda" in its runs means that GPU); `pin` does the pinning
    (torch.cuda.set_device by default). limits: the class's limits (tlcore.serve.class_limits),
    checked at submit, the time limit enforced while running; or a function that reads them when
    used (the server's: class_limits.load, so a teacher's edit holds from the next Start). nice:
    the workers' CPU priority is lowered by this much (Linux, per thread; torch's threads a worker starts inherit it), so that
    a server's pages are answered first and training takes the rest; on a CPU, each job's own thread, and only while no
    other program keeps a core busy (tlcore.serve.cores.pages_first). shelf: where the models of
    jobs submitted with `keep_model` are kept (tlcore.serve.kept_models; bounded per learner and
    in all by the class's limits when there are `limits`). cpu: a CPU server's plan
    (tlcore.serve.cores): its workers, and each run's torch threads set by its worker at the
    run's start and at every step from the runs going and the pages being drawn."""

    workers: int = 1
    stale_after_s: float = 300.0
    max_finished: int = 500
    on_run_done: Callable[[RunConfig, HistorySnapshot], None] | None = None
    store: RunStore | None = None
    gpus: int = 0
    pin: Callable[[int], None] | None = None
    limits: ClassLimits | Callable[[], ClassLimits] | None = None
    nice: int = 0
    shelf: KeptModels | None = None
    cpu: cores.CpuPlan | None = None

    def worker_count(self) -> int:
        """One worker per GPU; else the CPU plan's workers; else `workers`."""
        if self.gpus:
            return self.gpus
        if self.cpu is not None:
            return self.cpu.workers
        return self.workers

    def pinning(self) -> Callable[[int], None] | None:
        """How worker i is pinned to GPU i (`pin`, else torch.cuda.set_device); None without GPUs."""
        if not self.gpus:
            return None
        return self.pin or machine.pin_cuda_device

    def cpu_plan(self) -> cores.CpuPlan | None:
        """The CPU plan the workers follow: none on a GPU server."""
        return self.cpu if not self.gpus else None

    def limits_now(self) -> ClassLimits | None:
        """The class's limits as they are now: `limits`, called when it is a function."""
        return self.limits() if callable(self.limits) else self.limits

    def the_shelf(self) -> KeptModels:
        """`shelf`, else one bounded by the class's limits (as they are when the queue is made),
        else a shelf of its own defaults."""
        if self.shelf is not None:
            return self.shelf
        limits = self.limits_now()
        return limits.kept_models() if limits is not None else KeptModels()
