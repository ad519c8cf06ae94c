"""The CPU server's queue with each run in a worker process (tlcore.serve.process_jobs): every
event arrives, Stop and the class's limits hold, a dead or deaf process costs one run and never
the queue, the torch threads follow the server's plan, and a learner's model comes back."""

from __future__ import annotations

import functools
import os

import pytest

from tests.helpers.fakes import BusyElsewhere, deaf_run, dying_run, wait_for, where_run
from tlcore.core.events import Cancelled, Done, Failed, Started
from tlcore.serve import cores
from tlcore.serve.process_jobs import ProcessJobQueue
from tlcore.train.config import RunConfig


@pytest.fixture
def make_queue():
    made = []

    def make(run_fn, **kwargs):
        kwargs.setdefault("cpu", cores.plan(2))
        q = ProcessJobQueue.started(run_fn, **kwargs)
        made.append(q)
        return q

    yield make
    for q in made:
        q.close()


def finished(q, job, owner="alice", timeout=60.0):
    assert q.wait_until_ended(job, owner, timeout), f"job still {q.get(job, owner).state} after {timeout} s"
    return q.get(job, owner)


def test_a_run_trains_in_a_process_of_its_own_and_every_event_arrives_in_order(make_queue):
    q = make_queue(functools.partial(where_run, steps=6))
    first = finished(q, q.submit(RunConfig(seed=1), "alice"))
    assert first.state == "done"
    run = first.runs[0]
    assert isinstance(run.started, Started) and [s.step for s in run.steps] == [1, 2, 3, 4, 5, 6]
    assert [e.epoch for e in run.evals] == [1, 2, 3] and isinstance(run.final, Done)
    assert run.result.extra["pid"] != os.getpid() and run.result.extra["pid"] in q.process_ids()
    second = finished(q, q.submit(RunConfig(seed=2), "bob"), "bob")
    assert second.runs[0].result.extra["pid"] == run.result.extra["pid"]  # the same warm process, not a new one per run


def test_stop_reaches_the_run_in_its_process(make_queue):
    q = make_queue(functools.partial(where_run, steps=100_000, delay=0.02))  # 2,000 s unless stopped
    job = q.submit(RunConfig(), "alice")
    assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) >= 3, 60)
    assert q.cancel(job, "alice")
    view = finished(q, job, timeout=60)
    run = view.runs[0]
    assert view.state == "cancelled" and isinstance(run.final, Cancelled)
    assert run.final.step == run.steps[-1].step < 100_000  # the run's own Cancelled, after the step it was on


def test_a_run_that_ignores_stop_has_its_process_killed_and_the_next_run_gets_a_new_one(make_queue):
    q = make_queue(deaf_run, cancel_after_s=1.0)
    job = q.submit(RunConfig(), "alice")
    assert wait_for(lambda: q.get(job, "alice").runs[0].started is not None, 60)
    deaf_pid = q.process_ids()
    q.cancel(job, "alice")
    view = finished(q, job, timeout=15)
    assert view.state == "cancelled" and isinstance(view.runs[0].final, Cancelled)
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") and _alive(p) for p in deaf_pid), 10)


def test_a_process_that_dies_fails_its_run_with_a_message_and_the_queue_goes_on(make_queue):
    q = make_queue(dying_run)
    view = finished(q, q.submit(RunConfig(), "alice"))
    assert view.state == "failed"
    final = view.runs[0].final
    assert isinstance(final, Failed) and final.key == "run.worker_lost"
    assert "Traceback" not in final.message


def test_after_a_lost_process_the_next_run_trains_in_a_new_one(make_queue):
    q = make_queue(functools.partial(where_run, steps=2))
    first = finished(q, q.submit(RunConfig(), "alice")).runs[0].result.extra["pid"]
    os.kill(first, 9)
    assert wait_for(lambda: not _alive(first), 10)
    again = finished(q, q.submit(RunConfig(), "bob"), "bob")
    assert again.state == "done" and again.runs[0].result.extra["pid"] != first


def test_the_torch_threads_in_the_process_follow_the_pages_being_drawn(make_queue):
    q = make_queue(functools.partial(where_run, steps=15, delay=0.1))
    q.elsewhere = BusyElsewhere(0.0)  # no other program busy (the suite's other worker is)
    alone = finished(q, q.submit(RunConfig(), "alice"))
    assert alone.runs[0].result.extra["threads"] == 2  # a lone run on an idle 2-core server: both cores
    with q.drawing():  # a page is being drawn the whole time: training leaves it a core
        busy = finished(q, q.submit(RunConfig(), "bob"), "bob")
    assert busy.runs[0].result.extra["threads"] == 1
    q.elsewhere = BusyElsewhere(0.9)  # another program keeps a core busy: training leaves it that core
    shared = finished(q, q.submit(RunConfig(), "cleo"), "cleo")
    assert shared.runs[0].result.extra["threads"] == 1


def test_a_race_trains_its_runs_side_by_side_in_two_processes(make_queue):
    q = make_queue(functools.partial(where_run, steps=10, delay=0.05))
    configs = [RunConfig(strategy=s) for s in ("scratch", "linear_probe", "partial", "full")]
    view = finished(q, q.submit(configs, "alice"))
    assert view.state == "done"
    pids = {r.result.extra["pid"] for r in view.runs}
    assert len(pids) == 2 and os.getpid() not in pids  # one process per core, never the server's


def test_every_training_process_runs_at_the_queues_nice_the_second_one_too(make_queue):
    """The second process is started by a queue worker whose thread is already at the queue's nice:
    it takes that nice, not that nice added again (it was 19 for a nice of 10: the lowest priority)."""
    q = make_queue(functools.partial(where_run, steps=10, delay=0.05), nice=5)
    view = finished(q, q.submit([RunConfig(strategy=s) for s in ("scratch", "linear_probe", "partial", "full")], "alice"))
    ran = {r.result.extra["pid"]: r.result.extra["nice"] for r in view.runs}
    assert len(ran) == 2 and set(ran.values()) == {os.getpriority(os.PRIO_PROCESS, 0) + 5}, ran


@pytest.mark.fast
def test_nice_at_least_raises_a_threads_nice_to_the_floor_and_never_adds():
    import threading

    from tlcore.train.device import lower_thread_priority, nice_at_least

    seen = []

    def in_a_thread():
        me = threading.get_native_id()
        start = os.getpriority(os.PRIO_PROCESS, me)
        lower_thread_priority(3)
        nice_at_least(start + 3)  # already there: unchanged
        seen.append(os.getpriority(os.PRIO_PROCESS, me) - start)
        nice_at_least(start + 6)
        seen.append(os.getpriority(os.PRIO_PROCESS, me) - start)
        nice_at_least(start + 1)  # below it: unchanged
        seen.append(os.getpriority(os.PRIO_PROCESS, me) - start)

    t = threading.Thread(target=in_a_thread)
    t.start()
    t.join()
    assert seen == [3, 6, 6]


def test_a_learners_own_run_sends_its_model_back_to_the_shelf(make_queue):
    from tlcore.train import presets

    q = make_queue(None)
    tiny = presets.image().replace(per_class=4, val_per_class=2, epochs=1, image_size=32)
    view = finished(q, q.submit(tiny, "alice", keep_model=True), timeout=300)
    assert view.state == "done", view.runs[0].final
    model_id = view.runs[0].result.model_id
    kept = q.shelf.get("alice", model_id)
    assert kept is not None and kept.classes == tuple(view.runs[0].result.classes)
    assert next(kept.model.parameters()).device.type == "cpu"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_server_trains_in_processes_only_when_asked(monkeypatch):
    from tlcore import serve
    from tlcore.serve.jobs import JobQueue

    monkeypatch.delenv("TLS_RAY_ADDRESS", raising=False)
    monkeypatch.setattr(serve.machine, "local_gpus", lambda: 0)
    monkeypatch.delenv("TLS_TRAIN_IN_PROCESS", raising=False)
    plain = serve.server_queue()
    assert type(plain) is JobQueue and plain.trains_here
    monkeypatch.setenv("TLS_TRAIN_IN_PROCESS", "1")
    in_processes = serve.server_queue()
    try:
        assert isinstance(in_processes, ProcessJobQueue) and not in_processes.trains_here
        assert in_processes.pool.size == in_processes.cpu.cores
        fake = serve.server_queue(run_fn=functools.partial(where_run, steps=1))  # a test's own run: in threads
        assert type(fake) is JobQueue
    finally:
        in_processes.close()
