"""The job queue of a CPU class server, each run trained in a worker process of its own.

Why: a class server's pages and its training used to share one Python interpreter. With a class
of 30 polling, the training thread waited for the interpreter while students' page scripts ran
(py-spy in a class of 30: 47% training, 28% page scripts, 25% web server, about one core of two
used), and a default cell that trains in 3.7 s alone took about 16 s. A worker process has an
interpreter of its own: the pages and the training use a core each.

    server (Streamlit)                                  worker process (python -m tlcore.serve.process_jobs)
    JobQueue thread --- ("run", config, ...) ------->   recipe.run(config, emit, should_stop)
       | appends each event to the job's History  <---  ("event", e) for every event it emits
       | Stop / nobody watching / time limit  ------->  ("stop",): should_stop() is true at the next step
       | pages drawn or another run starts  --------->  ("threads", n): torch threads for now (tlcore.serve.cores)
       | the run's model (a learner's own run) <------  ("done", model on the CPU, or None)
       v
    the page polls the History as before

- Everything else stays the base queue's (tlcore.serve.jobs.JobQueue): the line, one job per
  learner, ownership, quotas, the store, the shelf of kept models, pause. Only where a run
  trains changes, as in tlcore.serve.ray_jobs.
- The processes: at most one run each, at most one per core (`ProcessPool`). The first is
  started with the queue and runs the server's warm-up (the default demo's data, network and
  features: its cache is the one the class's runs find); a second starts when two runs go at
  once (a race of four on 2 cores) and ends after $TLS_PROCESS_IDLE_S without a run, giving its memory back.
- A worker that dies mid-run (killed, out of memory, a crash in native code) ends that job as
  failed with a message that says so; the next run gets a new process. A run that ignores Stop
  for `cancel_after_s` has its process killed: Stop always works.
- Messages are pickled (a model is a few MB); the connection is a socket pair whose child end
  is handed to the child by file descriptor, so no module of the server is imported in the
  child but tlcore's (not multiprocessing's spawn, which would re-run Streamlit's entry script).

Not for: GPUs (one worker thread per GPU in the server: CUDA streams release the interpreter)
or a Ray cluster (tlcore.serve.ray_jobs).
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Self

from tlcore.core import settings
from tlcore.core.events import Cancelled, Failed, History
from tlcore.core.messages import Message
from tlcore.serve.jobs import Job, JobQueue, QueueOptions, RunFn
from tlcore.train.config import RunConfig
from tlcore.train.finetuned import Finetuned

POLL_S = 0.2  # the relay's wait for the next event before it checks Stop and the threads again
START_S = 120.0  # a new process that has not said it is ready in this long is taken as broken
REPO_ROOT = str(Path(__file__).resolve().parents[2])
log = logging.getLogger(__name__)


def worker_lost(error: BaseException | str) -> Failed:
    """The process that trained a run went away. Its details go to the server's log, not to a
    learner's page (tlcore.serve.ray_jobs says the same of a lost Ray worker)."""
    name = error if isinstance(error, str) else type(error).__name__
    log.warning("a training process was lost: %s", error)
    message = Message("run.worker_lost", {"error": name})
    return Failed(str(message), message.key, dict(message.values))


class WorkerGone(ConnectionError):
    """The worker process ended or its connection broke."""


def _absolute_nice(nice: int) -> int:
    """The nice a training process should have: the server's own (its main thread's) plus `nice`,
    whichever thread starts it (a queue worker's thread is already lowered by `nice`)."""
    if not nice:
        return 0
    try:
        return min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + nice)
    except OSError:
        return nice


class WorkerProcess:
    """One training process and the server's end of its connection. Used by one thread at a time
    (the pool hands it out)."""

    def __init__(self, nice: int = 0, warm: bool = False, module: str = "tlcore.serve.process_jobs", args: tuple = ()):
        """A new process running `python -m module FD *args` (FD: its end of the connection); by
        default a training process (its nice and whether it warms up)."""
        parent, child = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH", "")) if p)
        args = args or (str(_absolute_nice(nice)), "1" if warm else "0")
        command = [sys.executable, "-m", module, str(child.fileno()), *map(str, args)]
        try:
            self.popen = subprocess.Popen(command, pass_fds=(child.fileno(),), env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.threads: int | None = None  # torch threads last sent
        self.last_used = time.monotonic()
        self.ready = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def send(self, *message) -> None:
        try:
            self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, ValueError) as error:
            raise WorkerGone(f"sending to the training process failed: {error}") from error

    def receive(self, timeout: float) -> tuple | None:
        """The next message, or None when none came within `timeout`. Raises WorkerGone."""
        try:
            if not self.conn.poll(timeout):
                if not self.alive():
                    raise WorkerGone(f"the training process ended (exit code {self.popen.returncode})")
                return None
            return pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError, ValueError) as error:
            raise WorkerGone(f"the training process ended ({type(error).__name__})") from error

    def wait_ready(self, timeout: float = START_S) -> None:
        """Until the process has imported the engine (and run its warm-up, if it was asked to)."""
        deadline = time.monotonic() + timeout
        while not self.ready:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerGone("the training process did not start in time")
            message = self.receive(min(left, 1.0))
            if message is not None and message[0] == "ready":
                self.ready = True

    def kill(self) -> None:
        try:
            self.popen.kill()
            self.popen.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.conn.close()

    def close(self) -> None:
        """Ask it to end; kill it when it does not within a few seconds."""
        try:
            self.send("exit")
            self.popen.wait(5)
        except (WorkerGone, subprocess.TimeoutExpired):
            pass
        self.kill()


class ProcessPool:
    """At most `size` worker processes, each training one run at a time. The first is started at
    once (warming up when asked) and kept; the others start when needed and end after `idle_s`
    ($TLS_PROCESS_IDLE_S)."""

    def __init__(self, size: int, nice: int = 0, warm: bool = False, idle_s: float | None = None):
        self.size, self.nice = max(1, size), nice
        self.idle_s = settings.get("TLS_PROCESS_IDLE_S") if idle_s is None else idle_s
        self._lock = threading.Condition()
        self._closed = False
        self._keeper: WorkerProcess | None = WorkerProcess(nice, warm)  # the one kept warm
        self._idle: list[WorkerProcess] = [self._keeper]
        self._started = 1  # processes alive (idle or training)
        threading.Thread(target=self._end_idle_extras, name="tlcore-process-reaper", daemon=True).start()

    def take(self) -> WorkerProcess:
        """An idle process (the warm one first), a new one while fewer than `size` run, else wait."""
        with self._lock:
            while True:
                if self._closed:
                    raise WorkerGone("the server is stopping")
                if self._idle:
                    keeper = [w for w in self._idle if w is self._keeper]
                    worker = (keeper or self._idle)[0]
                    self._idle.remove(worker)
                    break
                if self._started < self.size:
                    self._started += 1
                    worker = None
                    break
                self._lock.wait(1.0)
        if worker is None:
            try:
                worker = WorkerProcess(self.nice)
            except BaseException:
                with self._lock:
                    self._started -= 1
                    self._lock.notify()
                raise
        if not worker.alive():  # died while idle (killed from outside): a fresh one
            self._replace(worker)
            return self.take()
        return worker

    def give_back(self, worker: WorkerProcess, healthy: bool) -> None:
        """After a run: kept for the next one when `healthy`, else killed (a new one takes its place
        when needed; the warm one's place is taken by the next process made)."""
        worker.last_used = time.monotonic()
        if not healthy:
            worker.kill()
            self._replace(worker)
            return
        with self._lock:
            self._idle.append(worker)
            self._lock.notify()

    def _replace(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._started -= 1
            if worker is self._keeper:
                self._keeper = None
            self._lock.notify()

    def _end_idle_extras(self) -> None:
        while not self._closed:
            time.sleep(min(10.0, max(0.5, self.idle_s / 4)))
            with self._lock:
                if self._keeper is None and self._idle:  # the warm one was lost: the oldest idle one is kept
                    self._keeper = self._idle[0]
                old = [w for w in self._idle if w is not self._keeper and time.monotonic() - w.last_used > self.idle_s]
                for w in old:
                    self._idle.remove(w)
                    self._started -= 1
            for w in old:
                w.close()

    def pids(self) -> list[int]:
        """The processes' ids (idle ones; those training are out of the pool): for the memory figure."""
        with self._lock:
            return [w.pid for w in self._idle]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), []
            self._lock.notify_all()
        for w in idle:
            w.close()


class ProcessJobQueue(JobQueue):
    """The base queue, with every run trained in a worker process (see the module's docstring)."""

    trains_here = False

    def __init__(
        self,
        run_fn: RunFn | None = None,
        options: QueueOptions | None = None,
        *,
        warm: bool = False,
        cancel_after_s: float | None = None,
        idle_s: float | None = None,
    ):
        """run_fn: what the worker runs, a module-level function it can import (pickled by name);
        None: tlcore.train.recipe.run. warm: the first process runs the server's warm-up
        (tlcore.serve.warm_up) before its first run. A CPU plan (`cpu`) sizes the pool: one
        process per core at most, as many runs as the base queue lets go at once. The pool's first
        process starts with the queue (`start()`)."""
        self._child_fn = run_fn
        # a run that ignores Stop this long has its process killed ($TLS_PROCESS_CANCEL_AFTER_S)
        self.cancel_after_s = settings.get("TLS_PROCESS_CANCEL_AFTER_S") if cancel_after_s is None else cancel_after_s
        self._busy: dict[int, WorkerProcess] = {}
        self.warms_itself = warm  # studio.server then leaves the warm-up to the process
        self._warm, self._idle_s = warm, idle_s
        self.pool: ProcessPool | None = None
        super().__init__(run_fn or _unused, options)

    def start(self) -> Self:
        """The pool of training processes (its first one started, warming up when asked), then the queue."""
        cpu = self.options.cpu
        size = cpu.cores if cpu is not None else self.options.workers
        self.pool = ProcessPool(size, nice=self.options.nice, warm=self._warm, idle_s=self._idle_s)
        atexit.register(self.pool.close)
        return super().start()

    def process_ids(self) -> list[int]:
        """Every training process's id (idle or training): the server's memory is theirs too."""
        with self._lock:
            busy = [w.pid for w in self._busy.values()]
        return sorted({*busy, *(self.pool.pids() if self.pool else ())})

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def _run_one(self, job: Job, config: RunConfig, history: History) -> Finetuned | None:
        """The run in a process of the pool. A process found dead before the run's first event (it
        died while idle: killed from outside, out of memory) costs nothing: a new one takes the run."""
        for attempt in (1, 2):
            worker = self.pool.take()
            healthy = False
            me = threading.get_ident()
            with self._lock:
                self._busy[me] = worker
            try:
                worker.wait_ready()
                trained, healthy = self._relay(worker, job, config, history)
                return trained
            except WorkerGone as gone:
                if attempt == 1 and not len(history) and not job.stop_requested:
                    log.info("job %s: its training process was gone before the run began (%s); trying a new one", job.id, gone)
                    continue
                if history.snapshot().final is None:
                    history.append(Cancelled(last_step(history)) if job.stop_requested else worker_lost(str(gone)))
                return None
            finally:
                with self._lock:
                    self._busy.pop(me, None)
                self.pool.give_back(worker, healthy)
        return None

    def _relay(self, worker: WorkerProcess, job: Job, config: RunConfig, history: History) -> tuple[Finetuned | None, bool]:
        """Send the run, then pass its events on until it is done; Stop, a time limit and the torch
        threads go the other way. Returns the model (or None) and whether the process may be reused."""
        worker.threads = self._threads_now()
        worker.send("run", self._child_fn, config, job.keep_model, worker.threads)
        stopping_since: float | None = None
        while True:
            message = worker.receive(POLL_S)
            if message is not None:
                kind = message[0]
                if kind == "event":
                    history.append(message[1])
                elif kind == "done":
                    return (message[1] if isinstance(message[1], Finetuned) else None), True
            if self._should_stop(job):
                if stopping_since is None:
                    stopping_since = time.monotonic()
                    worker.send("stop")
                elif time.monotonic() - stopping_since > self.cancel_after_s:
                    log.warning("job %s ignored Stop for %.0f s; killing its training process", job.id, self.cancel_after_s)
                    worker.kill()
                    if history.snapshot().final is None:
                        history.append(Cancelled(last_step(history)))
                    return None, False
            threads = self._threads_now()
            if threads != worker.threads:
                worker.send("threads", threads)
                worker.threads = threads

    def _threads_now(self) -> int:
        return self.cpu.threads_now(self._running, self._pages, self.elsewhere.cores()) if self.cpu is not None else 0

    def _pace(self) -> None:  # the worker process sets its own threads (the "threads" message)
        pass


def last_step(history: History) -> int:
    steps = history.snapshot().steps
    return steps[-1].step if steps else 0


def _unused(*_args, **_kwargs):  # pragma: no cover -- ProcessJobQueue never runs a job in the server
    raise RuntimeError("ProcessJobQueue trains in its worker processes")


# --- the worker process ------------------------------------------------------------------------


def _child(fd: int, nice: int, warm: bool) -> None:
    """The worker process's life: set up, say ready, then one run per "run" message until "exit"
    or the server's end of the connection closes."""
    conn = Connection(fd)
    _set_up(nice)
    import torch  # noqa: F401 -- imported once, before the first run is timed

    from tlcore.train import recipe  # noqa: F401 -- the engine loaded here: in the worker, after _set_up (its nice, torch's thread wait)

    def send(*message) -> None:
        conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    state = {"stop": False}

    def read(message: tuple) -> None:
        if message[0] == "stop":
            state["stop"] = True
        elif message[0] == "threads" and message[1] > 0:
            torch.set_num_threads(message[1])
        elif message[0] == "exit":
            raise SystemExit(0)

    def should_stop() -> bool:  # asked by the trainer every step: the server's messages since
        while conn.poll(0):
            read(pickle.loads(conn.recv_bytes()))
        return state["stop"]

    if warm:
        _warm_up(should_stop)
    send("ready")
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the server is gone
        if message[0] != "run":
            read(message)
            continue
        state["stop"] = False
        _one_run(message, send, should_stop)


def _set_up(nice: int) -> None:
    """The worker's nice, and how torch's threads will wait: both before torch is imported."""
    if nice:  # its nice (absolute: _absolute_nice), whatever the thread that started it had
        from tlcore.train.device import nice_at_least  # here: before torch is imported

        nice_at_least(nice)
    from tlcore.serve import cores  # here: before torch is imported

    cores.wait_briefly()  # before torch is imported (the server's own choice, tlcore.serve.cores)


def _one_run(message: tuple, send: Callable[..., None], should_stop: Callable[[], bool]) -> None:
    """One "run" message: the run, each of its events sent as it comes, then "done" with its model
    (on the CPU, when the server keeps it; else None)."""
    import torch

    from tlcore.serve import machine  # here and below: the worker's modules, loaded after _set_up
    from tlcore.train import recipe

    _, run_fn, config, keep_model, threads = message
    if threads > 0:
        torch.set_num_threads(threads)
    machine.keep_freed_memory(True)
    trained = returned = None
    try:
        returned = (run_fn or recipe.run)(config, lambda event: send("event", event), should_stop)
        trained = getattr(returned, "model", None)  # a RunResult (recipe.run), or None
    except SystemExit:
        raise
    except BaseException as error:  # noqa: BLE001 -- run() reports its own errors; this guards a broken run_fn
        send("event", Failed.of(error))
    model = trained.on_cpu() if keep_model and isinstance(trained, Finetuned) else None
    del trained, returned
    send("done", model)
    del model
    machine.keep_freed_memory(False)
    machine.return_freed_memory()


def _warm_up(should_stop: Callable[[], bool]) -> None:
    """The server's warm-up, here where the runs will find its caches (see studio.server); each run's
    freed memory goes back to the system after it (tlcore.serve.warm_up)."""
    from tlcore.serve import warm_up  # here: in the worker, after _set_up

    warm_up.run_all(should_stop)


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1")
