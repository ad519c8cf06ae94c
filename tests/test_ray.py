"""The Ray backend (tlcore.serve.ray_jobs) against a head started as the README says (`ray start
--head`, Ray 2.60 with its token): the same JobQueue interface, runs trained in Ray workers
with their events streamed back, Stop that stops the worker (its flag, or ray.cancel when
the run ignores it), a worker that dies mid-run ending as failed with a message, the same
store as the local queue; a cluster that refuses the server's token or does not answer
never holds up a page and its runs train locally, said to the learner and the teacher; a
lost EventHub fails one run, not the next.

One head for the module (about 5 s to start, stopped after: its processes are found by a
mark in their environment, never by name); `-m "not ray"` deselects these."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.fakes import make_run, wait_for
from tlcore.core.events import Cancelled, Done, Failed, Started, StepEvent
from tlcore.serve.jobs import JobQueue
from tlcore.serve.store import RunStore
from tlcore.train.config import RunConfig
from tools.pace import within

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A run that needs a new worker process (the module's first, or the first after Ray killed one)
# waits for it to start and import this module with torch: seconds when idle, a minute beside two
# busy loops (session 21). A "not hung" bound, in idle seconds (tools.pace).
WORKER_START_S = 60


@dataclass
class Head:
    address: str
    token_path: Path
    env: dict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def head_pids(mark: str) -> list[int]:
    """Processes started by our `ray start` (all carry its environment, with our mark)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if f"TLS_TEST_RAY_HEAD={mark}".encode() in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def stop_head(mark: str) -> None:
    """Every process of our head, killed. Not SIGTERM first: Ray 2.60's gcs_server, raylet and
    autoscaler outlive it (seen: all three still there 12 s on), so a polite stop only waited its
    10 s (32 s of the suite's teardown on a busy box). The head is this module's throwaway (its
    folder is deleted next), and the SIGKILL is what that wait ended in anyway."""
    for _try in range(3):  # a process forked while we kill is found next time round
        for pid in head_pids(mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if wait_for(lambda: not head_pids(mark), timeout=10):
            return


@pytest.fixture(scope="module")
def head():
    """`ray start --head` as the README says, token auth on (Ray 2.60 asks for it): the token in a
    file of its own (RAY_AUTH_TOKEN_PATH), never the user's ~/.ray."""
    folder = Path(tempfile.mkdtemp(prefix="tlsray-", dir="/tmp"))  # short: Ray's socket paths are
    token = folder / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    mark, port = secrets.token_hex(8), free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token),
        "TLS_TEST_RAY_HEAD": mark,
        # Workers import tlcore from this checkout, and this module for its run functions (pytest
        # imports it as `test_ray`, from tests/).
        "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")]),
    }
    try:
        subprocess.run(
            [
                "ray",
                "start",
                "--head",
                f"--port={port}",
                "--num-cpus=1",
                "--include-dashboard=false",
                f"--temp-dir={folder / 'r'}",
                "--disable-usage-stats",
            ],
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
        )
        yield Head(f"127.0.0.1:{port}", token, env)
    finally:
        stop_head(mark)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="module")
def cluster(head):
    """This process joined to the head as the class server joins it: TLS_RAY_ADDRESS plus the
    head's token (RAY_AUTH_TOKEN_PATH; RAY_AUTH_MODE=token follows from it)."""
    from tlcore.serve.ray_jobs import connect

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")}
    os.environ["PYTHONPATH"] = os.path.join(ROOT, "tests")
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(head.token_path)
    os.environ.pop("RAY_AUTH_MODE", None)
    try:
        connect(head.address, timeout_s=within(60))
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 1
    yield head
    ray.shutdown()


@pytest.fixture
def make_queue(cluster):
    from tlcore.serve.ray_jobs import RayJobQueue

    made = []

    def make(run_fn, **kwargs):
        made.append(RayJobQueue.started(run_fn, **kwargs))
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
    q = make_queue(make_run(steps=40, delay=0.05), store=RunStore(tmp_path / "runs.sqlite"))
    job = q.submit(RunConfig(), owner="alice", tag="finetune")
    # While it trains: some steps have arrived, the end has not (events stream, not one batch at the end).
    assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > 0, timeout=WORKER_START_S)
    live = q.get(job, "alice").runs[0]
    assert live.final is None and len(live.steps) < 40
    assert wait_for(lambda: q.get(job, "alice").state == "done", timeout=30)
    run = q.get(job, "alice").runs[0]
    assert [s.step for s in run.steps] == list(range(1, 41)) and isinstance(run.final, Done)
    assert isinstance(run.started, Started) and run.result.strategy == RunConfig().strategy
    # Same interface, same rules: nobody else sees it, and the store has it for after a restart.
    assert q.get(job, "bob") is None and q.cancel(job, "bob") is False
    assert q.snapshot() == {"running": 0, "waiting": 0} and q.active_for("alice") is None
    restarted = JobQueue.started(make_run(), store=RunStore(tmp_path / "runs.sqlite"))
    assert restarted.get(job, "alice").runs[0].events[:-1] == run.events[:-1]


def test_stop_stops_the_run_on_the_worker(make_queue):
    q = make_queue(make_run(steps=10_000, delay=0.01))
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > 3, timeout=30)
    assert q.cancel(job, "alice")
    assert wait_for(lambda: q.get(job, "alice").state == "cancelled", timeout=60)  # its 10,000 steps take 100 s
    run = q.get(job, "alice").runs[0]
    assert isinstance(run.final, Cancelled) and run.final.step == run.steps[-1].step < 10_000  # the worker's own Cancelled


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
    assert wait_for(lambda: q.get(job, "alice").state not in ("queued", "running"), timeout=WORKER_START_S)
    view = q.get(job, "alice")
    final = view.runs[0].final
    assert view.state == "failed" and isinstance(final, Failed) and final.key == "run.worker_lost"
    assert "stopped before it finished" in final.message
    assert isinstance(view.runs[0].started, Started) and len(view.runs[0].steps) >= 3  # what it had sent is kept
    # The queue goes on: the same learner can start again, and it runs.
    q._remote_fn = make_run(steps=3, delay=0)
    again = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(again, "alice").state == "done", timeout=WORKER_START_S)  # a new worker again


def test_a_run_waiting_for_a_gpu_can_be_stopped(make_queue):
    q = make_queue(make_run(steps=3, delay=0), workers=2)
    q.cluster_gpus = 1  # as if the cluster had a GPU: the run asks for one, which this instance never has
    job = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(job, "alice").state == "running", timeout=10)
    # A CPU run sent after it starts and finishes on the same cluster (no fixed sleep): the
    # scheduler has had its chance, and the GPU run is still waiting in it.
    cpu_job = q.submit(RunConfig(device="cpu"), owner="bob")
    assert wait_for(lambda: q.get(cpu_job, "bob").state == "done", timeout=60)
    assert q.get(job, "alice").state == "running"
    assert q.get(job, "alice").runs[0].events == ()  # still waiting in Ray's scheduler
    assert q.cancel(job, "alice")
    assert wait_for(lambda: q.get(job, "alice").state == "cancelled", timeout=5)
    assert isinstance(q.get(job, "alice").runs[0].final, Cancelled)


def test_a_run_asks_for_a_gpu_only_where_there_is_one(make_queue):
    q = make_queue(make_run(steps=1, delay=0))
    assert q.cluster_gpus == 0 and q.num_gpus(RunConfig(device="cuda")) == 0
    q.cluster_gpus = 2
    assert [q.num_gpus(RunConfig(device=d)) for d in ("auto", "cuda", "cpu")] == [1, 1, 0]


def test_the_server_picks_ray_from_its_configuration(cluster, monkeypatch):
    from tlcore import serve
    from tlcore.serve.ray_driver import RayDriverQueue
    from tlcore.serve.ray_jobs import RayJobQueue

    monkeypatch.setenv("TLS_RAY_ADDRESS", "local")
    monkeypatch.setenv("TLS_RAY_DRIVER", "here")
    assert isinstance(serve.server_queue(run_fn=make_run(steps=1, delay=0)), RayJobQueue)
    monkeypatch.delenv("TLS_RAY_DRIVER")  # the default: the driver in a process of its own
    monkeypatch.setenv("TLS_RAY_ADDRESS", f"127.0.0.1:{free_port()}")  # (no second Ray instance for it to start)
    by_default = serve.server_queue(run_fn=make_run(steps=1, delay=0))
    assert isinstance(by_default, RayDriverQueue) and not isinstance(by_default, RayJobQueue)
    by_default.close()
    monkeypatch.delenv("TLS_RAY_ADDRESS")
    local = serve.server_queue(run_fn=make_run(steps=1, delay=0))
    assert type(local) is JobQueue


@pytest.mark.slow
def test_the_real_trainer_on_a_ray_worker_and_the_learners_model_back_on_the_server(make_queue):
    """... and a learner's own run's model comes back to the server's shelf (the task's value, not
    the event stream), for Try it and the download as on a local queue; a race's models do not."""
    q = make_queue(None)  # the worker imports tlcore.train.trainer itself
    config = RunConfig(backbone="studio_resnet", pretrained="no", per_class=3, val_per_class=3, image_size=16, epochs=1)
    job = q.submit(config, owner="alice", tag="finetune", keep_model=True)
    assert wait_for(lambda: q.get(job, "alice").state in ("done", "failed"), timeout=120)
    run = q.get(job, "alice").runs[0]
    assert q.get(job, "alice").state == "done", run.final
    assert run.started.device and run.result.val_acc >= 0 and run.steps
    entry = q.shelf.get("alice", run.result.model_id)
    assert entry.classes == tuple(run.result.classes) and next(entry.model.parameters()).device.type == "cpu"
    assert q.shelf.get("bob", run.result.model_id) is None
    race = q.submit([config, config.replace(strategy="full")], owner="alice", tag="race")
    assert wait_for(lambda: q.get(race, "alice").state in ("done", "failed"), timeout=120)
    assert all(r.result.model_id is None for r in q.get(race, "alice").runs) and q.shelf.usage()["models"] == 1


# --- the hub, the token, a cluster that does not answer -------------------------------------


LOST_HUB = """
import json, re, sys, time
sys.path.insert(0, {root!r})
import ray
from tlcore.train.config import RunConfig
from tlcore.serve.ray_jobs import RayJobQueue
from tests.helpers.fakes import make_run, wait_for
from tools.pace import within
q = RayJobQueue.started(make_run(steps=10_000, delay=0.01), address={address!r})
assert q.wait_joined(within(60)).state == "connected", q.cluster_status()
out = {{}}
job = q.submit(RunConfig(), owner="alice")
t = time.monotonic()
out["stepped"] = wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > 3, timeout=120)  # a new driver's first worker
out["stepped_s"], out["load"] = round(time.monotonic() - t, 1), open("/proc/loadavg").read().split()[0]
ray.kill(q._hub, no_restart=True)  # gone for good (its node lost, say)
out["failed"] = wait_for(lambda: q.get(job, "alice").state == "failed", timeout=30)
final = q.get(job, "alice").runs[0].final
out["key"], out["message"] = getattr(final, "key", None), getattr(final, "message", "")
q._remote_fn = make_run(steps=3, delay=0)
again = q.submit(RunConfig(), owner="alice")
out["again"] = wait_for(lambda: q.get(again, "alice").state == "done", timeout=60) and q.get(again, "alice").where
# A hub whose process dies restarts (max_restarts): the same handle answers again.
hub = q._hub
ray.kill(hub, no_restart=False)

def answers():
    try:
        return ray.get(hub.ping.remote(), timeout=5) is not None
    except (ray.exceptions.RayError, TimeoutError):
        return False

out["restarted"] = wait_for(answers, timeout=60)
third = q.submit(RunConfig(), owner="alice")
wait_for(lambda: q.get(third, "alice").state in ("done", "failed"), timeout=60)
out["third"] = [q.get(third, "alice").state, getattr(q.get(third, "alice").runs[0].final, "key", None)]
if out["third"][0] == "failed":  # it met the restart's last moments (seen under load in CI) ...
    third = q.submit(RunConfig(), owner="alice")  # ... and the next one works
out["after"] = wait_for(lambda: q.get(third, "alice").state == "done", timeout=60)
print(json.dumps(out), flush=True)
"""


def run_driver(head, script: str, timeout: float) -> dict:
    """A class server's Ray driver in a process of its own (its own `RayJobQueue` on the head);
    its one JSON line. Ray's driver can abort in its own task manager when a task's cancel races
    with the task's end (ray-project/ray#54527, "Tried to complete task that was not pending"):
    that crash, and only that, makes the test an expected failure, said as such (xfail), not a pass."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(head.token_path), "PYTHONPATH": ROOT}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout, stderr = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        logs = head.token_path.parent / "r" / "session_latest" / "logs"
        driver_log = "".join(p.read_text(errors="replace") for p in logs.glob(f"python-core-driver-*_{proc.pid}.log"))
        if "submissible_tasks_.end()" in stderr + driver_log:
            pytest.xfail("Ray's own task-manager race (ray-project/ray#54527) aborted the driver after a hub kill")
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line.startswith("{")))


def test_a_lost_hub_fails_one_run_with_a_message_and_the_next_run_works(head):
    """The hub killed under a run (a driver process of its own: see run_driver)."""
    got = run_driver(head, LOST_HUB.format(root=ROOT, address=head.address), timeout=within(400))
    print(f"the driver's first steps after {got['stepped_s']} s (load average {got['load']})")
    assert got["stepped"] and got["failed"] and got["key"] == "run.hub_lost", got
    assert not re.search(r"\d+\.\d+\.\d+\.\d+|pid|Actor", got["message"]), got["message"]  # no raw Ray error on a page
    assert got["again"] == "", got  # done, on the cluster, through a new hub
    assert got["restarted"], got  # restarted: the same handle answers again
    assert got["third"][0] == "done" or got["third"] == ["failed", "run.hub_lost"], got  # one run fails, said in words
    assert got["after"], got


def test_a_cluster_given_up_as_lost_is_tried_again_and_used_when_it_answers(make_queue, monkeypatch):
    from tlcore.serve import ray_jobs

    q = make_queue(make_run(steps=2, delay=0))
    assert q.wait_joined(within(60)).state == "connected"
    joined = q.cluster_status()
    q._status, q._lost_at = ray_jobs.ClusterStatus("lost", "cluster"), time.monotonic()  # as after a hub that did not answer
    here = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(here, "alice").state == "done", timeout=60)
    assert q.get(here, "alice").where == "local" and q.cluster_status().state == "lost"  # within RETRY_S: not tried
    monkeypatch.setenv("TLS_RAY_RETRY_S", "0")  # TLS_RAY_RETRY_S later (read when used)
    back = q.submit(RunConfig(), owner="alice")
    assert wait_for(lambda: q.get(back, "alice").state == "done", timeout=60), q.get(back, "alice").runs[0].final
    assert q.get(back, "alice").where == "" and q.cluster_status() == joined  # on the cluster again, said so


DRIVER = """
import json, os, sys, time
sys.path.insert(0, {root!r})
from tlcore.train.config import RunConfig
from tlcore.serve import server_queue
from tests.helpers.fakes import make_run
from tools.pace import within
t = time.monotonic()
q = server_queue(run_fn=make_run(steps=3, delay=0))
made_s, at_made = time.monotonic() - t, q.cluster_status().state if hasattr(q, "cluster_status") else None
job = q.submit(RunConfig(), owner="a")
while q.get(job, "a").state in ("queued", "running") and time.monotonic() - t < within(100):
    time.sleep(0.1)
view = q.get(job, "a")
print(json.dumps({{"made_s": made_s, "at_made": at_made, "state": view.state, "where": view.where, "took_s": time.monotonic() - t,
                  "status": vars(q.cluster_status()) if hasattr(q, "cluster_status") else None}}))
"""


def test_the_readme_way_trains_on_the_cluster_and_a_missing_token_or_a_wrong_address_trains_here(head, tmp_path):
    """Three class servers (drivers) at once: the README's settings (TLS_RAY_ADDRESS, RAY_AUTH_MODE=token
    and the head's token), no token, a wrong address. None holds up its first page; the last two
    say why to the teacher and train their run here, said to its learner."""
    home = tmp_path / "home"  # no ~/.ray/auth_token to fall back on
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"HOME": str(home), "PYTHONPATH": ROOT}
    cases = {
        "readme": {"TLS_RAY_ADDRESS": head.address, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(head.token_path)},
        # Ray tries a refused driver's connection 20 times, a second apart, before it says why (Ray 2.60,
        # ray/_private/node.py): 5 tries end in the same refusal, 16 s sooner (issue 33, item 7)
        "no_token": {"TLS_RAY_ADDRESS": head.address, "TLS_RAY_CONNECT_S": "45", "RAY_NUM_REDIS_GET_RETRIES": "5"},
        "wrong_address": {"TLS_RAY_ADDRESS": f"127.0.0.1:{free_port()}", "TLS_RAY_CONNECT_S": "3"},
    }
    running = {
        name: subprocess.Popen(
            [sys.executable, "-c", DRIVER.format(root=ROOT)],
            env=base | extra,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, extra in cases.items()
    }
    out = {}
    for name, proc in running.items():
        stdout, stderr = proc.communicate(timeout=within(150))
        assert proc.returncode == 0, (name, stderr[-2000:])
        # the driver prints one JSON line; Ray may print its own warnings (raylet) after it
        out[name] = json.loads(next(line for line in reversed(stdout.splitlines()) if line.startswith("{")))
    for name, got in out.items():
        assert got["at_made"] == "connecting" and got["state"] == "done", (name, got)  # made before the cluster answered
        print(f"{name}: the queue made in {got['made_s']:.2f} s, its run done after {got['took_s']:.1f} s")
    assert out["readme"]["status"]["state"] == "connected" and out["readme"]["where"] == ""
    assert out["no_token"]["status"] == {"state": "unreachable", "reason": "auth", "gpus": 0, "cpus": 0}
    assert out["no_token"]["where"] == "local"
    assert out["wrong_address"]["status"]["state"] == "unreachable" and out["wrong_address"]["status"]["reason"] == "timeout"
    assert out["wrong_address"]["where"] == "local", out["wrong_address"]


HUB_KILLER = """
import json, os, subprocess, sys, time
sys.path.insert(0, {root!r})
import ray
from tlcore.train.config import RunConfig
from tlcore.serve.ray_jobs import RayJobQueue
from tests.helpers.fakes import make_run
from tools.pace import within
q = RayJobQueue.started(make_run(steps=10_000, delay=0.01), address={address!r})
assert q.wait_joined(within(60)).state == "connected", q.cluster_status()
SPIN = "import os\\nparent = os.getppid()\\nwhile os.getppid() == parent: pass"
busy = []
rounds = []
for i in range({rounds}):
    owner = f"learner-{{i}}"
    job = q.submit(RunConfig(seed=i), owner=owner)
    t = time.monotonic()
    while len(q.get(job, owner).runs[0].steps) < 3 and time.monotonic() - t < within(30):
        time.sleep(0.05)
    if not busy:  # both cores busy from the first kill on (the first run's worker started on a quiet box);
        # each loop ends with this driver, should Ray abort it (ray-project/ray#54527): none spins on after
        busy = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(2)]
    where = q.get(job, owner).where
    if where == "":  # on the cluster: its hub goes, for good or to be restarted by Ray
        ray.kill(q._hub, no_restart=(i % 2 == 0))
    else:  # the cluster was given up (a new hub did not answer in time): this run trains here
        q.cancel(job, owner)
    while q.get(job, owner).state in ("queued", "running") and time.monotonic() - t < within(60):
        time.sleep(0.1)
    view = q.get(job, owner)
    if view.state in ("queued", "running"):
        q.cancel(job, owner)
    final = view.runs[0].final
    rounds.append({{"state": view.state, "where": where, "key": getattr(final, "key", None), "s": round(time.monotonic() - t, 1)}})
for p in busy:
    p.kill()
q._remote_fn = make_run(steps=3, delay=0)
last = q.submit(RunConfig(), owner="after")
t = time.monotonic()
while q.get(last, "after").state in ("queued", "running") and time.monotonic() - t < within(120):
    time.sleep(0.1)
print(json.dumps({{"rounds": rounds, "last": q.get(last, "after").state, "where": q.get(last, "after").where,
                  "status": vars(q.cluster_status())}}), flush=True)
"""


def test_a_hub_killed_again_and_again_under_load_costs_one_run_each_time_and_never_the_server(head, tmp_path):
    """Issue 29, item 7: the EventHub killed again and again, restarted by Ray or gone for good, while
    runs go and both cores are busy (two busy loops from the first kill to the last killed run's end).
    The class server (a driver process of its own here, so that a crash in Ray's task manager would
    show as its exit, not take the test with it) keeps serving: each killed run ends (failed with
    the hub's message, or done when it finished first), none polls forever, and a run after the last
    kill trains: on the cluster, or here when the queue gave the cluster up (a new hub did not answer
    within HUB_S: seen on a loaded box), which it then says.

    The busy loops were on from the first run's start to the last run's end: 100-200 core-seconds of
    the suite's two cores, most of it spent waiting for Ray to start a worker under them, which
    proves nothing about a kill (issue 33, item 7). Giving up a cluster whose new hub does not
    answer has its own test (test_a_cluster_given_up_as_lost_is_tried_again_and_used_when_it_answers)."""
    # Two kills: the first for good (the queue makes a new hub), the second one that Ray restarts. A
    # third (for good again) proved nothing new for its 40-50 s of two busy cores (issue 33, item 7).
    got = run_driver(head, HUB_KILLER.format(root=ROOT, address=head.address, rounds=2), timeout=within(600))
    assert len(got["rounds"]) == 2
    for one in got["rounds"]:
        if one["where"] == "":  # killed under it: ended, said in words (or done first); no page polls forever
            assert one["state"] == "done" or (one["state"] == "failed" and one["key"] == "run.hub_lost"), got["rounds"]
        else:  # trained here since the cluster was given up: cancelled like any run
            assert one["state"] == "cancelled", got["rounds"]
    assert got["rounds"][0]["where"] == "" and got["rounds"][0]["key"] == "run.hub_lost"  # the first kill landed
    assert got["last"] == "done", got  # the server still trains
    if got["where"] == "local":  # it gave the cluster up, and says why (the teacher's Class page)
        assert got["status"] == {"state": "lost", "reason": "cluster", "gpus": 0, "cpus": 0}, got
    else:
        assert got["status"]["state"] == "connected", got


# --- the driver in a process of its own: Ray's own abort costs a run, never the server ----------


@pytest.fixture
def driver_env(head, monkeypatch):
    """The server's environment as the README gives it (its driver process inherits it)."""
    for name in [k for k in os.environ if k.startswith("RAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(head.token_path))
    return head


def test_a_crashed_ray_driver_costs_its_run_never_the_server_and_the_class_trains_on(driver_env):
    """Issue 29, item 7: Ray's own check can abort its driver (ray-project/ray#54527). The class
    server's driver is a process of its own (tlcore.serve.ray_driver); it is aborted here as Ray
    aborts it (SIGABRT) under a run. The server lives; that run fails with a message; the teacher
    reads why; the next run trains on the server; a new driver joins and runs go to the cluster
    again, where Stop still stops them."""
    from tlcore.serve.ray_driver import RayDriverQueue

    q = RayDriverQueue.started(make_run(steps=10_000, delay=0.01), address=driver_env.address)
    try:
        assert q.wait_joined(90).state == "connected", q.cluster_status()
        job = q.submit(RunConfig(), owner="alice")
        assert wait_for(lambda: len(q.get(job, "alice").runs[0].steps) > 3, timeout=60)
        first_driver = q.driver_pid()
        os.kill(first_driver, signal.SIGABRT)  # what a failed RAY_CHECK does
        assert wait_for(lambda: q.get(job, "alice").state == "failed", timeout=30), q.get(job, "alice").state
        view = q.get(job, "alice")
        assert view.runs[0].final.key == "run.driver_lost" and len(view.runs[0].steps) > 3  # what it had sent is kept
        assert "start it again" in view.runs[0].final.message
        assert q.cluster_status().state == "lost" and q.cluster_status().reason == "driver"
        q._local_fn = make_run(steps=3, delay=0)
        here = q.submit(RunConfig(), owner="bob")  # while a new driver joins: trained on the server
        assert wait_for(lambda: q.get(here, "bob").state == "done", timeout=60), q.get(here, "bob").runs[0].final
        assert q.get(here, "bob").where == "local"
        assert wait_for(lambda: q.cluster_status().state == "connected", timeout=90), q.cluster_status()
        assert q.driver_pid() not in (None, first_driver)
        back = q.submit(RunConfig(), owner="alice")  # on the cluster again
        assert wait_for(lambda: len(q.get(back, "alice").runs[0].steps) > 3, timeout=60)
        assert q.get(back, "alice").where == ""
        assert q.cancel(back, "alice")
        assert wait_for(lambda: q.get(back, "alice").state == "cancelled", timeout=10)
        assert isinstance(q.get(back, "alice").runs[0].final, Cancelled)
    finally:
        q.close()
