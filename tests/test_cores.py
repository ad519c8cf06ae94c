"""A CPU server's cores: runs at a time and threads per run from the core count (or the class
file), a lone run on every core, giving them back when a second run starts or pages are drawn."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from tests.helpers.fakes import BusyElsewhere, wait_for
from tlcore.core.events import Done, Started
from tlcore.serve import cores
from tlcore.serve.class_limits import ClassLimits
from tlcore.serve.cores import CpuPlan
from tlcore.serve.jobs import JobQueue
from tlcore.train.config import RunConfig


@pytest.mark.fast
@pytest.mark.parametrize(
    ("n", "workers", "threads"), [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 2, 2), (8, 4, 2), (16, 4, 4), (64, 16, 4)]
)
def test_workers_and_threads_from_the_core_count(n, workers, threads):
    assert cores.plan(n) == CpuPlan(n, workers, threads)


@pytest.mark.fast
def test_the_class_file_overrides_workers_or_threads():
    assert cores.plan(16, workers=1) == CpuPlan(16, 1, 16)  # one run at a time, on every core
    assert cores.plan(16, threads=8) == CpuPlan(16, 2, 8)
    assert cores.plan(2, workers=1, threads=1) == CpuPlan(2, 1, 1)
    assert cores.plan(2, threads=4) == CpuPlan(2, 1, 2)  # never more threads than cores
    assert ClassLimits().cpu_workers == 0 and ClassLimits().threads_per_job == 0  # 0: from the core count


@pytest.mark.fast
def test_a_lone_run_takes_every_core_and_shares_them_with_runs_and_pages():
    plan = cores.plan(16)
    assert plan.threads_now(1) == 16 and plan.threads_now(2) == 8 and plan.threads_now(4) == 4
    assert plan.threads_now(1, pages=3) == 13
    two = cores.plan(2, workers=2)
    assert (two.threads_now(1), two.threads_now(2), two.threads_now(1, pages=1), two.threads_now(1, pages=9)) == (2, 1, 1, 1)
    assert cores.plan(2).threads_now(1, pages=1) == 1  # the default on 2 cores: one run, a core back to the pages


def test_a_core_other_programs_keep_busy_is_left_to_them():
    two, sixteen = cores.plan(2), cores.plan(16)
    assert two.threads_now(1, elsewhere=0.3) == 2  # a browser drawing now and then: both cores
    assert two.threads_now(1, elsewhere=0.6) == 1  # a busy program: its core left alone
    assert two.threads_now(1, pages=1, elsewhere=1.8) == 1  # one core always stays with training
    assert sixteen.threads_now(1, elsewhere=3.6) == 12 and sixteen.threads_now(2, pages=2, elsewhere=4.0) == 5
    assert sixteen.threads_now(1, elsewhere=-1.0) == 16  # (a clock's hiccup never adds cores)


class Ticks:
    """Readings a test sets: the machine's busy seconds, this process's own, its children's."""

    def __init__(self):
        self.now, self.box, self.own, self.children = 0.0, 100.0, 10.0, {}

    def meter(self, own_pids=None, every_s=0.5):
        return cores.BusyElsewhere(
            own_pids or (lambda: list(self.children)),
            every_s,
            box=lambda: self.box,
            process=lambda pid: self.children.get(pid),
            own=lambda: self.own,
            clock=lambda: self.now,
        )


def test_busy_elsewhere_is_the_machines_cpu_less_this_servers_own_and_its_training_processes():
    t = Ticks()
    t.children = {501: 3.0}
    meter = t.meter()
    assert meter.cores() == 0.0  # one reading: nothing to compare yet
    # 1 s later: the machine did 2.5 core-s, this process 0.8 and its training process 0.6: 1.1 elsewhere
    t.now, t.box, t.own, t.children = 1.0, 102.5, 10.8, {501: 3.6}
    assert meter.cores() == pytest.approx(1.1)
    t.now, t.box = 1.2, 109.0  # asked again within every_s: the last figure, nothing read
    assert meter.cores() == pytest.approx(1.1)
    # a training process that started meanwhile (no earlier reading): its time counts as elsewhere this once
    t.now, t.box, t.own, t.children = 2.0, 110.0, 11.0, {501: 3.6, 502: 0.5}
    assert meter.cores() == pytest.approx((110.0 - 102.5 - 0.2) / 1.0)
    t.now, t.box, t.own, t.children = 3.0, 111.5, 11.5, {501: 3.6, 502: 1.4}  # then it is ours
    assert meter.cores() == pytest.approx(1.5 - 0.5 - 0.9)
    t.now, t.box, t.own = 4.0, 112.0, 12.0  # only this process busy
    assert meter.cores() == 0.0


def test_busy_elsewhere_is_zero_where_the_machine_does_not_say():
    meter = cores.BusyElsewhere(box=lambda: None)
    assert meter.cores() == 0.0 and meter.cores() == 0.0


@pytest.mark.skipif(not cores.Path("/proc/stat").exists(), reason="Linux's /proc")
def test_a_busy_program_is_seen_elsewhere_unless_it_is_one_of_ours():
    """Real readings: a busy loop in a child process, counted once as another program's, once as
    this server's own training process, over the same second (the box's other work is in both).
    What the loop got of the cores is read apart (its own /proc time): on a box the suite's other
    worker keeps busy it gets less than a core (0.4 seen), and that share is what the two differ by."""
    import subprocess
    import sys

    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        other, ours = cores.BusyElsewhere(every_s=0.0), cores.BusyElsewhere(lambda: [loop.pid], every_s=0.0)
        began, loop_began = time.monotonic(), cores.process_busy_s(loop.pid)
        other.cores(), ours.cores()
        time.sleep(1.0)
        seen_other, seen_ours = other.cores(), ours.cores()
        share = (cores.process_busy_s(loop.pid) - loop_began) / (time.monotonic() - began)
    finally:
        loop.kill()
        loop.wait()
    assert share >= 0.2, share  # the loop ran
    assert seen_other >= share - 0.2, (seen_other, share)  # another program's: seen
    assert seen_other - seen_ours == pytest.approx(share, abs=0.2), (seen_other, seen_ours, share)  # ours: left out


def test_the_queue_leaves_a_core_that_another_program_keeps_busy():
    gates = {"full": threading.Event()}
    seen: dict[str, list[int]] = {"full": []}
    q = JobQueue.started(recording(gates, seen), cpu=cores.plan(2))
    q.elsewhere = BusyElsewhere(0.0)
    job = q.submit(RunConfig(strategy="full"), "anna")
    assert wait_for(lambda: len(seen["full"]) > 3)
    assert seen["full"][-1] == 2
    q.elsewhere.value = 1.0  # a program starts beside it: the run drops to one thread at its next step
    mark = len(seen["full"])
    assert wait_for(lambda: len(seen["full"]) > mark + 3)
    assert seen["full"][-1] == 1
    q.elsewhere.value = 0.1  # ... and takes the core back when it is free again
    mark = len(seen["full"])
    assert wait_for(lambda: len(seen["full"]) > mark + 3)
    assert seen["full"][-1] == 2
    gates["full"].set()
    assert wait_for(lambda: q.get(job, "anna").state == "done")


@pytest.mark.fast
def test_torch_threads_are_per_calling_thread():
    """What the plan relies on: a worker that sets its count does not change another thread's."""
    before = torch.get_num_threads()
    seen = []

    def worker():
        torch.set_num_threads(1)
        torch.ones(256, 256) @ torch.ones(256, 256)
        seen.append(torch.get_num_threads())

    torch.set_num_threads(2)
    try:
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def recording(gates: dict[str, threading.Event], seen: dict[str, list[int]]):
    """A run that records its torch threads at every step until its gate opens."""

    def run(config, emit, should_stop):
        name = config.strategy
        emit(Started(1, 1, ("body", "head"), (), 1, 1, "cpu", 1, 1, ("a", "b")))
        while not gates[name].is_set():
            should_stop()  # a step boundary: the queue sets this worker's threads
            seen[name].append(torch.get_num_threads())
            gates[name].wait(0.01)
        emit(Done({"val_acc": 0.5}))
        return {"val_acc": 0.5}

    return run


@pytest.mark.fast
def test_the_queue_sets_each_runs_threads_at_every_step():
    gates = {s: threading.Event() for s in ("full", "partial")}
    seen: dict[str, list[int]] = {s: [] for s in gates}
    q = JobQueue.started(recording(gates, seen), cpu=CpuPlan(cores=4, workers=2, threads=2))
    q.elsewhere = BusyElsewhere(0.0)  # no other program busy (the suite's other worker is)
    first = q.submit(RunConfig(strategy="full"), "anna")
    assert wait_for(lambda: len(seen["full"]) > 3)
    assert set(seen["full"]) == {4}  # alone: every core
    with q.drawing():  # a page being drawn: one core left to it
        mark = len(seen["full"])
        assert wait_for(lambda: len(seen["full"]) > mark + 3)
        assert seen["full"][-1] == 3
    second = q.submit(RunConfig(strategy="partial"), "ben")
    assert wait_for(lambda: len(seen["partial"]) > 3)
    mark = len(seen["full"])
    assert wait_for(lambda: len(seen["full"]) > mark + 3)
    assert seen["full"][-1] == 2 and seen["partial"][-1] == 2  # two runs: two cores each
    gates["partial"].set()
    assert wait_for(lambda: q.get(second, "ben").state == "done")
    mark = len(seen["full"])
    assert wait_for(lambda: len(seen["full"]) > mark + 3)
    assert seen["full"][-1] == 4  # alone again: the cores come back
    gates["full"].set()
    assert wait_for(lambda: q.get(first, "anna").state == "done")
    assert len(q._threads) == 2


@pytest.mark.fast
def test_a_queue_without_a_cpu_plan_leaves_threads_alone():
    gates = {"full": threading.Event()}
    seen: dict[str, list[int]] = {"full": []}
    before = torch.get_num_threads()
    q = JobQueue.started(recording(gates, seen))
    gates["full"].set()
    job = q.submit(RunConfig(strategy="full"), "anna")
    assert wait_for(lambda: q.get(job, "anna").state == "done")
    assert q.cpu is None and torch.get_num_threads() == before


@pytest.mark.fast
def test_the_server_spins_briefly_unless_the_environment_chose():
    import os
    import subprocess
    import sys

    probe = "from tlcore.serve import cores; print(cores.wait_briefly(), __import__('os').environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    run = lambda extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", probe], env={**env, **extra}, capture_output=True, text=True, check=True
    ).stdout.split()
    assert run({}) == ["True", cores.SPIN_COUNT]
    assert run({"OMP_WAIT_POLICY": "PASSIVE"}) == ["False", "None"]  # the operator's choice stands
    assert run({"GOMP_SPINCOUNT": "0"}) == ["False", "0"]
    assert cores.wait_briefly() is False  # torch is already loaded here: too late to matter


def quiet_server_start(monkeypatch, name: str, setting: str | None):
    """studio.server's queue start with the environment variable `name` unset (None) or set, and nothing
    around it running: no store, no class, no queue (`server_queue` records what it was asked), the warm-up
    thread counted, not started. Returns (the server module, server_queue's arguments, warm-up starts)."""
    from studio import server

    if setting is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, setting)
    asked, warm_ups = {}, []
    for quiet in ("server_started", "hold_class_jobs"):
        monkeypatch.setattr(server, quiet, lambda *a: None)
    monkeypatch.setattr(server, "_start_warm_up", lambda: warm_ups.append(1))
    monkeypatch.setattr(server.store, "open_default", lambda limits: None)
    monkeypatch.setattr(server, "server_queue", lambda **kw: asked.update(kw) or "queue")
    return server, asked, warm_ups


@pytest.mark.fast
@pytest.mark.parametrize(("setting", "expected"), [(None, 0.001), ("2.5", 0.0025), ("0", 0.005)])
def test_the_server_hands_the_interpreter_over_after_its_setting(monkeypatch, setting, expected):
    """The server's training thread and its pages share one interpreter: a waiting thread gets it
    within TLS_SWITCH_INTERVAL_MS (1 by default; 0 keeps Python's own 5 ms)."""
    import sys

    server, _, _ = quiet_server_start(monkeypatch, "TLS_SWITCH_INTERVAL_MS", setting)
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's own
    try:
        assert server._start_server_queue() == "queue"
        assert sys.getswitchinterval() == pytest.approx(expected)
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize(("setting", "warms"), [(None, True), ("1", True), ("0", False)])
def test_the_server_warms_up_unless_told_not_to(monkeypatch, setting, warms):
    """TLS_WARM_UP=0: a server that starts without the default demo's head start (its warm-up thread,
    and a worker-process queue's first process) -- a script or a test that never trains pays nothing."""
    server, asked, warm_ups = quiet_server_start(monkeypatch, "TLS_WARM_UP", setting)
    monkeypatch.setattr(server.cores, "hand_over_interpreter", lambda ms: None)
    assert server._start_server_queue() == "queue"
    assert (len(warm_ups), asked["warm"]) == ((1, True) if warms else (0, False))


def test_the_warm_up_leaves_a_core_that_another_program_keeps_busy(monkeypatch):
    """The warm-up trains in a thread of its own, at every step with the threads a run would have now:
    beside one busy program on 2 cores, 2 threads took 20.0 s and 19.9 core-s for the warm-up's runs,
    paced 11.7 s and 11.6 (quiet: 7.0 s either way; docs/suite-time.md, session 32)."""
    from studio import server
    from tlcore.serve import warm_up as server_warm_up
    from tlcore.train import recipe

    q = JobQueue.started(cpu=cores.plan(2))
    q.elsewhere = BusyElsewhere(1.0)
    seen = []

    def warm_up(config, should_stop):
        should_stop()  # a step
        seen.append(torch.get_num_threads())
        return True

    monkeypatch.setattr(server, "job_queue", lambda: q)
    monkeypatch.setattr(recipe, "warm_up", warm_up)
    monkeypatch.setattr(server.catalog, "group_param_counts", lambda backbone: None)
    monkeypatch.setattr(server.feature_space, "load_libraries", lambda: None)
    monkeypatch.setattr(server.time_estimate.shared_estimator(), "knows_device", lambda config: True)
    monkeypatch.setattr(server, "return_freed_memory", lambda: None)
    monkeypatch.setattr(server, "lower_thread_priority", lambda by: True)
    monkeypatch.setattr(server, "FIRST_PAGE_S", 0.0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        server._warm_up()
    finally:
        torch.set_num_threads(before)
    assert seen == [1] * len(server_warm_up.configs())


@pytest.mark.fast
def test_a_race_on_a_cpu_server_runs_two_at_a_time_longest_first_one_thread_each():
    seen: dict[str, list[int]] = {}
    going: list[str] = []
    overlap = []

    def run(config, emit, should_stop):
        going.append(config.strategy)
        overlap.append(tuple(going))
        for _ in range(20):
            should_stop()  # sets this run's threads, as a real run does every step
            seen.setdefault(config.strategy, []).append(torch.get_num_threads())
            time.sleep(0.005)
        going.remove(config.strategy)
        emit(Done({"val_acc": 0.5}))
        return {}

    q = JobQueue.started(run, cpu=cores.plan(2))
    base = RunConfig(backbone="efficientnet_lite0", dataset="fashion_mnist", image_size=96, per_class=20, freeze_depth=4)
    job = q.submit([base.replace(strategy=s) for s in ("scratch", "linear_probe", "partial", "full")], owner="anna")
    assert wait_for(lambda: q.get(job, "anna").state == "done")
    assert overlap[0] == ("scratch",) and overlap[1] == ("scratch", "full")  # the two longest first, side by side
    assert max(len(o) for o in overlap) == 2  # never more runs than cores
    assert set(seen["full"][:5]) == {1}  # beside another run: one thread each
    assert all(isinstance(r.final, Done) for r in q.get(job, "anna").runs)
    assert q.get(job, "anna").labels and q._running == 0
