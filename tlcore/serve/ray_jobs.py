"""The job queue past one machine: the same JobQueue, each run trained on a Ray cluster.

When one class server is not enough, `RayJobQueue` keeps everything a page relies on from
`tlcore.serve.jobs.JobQueue` (submit, get, cancel, heartbeat, active_for, snapshot; one job per
learner; ownership checks; queue positions; the SQLite store) and changes only where a run
trains: instead of calling the trainer in its worker thread, the thread sends the run to the
cluster as a Ray task and relays its events.

    server (Streamlit)                              Ray cluster
    JobQueue worker thread --- task(config) ----->  GPU worker: recipe.run(config, emit, should_stop)
       | every POLL_S: pull events  <---- EventHub actor <---- emit() pushes batches of events
       | Stop / nobody watching ------> EventHub.stop(key) ----> should_stop() reads it
       | still running $TLS_RAY_CANCEL_AFTER_S later: ray.cancel(force=True)
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
- Joining the cluster never holds up a page: the queue is made at once and connects in a
  thread of its own (at most $TLS_RAY_CONNECT_S). A run that finds no cluster (not reached, its
  token refused, or lost since) trains on this server instead, one at a time, and its page
  says so in a line; the Class page tells the teacher why (`cluster_status()`). A cluster lost
  during the class (no new hub answered: seen on a box whose cores were all busy) is tried again
  by the first run $TLS_RAY_RETRY_S later, and used again when it answers.
- Ray 2.60 clusters ask for a token (`RAY_AUTH_MODE=token`): the server sends the one in
  `$RAY_AUTH_TOKEN`, `$RAY_AUTH_TOKEN_PATH` or `~/.ray/auth_token` (README, "Past one machine").
- The EventHub restarts when its process dies (`max_restarts`), and is made again when it is
  gone for good: a run whose events were lost with it fails with a message, the next one
  gets a working hub.

- A learner's own run (a job submitted with `keep_model`) sends its trained model back as the
  task's return value (through Ray's object store, never in the event stream), moved to the
  CPU on the worker; the server holds the run's Done until it has it, keeps it on its shelf
  (tlcore.serve.kept_models) and puts its id in the result: "Try it" and the download work as for a local
  run. Any other run's model stays on the worker and is dropped there.

Not for: scheduling policy (the base queue's).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import secrets
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Self

import ray

from tlcore.core import settings
from tlcore.core.events import FINAL_EVENTS, Cancelled, Failed, History, Started
from tlcore.core.messages import Message
from tlcore.serve.jobs import Job, JobQueue, QueueOptions, RunFn
from tlcore.serve.ray_driver import ClusterStatus, Relayed, train_here
from tlcore.train import recipe
from tlcore.train.config import RunConfig
from tlcore.train.finetuned import Finetuned

POLL_S = 0.2  # how often the server pulls a running job's events (the page redraws every second)
FLUSH_S = 0.25  # how often a worker sends its buffered events
STOP_POLL_S = 0.5  # how often a worker asks whether Stop was pressed (should_stop is called every step)
HUB_S = 10.0  # an EventHub that does not answer a call in this long is taken as lost
REPO_ROOT = str(Path(__file__).resolve().parents[2])
log = logging.getLogger(__name__)


class ClusterError(ConnectionError):
    """The cluster could not be joined; `reason` is timeout | auth | error."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@ray.remote(num_cpus=0, max_restarts=-1)  # its process dies: Ray starts it again (empty)
class EventHub:
    """The mailbox between the server and its runs on the cluster, keyed by run: events go
    up (the worker pushes, the server pulls), Stop goes down. One per queue, on the node the
    server connects through; it holds only what the server has not pulled yet."""

    def __init__(self):
        self._events: dict[str, list] = {}
        self._stop: set[str] = set()

    def ping(self) -> bool:
        return True

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
def train_remote(run_fn: RunFn | None, config: RunConfig, key: str, hub, keep_model: bool = False):
    """One run on a Ray worker: the trainer's emit and should_stop talk to the EventHub. Returns
    the trained model on the CPU when the server keeps it (`keep_model`), else None."""
    run_fn = run_fn or recipe.run
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
        returned = run_fn(config, emit, should_stop)
    finally:
        flush()
        if state["last"] is not None:
            ray.get(state["last"])  # the last events are in the hub before the task counts as done
    trained = getattr(returned, "model", None)  # a RunResult (recipe.run), or None
    return trained.on_cpu() if keep_model and trained is not None else None


def _cancel_unless_it_ends(ref, wait_s: float = STOP_POLL_S + 2.0) -> None:
    """Force-cancel a task that is still running once it had the time to end on its own. A task
    whose hub is gone for good ends at its next stop poll (its question to the hub raises); a
    cancel that lands while a task ends can abort Ray's driver in its own task manager ("Tried to
    complete task that was not pending", ray-project/ray#54527: seen here, and the driver is the
    class server), so the task is given that chance first."""
    done, _ = ray.wait([ref], timeout=wait_s)
    if not done:
        ray.cancel(ref, force=True)


def worker_lost(error: BaseException) -> Failed:
    """The worker or its node went away. Ray's own words (addresses, process ids) go to the
    server's log, not to a learner's page."""
    log.warning("a Ray worker was lost: %s: %s", type(error).__name__, error)
    message = Message("run.worker_lost", {"error": type(error).__name__})
    return Failed(str(message), message.key, dict(message.values))


def hub_lost(error: BaseException) -> Failed:
    log.warning("the EventHub was lost: %s: %s", type(error).__name__, error)
    message = Message("run.hub_lost", {})
    return Failed(str(message), message.key, {})


def _use_token_if_given() -> None:
    """A token handed to the server in the environment means the cluster asks for one: token
    mode for this process (Ray turns it on by itself only for address "auto")."""
    if not os.environ.get("RAY_AUTH_MODE") and (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_MODE"] = "token"


def _reread_ray_config() -> None:
    """Ray reads its RAY_* settings when it is imported; settings made since (above) count once
    it reads them again, as Ray itself does when it turns token mode on."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError) as error:  # another Ray version: the environment at start counts
        log.info("cannot make Ray re-read its settings: %s", error)


def _reason(error: BaseException) -> str:
    text, seen = "", error
    while seen is not None and len(text) < 20_000:
        text += f" {seen}"
        seen = seen.__cause__ or seen.__context__
    return "auth" if "uthenticat" in text or "AuthToken" in text else "error"


def connect(address: str, timeout_s: float | None = None) -> None:
    """Join the Ray cluster at `address` ("auto", "HEAD_IP:6379", "ray://head:10001", or
    "local" for a new instance on this machine), unless this process already has. Workers get
    this checkout on their PYTHONPATH: the same code must sit at the same path on every node.
    Raises ClusterError when it cannot: refused (its token), failed, or not joined within
    `timeout_s` (Ray keeps trying in the background; a late success is not used).

    `ray.init` runs in a thread of its own that lives as long as the process. The processes
    a local instance starts die with the *thread* that started them (Linux's parent-death
    signal follows the thread), and the Streamlit script thread that first asks for the
    queue ends when its page is drawn: seen as the local raylet killed seconds after start.
    """
    if ray.is_initialized():
        return
    _use_token_if_given()
    # Ray ends a driver whose cluster head has not answered for 60 s (seen: the process exits).
    # The driver here is the class server: it must outlive a lost cluster and train locally.
    os.environ.setdefault("RAY_gcs_rpc_server_reconnect_timeout_s", str(365 * 24 * 3600))
    _reread_ray_config()
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p)}}
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
    if not ready.wait(timeout_s):
        raise ClusterError("timeout", f"no answer from {address} in {timeout_s:g} s")
    if failure:
        raise ClusterError(_reason(failure[0]), f"{type(failure[0]).__name__}: {failure[0]}") from failure[0]


def _near_the_server() -> dict:
    """The hub on the node this server joined through (soft: elsewhere if that one is full), not
    on a GPU worker that may come and go."""
    try:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)}
    except Exception:  # noqa: BLE001 -- a client-mode driver (ray://) has no node of its own: Ray chooses
        return {}


class RayJobQueue(JobQueue):
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
        """Made at once; started (`start()`), the cluster is joined in the background (at most
        `connect_s`, $TLS_RAY_CONNECT_S). Until it is, one worker waits for it; then the queue grows
        to the cluster's size."""
        self.address = address
        self.connect_s = settings.get("TLS_RAY_CONNECT_S") if connect_s is None else connect_s
        self.cancel_after_s = settings.get("TLS_RAY_CANCEL_AFTER_S") if cancel_after_s is None else cancel_after_s
        self.cluster_gpus = 0
        self._wanted = workers or settings.get("TLS_RAY_WORKERS") or None
        self._remote_fn = run_fn  # None: the worker imports tlcore.train.recipe.run itself
        self._local_fn = run_fn  # a run that finds no cluster trains here (None: tlcore.train.recipe.run)
        self._local = threading.Semaphore(1)  # ... one at a time: this server was not sized for the cluster's load
        self._status = ClusterStatus("connecting")
        self._connected: ClusterStatus | None = None  # the status once joined (a lost cluster that answers again gets it back)
        self._lost_at = 0.0
        self._joined = threading.Event()
        self._hub = None
        self._hub_lock = threading.Lock()
        # The base class wants a run_fn for its local path; runs go through _run_one here.
        super().__init__(run_fn or _unused, dataclasses.replace(options or QueueOptions(), workers=self._wanted or 1))

    def start(self) -> Self:
        """The queue's workers, then the cluster joined (in the background unless already in one)."""
        super().start()
        if ray.is_initialized():
            self._join()  # already in a cluster (a second queue, the tests): nothing to wait for
        else:
            threading.Thread(target=self._join, name="tlcore-ray-join", daemon=True).start()
        return self

    # --- the cluster ---
    def _join(self) -> None:
        try:
            connect(self.address, self.connect_s)
            resources = ray.cluster_resources()
            self.cluster_gpus = int(resources.get("GPU", 0))
            cpus = int(resources.get("CPU", 0))
            self._ensure_hub(
                new_s=max(HUB_S, self.connect_s)
            )  # the cluster's first actor starts a worker process: slow on a busy box
            self._status = self._connected = ClusterStatus("connected", gpus=self.cluster_gpus, cpus=cpus)
            self._grow(self._wanted or self.cluster_gpus or max(1, cpus // 2))
        except ClusterError as error:
            log.error("TLS_RAY_ADDRESS=%s: the Ray cluster cannot be used (%s); runs train on this server", self.address, error)
            self._status = ClusterStatus("unreachable", error.reason)
        except Exception as error:  # noqa: BLE001 -- whatever Ray raised: the class goes on here
            log.exception("TLS_RAY_ADDRESS=%s: joining the Ray cluster failed; runs train on this server", self.address)
            self._status = ClusterStatus("unreachable", _reason(error))
        finally:
            self._joined.set()

    def cluster_status(self) -> ClusterStatus:
        return self._status

    def wait_joined(self, timeout_s: float | None = None) -> ClusterStatus:
        self._joined.wait(timeout_s)
        return self._status

    def _ensure_hub(self, new_s: float = HUB_S):
        """The EventHub, answering: the one we have, restarted by Ray if its process died, else a
        new one (given `new_s` to answer). Raises when none answers (the cluster itself is gone)."""
        with self._hub_lock:
            if self._hub is not None:
                try:
                    ray.get(self._hub.ping.remote(), timeout=HUB_S)
                    return self._hub
                except (ray.exceptions.RayError, TimeoutError) as error:
                    log.warning("the EventHub does not answer (%s); making a new one", type(error).__name__)
            self._hub = EventHub.options(**_near_the_server()).remote()
            ray.get(self._hub.ping.remote(), timeout=new_s)
            return self._hub

    def num_gpus(self, config: RunConfig) -> int:
        """What a run asks the cluster for: a whole GPU when there are GPUs and the run may use one."""
        return 1 if self.cluster_gpus and config.device in ("auto", "cuda") else 0

    # --- one run ---
    def _run_one(self, job: Job, config: RunConfig, history: History) -> Finetuned | None:
        self._joined.wait(self.connect_s + 5)
        hub = None
        status = self._status
        retry = status.state == "lost" and time.monotonic() - self._lost_at > settings.get("TLS_RAY_RETRY_S")
        if status.state == "connected" or retry:
            try:
                hub = self._ensure_hub()
                if retry:  # a hub answers again (the load that kept it from answering is over): back on the cluster
                    log.info("the Ray cluster answers again; runs train on it")
                    self._status = self._connected or ClusterStatus("connected")
            except Exception as error:  # noqa: BLE001 -- no hub can be made: the cluster is gone (for now)
                log.error("the Ray cluster is lost (%s: %s); runs train on this server", type(error).__name__, error)
                self._status, self._lost_at = ClusterStatus("lost", "cluster"), time.monotonic()
        if hub is None:
            return self._run_here(job, config, history)
        return self._run_remote(job, config, history, hub)

    def _run_here(self, job: Job, config: RunConfig, history: History) -> Finetuned | None:
        """No cluster: the run trains in this server, and its page says so (JobView.where)."""
        return train_here(job, config, history, self._local_fn, self._local, lambda: self._should_stop(job))

    def _run_remote(self, job: Job, config: RunConfig, history: History, hub) -> Finetuned | None:
        """`history` holds the run's Done back (jobs.HeldDone) until the model the task returns is kept."""
        key = f"{job.id}:{secrets.token_hex(4)}"
        trained = None
        ref = train_remote.options(num_gpus=self.num_gpus(config)).remote(self._remote_fn, config, key, hub, job.keep_model)
        stopping_since: float | None = None
        killed = ended = False
        error: BaseException | None = None
        try:
            try:
                while True:
                    done, _ = ray.wait([ref], timeout=POLL_S)
                    for event in ray.get(hub.pull.remote(key), timeout=HUB_S):
                        history.append(event)
                    if self._should_stop(job):
                        if stopping_since is None:
                            stopping_since = time.monotonic()
                            hub.stop.remote(key)  # the trainer sees it at its next step
                            if not len(history):
                                ray.cancel(ref)  # not started yet (waiting for a GPU): just drop it
                        elif not killed and time.monotonic() - stopping_since > self.cancel_after_s:
                            log.warning("job %s ignored Stop; cancelling its task", job.id)
                            ray.cancel(ref, force=True)
                            killed = True
                    if done:
                        ended = True
                        break
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ray.exceptions.RaySystemError) as lost:
                # The hub died (or restarted empty): this run's events are gone with it. This run
                # fails with a message; the next one gets a hub that answers (_ensure_hub).
                history.append(hub_lost(lost))
                return None
            try:
                trained = ray.get(ref)
            except ray.exceptions.TaskCancelledError:
                pass
            except ray.exceptions.RayTaskError as e:  # the run function itself raised
                cause = getattr(e, "cause", None)
                history.append(Failed.of(cause) if isinstance(cause, BaseException) else Failed(str(e)))
            except ray.exceptions.RayError as e:  # the worker, its node or the object store went away
                error = e
            try:
                for event in ray.get(hub.pull.remote(key), timeout=HUB_S):
                    history.append(event)
            except (ray.exceptions.RayError, TimeoutError) as lost:
                if history.snapshot().final is None:
                    history.append(hub_lost(lost))
        finally:
            if not ended:  # this thread failed while relaying (the hub lost, say): no run left orphaned
                _cancel_unless_it_ends(ref)
            hub.forget.remote(key)
        if history.snapshot().final is None:
            snap = history.snapshot()
            if stopping_since is not None:
                history.append(Cancelled(snap.steps[-1].step if snap.steps else 0))
            else:
                history.append(worker_lost(error or RuntimeError("the task ended without a result")))
        return trained if isinstance(trained, Finetuned) else None


def _unused(*_args, **_kwargs):  # pragma: no cover -- RayJobQueue never runs a job locally
    raise RuntimeError("RayJobQueue runs jobs on the cluster")


# --- the driver process of tlcore.serve.ray_driver.RayDriverQueue --------------------------------


def _driver(fd: int, address: str, workers: int, cancel_after_s: float, connect_s: float) -> None:
    """A driver process's life: join the cluster (a RayJobQueue of its own does), say its state
    whenever it changes, and relay each "run" in a thread of its own through that queue's
    `_run_one`, until "exit" or the server is gone."""
    conn = Connection(fd)
    send_lock = threading.Lock()

    def send(*message) -> None:
        with send_lock:
            conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    # stale_after_s: the server watches its learners and says "stop"; this process never decides it.
    relay = RayJobQueue.started(
        None,
        address=address,
        workers=workers or None,
        cancel_after_s=cancel_after_s,
        connect_s=connect_s,
        stale_after_s=float("inf"),
    )
    jobs: dict[str, Job] = {}

    def say_status() -> None:
        said = None
        while True:
            now = relay.cluster_status()
            if now != said:
                send("status", now)
                said = now
            time.sleep(0.2)

    def run(run_id: str, run_fn: RunFn | None, config: RunConfig, keep_model: bool) -> None:
        job = jobs[run_id]
        relay._remote_fn = relay._local_fn = run_fn  # read per run
        history, model = Relayed(lambda event: send("event", run_id, event)), None
        try:
            model = relay._run_one(job, config, history)
        except Exception as error:  # noqa: BLE001 -- this run fails, said; the driver serves the next
            if history.snapshot().final is None:
                history.append(Failed.of(error))
        finally:
            jobs.pop(run_id, None)
            send("done", run_id, model.on_cpu() if keep_model and isinstance(model, Finetuned) else None, job.where)

    threading.Thread(target=say_status, name="tlcore-ray-driver-status", daemon=True).start()
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the server is gone
        if message[0] == "run":
            _, run_id, run_fn, config, keep_model = message
            jobs[run_id] = Job(run_id, "", [config], [""], [History()], keep_model=keep_model)
            threading.Thread(
                target=run, args=(run_id, run_fn, config, keep_model), name=f"tlcore-ray-run-{run_id}", daemon=True
            ).start()
        elif message[0] == "stop" and message[1] in jobs:
            jobs[message[1]].stop_requested = True
        elif message[0] == "exit":
            return


if __name__ == "__main__":
    _driver(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
