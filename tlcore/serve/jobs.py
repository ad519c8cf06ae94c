"""The job queue: training runs in a worker thread, never in the page's script thread.

A Streamlit rerun (any click) would kill a loop running in the script thread, so pages
only submit jobs and poll snapshots. One queue per server process, one worker per GPU (on a
CPU server, workers and each run's threads as tlcore.serve.cores plans them): jobs beyond wait and
can see their place in the line. A job's run returns its model; the queue keeps it on its
shelf (tlcore.serve.kept_models) only for a learner's own run (`keep_model`). Each owner (browser session) has
at most one active job (and, where the class file says `one_run_per_address`, each client
address at most one: a learner cannot hold three places with three cookies). Stop is a flag the trainer checks every step. A job whose page has
stopped polling (no heartbeat for `stale_after_s`) is cancelled, so a closed laptop lid
does not hold the class's GPU.

A job is a list of runs done one after the other on the same data: one run for a
fine-tune, several for a strategy race.

Many learners share one class server, so a job belongs to its owner (an unguessable
session id) and every read, heartbeat and stop names the owner: a job asked for by anyone
else is treated as if it did not exist. Job ids are random too, so they cannot be guessed
from one's own. The server's one queue is `shared_queue()`, a process-level object that no
client message can drop (Streamlit's "clear cache" message empties `st.cache_resource`).

With a `store` (tlcore.serve.store, SQLite) every job is also written to disk, so a server restart
loses no finished run: `get` and `latest` read a job back for its owner when memory no longer
holds it. Past one machine, `tlcore.serve.ray_jobs.RayJobQueue` is this queue with `_run_one`
training on a Ray cluster; `tlcore.serve.server_queue()` picks one of the two from the environment.

The queue is built from `QueueOptions` (tlcore.serve.queue_options), given whole; `JobQueue.started`
builds one from keywords and starts its workers (a constructor starts nothing: `start()`).

Not for: a job's record and the views pages draw (tlcore.serve.job_records) or what a queue is
built from (tlcore.serve.queue_options), both re-exported here; the rows on disk (tlcore.serve.store).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import inspect
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from typing import Self

from tlcore.core.events import Failed, History
from tlcore.serve import cores, machine
from tlcore.serve.class_limits import ClassLimits
from tlcore.serve.job_records import ACTIVE_STATES, HeldDone, Job, JobSummary, JobView, job_from_stored, new_job_id
from tlcore.serve.queue_options import QueueOptions
from tlcore.serve.store import FINAL_WAIT_S, StoreHealth, learner_key, pack
from tlcore.train import recipe, time_estimate
from tlcore.train.config import RunConfig
from tlcore.train.device import lower_thread_priority
from tlcore.train.finetuned import Finetuned

RunFn = Callable[..., object]  # (config, emit, should_stop) -> result

# The job's record and views (job_records) and the queue's options (queue_options) live beside
# this module; their names stay importable from here, as before.
__all__ = [
    "ACTIVE_STATES", "AddressLimitError", "HeldDone", "Job", "JobLimitError", "JobQueue", "JobSummary", "JobView",
    "QueueOptions", "RunFn", "job_from_stored", "new_job_id", "shared_queue", "shared_queue_made",
]  # fmt: skip


class JobLimitError(RuntimeError):
    """An owner asked for a second active job."""


class AddressLimitError(JobLimitError):
    """Another learner (cookie) at the same client address already has a job waiting or running,
    and the class allows one per address (tlcore.serve.class_limits.ClassLimits.one_run_per_address)."""


IDLE_READ_S = 0.5  # an idle CPU worker reads how busy other programs keep the cores this often (BusyElsewhere)


class JobQueue:
    trains_here = True  # its runs train in this process (not in worker processes, not on a cluster)

    def __init__(self, run_fn: RunFn | None = None, options: QueueOptions | None = None):
        """The queue built from `options` (QueueOptions: each setting explained there); nothing runs
        until `start()`. `JobQueue.started(run_fn, workers=2)` builds one from keywords and starts it.
        run_fn: (config, emit, should_stop) -> result; None: tlcore.train.recipe.run."""
        self._run_fn = run_fn or recipe.run
        self.options = options = options or QueueOptions()
        self._jobs: dict[str, Job] = {}
        self._waiting: list[str] = []
        self._lock = threading.Lock()
        self._ended = threading.Condition(self._lock)  # notified whenever a job ends (wait_until_ended)
        self._queue: queue.Queue[str] = queue.Queue()
        self._held: Callable[[Job], bool] | None = None  # waiting jobs held back (hold())
        self.stale_after_s = options.stale_after_s
        self.max_finished = options.max_finished
        self.on_run_done = options.on_run_done  # e.g. the time estimator learning from every finished run
        self.store = options.store  # finished runs on disk: a restart loses none (tlcore.serve.store)
        self.shelf = options.the_shelf()
        self.cpu = options.cpu_plan()
        self._running = 0  # runs going now (read without the lock: one int)
        self._pages, self._pages_lock = 0, threading.Lock()  # page runs being drawn now (see drawing())
        self._thread = threading.local()  # each worker's torch thread count, as it last set it
        # the cores other programs keep busy: its own training processes' (ProcessJobQueue) are ours
        self.elsewhere = cores.BusyElsewhere(getattr(self, "process_ids", tuple))
        self.pinned: dict[int, int] = {}  # worker -> GPU, once pinned
        self.nice = options.nice
        self._threads: list[threading.Thread] = []

    @classmethod
    def started(cls, run_fn: RunFn | None = None, **settings) -> Self:
        """A queue of this class built from keywords and started: a subclass's own keywords (such as
        ProcessJobQueue's `warm`, RayJobQueue's `workers`) go to its constructor, the rest are QueueOptions's."""
        own = inspect.signature(cls.__init__).parameters.keys() - {"self", "run_fn", "options"}
        options = QueueOptions(**{k: v for k, v in settings.items() if k not in own})
        return cls(run_fn, options, **{k: v for k, v in settings.items() if k in own}).start()

    def start(self) -> Self:
        """Begin: what the store holds as unfinished is marked interrupted, and the workers start
        (one per GPU, else the CPU plan's, else `workers`). Returns the queue."""
        if self._threads:
            raise RuntimeError("this queue has started already")
        self._interrupt_unfinished()
        self._start_workers(self.options.worker_count(), self.options.pinning())
        return self

    @property
    def limits(self) -> ClassLimits | None:
        """The class's limits now (tlcore.serve.class_limits): checked at submit, the time limit
        enforced while running; read when used where the options give a function (the server's)."""
        return self.options.limits_now()

    def _interrupt_unfinished(self) -> None:
        """What the store holds as queued or running belonged to a server that stopped: marked
        interrupted (written when the file allows)."""
        if self.store is None:
            return
        try:
            self.store.interrupt_unfinished()
        except Exception:  # noqa: BLE001 -- a store's fault must never stop the queue from starting
            logging.getLogger(__name__).exception("marking interrupted runs failed")

    def _start_workers(self, workers: int, pin: Callable[[int], None] | None) -> None:
        """`workers` worker threads; with `pin` (GPUs), worker i is pinned to GPU i."""
        for i in range(workers):
            args = (i, pin) if pin is not None else ()
            self._threads.append(threading.Thread(target=self._work, args=args, name=f"tlcore-worker-{i}", daemon=True))
        for t in self._threads:
            t.start()

    # --- called by pages ---
    def submit(
        self,
        configs: RunConfig | list[RunConfig],
        owner: str,
        labels: list[str] | None = None,
        tag: str = "",
        priority: int = 0,
        address: str | None = None,
        keep_model: bool = False,
    ) -> str:
        """Queue a job; the teacher's (priority 1) wait only behind other teacher jobs. Raises
        LearnerError when a config passes the class's limits, JobLimitError for a second job,
        AddressLimitError for a second learner at one client `address` where the class allows one
        (an unknown address, None, is always allowed; the teacher's jobs neither count nor wait).
        keep_model: the learner's own run (the Fine-tune page's, the Text page's): the model of the
        job's last run is kept on the shelf for its owner; without it (races, sweeps, the matrix)
        no model is kept."""
        configs = [configs] if isinstance(configs, RunConfig) else list(configs)
        if not configs:
            raise ValueError("nothing to run")
        limits = self.limits
        if limits is not None:
            for config in configs:
                limits.check_within_limits(config)
        labels = labels or [c.strategy for c in configs]
        with self._lock:
            if any(j.owner == owner and j.active for j in self._jobs.values()):
                raise JobLimitError("you already have a run going: stop it or wait for it to finish")
            if self._address_taken(address, priority):
                raise AddressLimitError("another learner at your address has a run going: wait for it to finish")
            job_id = new_job_id()
            self._jobs[job_id] = Job(
                job_id,
                owner,
                configs,
                labels,
                [History(c.to_dict()) for c in configs],
                tag=tag,
                priority=priority,
                address=address,
                keep_model=keep_model,
            )
            ahead = sum(1 for w in self._waiting if self._jobs[w].priority >= priority)
            self._waiting.insert(ahead, job_id)
            self._ended.notify_all()  # a worker waiting on a held line may take this one (hold())
            self._forget_old()
            self._persist(self._jobs[job_id])
        self._queue.put(job_id)
        return job_id

    def _address_taken(self, address: str | None, priority: int) -> bool:  # caller holds the lock
        limits = self.limits
        if limits is None or not limits.one_run_per_address or address is None or priority > 0:
            return False
        return any(j.active and j.address == address and j.priority == 0 for j in self._jobs.values())

    def get(self, job_id: str, owner: str, *, heartbeat: bool = True) -> JobView | None:
        """The owner's job, or None when it is unknown, forgotten or someone else's."""
        with self._lock:
            job = self._owned(job_id, owner)
        if job is None:
            restored = self._restore(job_id, owner)  # read and decoded off the lock: other pages do not wait
            if restored is None:
                return None
            with self._lock:  # another page may have restored it meanwhile: one Job in memory
                job = self._owned(job_id, owner) or self._jobs.setdefault(restored.id, restored)
        with self._lock:
            if heartbeat:
                job.last_seen = time.monotonic()
            position = self._waiting.index(job_id) + 1 if job_id in self._waiting else 0
            end = job.finished or time.monotonic()
            return JobView(
                job.id,
                job.state,
                position,
                tuple(job.labels),
                tuple(h.snapshot() for h in job.histories),
                tuple(job.configs),
                end - (job.started or end),
                job.note,
                job.where,
            )

    def heartbeat(self, job_id: str, owner: str) -> None:
        with self._lock:
            job = self._owned(job_id, owner)
            if job is not None:
                job.last_seen = time.monotonic()

    def cancel(self, job_id: str, owner: str) -> bool:
        """Ask the owner's job to stop; False (and nothing done) if it is not theirs or has ended."""
        with self._lock:
            return self._stop(self._owned(job_id, owner), note="")

    # --- called by the server and the teacher (no owner check: never reachable from a student's page) ---
    def list_all(self) -> list[JobSummary]:
        """Every job in memory, the active ones first (running, then waiting in queue order), then
        the ended ones, newest first: the teacher's admin view."""
        with self._lock:
            now = time.monotonic()
            rows = [
                JobSummary(
                    j.id,
                    j.owner,
                    j.state,
                    (self._waiting.index(j.id) + 1) if j.id in self._waiting else 0,
                    tuple(j.labels),
                    tuple(j.configs),
                    (j.finished or now) - (j.started or j.finished or now),
                    j.priority,
                    j.note,
                    j.submitted,
                    j.address,
                )
                for j in self._jobs.values()
            ]
        return sorted(rows, key=lambda r: (not r.active, r.state != "running", r.position, -r.submitted))

    def cancel_any(self, job_id: str, note: str = "teacher") -> bool:
        """Stop any job (the teacher's Cancel, a closed tab); False if it is unknown or has ended."""
        with self._lock:
            return self._stop(self._jobs.get(job_id), note=note)

    def _stop(self, job: Job | None, note: str) -> bool:  # caller holds the lock
        """Flag a job to stop (a queued one ends at once); `note` says why when the learner did
        not stop it. False if there is no such job or it has ended."""
        if job is None or not job.active:
            return False
        if note and not job.stop_requested:  # the first reason is the one: a run already stopping keeps its own
            job.note = note
        job.stop_requested = True
        if job.state == "queued":
            self._finish(job, "cancelled")
            self._persist(job)
        return True

    def promote(self, owner: str, priority: int = 1) -> int:
        """Give the owner's waiting jobs this priority and their place in line (a teacher who
        pressed Start before unlocking teacher mode); returns how many moved."""
        with self._lock:
            mine = [w for w in self._waiting if self._jobs[w].owner == owner and self._jobs[w].priority < priority]
            for job_id in mine:
                self._waiting.remove(job_id)
                self._jobs[job_id].priority = priority
                self._waiting.insert(sum(1 for w in self._waiting if self._jobs[w].priority >= priority), job_id)
            return len(mine)

    def active_jobs(self) -> list[tuple[str, str]]:
        """(job id, owner) of every queued or running job."""
        with self._lock:
            return [(j.id, j.owner) for j in self._jobs.values() if j.active]

    def learners_by_address(self) -> dict[str | None, int]:
        """How many learners (cookies) have a job waiting or running, per client address (None:
        unknown), most first: the teacher sees one person holding several places. The teacher's
        own jobs are not counted (they hold no learner's place)."""
        with self._lock:
            owners: dict[str | None, set[str]] = {}
            for j in self._jobs.values():
                if j.active and j.priority == 0:
                    owners.setdefault(j.address, set()).add(j.owner)
        return dict(sorted(((a, len(o)) for a, o in owners.items()), key=lambda item: (-item[1], str(item[0]))))

    def active_for(self, owner: str) -> str | None:
        with self._lock:
            return next((j.id for j in self._jobs.values() if j.owner == owner and j.active), None)

    def snapshot(self) -> dict[str, int]:
        """Counts for the sidebar: running and waiting jobs."""
        with self._lock:
            states = [j.state for j in self._jobs.values()]
        return {"running": states.count("running"), "waiting": states.count("queued")}

    def latest(self, owner: str, tag: str) -> str | None:
        """The owner's most recent job of this kind (tag), in memory or, after a restart, on disk:
        how a page finds its run again when nothing in the browser's session remembers it."""
        with self._lock:
            mine = [j for j in self._jobs.values() if j.tag == tag and owner and secrets.compare_digest(j.owner, owner)]
            if mine:
                return max(mine, key=lambda j: j.submitted).id
        if self.store is None or not owner:
            return None
        try:
            return self.store.latest(owner, tag)
        except Exception:  # noqa: BLE001 -- a broken file must not break the page
            logging.getLogger(__name__).exception("reading the run store failed")
            return None

    def _owned(self, job_id: str | None, owner: str) -> Job | None:  # caller holds the lock
        job = self._jobs.get(job_id) if job_id else None
        # Compared in constant time: a wrong owner learns nothing, not even how close it was.
        if job is None or not owner or not secrets.compare_digest(job.owner, owner):
            return None
        return job

    def wait_until_ended(self, job_id: str, owner: str, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the owner's job to end; True when it has ended (or is
        not this owner's). A live panel whose run is about to finish waits here, so the result
        shows when it is ready instead of at the next poll (a poll a second apart left the default
        demo's result up to a second on the server). No page is being drawn meanwhile."""
        deadline = time.monotonic() + timeout
        with self._ended:
            job = self._jobs.get(job_id)
            if job is None or not secrets.compare_digest(job.owner, owner):
                return True
            while job.active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._ended.wait(left)
            return True

    @contextlib.contextmanager
    def drawing(self):
        """Around a page's run: while pages are drawn, CPU runs use fewer threads (tlcore.serve.cores)."""
        with self._pages_lock:
            self._pages += 1
        try:
            yield
        finally:
            with self._pages_lock:
                self._pages -= 1

    def pace_this_thread(self) -> None:
        """The calling thread's torch threads as a run's now (`_pace`), whatever trains the queue's own
        runs: the server's warm-up, training in its own thread, asks at each of its steps."""
        JobQueue._pace(self)

    def _pace(self) -> None:
        """In a worker thread: its torch threads for the runs and pages going now (a CPU plan only).
        Setting them costs microseconds and is done only when the number changes."""
        if self.cpu is None:
            return
        threads = self.cpu.threads_now(self._running, self._pages, self.elsewhere.cores())
        if getattr(self._thread, "threads", None) != threads:
            import torch

            torch.set_num_threads(threads)  # this thread's own (OpenMP's per-thread count)
            self._thread.threads = threads

    # --- the worker ---
    def _grow(self, workers: int) -> None:
        """Up to `workers` worker threads (a queue on a cluster grows once it knows the cluster's size)."""
        for i in range(len(self._threads), workers):
            thread = threading.Thread(target=self._work, name=f"tlcore-worker-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self, gpu: int | None = None, pin: Callable[[int], None] | None = None) -> None:
        nice_per_job = self._nice_per_job()
        if self.nice and not nice_per_job:
            lower_thread_priority(self.nice)
        if gpu is not None and pin is not None:
            pin(gpu)  # CUDA's current device is per thread: this worker's runs use this GPU
            with self._lock:
                self.pinned[gpu] = gpu
        while True:
            try:  # one token per submitted job; which job runs is the line's head
                self._queue.get(timeout=IDLE_READ_S)
            except queue.Empty:
                if nice_per_job:
                    self.elsewhere.cores()  # read while idle too: the next job's start needs a fresh reading
                continue
            with self._lock:
                job_id = self._next_unheld()
                if job_id is None:  # its job was cancelled while waiting
                    continue
                self._waiting.remove(job_id)
                job = self._jobs[job_id]
                job.state, job.started = "running", time.monotonic()
                self._running += 1
                self._persist(job)
            if (
                self.cpu is not None and self.trains_here
            ):  # training on the CPU: its tensors' memory is reused, not faulted in again
                machine.keep_freed_memory()
            try:
                if nice_per_job:
                    cores.on_a_thread_of_its_own(self._train, job, name=f"{threading.current_thread().name}-job")
                else:
                    self._pace()
                    self._run_job(job)
            except BaseException as error:  # noqa: BLE001 -- whatever escapes one job, the worker serves the next
                logging.getLogger(__name__).exception("job %s: the worker caught %s", job.id, type(error).__name__)
                with self._lock:
                    if job.active:
                        self._finish(job, "failed")
                        self._persist(job)
            finally:
                with self._lock:
                    self._running -= 1
                    idle = self._running == 0
            if self.cpu is not None and self.trains_here and idle:
                machine.keep_freed_memory(False)
            machine.return_freed_memory()

    def _nice_per_job(self) -> bool:  # on a CPU each job's nice is chosen at its start (`_train`)
        return bool(self.nice) and self.cpu is not None and self.trains_here

    def _train(self, job: Job) -> None:
        """A CPU job in a thread of its own (a thread's nice cannot go back up): behind the pages
        unless other programs keep a core busy (tlcore.serve.cores.pages_first)."""
        if cores.pages_first(self.elsewhere.cores()):
            lower_thread_priority(self.nice)
        self._pace()
        self._run_job(job)

    def hold(self, held: Callable[[Job], bool] | None) -> None:
        """Hold the waiting jobs for which `held(job)` is true (a teacher's "pause all": the
        learners' jobs wait, the teacher's still run); None lets every job go again. A running job
        is never touched."""
        with self._lock:
            self._held = held
            self._ended.notify_all()

    def _next_unheld(self) -> str | None:  # caller holds the lock
        """The first waiting job not held; while every waiting job is held, wait for a release."""
        while self._waiting:
            held = self._held
            job_id = next((w for w in self._waiting if held is None or not held(self._jobs[w])), None)
            if job_id is not None:
                return job_id
            self._ended.wait(timeout=1.0)  # notified by hold(), a submit and every job's end
        return None

    def _should_stop(self, job: Job) -> bool:
        """Asked by the run every step: read without the lock (a flag and two clock values),
        written under it, so a teacher's Cancel and a time limit never overwrite each other.
        Asked in the worker's thread, it also sets the run's torch threads for now (`_pace`)."""
        if job.stop_requested:
            return True
        self._pace()
        now = time.monotonic()
        if now - job.last_seen > self.stale_after_s:
            note = "closed"  # nobody is watching: free the device for others
        elif job.started is not None and (limits := self.limits) is not None and now - job.started > limits.max_seconds:
            note = "time_limit"  # the class's limit: others are waiting
        else:
            return False
        with self._lock:
            if not job.stop_requested:
                job.stop_requested, job.note = True, note
        return True

    def _run_job(self, job: Job) -> None:
        width = self._runs_at_once(job)
        if width == 1:
            ends = []
            for config, history in zip(job.configs, job.histories):
                ends.append(self._run_config(job, config, history))
                if job.stop_requested:
                    break
        else:  # the runs going count for the threads each gets (`_pace`), not the job that holds them
            with self._lock:
                self._running -= 1
            try:
                name = f"{threading.current_thread().name}-run"
                order = sorted(range(len(job.configs)), key=lambda i: -_work(job.configs[i]))  # the longest first
                ends = [None] * len(job.configs)
                with concurrent.futures.ThreadPoolExecutor(width, thread_name_prefix=name) as pool:
                    futures = {i: pool.submit(self._parallel_run, job, job.configs[i], job.histories[i]) for i in order}
                    for i, future in futures.items():
                        ends[i] = future.result()
            finally:
                with self._lock:
                    self._running += 1
        state = "cancelled" if job.stop_requested else "failed" if "failed" in ends else "done"
        # Serialising a race's events takes a while: done before taking the lock (pages keep
        # polling). The ended job's row goes to the store first, and while the store is healthy
        # the job is shown as ended once its row is on disk (a restart then finds it); a store
        # that cannot write keeps the row waiting and nobody waits for it.
        packed = self._pack(job)
        if self.store is not None:
            with self._lock:
                self._persist(dataclasses.replace(job, state=state, finished=time.monotonic()), packed)
            try:
                self.store.written(job.id, FINAL_WAIT_S)
            except Exception:  # noqa: BLE001
                logging.getLogger(__name__).exception("waiting for the store failed")
        with self._lock:
            self._finish(job, state)

    def _runs_at_once(self, job: Job) -> int:
        """How many of a job's runs train at the same time: on a CPU server, one per core (a race
        of four on 2 cores: two at a time, one thread each; each run's threads follow the runs
        going, `_pace`), else one after the other (a GPU's worker, a Ray cluster's queue).

        Two one-thread runs side by side beat one two-thread run after the other where anything
        else wants the CPU: a thread of a two-thread run that loses its core stalls its partner
        at every barrier, a lone thread only itself. The default race in Chromium on the 2-core
        box: 26-27 s one after the other, see docs/demo-speed.md for two at a time."""
        if self.cpu is None or len(job.configs) < 2:
            return 1
        return max(1, min(len(job.configs), self.cpu.cores))

    def _run_config(self, job: Job, config: RunConfig, history: History) -> str | None:
        """One run of the job, in the calling thread: "failed" when it failed, else None. Not
        started when the job was stopped before its turn."""
        if job.stop_requested:
            return None
        return self._run_and_learn(job, config, history)

    def _parallel_run(self, job: Job, config: RunConfig, history: History) -> str | None:
        """A run beside others of its job, counted among the runs going while it trains."""
        with self._lock:
            self._running += 1
        try:
            return self._run_config(job, config, history)
        finally:
            with self._lock:
                self._running -= 1

    def _run_and_learn(self, job: Job, config: RunConfig, history: History) -> str | None:
        self._pace()
        run_events = HeldDone(history)  # the run's Done waits for the model's id (or none)
        trained = None
        try:
            trained = self._run_one(job, config, run_events)
        except BaseException as e:  # noqa: BLE001 -- run() reports its own errors; this guards a broken run_fn
            # BaseException too: in a worker thread a SystemExit (sys.exit in a library) or a
            # KeyboardInterrupt raised by code (the signal goes to the main thread only) means
            # "this run cannot go on", never "stop the server"; letting one through would end
            # the thread and leave every later job waiting forever.
            if run_events.snapshot().final is None:
                run_events.append(Failed(f"{type(e).__name__}: {e}"))
        last = config is job.configs[-1]
        run_events.release(self._keep(job, trained if last and run_events.done is not None else None))
        del trained  # a model nobody keeps is freed now, not when the next run replaces it
        snap = history.snapshot()
        if self.on_run_done is not None and snap.result is not None:
            try:
                self.on_run_done(config, snap)
            except Exception:  # noqa: BLE001 -- learning from a run must never fail the job
                logging.getLogger(__name__).exception("on_run_done failed")
        return "failed" if isinstance(snap.final, Failed) or snap.final is None else None

    def _run_one(self, job: Job, config: RunConfig, history: History) -> Finetuned | None:
        """Run one config of the job here, in this worker thread (a Ray queue runs it on a cluster);
        returns the trained model when the run returned one."""
        returned = self._run_fn(config, history.append, lambda: self._should_stop(job))
        return getattr(returned, "model", None)  # a RunResult (recipe.run), or None

    def _keep(self, job: Job, trained: Finetuned | None) -> str | None:
        """The server's choice: the model of a learner's own run goes on the shelf (its id goes in
        the run's result); any other run's model is dropped."""
        if trained is None or not job.keep_model:
            return None
        try:
            return self.shelf.keep(job.owner, trained)
        except Exception:  # noqa: BLE001 -- the run's results matter more than its model
            logging.getLogger(__name__).exception("keeping the model of job %s failed", job.id)
            return None

    def _finish(self, job: Job, state: str) -> None:  # caller holds the lock
        job.state, job.finished = state, time.monotonic()
        if job.id in self._waiting:
            self._waiting.remove(job.id)
        self._ended.notify_all()

    # --- on disk (when the queue has a store) ---
    def _pack(self, job: Job) -> bytes | None:
        if self.store is None:
            return None
        try:
            return pack([h.snapshot() for h in job.histories], job.started)
        except Exception:  # noqa: BLE001 -- an odd result must not stop the class; the run is still in memory
            logging.getLogger(__name__).exception("serialising job %s failed", job.id)
            return None

    def _persist(self, job: Job, packed: bytes | None = None) -> None:
        if self.store is None:
            return
        try:
            self.store.save(job, packed)
        except Exception:  # noqa: BLE001 -- a full disk must not stop the class; the run is still in memory
            logging.getLogger(__name__).exception("storing job %s failed", job.id)

    def _restore(self, job_id: str | None, owner: str) -> Job | None:  # called WITHOUT the lock
        """A job this queue no longer holds (a restart, or forgotten): read back from the store,
        for its owner only (the caller keeps it in memory again like any finished job). Reading
        waits on the file at most briefly and decodes the job's images: never under the lock."""
        if self.store is None or not job_id or not owner:
            return None
        try:
            stored = self.store.load(job_id)
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("reading job %s from the store failed", job_id)
            return None
        if stored is None or not secrets.compare_digest(stored.learner, learner_key(owner)):
            return None
        return job_from_stored(stored, owner)

    def store_health(self) -> StoreHealth | None:
        """The run store's state for the teacher (None: this queue keeps no store)."""
        if self.store is None:
            return None
        try:
            return self.store.health()
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).exception("asking the run store failed")
            return None

    def _forget_old(self) -> None:  # caller holds the lock; keeps memory bounded on a class server
        # Each learner's latest job of each kind (tag) is kept whatever its age: it is the one
        # their page shows, and a reload must find it again.
        latest: dict[tuple[str, str], Job] = {}
        for j in self._jobs.values():
            key = (j.owner, j.tag)
            if key not in latest or j.submitted > latest[key].submitted:
                latest[key] = j
        keep = {j.id for j in latest.values()}
        done = [j for j in self._jobs.values() if not j.active and j.id not in keep]
        for j in sorted(done, key=lambda j: j.finished or 0)[: max(0, len(done) - self.max_finished)]:
            del self._jobs[j.id]


def _work(config: RunConfig) -> float:
    """A run's work in GFLOP by the time estimate's count (0 when it cannot say): a job's runs side
    by side start longest first, so the short ones fill in beside them (a race of four on 2 cores:
    scratch beside full, then the linear probe and partial)."""
    try:
        return time_estimate.work_of(config, *time_estimate.run_sizes(config, time_estimate.num_classes(config))).total_gflop
    except Exception:  # noqa: BLE001 -- an order is a courtesy; an unknown backbone just goes in its place
        return 0.0


_shared: JobQueue | None = None
_shared_lock = threading.Lock()


def shared_queue_made() -> bool:
    return _shared is not None


def shared_queue(make: Callable[[], JobQueue] = JobQueue.started) -> JobQueue:
    """The server's one queue, made on first use and kept for the life of the process.

    A module global rather than `st.cache_resource`: any browser can send Streamlit's
    "clear cache" message, which would drop a cached queue (its runs vanish from every page
    but keep training) and make a new one with one more worker thread. Calling this again,
    from any thread, returns the same queue and starts no worker.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = make()
        return _shared
