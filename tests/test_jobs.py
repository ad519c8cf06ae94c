"""The job queue: training never in the page's thread, one active job per owner, Stop works."""

from __future__ import annotations

import threading
import time

import pytest

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
    assert wait_for(lambda: q.get(job).state == "done")
    view = q.get(job)
    assert isinstance(view.runs[0].final, Done) and view.runs[0].progress == 1.0


def test_one_active_job_per_owner_and_queue_positions():
    gate = threading.Event()
    q = JobQueue(fake_run(steps=5, delay=0, gate=gate))
    first = q.submit(RunConfig(), owner="s1")
    with pytest.raises(JobLimitError):
        q.submit(RunConfig(), owner="s1")
    second = q.submit(RunConfig(), owner="s2")
    third = q.submit(RunConfig(), owner="s3")
    assert wait_for(lambda: q.get(first).state == "running")
    assert (q.get(second).position, q.get(third).position) == (1, 2)
    assert q.snapshot() == {"running": 1, "waiting": 2}
    assert q.active_for("s2") == second
    gate.set()
    assert wait_for(lambda: q.get(third).state == "done")
    assert q.active_for("s1") is None


def test_stop_takes_effect_within_a_second():
    q = JobQueue(fake_run(steps=10_000, delay=0.005))
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: len(q.get(job).runs[0].steps) > 3)
    t = time.monotonic()
    q.cancel(job)
    assert wait_for(lambda: q.get(job).state == "cancelled", timeout=1.0)
    assert time.monotonic() - t < 1.0
    assert isinstance(q.get(job).runs[0].final, Cancelled)


def test_unwatched_job_is_cancelled():
    q = JobQueue(fake_run(steps=10_000, delay=0.005), stale_after_s=0.2)
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: q.get(job, heartbeat=False).state == "cancelled", timeout=3.0)


def test_a_race_runs_every_config_in_order():
    q = JobQueue(fake_run(steps=3, delay=0))
    configs = [RunConfig(backbone="studio_resnet", strategy=s) for s in ("scratch", "linear_probe", "full")]
    job = q.submit(configs, owner="s1")
    assert wait_for(lambda: q.get(job).state == "done")
    assert [r.result["strategy"] for r in q.get(job).runs] == ["scratch", "linear_probe", "full"]
    assert q.get(job).labels == ("scratch", "linear_probe", "full")


def test_real_trainer_through_the_queue():
    q = JobQueue()
    cfg = RunConfig(backbone="studio_resnet", pretrained="no", per_class=3, val_per_class=3, image_size=16, epochs=1)
    job = q.submit(cfg, owner="s1")
    assert wait_for(lambda: q.get(job).state in ("done", "failed"), timeout=60)
    assert q.get(job).state == "done", q.get(job).runs[0].final
