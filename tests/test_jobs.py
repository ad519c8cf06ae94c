"""The job queue: training never in the page's thread, one active job per owner, Stop works,
and no learner can see or stop another's run."""

from __future__ import annotations

import threading
import time

import pytest

from tlcore import jobs
from tlcore.config import RunConfig
from tlcore.events import Cancelled, Done, Started, StepEvent
from tlcore.jobs import JobLimitError, JobQueue


def fake_run(steps=50, delay=0.01, gate: threading.Event | None = None):
    def run(config, emit, should_stop):
        if gate is not None:
            gate.wait(5)
        emit(Started(steps, 1, ("a", "head"), (), 10, 10, "cpu", 1, 1, ("x", "y")))
        for s in range(1, steps + 1):
            if should_stop():
                emit(Cancelled(s - 1))
                return None
            emit(StepEvent(s, 1, 1.0 / s, 0.1, {"head": 1.0}))
            time.sleep(delay)
        emit(Done({"val_acc": 0.9, "strategy": config.strategy}))
        return {}
    return run


def wait_for(pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_submit_runs_in_background_and_finishes():
    q = JobQueue(fake_run(steps=5, delay=0))
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state == "done")
    view = q.get(job, "s1")
    assert isinstance(view.runs[0].final, Done) and view.runs[0].progress == 1.0


def test_one_active_job_per_owner_and_queue_positions():
    gate = threading.Event()
    q = JobQueue(fake_run(steps=5, delay=0, gate=gate))
    first = q.submit(RunConfig(), owner="s1")
    with pytest.raises(JobLimitError):
        q.submit(RunConfig(), owner="s1")
    second = q.submit(RunConfig(), owner="s2")
    third = q.submit(RunConfig(), owner="s3")
    assert wait_for(lambda: q.get(first, "s1").state == "running")
    assert (q.get(second, "s2").position, q.get(third, "s3").position) == (1, 2)
    assert q.snapshot() == {"running": 1, "waiting": 2}
    assert q.active_for("s2") == second
    gate.set()
    assert wait_for(lambda: q.get(third, "s3").state == "done")
    assert q.active_for("s1") is None


def test_stop_takes_effect_within_a_second():
    q = JobQueue(fake_run(steps=10_000, delay=0.005))
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: len(q.get(job, "s1").runs[0].steps) > 3)
    t = time.monotonic()
    q.cancel(job, "s1")
    assert wait_for(lambda: q.get(job, "s1").state == "cancelled", timeout=1.0)
    assert time.monotonic() - t < 1.0
    assert isinstance(q.get(job, "s1").runs[0].final, Cancelled)


def test_unwatched_job_is_cancelled():
    q = JobQueue(fake_run(steps=10_000, delay=0.005), stale_after_s=0.2)
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: q.get(job, "s1", heartbeat=False).state == "cancelled", timeout=3.0)


def test_a_race_runs_every_config_in_order():
    q = JobQueue(fake_run(steps=3, delay=0))
    configs = [RunConfig(backbone="studio_resnet", strategy=s) for s in ("scratch", "linear_probe", "full")]
    job = q.submit(configs, owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state == "done")
    assert [r.result["strategy"] for r in q.get(job, "s1").runs] == ["scratch", "linear_probe", "full"]
    assert q.get(job, "s1").labels == ("scratch", "linear_probe", "full")


def test_real_trainer_through_the_queue():
    q = JobQueue()
    cfg = RunConfig(backbone="studio_resnet", pretrained="no", per_class=3, val_per_class=3, image_size=16, epochs=1)
    job = q.submit(cfg, owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state in ("done", "failed"), timeout=60)
    assert q.get(job, "s1").state == "done", q.get(job, "s1").runs[0].final


# --- one class server, many learners: nobody sees or stops another's run -------------------


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tlcore-worker")]


def test_another_owner_can_neither_see_nor_stop_a_run():
    q = JobQueue(fake_run(steps=10_000, delay=0.005))
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(job, "alice").state == "running")
    assert q.get(job, "bob") is None and q.get(job, "") is None
    assert q.cancel(job, "bob") is False
    time.sleep(0.05)
    assert q.get(job, "alice").state == "running"  # Bob's Stop did nothing
    q._jobs[job].last_seen -= 100
    before = q._jobs[job].last_seen
    q.heartbeat(job, "bob")  # nor can Bob keep Alice's abandoned run alive
    assert q._jobs[job].last_seen == before
    assert q.active_for("bob") is None
    assert q.cancel(job, "alice") is True
    assert wait_for(lambda: q.get(job, "alice").state == "cancelled")


def test_job_ids_are_unguessable():
    q = JobQueue(fake_run(steps=1, delay=0))
    first, second = q.submit(RunConfig(), owner="s1"), q.submit(RunConfig(), owner="s2")
    assert {first, second}.isdisjoint({"job-1", "job-2", "job-0"})
    ids = {jobs.new_job_id() for _ in range(2000)}
    assert len(ids) == 2000
    # token_urlsafe(16): 22 characters of a 64-letter alphabet, 128 random bits.
    assert all(len(i.removeprefix("job-")) >= 22 for i in ids)
    assert len({i[4:8] for i in ids}) > 1500  # no shared, counter-like prefix


def test_the_shared_queue_is_made_once_and_adds_no_worker_when_asked_again(monkeypatch):
    monkeypatch.setattr(jobs, "_shared", None)
    made = []

    def make():
        made.append(JobQueue(fake_run(steps=1, delay=0)))
        return made[-1]

    before = len(worker_threads())
    first = jobs.shared_queue(make)
    results = []
    threads = [threading.Thread(target=lambda: results.append(jobs.shared_queue(make))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and all(r is first for r in results)
    assert len(worker_threads()) == before + 1  # one device, one worker


def test_old_finished_jobs_are_forgotten_but_never_a_learners_latest_of_each_kind():
    q = JobQueue(fake_run(steps=1, delay=0.0), max_finished=3)
    kept = q.submit(RunConfig(), "alice", tag="finetune")
    wait_for(lambda: q.get(kept, "alice").state == "done")
    others = []
    for i in range(6):  # other learners' runs push the finished list past its bound
        others.append(q.submit(RunConfig(), f"learner-{i}", tag="race"))
        wait_for(lambda job=others[-1], i=i: q.get(job, f"learner-{i}").state == "done")
    race = q.submit(RunConfig(), "alice", tag="race")
    wait_for(lambda: q.get(race, "alice").state == "done")
    q.submit(RunConfig(), "zoe", tag="race")
    assert q.get(kept, "alice") is not None  # Alice's fine-tune: still what her page shows
    assert q.get(race, "alice") is not None


def test_the_server_trains_here_when_ray_is_not_usable(monkeypatch, caplog):
    import sys

    monkeypatch.setenv("TLS_RAY_ADDRESS", "auto")
    monkeypatch.setitem(sys.modules, "tlcore.ray_jobs", None)  # as if Ray were not installed
    q = jobs.server_queue(run_fn=fake_run(steps=1, delay=0))
    assert type(q) is JobQueue and "training on this machine instead" in caplog.text
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state == "done")


def test_one_worker_per_gpu_each_pinned_to_its_own_and_running_at_once(monkeypatch):
    """A class server with N GPUs trains N learners' runs at once, each worker on its own GPU."""
    import threading

    from tlcore import jobs

    pinned, running, both = {}, set(), threading.Event()

    def pin(index):
        pinned[threading.current_thread().name] = index

    def run(config, emit, should_stop):
        running.add(threading.current_thread().name)
        if len(running) == 2:
            both.set()
        both.wait(10)  # returns at once when two runs train at the same time

    monkeypatch.setattr(jobs, "local_gpus", lambda: 2)
    queue = jobs.server_queue(run_fn=run, pin=pin)
    assert len(queue._threads) == 2
    a, b = queue.submit(RunConfig(), owner="a"), queue.submit(RunConfig(), owner="b")
    assert both.wait(10), "the two runs did not train at the same time"
    assert sorted(pinned.values()) == [0, 1] and set(pinned) == running  # each worker on its own GPU
    for job, owner in ((a, "a"), (b, "b")):
        while queue.get(job, owner).state == "running":
            time.sleep(0.01)
