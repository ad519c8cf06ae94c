"""The Ray queue with its driver in a process of its own: Ray's own crash never takes the class server.

Why: a process that joins a Ray cluster (a "driver") runs Ray's core worker inside it, and that
can abort the whole process on one of its own checks. Seen here: "Tried to complete task that was
not pending" when a task's cancel raced with its end after a lost EventHub (ray-project/ray#54527;
tlcore.serve.ray_jobs narrows the race, it cannot remove it). With `RayJobQueue` in the server, the
driver *is* the class server: every page goes with it. Here the server never joins Ray:

    server (Streamlit)                                driver process (python -m tlcore.serve.ray_jobs)
    RayDriverQueue thread --- ("run", id, fn, config) -->  RayJobQueue._run_one: the run on the cluster
       | appends each event to the job's History  <-----  ("event", id, e), as ray_jobs relays them
       | Stop / nobody watching / time limit  ---------->  ("stop", id)
       | the learner's model, where it trained  <-------  ("done", id, model, where)
       | the cluster's state for the Class page <-------  ("status", ClusterStatus) whenever it changes
       v
    the page polls the History as before

- Everything a page relies on stays the base queue's (tlcore.serve.jobs.JobQueue): the line, one
  job per learner, ownership, quotas, the store, the shelf, pause. In the driver process the runs
  go through `tlcore.serve.ray_jobs.RayJobQueue._run_one` unchanged: joining, the EventHub, Stop,
  lost workers and hubs, the cluster tried again after $TLS_RAY_RETRY_S, runs trained there when no cluster
  answers.
- The driver process dies (Ray's abort, killed, out of memory): each run it was relaying ends as
  failed with a message that says so (`run.driver_lost`), the Class page says the cluster is lost
  for now (reason `driver`), runs train on this server, one at a time, and a new driver process is
  started at once (then after 5 s, 10 s, ... up to $TLS_RAY_RETRY_S when it keeps dying); once it has joined,
  runs go to the cluster again.
- Costs: one more process (Ray's core worker and the engine's imports, about 300 MB), and each
  event crosses one more pipe (a few hundred a run).

`$TLS_RAY_DRIVER=here` keeps the driver in the server (`RayJobQueue` itself), as before.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

from tlcore.core import settings
from tlcore.core.events import Cancelled, Failed, History
from tlcore.core.messages import Message
from tlcore.serve.jobs import Job, JobQueue, QueueOptions, RunFn
from tlcore.serve.process_jobs import WorkerGone, WorkerProcess, last_step
from tlcore.train import recipe
from tlcore.train.config import RunConfig
from tlcore.train.finetuned import Finetuned

POLL_S = 0.2  # a relayed run's wait for its next message before it checks Stop again
START_S = 20.0  # a driver process's own start (Ray's and the engine's imports: 4-5 s on a busy 2-core box)
RESTART_S = 5.0  # a driver that died is replaced at once, then after this long times the deaths in a row
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterStatus:
    """What the teacher's Class page says about the cluster (no addresses: a page may be projected)."""

    state: str  # connecting | connected | unreachable | lost
    reason: str = ""  # unreachable: timeout | auth | error; lost: hub | cluster | driver
    gpus: int = 0
    cpus: int = 0


def driver_lost() -> Failed:
    message = Message("run.driver_lost", {})
    return Failed(str(message), message.key, {})


def train_here(
    job: Job,
    config: RunConfig,
    history,
    run_fn: RunFn | None,
    one_at_a_time: threading.Semaphore,
    should_stop: Callable[[], bool],
) -> Finetuned | None:
    """A Ray queue's run that finds no cluster (or no driver) trains in this process, one at a
    time (the server was not sized for the cluster's load), and its page says so (JobView.where)."""
    job.where = "local"
    run_fn = run_fn or recipe.run
    returned = None
    with one_at_a_time:
        if not should_stop():
            returned = run_fn(config, history.append, should_stop)
    if history.snapshot().final is None and should_stop():
        history.append(Cancelled(0))
    return getattr(returned, "model", None)  # a RunResult (recipe.run), or None


class Relayed:
    """A run's History in the driver process: every event kept (the relay reads it) and handed on."""

    def __init__(self, hand_on: Callable):
        self.history, self._hand_on = History(), hand_on

    def append(self, event) -> None:
        self.history.append(event)
        self._hand_on(event)

    __call__ = append

    def snapshot(self):
        return self.history.snapshot()

    def __len__(self) -> int:
        return len(self.history)


class _Driver:
    """One driver process, the server's end of its connection and the runs it relays."""

    def __init__(self, address: str, workers: int, cancel_after_s: float, connect_s: float, on_status, on_gone):
        self.process = WorkerProcess(module="tlcore.serve.ray_jobs", args=(address, workers, cancel_after_s, connect_s))
        self._send_lock = threading.Lock()
        self._inboxes: dict[str, queue.Queue] = {}
        self._lock = threading.Lock()
        self.gone = False
        self.said: ClusterStatus | None = None  # its last word on the cluster; "connecting" until it has joined or given up
        self._on_status, self._on_gone = on_status, on_gone
        threading.Thread(target=self._read, name="tlcore-ray-driver-reader", daemon=True).start()

    def send(self, *message) -> None:
        with self._send_lock:
            self.process.send(*message)

    def open(self, run_id: str) -> queue.Queue:
        inbox: queue.Queue = queue.Queue()
        with self._lock:
            if self.gone:
                raise WorkerGone("the Ray driver process has ended")
            self._inboxes[run_id] = inbox
        return inbox

    def close_inbox(self, run_id: str) -> None:
        with self._lock:
            self._inboxes.pop(run_id, None)

    def _read(self) -> None:
        try:
            while True:
                message = self.process.receive(1.0)
                if message is None:
                    continue
                if message[0] == "status":
                    self.said = message[1]
                    self._on_status(message[1])
                    continue
                with self._lock:
                    inbox = self._inboxes.get(message[1])
                if inbox is not None:
                    inbox.put(message)
        except WorkerGone as gone:
            log.error("the Ray driver process ended (%s); runs train on this server until a new one has joined", gone)
        with self._lock:
            self.gone = True
            inboxes = list(self._inboxes.values())
        for inbox in inboxes:
            inbox.put(("gone",))
        self._on_gone(self)

    def close(self) -> None:
        self.process.close()


class RayDriverQueue(JobQueue):
    """The base queue whose runs train on a Ray cluster through a driver process (module docstring)."""

    trains_here = False

    def __init__(
        self,
        run_fn: RunFn | None = None,
        options: QueueOptions | None = None,
        *,
        address: str = "auto",
        workers: int | None = None,
        cancel_after_s: float | None = None,
        connect_s: float | None = None,
    ):
        """As `RayJobQueue`: made at once; started, the cluster joined in the background (by the driver
        process). run_fn: what the runs call, a module-level function the driver (and Ray's workers)
        can import; None: tlcore.train.recipe.run."""
        self.address = address
        self.cancel_after_s = settings.get("TLS_RAY_CANCEL_AFTER_S") if cancel_after_s is None else cancel_after_s
        self.connect_s = settings.get("TLS_RAY_CONNECT_S") if connect_s is None else connect_s
        self._wanted = workers or 0
        self._remote_fn = run_fn
        self._local_fn = run_fn
        self._local = threading.Semaphore(1)
        self._status = ClusterStatus("connecting")
        self._joined = threading.Event()
        self._deaths = 0
        self._closed = False
        self._driver_lock = threading.Lock()
        self._driver: _Driver | None = None
        super().__init__(run_fn or _unused, dataclasses.replace(options or QueueOptions(), workers=self._wanted or 1))

    def start(self) -> Self:
        """The queue's workers, then its driver process (which joins the cluster)."""
        super().start()
        with self._driver_lock:  # a driver that dies at once finds itself the current one
            self._driver = self._start_driver()
        atexit.register(self.close)
        return self

    # --- its driver process ---
    def _start_driver(self) -> _Driver:
        return _Driver(self.address, self._wanted, self.cancel_after_s, self.connect_s, self._status_said, self._driver_gone)

    def _status_said(self, status) -> None:
        if status.state == "connecting" and self._status.state == "lost":
            return  # a new driver joining after one died: the teacher still reads why, until it has joined
        self._status = status
        if status.state != "connecting":
            if status.state == "connected":
                self._deaths = 0
                self._grow(self._wanted or status.gpus or max(1, status.cpus // 2))
            self._joined.set()

    def _driver_gone(self, driver: _Driver) -> None:
        with self._driver_lock:
            if self._closed or driver is not self._driver:
                return
            self._driver = None
            self._deaths += 1
            wait_s = 0.0 if self._deaths == 1 else min(RESTART_S * (self._deaths - 1), settings.get("TLS_RAY_RETRY_S"))
        self._status = ClusterStatus("lost", "driver")
        self._joined.set()
        threading.Thread(target=self._restart, args=(wait_s,), name="tlcore-ray-driver-restart", daemon=True).start()

    def _restart(self, wait_s: float) -> None:
        time.sleep(wait_s)
        with self._driver_lock:
            if self._closed or self._driver is not None:
                return
            try:
                self._driver = self._start_driver()
            except OSError as error:
                log.error("a new Ray driver process could not start: %s", error)
                self._deaths += 1
                wait_s = min(RESTART_S * self._deaths, settings.get("TLS_RAY_RETRY_S"))
                threading.Thread(target=self._restart, args=(wait_s,), daemon=True).start()

    def driver_pid(self) -> int | None:
        driver = self._driver
        return driver.process.pid if driver is not None else None

    def close(self) -> None:
        with self._driver_lock:
            self._closed = True
            driver, self._driver = self._driver, None
        if driver is not None:
            driver.close()

    # --- what the pages ask ---
    def cluster_status(self):
        return self._status

    def wait_joined(self, timeout_s: float | None = None):
        self._joined.wait(timeout_s)
        return self._status

    # --- one run ---
    def _run_one(self, job: Job, config: RunConfig, history: History) -> Finetuned | None:
        self._joined.wait(self.connect_s + START_S)
        driver = self._driver
        if driver is None or driver.gone or driver.said is None or driver.said.state == "connecting":
            return self._run_here(job, config, history)  # none yet, or a new one still joining
        try:
            inbox = driver.open(job.id)
        except WorkerGone:
            return self._run_here(job, config, history)
        try:
            return self._relay(driver, inbox, job, config, history)
        finally:
            driver.close_inbox(job.id)

    def _relay(self, driver: _Driver, inbox: queue.Queue, job: Job, config: RunConfig, history: History) -> Finetuned | None:
        try:
            driver.send("run", job.id, self._remote_fn, config, job.keep_model)
        except WorkerGone:
            history.append(driver_lost())
            return None
        stopping_since: float | None = None
        while True:
            try:
                message = inbox.get(timeout=POLL_S)
            except queue.Empty:
                message = None
            if message is not None:
                if message[0] == "event":
                    history.append(message[2])
                elif message[0] == "done":
                    job.where = message[3]
                    return message[2] if isinstance(message[2], Finetuned) else None
                elif message[0] == "gone":
                    if history.snapshot().final is None:
                        history.append(Cancelled(last_step(history)) if job.stop_requested else driver_lost())
                    return None
            if self._should_stop(job):
                if stopping_since is None:
                    stopping_since = time.monotonic()
                    try:
                        driver.send("stop", job.id)
                    except WorkerGone:
                        pass  # its "gone" follows
                elif time.monotonic() - stopping_since > self.cancel_after_s + 10:
                    # The driver cancels a task that ignores Stop after cancel_after_s; one that
                    # does not answer at all is not waited for: the learner's run ends here.
                    log.warning("job %s: the Ray driver did not end it after Stop; ending it here", job.id)
                    if history.snapshot().final is None:
                        history.append(Cancelled(last_step(history)))
                    return None

    def _run_here(self, job: Job, config: RunConfig, history: History) -> Finetuned | None:
        """No driver (it died, and the next one has not joined yet): the run trains here."""
        return train_here(job, config, history, self._local_fn, self._local, lambda: self._should_stop(job))


def _unused(*_args, **_kwargs):  # pragma: no cover -- RayDriverQueue never runs a job through the base's run_fn
    raise RuntimeError("RayDriverQueue runs jobs through its driver process")
