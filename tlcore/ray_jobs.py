"""The job queue past one machine: the same JobQueue, each run trained on a Ray cluster.

When one class server is not enough, `RayJobQueue` keeps everything a page relies on from
`tlcore.jobs.JobQueue` (submit, get, cancel, heartbeat, active_for, snapshot; one job per
learner; ownership checks; queue positions; the SQLite store) and changes only where a run
trains: instead of calling the trainer in its worker thread, the thread sends the run to the
cluster as a Ray task and relays its events.

    server (Streamlit)                              Ray cluster
    JobQueue worker thread --- task(config) ----->  GPU worker: recipe.run(config, emit, should_stop)
       | every POLL_S: pull events  <---- EventHub actor <---- emit() pushes batches of events
       | Stop / nobody watching ------> EventHub.stop(key) ----> should_stop() reads it
       | still running CANCEL_AFTER_S later: ray.cancel(force=True)
       v
    the job's History (the page polls it as for a local run)

- A run asks for `num_gpus=1` when the cluster has GPUs and its device is `auto` or `cuda`,
  else for a CPU. The server runs at most `workers` jobs at once (the cluster's GPU count by
  default, `$TLS_RAY_WORKERS` to change): jobs beyond wait in this queue, where the page can
  show their place in the line, not in Ray's scheduler where it cannot.
- A worker (or its node) that dies mid-run ends the job as failed with a message that says
  so, never as a page that polls forever: the task is submitted with `max_retries=0` and the
  error Ray raises for its result becomes a `Failed` event.
- The worker imports `tlcore`: every node runs the same checkout (same path) and the same
  requirements; `connect()` puts that path on the workers' PYTHONPATH (see README).

Not for: scheduling policy (the base queue's), or a fine-tuned model in the server's memory:
a model trained on a worker stays there, so "try it on a new image" is a local-queue feature.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from pathlib import Path

import ray

from tlcore.config import RunConfig
from tlcore.events import FINAL_EVENTS, Cancelled, Failed, History, Started
from tlcore.jobs import Job, JobQueue, RunFn
from tlcore.messages import Message

POLL_S = 0.2  # how often the server pulls a running job's events (the page redraws every second)
FLUSH_S = 0.25  # how often a worker sends its buffered events
STOP_POLL_S = 0.5  # how often a worker asks whether Stop was pressed (should_stop is called every step)
CANCEL_AFTER_S = float(os.environ.get("TLS_RAY_CANCEL_AFTER_S", "20"))  # Stop ignored this long: kill the task
REPO_ROOT = str(Path(__file__).resolve().parent.parent)


@ray.remote(num_cpus=0)
class EventHub:
    """The mailbox between the server and its runs on the cluster, keyed by run: events go
    up (the worker pushes, the server pulls), Stop goes down. One per queue, on the node the
    server connects through; it holds only what the server has not pulled yet."""

    def __init__(self):
        self._events: dict[str, list] = {}
        self._stop: set[str] = set()

    def push(self, key: str, events: list) -> None:
        self._events.setdefault(key, []).extend(events)

    def pull(self, key: str) -> list:
        return self._events.pop(key, [])

    def stop(self, key: str) -> None:
        self._stop.add(key)

    def stopped(self, key: str) -> bool:
        return key in self._stop

    def forget(self, key: str) -> None:
        self._events.pop(key, None)
        self._stop.discard(key)


@ray.remote(max_retries=0)  # a run that died is reported, not silently started again
def train_remote(run_fn: RunFn | None, config: RunConfig, key: str, hub) -> None:
    """One run on a Ray worker: the trainer's emit and should_stop talk to the EventHub."""
    if run_fn is None:
        from tlcore.recipe import run as run_fn

    buffer: list = []
    state = {"flushed": time.monotonic(), "asked": 0.0, "stop": False, "last": None}

    def flush() -> None:
        if buffer:
            # Calls from one caller to an actor run in order: events arrive as emitted.
            state["last"] = hub.push.remote(key, list(buffer))
            buffer.clear()
        state["flushed"] = time.monotonic()

    def emit(event) -> None:
        buffer.append(event)
        # Started and the end at once (the page says "training" / shows the result without delay),
        # steps and evaluations in batches.
        if isinstance(event, (Started, *FINAL_EVENTS)) or time.monotonic() - state["flushed"] > FLUSH_S:
            flush()

    def should_stop() -> bool:
        if not state["stop"] and time.monotonic() - state["asked"] > STOP_POLL_S:
            state["stop"] = ray.get(hub.stopped.remote(key))
            state["asked"] = time.monotonic()
        return state["stop"]

    try:
        run_fn(config, emit, should_stop)
    finally:
        flush()
        if state["last"] is not None:
            ray.get(state["last"])  # the last events are in the hub before the task counts as done


def worker_lost(error: BaseException) -> Failed:
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    message = Message("run.worker_lost", {"error": f"{type(error).__name__}: {first_line}"[:300]})
    return Failed(str(message), message.key, dict(message.values))


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto", "ray://head:10001", or "local" for a new
    instance on this machine), unless this process already has. Workers get this checkout
    on their PYTHONPATH: the same code must sit at the same path on every node.

    `ray.init` runs in a thread of its own that lives as long as the process. The processes
    a local instance starts die with the *thread* that started them (Linux's parent-death
    signal follows the thread), and the Streamlit script thread that first asks for the
    queue ends when its page is drawn: seen as the local raylet killed seconds after start.
    """
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(
        p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p)}}
    kwargs = {"include_dashboard": False} if address == "local" else {}
    ready, failure = threading.Event(), []

    def keep() -> None:
        try:
            ray.init(address=address, runtime_env=runtime_env, **kwargs)
        except BaseException as error:  # noqa: BLE001 -- handed to the caller
            failure.append(error)
        ready.set()
        if not failure:
            threading.Event().wait()  # forever: this thread is the Ray processes' parent

    threading.Thread(target=keep, name="tlcore-ray", daemon=True).start()
    ready.wait()
    if failure:
        raise failure[0]


class RayJobQueue(JobQueue):
    def __init__(self, run_fn: RunFn | None = None, *, address: str = "auto", workers: int | None = None,
                 cancel_after_s: float = CANCEL_AFTER_S, **kwargs):
        connect(address)
        resources = ray.cluster_resources()
        self.cluster_gpus = int(resources.get("GPU", 0))
        if workers is None:
            workers = int(os.environ.get("TLS_RAY_WORKERS", "0")) or self.cluster_gpus or max(
                1, int(resources.get("CPU", 1)) // 2)
        self.cancel_after_s = cancel_after_s
        self._remote_fn = run_fn  # None: the worker imports tlcore.recipe.run itself
        self._hub = EventHub.remote()
        # The base class wants a run_fn for its local path; never called here.
        super().__init__(run_fn or _unused, workers=workers, **kwargs)

    def num_gpus(self, config: RunConfig) -> int:
        """What a run asks the cluster for: a whole GPU when there are GPUs and the run may use one."""
        return 1 if self.cluster_gpus and config.device in ("auto", "cuda") else 0

    def _run_one(self, job: Job, config: RunConfig, history: History) -> None:
        key = f"{job.id}:{secrets.token_hex(4)}"
        ref = train_remote.options(num_gpus=self.num_gpus(config)).remote(self._remote_fn, config, key, self._hub)
        stopping_since: float | None = None
        killed = ended = False
        error: BaseException | None = None
        try:
            while True:
                done, _ = ray.wait([ref], timeout=POLL_S)
                for event in ray.get(self._hub.pull.remote(key)):
                    history.append(event)
                if self._should_stop(job):
                    if stopping_since is None:
                        stopping_since = time.monotonic()
                        self._hub.stop.remote(key)  # the trainer sees it at its next step
                        if not len(history):
                            ray.cancel(ref)  # not started yet (waiting for a GPU): just drop it
                    elif not killed and time.monotonic() - stopping_since > self.cancel_after_s:
                        logging.getLogger(__name__).warning("job %s ignored Stop; cancelling its task", job.id)
                        ray.cancel(ref, force=True)
                        killed = True
                if done:
                    ended = True
                    break
            try:
                ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                pass
            except ray.exceptions.RayTaskError as e:  # the run function itself raised
                cause = getattr(e, "cause", None)
                history.append(Failed.of(cause) if isinstance(cause, BaseException) else Failed(str(e)))
            except ray.exceptions.RayError as e:  # the worker, its node or the object store went away
                error = e
            for event in ray.get(self._hub.pull.remote(key)):
                history.append(event)
        finally:
            if not ended:  # this thread failed while relaying (the hub lost, say): no run left orphaned
                ray.cancel(ref, force=True)
            self._hub.forget.remote(key)
        if history.snapshot().final is None:
            snap = history.snapshot()
            if stopping_since is not None:
                history.append(Cancelled(snap.steps[-1].step if snap.steps else 0))
            else:
                history.append(worker_lost(error or RuntimeError("the task ended without a result")))


def _unused(*_args, **_kwargs):  # pragma: no cover -- RayJobQueue never runs a job locally
    raise RuntimeError("RayJobQueue runs jobs on the cluster")
