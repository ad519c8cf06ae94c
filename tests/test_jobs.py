"""The job queue: training never in the page's thread, one active job per owner, Stop works,
and no learner can see or stop another's run."""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers.fakes import BusyElsewhere, Clock, fake_run, make_run, wait_for
from tlcore import serve
from tlcore.core.events import Cancelled, Done, StepEvent
from tlcore.serve import cores, jobs, machine
from tlcore.serve.jobs import JobLimitError, JobQueue
from tlcore.serve.queue_options import QueueOptions
from tlcore.train.config import RunConfig
from tlcore.train.device import lower_thread_priority
from tools.pace import within


@pytest.mark.fast
def test_submit_runs_in_background_and_finishes():
    q = JobQueue.started(make_run(steps=5, delay=0))
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state == "done")
    view = q.get(job, "s1")
    assert isinstance(view.runs[0].final, Done) and view.runs[0].progress == 1.0


def test_a_page_can_wait_for_its_job_to_end_and_is_woken_at_once():
    gate = threading.Event()
    q = JobQueue.started(make_run(steps=5, delay=0, gate=gate))
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state == "running")
    t = time.monotonic()
    assert q.wait_until_ended(job, "s1", 0.2) is False  # still running: back after the timeout
    assert time.monotonic() - t >= 0.2
    ended = []
    waiting = threading.Thread(target=lambda: ended.append(q.wait_until_ended(job, "s1", 600.0)))
    waiting.start()
    gate.set()
    waiting.join(60)  # a page that slept out its 600 s would still be waiting here
    assert not waiting.is_alive() and ended == [True], "the wait was not woken by the job's end"
    assert q.get(job, "s1").state == "done"
    assert q.wait_until_ended(job, "someone else", 5.0) is True  # another's job: nothing to wait for


@pytest.mark.fast
def test_one_active_job_per_owner_and_queue_positions():
    gate = threading.Event()
    q = JobQueue.started(make_run(steps=5, delay=0, gate=gate))
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


@pytest.mark.fast
def test_stop_takes_effect_at_the_runs_next_step():
    at_step_3, go_on = threading.Event(), threading.Event()

    def held_at_step_3(config, emit, should_stop):  # the run pauses after its third step until the test has pressed Stop
        def emit_and_hold(event):
            emit(event)
            if isinstance(event, StepEvent) and event.step == 3:
                at_step_3.set()
                go_on.wait(60)

        return fake_run(config, emit_and_hold, should_stop, steps=10_000)

    q = JobQueue.started(held_at_step_3)
    job = q.submit(RunConfig(), owner="s1")
    assert at_step_3.wait(60)
    assert q.cancel(job, "s1")
    go_on.set()
    assert wait_for(lambda: q.get(job, "s1").state == "cancelled", timeout=60)
    final = q.get(job, "s1").runs[0].final
    assert isinstance(final, Cancelled) and final.step == 3  # not one step more


@pytest.mark.fast
def test_unwatched_job_is_cancelled():
    q = JobQueue.started(make_run(steps=10_000, delay=0.005), stale_after_s=0.2)
    job = q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: q.get(job, "s1", heartbeat=False).state == "cancelled", timeout=3.0)


@pytest.mark.fast
def test_a_race_runs_every_config_in_order():
    q = JobQueue.started(make_run(steps=3, delay=0))
    configs = [RunConfig(backbone="studio_resnet", strategy=s) for s in ("scratch", "linear_probe", "full")]
    job = q.submit(configs, owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state == "done")
    assert [r.result.strategy for r in q.get(job, "s1").runs] == ["scratch", "linear_probe", "full"]
    assert q.get(job, "s1").labels == ("scratch", "linear_probe", "full")


@pytest.mark.fast
def test_real_trainer_through_the_queue():
    q = JobQueue.started()
    cfg = RunConfig(backbone="studio_resnet", pretrained="no", per_class=3, val_per_class=3, image_size=16, epochs=1)
    job = q.submit(cfg, owner="s1")
    assert wait_for(lambda: q.get(job, "s1").state in ("done", "failed"), timeout=60)
    assert q.get(job, "s1").state == "done", q.get(job, "s1").runs[0].final


# --- one class server, many learners: nobody sees or stops another's run -------------------


def worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tlcore-worker")]


@pytest.mark.fast
def test_another_owner_can_neither_see_nor_stop_a_run():
    q = JobQueue.started(make_run(steps=10_000, delay=0.005))
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(job, "alice").state == "running")
    assert q.get(job, "bob") is None and q.get(job, "") is None
    assert q.cancel(job, "bob") is False
    steps = len(q.get(job, "alice").runs[0].steps)  # each of its next steps asks whether to stop
    assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > steps + 2)
    assert q.get(job, "alice").state == "running"  # Bob's Stop did nothing: two steps later, still running
    q._jobs[job].last_seen -= 100
    before = q._jobs[job].last_seen
    q.heartbeat(job, "bob")  # nor can Bob keep Alice's abandoned run alive
    assert q._jobs[job].last_seen == before
    assert q.active_for("bob") is None
    assert q.cancel(job, "alice") is True
    assert wait_for(lambda: q.get(job, "alice").state == "cancelled")


@pytest.mark.fast
def test_job_ids_are_unguessable():
    q = JobQueue.started(make_run(steps=1, delay=0))
    first, second = q.submit(RunConfig(), owner="s1"), q.submit(RunConfig(), owner="s2")
    assert {first, second}.isdisjoint({"job-1", "job-2", "job-0"})
    ids = {jobs.new_job_id() for _ in range(2000)}
    assert len(ids) == 2000
    # token_urlsafe(16): 22 characters of a 64-letter alphabet, 128 random bits.
    assert all(len(i.removeprefix("job-")) >= 22 for i in ids)
    assert len({i[4:8] for i in ids}) > 1500  # no shared, counter-like prefix


@pytest.mark.fast
def test_the_shared_queue_is_made_once_and_adds_no_worker_when_asked_again(monkeypatch):
    monkeypatch.setattr(jobs, "_shared", None)
    made = []

    def make():
        made.append(JobQueue.started(make_run(steps=1, delay=0)))
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


@pytest.mark.fast
def test_old_finished_jobs_are_forgotten_but_never_a_learners_latest_of_each_kind():
    q = JobQueue.started(make_run(steps=1, delay=0.0), max_finished=3)
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


@pytest.mark.fast
def test_the_server_trains_here_when_ray_is_not_usable(monkeypatch, caplog):
    import sys

    monkeypatch.setenv("TLS_RAY_ADDRESS", "auto")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    monkeypatch.setitem(sys.modules, "tlcore.serve.ray_jobs", None)
    for driver in ("process", "here"):  # the default driver process, and the server as driver
        monkeypatch.setenv("TLS_RAY_DRIVER", driver)
        caplog.clear()
        q = serve.server_queue(run_fn=make_run(steps=1, delay=0))
        assert type(q) is JobQueue and "training on this machine instead" in caplog.text, driver
        job = q.submit(RunConfig(), owner="s1")
        assert wait_for(lambda q=q, job=job: q.get(job, "s1").state == "done")


@pytest.mark.fast
def test_one_worker_per_gpu_each_pinned_to_its_own_and_running_at_once(monkeypatch):
    """A class server with N GPUs trains N learners' runs at once, each worker on its own GPU."""
    import threading

    pinned, running, both = {}, set(), threading.Event()

    def pin(index):
        pinned[threading.current_thread().name] = index

    def run(config, emit, should_stop):
        running.add(threading.current_thread().name)
        if len(running) == 2:
            both.set()
        both.wait(10)  # returns at once when two runs train at the same time

    monkeypatch.setattr(machine, "local_gpus", lambda: 2)
    queue = serve.server_queue(run_fn=run, pin=pin)
    assert len(queue._threads) == 2
    a, b = queue.submit(RunConfig(), owner="a"), queue.submit(RunConfig(), owner="b")
    assert both.wait(10), "the two runs did not train at the same time"
    assert sorted(pinned.values()) == [0, 1] and set(pinned) == running  # each worker on its own GPU
    for job, owner in ((a, "a"), (b, "b")):
        while queue.get(job, owner).state == "running":
            time.sleep(0.01)


# ----------------------------------------------------------------------------- the class: limits, the teacher


def gated_run(gate):
    """A run that waits for `gate`, then finishes: holds the one worker while a line forms."""

    def run(config, emit, should_stop):
        gate.wait(30)
        emit(Done({"val_acc": 0.5}))
        return {}

    return run


def test_100_queued_jobs_run_first_in_first_out_apart_from_the_teachers():
    order, gate = [], threading.Event()

    def run(config, emit, should_stop):
        gate.wait(30)
        order.append(config.seed)
        emit(Done({}))
        return {}

    q = JobQueue.started(run, max_finished=50)
    first = q.submit(RunConfig(seed=0), owner="s0")  # takes the worker
    while q.get(first, "s0").state != "running":
        time.sleep(0.01)
    ids = {}
    for i in range(1, 101):
        teacher = i in (40, 80)
        ids[i] = q.submit(RunConfig(seed=i), owner=f"teacher{i}" if teacher else f"s{i}", priority=1 if teacher else 0)
    assert q.get(ids[80], "teacher80").position == 2 and q.get(ids[40], "teacher40").position == 1
    assert q.get(ids[1], "s1").position == 3  # the first student behind both teacher jobs
    gate.set()
    deadline = time.monotonic() + 60
    while len(order) < 101 and time.monotonic() < deadline:
        time.sleep(0.02)
    students = [i for i in range(1, 101) if i not in (40, 80)]
    assert order == [0, 40, 80, *students]
    # Memory stays bounded: each learner's latest job of a kind, and at most max_finished others.
    for round_ in range(3):
        for i in range(1, 101):
            done = q.submit(RunConfig(seed=i + round_), owner=f"s{i}")
            while q.get(done, f"s{i}").state in ("queued", "running"):
                time.sleep(0.001)
    assert len(q._jobs) <= 102 + 50 + 1


@pytest.mark.fast
def test_a_run_over_the_class_limits_is_refused_with_the_limit_named():
    from tlcore.core.messages import LearnerError
    from tlcore.serve.class_limits import ClassLimits

    q = JobQueue.started(lambda *a: None, limits=ClassLimits(max_epochs=5, max_image_size=96))
    with pytest.raises(LearnerError, match="up to 5") as refused:
        q.submit(RunConfig(epochs=6), owner="a")
    assert refused.value.message.key == "caps.over" and refused.value.message.values["setting"] == "epochs"
    with pytest.raises(LearnerError, match="image_size"):
        q.submit([RunConfig(), RunConfig(image_size=128)], owner="a")  # every run of a race is checked
    assert q.active_for("a") is None  # nothing was queued


def test_a_queue_given_a_function_for_its_limits_checks_each_start_against_them_as_they_are_then():
    """The server's queue reads the class file when used (class_limits.load): a teacher's edit holds
    from the next Start, no restart."""
    from tlcore.core.messages import LearnerError
    from tlcore.serve.class_limits import ClassLimits

    now = {"limits": ClassLimits(max_epochs=5)}
    q = JobQueue.started(lambda *a: None, limits=lambda: now["limits"])
    with pytest.raises(LearnerError, match="up to 5"):
        q.submit(RunConfig(epochs=6), owner="a")
    now["limits"] = ClassLimits(max_epochs=8)  # the teacher raised it
    q.submit(RunConfig(epochs=6), owner="a")
    assert q.limits.max_epochs == 8


def test_a_run_past_the_time_limit_is_stopped_and_says_why():
    from tlcore.serve.class_limits import ClassLimits

    def endless(config, emit, should_stop):
        step = 0
        while not should_stop():
            time.sleep(0.01)
            step += 1
        emit(Cancelled(step))

    q = JobQueue.started(endless, limits=ClassLimits(max_seconds=0.3))
    job = q.submit(RunConfig(), owner="a")
    assert wait_for(lambda: q.get(job, "a").state not in ("queued", "running"), timeout=60)  # endless, but for the limit
    view = q.get(job, "a")
    assert view.state == "cancelled" and view.note == "time_limit" and view.elapsed_s >= 0.3


@pytest.mark.fast
def test_the_teacher_sees_every_job_by_nickname_and_can_cancel_any():
    gate = threading.Event()
    q = JobQueue.started(gated_run(gate))
    a = q.submit(RunConfig(), owner="secret-owner-a")
    while q.get(a, "secret-owner-a").state != "running":
        time.sleep(0.01)
    b = q.submit(RunConfig(strategy="full"), owner="secret-owner-b")
    c = q.submit(RunConfig(strategy="full"), owner="secret-owner-c")
    assert q.cancel_any(c)  # ended: listed after every active one
    rows = q.list_all()
    assert [r.id for r in rows] == [a, b, c]  # running, then waiting, then ended
    assert q.cancel_any(b) and q.get(b, "secret-owner-b").state == "cancelled"
    assert q.get(b, "secret-owner-b").note == "teacher"
    assert not q.cancel_any("job-unknown")
    gate.set()


def test_a_closed_tabs_run_is_cancelled_but_a_background_tab_or_a_reload_keeps_it(monkeypatch):
    """The signal is the learner's websocket, not the page's polling (a background tab may be
    polled once a minute): connected sessions keep their learner's run alive. Seconds are the
    queue's clock's, moved by the test: the run has asked whether to stop after each tick."""
    from studio.learner import LearnerStore
    from studio.server import keep_connected_runs_alive

    clock = Clock()
    monkeypatch.setattr(jobs, "time", clock)
    asked = []

    def endless(config, emit, should_stop):
        while True:
            now = clock.now  # read before asking: the queue's answer is of this time or later
            if should_stop():
                break
            asked.append(now)
            time.sleep(0.01)
        emit(Cancelled(0))

    q, store, connected = JobQueue.started(endless, stale_after_s=0.6), LearnerStore(), {"tab-1"}
    store.bind_session("tab-1", "learner-a")
    job = q.submit(RunConfig(), owner="learner-a")
    assert wait_for(lambda: asked, timeout=60)

    def janitor(seconds):  # the server's janitor, a tenth of a second apart
        for _ in range(round(seconds / 0.1)):
            keep_connected_runs_alive(q, store, is_connected=lambda s: s in connected)
            clock.advance(0.1)
            assert wait_for(
                lambda now=clock.now: (asked and asked[-1] >= now) or not q.get(job, "learner-a", heartbeat=False).active, 60
            )

    janitor(1.5)  # a background tab: connected, never polling
    assert q.get(job, "learner-a", heartbeat=False).state == "running"
    connected.discard("tab-1")  # F5: the old session goes, a new one of the same learner comes
    store.bind_session("tab-2", "learner-a")
    connected.add("tab-2")
    janitor(1.5)
    assert q.get(job, "learner-a", heartbeat=False).state == "running"
    connected.clear()  # the tab is closed
    janitor(2.0)
    view = q.get(job, "learner-a", heartbeat=False)
    assert view.state == "cancelled" and view.note == "closed"


@pytest.mark.fast
def test_twenty_thousand_new_sessions_do_not_end_a_background_tabs_run_as_closed():
    """A background tab draws nothing, so its session is the oldest the server has seen; a flood
    of new sessions (20,000) once pushed it out of the learner store, the janitor found no
    connected tab of its learner, and the run ended as "tab closed"."""
    from studio.learner import LearnerStore
    from studio.server import keep_connected_runs_alive

    gate = threading.Event()
    q = JobQueue.started(lambda config, emit, should_stop: gate.wait(30) and None)
    store = LearnerStore(max_learners=100, busy=lambda who: q.active_for(who) is not None)
    store.bind_session("background-tab", "learner-a")
    job = q.submit(RunConfig(), owner="learner-a")
    for i in range(20_000):
        store.bind_session(f"flood-{i}", f"flooder-{i}")
    assert store.sessions_of("learner-a") == ["background-tab"]
    assert len(store.sessions_of("flooder-19999")) == 1 and not store.sessions_of("flooder-0")  # still bounded
    assert keep_connected_runs_alive(q, store, is_connected=lambda s: s == "background-tab") == 1
    gate.set()
    q.wait_until_ended(job, "learner-a", 10)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


@pytest.mark.fast
@pytest.mark.skipif(machine._MALLOC_TRIM is None, reason="glibc's malloc_trim is what gives freed heap back")
def test_a_finished_job_gives_its_freed_heap_back_to_the_system():
    import numpy as np

    peak, survivors = {}, []

    def run(config, emit, should_stop):
        blocks = [np.ones(12_000) for _ in range(3000)]  # about 290 MB of heap blocks, as a run's tensors
        peak["rss"] = _rss_mb()
        survivors.append(np.ones(10))  # allocated last, it pins the heap's top: glibc alone keeps the rest
        del blocks
        emit(Done({"val_acc": 1.0}))
        return {}

    q = JobQueue.started(run)
    q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: "rss" in peak)
    # Freed memory goes back once the job is over (measured: a default fine-tune left ~650 MB resident).
    assert wait_for(lambda: _rss_mb() < peak["rss"] - 150, timeout=10), (peak, _rss_mb())


@pytest.mark.fast
def test_what_the_server_has_loaded_stays_out_of_later_garbage_collections():
    """The warm-up's end freezes what is loaded (studio.server): a full collection during the class
    then walks only what the class made (the longest pause in a class of 30: 0.50 -> 0.13 s)."""
    import gc

    held = [[i] for i in range(50_000)]  # tracked objects alive at the freeze, as a server's modules and caches
    try:
        assert machine.freeze_what_is_loaded() >= len(held)
        walked = {id(o) for o in gc.get_objects()}  # what a collection goes through
        assert not any(id(x) in walked for x in held[::997])
        later = [[1]]
        assert id(later[0]) in {id(o) for o in gc.get_objects()}  # what comes after is collected as before
    finally:
        gc.unfreeze()


@pytest.mark.fast
@pytest.mark.skipif(not lower_thread_priority(0), reason="no per-thread CPU priority on this system")
def test_workers_train_at_a_lower_cpu_priority_than_the_pages():
    import os

    seen = {}

    def run(config, emit, should_stop):
        seen["worker"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        emit(Done({"val_acc": 1.0}))
        return {}

    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    q = JobQueue.started(run, nice=5)
    q.submit(RunConfig(), owner="s1")
    assert wait_for(lambda: "worker" in seen)
    assert seen["worker"] == min(19, here + 5)  # the worker thread only
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # pages keep theirs


@pytest.mark.fast
@pytest.mark.skipif(not lower_thread_priority(0), reason="no per-thread CPU priority on this system")
def test_on_a_cpu_each_job_starts_behind_the_pages_unless_other_programs_keep_a_core_busy():
    """Issue 56 item 5: a nice value weighs against every program of the server's scheduler group,
    so a run beside busy programs trains as their equal; the next quiet one is behind the pages again
    (a thread cannot raise its own priority back: each job has a thread of its own)."""
    import os

    seen = []

    def run(config, emit, should_stop):
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        emit(Done({"val_acc": 1.0}))
        return {}

    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    q = JobQueue(run, QueueOptions(nice=5, cpu=cores.plan(2)))
    q.elsewhere = BusyElsewhere(0.0)
    q.start()
    for busy, owner in ((0.0, "s1"), (2.0, "s2"), (0.0, "s3"), (0.6, "s4"), (0.4, "s5")):
        q.elsewhere.value = busy
        job = q.submit(RunConfig(), owner=owner)
        assert q.wait_until_ended(job, owner, timeout=within(30))
    assert seen == [min(19, here + 5), here, min(19, here + 5), here, min(19, here + 5)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # pages keep theirs


@pytest.mark.fast
def test_a_teacher_who_unlocks_after_pressing_start_moves_to_the_front():
    gate = threading.Event()
    q = JobQueue.started(gated_run(gate))
    running = q.submit(RunConfig(), owner="s0")
    while q.get(running, "s0").state != "running":
        time.sleep(0.01)
    students = [q.submit(RunConfig(), owner=f"s{i}") for i in range(1, 4)]
    early = q.submit(RunConfig(), owner="teacher")  # pressed Start before unlocking
    assert q.get(early, "teacher").position == 4
    assert q.promote("teacher") == 1
    assert q.get(early, "teacher").position == 1
    assert [q.get(j, f"s{i}").position for i, j in enumerate(students, 1)] == [2, 3, 4]  # still first-in, first-out
    assert q.promote("teacher") == 0 and q.promote("nobody") == 0
    gate.set()


class Interrupted(BaseException):
    """A BaseException no `except Exception` catches (as a library's own may be)."""


@pytest.mark.fast
@pytest.mark.parametrize(
    "error", [SystemExit(3), KeyboardInterrupt(), Interrupted("stop")], ids=["SystemExit", "KeyboardInterrupt", "BaseException"]
)
def test_a_base_exception_in_a_run_fails_that_job_and_the_worker_serves_the_next(error):
    def raising(config, emit, should_stop):
        if config.strategy == "full":
            raise error
        return make_run(steps=2, delay=0)(config, emit, should_stop)

    q = JobQueue.started(raising)
    workers = [t for t in threading.enumerate() if t.name == "tlcore-worker-0" and t in q._threads]
    bad = q.submit(RunConfig(strategy="full"), "alice")
    assert wait_for(lambda: q.get(bad, "alice").state == "failed")
    assert type(error).__name__ in q.get(bad, "alice").runs[0].final.message
    good = q.submit(RunConfig(strategy="linear_probe"), "bob")
    assert wait_for(lambda: q.get(good, "bob").state == "done")  # the same worker, still alive
    assert all(t.is_alive() for t in workers) and q.active_for("alice") is None


def test_a_stop_reason_is_written_under_the_queue_lock():
    gate = threading.Event()
    q = JobQueue.started(make_run(steps=5, delay=0, gate=gate), stale_after_s=60)
    job_id = q.submit(RunConfig(), "alice")
    assert wait_for(lambda: q.get(job_id, "alice").state == "running")
    job = q._jobs[job_id]
    job.last_seen -= 3600  # nobody has watched it for an hour
    asked = threading.Thread(target=q._should_stop, args=(job,))
    with q._lock:  # a page (or the teacher's Cancel) holds the lock
        asked.start()
        asked.join(0.3)
        assert (job.stop_requested, job.note) == (False, "")  # not written behind the lock's back
    asked.join(5)
    assert (job.stop_requested, job.note) == (True, "closed")
    q.cancel_any(job_id, "teacher")  # a later reason never overwrites the first
    gate.set()
    assert wait_for(lambda: q.get(job_id, "alice").state == "cancelled") and q.get(job_id, "alice").note == "closed"


def test_restoring_a_stored_run_reads_and_decodes_off_the_queue_lock(tmp_path):
    from tlcore.serve.store import RunStore

    path = tmp_path / "runs.sqlite"
    first = JobQueue.started(make_run(steps=2, delay=0), store=RunStore(path))
    old = first.submit(RunConfig(), "alice", tag="finetune")
    assert wait_for(lambda: first.get(old, "alice").state == "done")

    store = RunStore(path)
    q = JobQueue.started(make_run(steps=2, delay=0), store=store)
    real_load = store.load

    loading, loaded = threading.Event(), threading.Event()

    def slow_load(job_id):  # a store that takes a while (a slow disk, 60 runs' images to decode): until the test says
        loading.set()
        loaded.wait(60)
        return real_load(job_id)

    store.load = slow_load
    restoring = threading.Thread(target=q.get, args=(old, "alice"))
    restoring.start()
    assert loading.wait(60)
    poll = threading.Thread(target=q.snapshot)  # another page's poll, while the stored run is still being read
    poll.start()
    poll.join(60)
    assert not poll.is_alive() and restoring.is_alive(), "the poll waited for the stored run's read"
    loaded.set()
    restoring.join(60)
    assert q.get(old, "alice").state == "done" and len([j for j in q._jobs if j == old]) == 1


# --- one queue place per person where the class says so (issue 22, item 4) ----------------


@pytest.mark.fast
def test_one_run_per_client_address_where_the_class_file_says_so():
    """Three cookies from one address held three places; with `one_run_per_address` the second
    is refused. An unknown address (None: this machine, no request) is allowed, and so is the teacher."""
    from tlcore.serve.class_limits import ClassLimits
    from tlcore.serve.jobs import AddressLimitError

    gate = threading.Event()

    def run(config, emit, should_stop):  # trains until the gate opens or it is stopped
        while not gate.is_set() and not should_stop():
            time.sleep(0.01)
        emit(Done({}))

    q = JobQueue.started(run, limits=ClassLimits(one_run_per_address=True))
    first = q.submit(RunConfig(), owner="cookie-1", address="10.0.0.5")
    with pytest.raises(AddressLimitError):
        q.submit(RunConfig(), owner="cookie-2", address="10.0.0.5")
    assert q.active_for("cookie-2") is None  # nothing was queued
    q.submit(RunConfig(), owner="cookie-3", address="10.0.0.6")  # another address
    q.submit(RunConfig(), owner="cookie-4", address=None)  # unknown: allowed
    q.submit(RunConfig(), owner="cookie-5", address=None)
    q.submit(RunConfig(), owner="teacher", address="10.0.0.5", priority=1)  # the teacher neither waits ...
    assert q.learners_by_address() == {None: 2, "10.0.0.5": 1, "10.0.0.6": 1}  # ... nor is counted as a learner
    q.cancel(first, "cookie-1")
    assert wait_for(lambda: q.active_for("cookie-1") is None)
    q.submit(RunConfig(), owner="cookie-2", address="10.0.0.5")  # ... nor counts: the place is free again

    plain = JobQueue.started(run, limits=ClassLimits())  # off by default: a class behind one NAT shares an address
    for i in range(3):
        plain.submit(RunConfig(), owner=f"cookie-{i}", address="10.0.0.5")
    assert plain.learners_by_address() == {"10.0.0.5": 3}
    gate.set()
