"""The live panel's timing (studio.job_panel): the end of a run is drawn the moment the job ends,
not a poll later; while a run trains, polls do not wait on it (a Stop click is not held up).

The page runs in AppTest with a queue whose `wait_until_ended` records each wait the page asks
for; the run is held before its Done until the test lets it go. studio.job_panel's clock is a
hand-moved one (tests.helpers.fakes.Clock): its waits for a first step take no wall time.
"""

from __future__ import annotations

import threading

import pytest

from tests.helpers.apptest import app, job_of, ok, strings
from tests.helpers.fakes import Clock, fake_run, wait_for
from tlcore.core.events import Done, Started
from tlcore.serve.jobs import JobQueue


class WaitsRecorded(JobQueue):
    """The real queue; each wait a page asks for is recorded and, once `end_when_waited` is set,
    lets the held run finish while the page waits."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waits: list[float] = []
        self.end_when_waited = threading.Event()
        self.release = threading.Event()

    def wait_until_ended(self, job_id: str, owner: str, timeout: float) -> bool:
        self.waits.append(timeout)
        if not self.end_when_waited.is_set():
            return super().wait_until_ended(job_id, owner, 0.0)  # as if the period had passed
        self.release.set()  # the run's Done goes out now, while this page waits on it
        return super().wait_until_ended(job_id, owner, timeout)


def held_before_done(queue: list[WaitsRecorded], parked: threading.Event):
    """fake_run, whose every epoch is trained at once; its Done waits for the queue's release."""

    def run(config, emit, should_stop):
        def emit_held(event):
            if isinstance(event, Done):
                parked.set()
                queue[0].release.wait(30)  # a bound, so that a failing test cannot hang the suite
            emit(event)

        return fake_run(config, emit_held, should_stop)

    return run


@pytest.fixture
def clock(monkeypatch):
    import studio.job_panel

    clock = Clock()
    monkeypatch.setattr(studio.job_panel, "time", clock)
    return clock


def test_a_finishing_run_is_drawn_finished_by_the_poll_that_sees_it_end(clock, monkeypatch):
    """After the run's last epoch, the poll waits on the job's end (FINISH_WAIT_S at most) and the
    same script run draws "Finished": no second poll, no extra period. Whatever the estimate says:
    here this machine's record has runs of this kind finish a minute after their last evaluation
    (on a loaded server the forgetting scores took 1-2.6 s against an estimate under one)."""
    from studio.job_panel import FINISH_WAIT_S
    from tlcore.train import time_estimate

    monkeypatch.setattr(time_estimate.shared_estimator(), "finish_s", lambda config: 60.0)

    holder, parked = [], threading.Event()
    queue = WaitsRecorded.started(held_before_done(holder, parked))
    holder.append(queue)
    at = app("pages/3_finetune.py", queue=queue)
    at.button(key="start").click().run()
    assert parked.wait(20), "the run never reached its end"
    assert job_of(at, "finetune").state == "running"
    queue.waits.clear()
    queue.end_when_waited.set()

    at.run()  # one poll of the live panel: it sees the run past its last epoch

    ok(at)
    assert queue.waits == [FINISH_WAIT_S]
    assert job_of(at, "finetune").state == "done"
    done = strings("en")["job.done"].split("{")[0]
    assert at.success and at.success[0].value.startswith(done), [s.value for s in at.success]
    assert not [b for b in at.button if b.key == "stop:finetune"]  # the live panel is gone


def test_a_poll_before_the_first_step_does_not_wait_for_the_end(clock):
    """Before the end is near (here: no step yet), a poll draws and returns; the page's thread is
    free for a Stop click. Checked after one poll with the run held before its first step."""
    gate = threading.Event()

    def before_the_first_step(config, emit, should_stop):
        emit(Started(4, 2, ("a",), (), 100, 200, "CPU (test)", 20, 10, ("cat", "dog")))
        gate.wait(30)
        return None

    queue = WaitsRecorded.started(before_the_first_step)
    at = app("pages/3_finetune.py", queue=queue)
    at.button(key="start").click().run()
    assert wait_for(lambda: job_of(at, "finetune").runs[0].started is not None, timeout=20)
    queue.waits.clear()

    at.run()

    ok(at)
    assert queue.waits == []
    assert at.button(key="stop:finetune")  # still live
    gate.set()
    at.button(key="stop:finetune").click().run()
