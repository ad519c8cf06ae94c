"""The Ray backend (tlcore.ray_jobs) on a local Ray instance (CPU): the same JobQueue
interface, runs trained in Ray workers with their events streamed back, Stop that stops
the worker (its flag, or ray.cancel when the run ignores it), a worker that dies mid-run
ending as failed with a message, and the same store as the local queue.

One Ray instance for the module (about 5 s to start); `-m "not ray"` deselects these."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.test_jobs import fake_run, wait_for
from tlcore.config import RunConfig
from tlcore.events import Cancelled, Done, Failed, Started, StepEvent
from tlcore.jobs import JobQueue
from tlcore.store import RunStore

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def cluster():
    """A local instance started as the server starts it: from a thread that ends at once (a
    Streamlit script run), which must not take the instance down with it."""
    from tlcore.ray_jobs import connect

    # Workers import tlcore from this checkout, and this module for its run functions (pytest
    # imports it as `test_ray`, from tests/).
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.path.join(ROOT, "tests")
    try:
        starter = threading.Thread(target=connect, args=("local",))
        starter.start()
        starter.join()
    finally:
        os.environ.pop("PYTHONPATH") if saved is None else os.environ.__setitem__("PYTHONPATH", saved)
    assert ray.is_initialized()
    started = children()
    assert any("raylet" in name for name in started.values()), started
    yield
    ray.shutdown()  # the local instance's processes end with it: nothing left behind
    assert wait_for(lambda: not (set(children()) & set(started)), timeout=15), children()


def children() -> dict[int, str]:
    """This process's child processes (pid -> command name), from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except (OSError, ValueError):
            continue
        name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        if entry.isdigit() and int(rest[1]) == os.getpid() and rest[0] != "Z":
            out[int(entry)] = name
    return out


@pytest.fixture
def make_queue(cluster):
    from tlcore.ray_jobs import RayJobQueue

    made = []

    def make(run_fn, **kwargs):
        made.append(RayJobQueue(run_fn, **kwargs))
        return made[-1]

    yield make
    for q in made:  # stop whatever a failed assertion left running
        for job in list(q._jobs.values()):
            if job.active:
                q.cancel(job.id, job.owner)


def ignores_stop(config, emit, should_stop):
    """A run stuck where it never asks should_stop (a hung data loader, say)."""
    emit(Started(1000, 1, ("a", "head"), (), 10, 10, "cpu", 1, 1, ("x", "y")))
    for step in range(1, 1000):
        emit(StepEvent(step, 1, 1.0, 0.1, {"head": 1.0}))
        time.sleep(0.05)


def dies_mid_run(config, emit, should_stop):
    """The worker process disappears (killed for memory, a GPU fault, a node lost)."""
    emit(Started(100, 1, ("a", "head"), (), 10, 10, "cpu", 1, 1, ("x", "y")))
    for step in range(1, 11):
        emit(StepEvent(step, 1, 1.0, 0.1, {"head": 1.0}))
        time.sleep(0.1)
    time.sleep(0.5)  # the events sent so far reach the server
    os._exit(1)


def test_a_run_trains_on_a_worker_and_its_events_stream_to_the_page(make_queue, tmp_path):
    q = make_queue(fake_run(steps=40, delay=0.05), store=RunStore(tmp_path / "runs.sqlite"))
    job = q.submit(RunConfig(), owner="alice", tag="finetune")
    # While it trains: some steps have arrived, the end has not (events stream, not one batch at the end).
    assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > 0, timeout=30)
    live = q.get(job, "alice").runs[0]
    assert live.final is None and len(live.steps) < 40
    assert wait_for(lambda: q.get(job, "alice").state == "done", timeout=30)
    run = q.get(job, "alice").runs[0]
    assert [s.step for s in run.steps] == list(range(1, 41)) and isinstance(run.final, Done)
    assert isinstance(run.started, Started) and run.result["strategy"] == RunConfig().strategy
    # Same interface, same rules: nobody else sees it, and the store has it for after a restart.
    assert q.get(job, "bob") is None and q.cancel(job, "bob") is False
    assert q.snapshot() == {"running": 0, "waiting": 0} and q.active_for("alice") is None
    restarted = JobQueue(fake_run(), store=RunStore(tmp_path / "runs.sqlite"))
    assert restarted.get(job, "alice").runs[0].events[:-1] == run.events[:-1]


def test_stop_stops_the_run_on_the_worker(make_queue):
    q = make_queue(fake_run(steps=10_000, delay=0.01))
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > 3, timeout=30)
    t = time.monotonic()
    assert q.cancel(job, "alice")
    assert wait_for(lambda: q.get(job, "alice").state == "cancelled", timeout=5)
    stopped_in = time.monotonic() - t
    run = q.get(job, "alice").runs[0]
    assert isinstance(run.final, Cancelled) and run.final.step == run.steps[-1].step  # the worker's own Cancelled
    assert stopped_in < 3.0, stopped_in


def test_a_run_that_ignores_stop_is_cancelled_by_ray(make_queue):
    q = make_queue(ignores_stop, cancel_after_s=1.0)
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > 2, timeout=30), q.get(job, "alice").runs[0].final
    assert q.cancel(job, "alice")
    assert wait_for(lambda: q.get(job, "alice").state == "cancelled", timeout=10)
    assert isinstance(q.get(job, "alice").runs[0].final, Cancelled)


def test_a_worker_that_dies_mid_run_fails_the_job_with_a_message(make_queue):
    q = make_queue(dies_mid_run)
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(job, "alice").state not in ("queued", "running"), timeout=30)
    view = q.get(job, "alice")
    final = view.runs[0].final
    assert view.state == "failed" and isinstance(final, Failed) and final.key == "run.worker_lost"
    assert "stopped before it finished" in final.message
    assert isinstance(view.runs[0].started, Started) and len(view.runs[0].steps) >= 3  # what it had sent is kept
    # The queue goes on: the same learner can start again, and it runs.
    q._remote_fn = fake_run(steps=3, delay=0)
    again = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(again, "alice").state == "done", timeout=30)


def test_a_run_waiting_for_a_gpu_can_be_stopped(make_queue):
    q = make_queue(fake_run(steps=3, delay=0))
    q.cluster_gpus = 1  # as if the cluster had a GPU: the run asks for one, which this instance never has
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(job, "alice").state == "running", timeout=10)
    time.sleep(0.5)
    assert q.get(job, "alice").runs[0].events == ()  # still waiting in Ray's scheduler
    assert q.cancel(job, "alice")
    assert wait_for(lambda: q.get(job, "alice").state == "cancelled", timeout=5)
    assert isinstance(q.get(job, "alice").runs[0].final, Cancelled)


def test_a_run_asks_for_a_gpu_only_where_there_is_one(make_queue):
    q = make_queue(fake_run(steps=1, delay=0))
    assert q.cluster_gpus == 0 and q.num_gpus(RunConfig(device="cuda")) == 0
    q.cluster_gpus = 2
    assert [q.num_gpus(RunConfig(device=d)) for d in ("auto", "cuda", "cpu")] == [1, 1, 0]


def test_the_server_picks_ray_from_its_configuration(cluster, monkeypatch):
    from tlcore import jobs
    from tlcore.ray_jobs import RayJobQueue

    monkeypatch.setenv("TLS_RAY_ADDRESS", "local")
    assert isinstance(jobs.server_queue(run_fn=fake_run(steps=1, delay=0)), RayJobQueue)
    monkeypatch.delenv("TLS_RAY_ADDRESS")
    local = jobs.server_queue(run_fn=fake_run(steps=1, delay=0))
    assert type(local) is JobQueue


@pytest.mark.slow
def test_the_real_trainer_on_a_ray_worker(make_queue):
    q = make_queue(None)  # the worker imports tlcore.trainer itself
    config = RunConfig(backbone="studio_resnet", pretrained="no", per_class=3, val_per_class=3, image_size=16, epochs=1)
    job = q.submit(config, owner="alice")
    assert wait_for(lambda: q.get(job, "alice").state in ("done", "failed"), timeout=120)
    run = q.get(job, "alice").runs[0]
    assert q.get(job, "alice").state == "done", run.final
    assert run.started.device and run.result["val_acc"] >= 0 and run.steps
