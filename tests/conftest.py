"""Shared test set-up: the repository root on sys.path, and a free TCP port.

Kept generic on purpose: fixtures used by one test file live in that file; what several
modules share is in tests/helpers/ (and the browser tests' server fixture, here).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The time estimator learns into a file; tests must not write into the user's home. Each pytest-xdist
# worker has a folder of its own (it would inherit the controller's): its browser lane's server (the
# `server` fixture, below) keeps its run store and class there, beside the worker's own tests.
if os.environ.get("PYTEST_XDIST_WORKER") or "TLS_STATE_DIR" not in os.environ:
    os.environ["TLS_STATE_DIR"] = tempfile.mkdtemp(prefix="tlstudio-test-state-")
if str(ROOT) not in sys.path:  # `pytest` (not only `python -m pytest`) can import tlcore and studio
    sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    """Under pytest-xdist, a worker's own torch work (the in-process tests' training) gets its share
    of the cores, not all of them: two workers on 2 cores with 2 threads each kept 4 threads on 2
    cores, whose barriers wait on a descheduled thread. Measured (test_engine, test_experiments,
    test_imagenet, test_text, test_class with `-n 2`): 96 s and 157 worker core-s on 2 threads each,
    67 s and 101 on 1 (docs/suite-time.md, session 27). Only this process's main thread: servers
    and subprocesses choose as shipped, and the queue still sets each run's threads (tlcore.serve.cores)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if os.environ.get("PYTEST_XDIST_WORKER") and workers > 1:
        import torch

        from tlcore.serve import cores

        torch.set_num_threads(max(1, cores.count() // workers))


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the xdist_group marks given here
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`-n 2 --dist loadgroup`, as .ci/run and the README run the suite) the
    tests that share a Streamlit server (the `server` fixture: one per worker process) run in two
    lanes of about equal length, each one test after another as a class uses its server: the
    accessibility module, and the other browser modules. The Ray tests (one head) run one after
    another too; every other test, the browser tests with a server of their own among them, fills
    in beside them. (One lane for every browser test was the suite's critical path: the other
    worker waited minutes for it: issue 33, item 7, docs/suite-time.md.)"""
    for item in items:
        if "server" in getattr(item, "fixturenames", ()):
            lane = "browser-a11y" if item.module.__name__.endswith("test_browser_a11y") else "browser"
            item.add_marker(pytest.mark.xdist_group(lane))
        elif item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def fresh_learners(monkeypatch):
    """Every AppTest has the same Streamlit session id: give each test an empty learner
    store and its own upload folders, so no test finds the settings, runs or uploads of another."""
    folders = None
    if "studio.server" in sys.modules:
        from studio import learner, server
        from tlcore.serve.upload_folders import UploadFolders

        monkeypatch.setattr(learner, "learners", learner.LearnerStore())
        from tlcore.serve import classroom

        monkeypatch.setattr(classroom, "_shared", classroom.Classroom())  # no class open, none kept on disk
        folders = UploadFolders(is_connected=lambda session: True)
        monkeypatch.setattr(server, "upload_folders", folders)
    yield
    if folders is not None:
        folders.close_all()


@pytest.fixture
def no_warm_up():
    """Wait for the studio's warm-up (studio.server: the default demo trained once in a background
    thread after an AppTest first started the server's queue): a test that counts the engine's cache
    hits counts only its own runs then, whichever module ran before it."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "tlstudio-warm-up":
            thread.join(600)
    yield


@pytest.fixture
def pinned_numerics(monkeypatch):
    """Numbers that do not depend on the CPU: one thread and fp32 (no bf16 autocast on CPUs
    that have native bf16), for the experiment tests that assert accuracies."""
    import torch

    from tlcore.train import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def server():
    """A real Streamlit server on a free port (or $TLS_TEST_PORT, on a machine whose users
    share out ports; under pytest-xdist, worker gwN's the port N above it), stopped (by its pid)
    after the last test: the browser tests' server (tests.helpers.browser; skipped without Playwright). One for the whole session (one per
    pytest-xdist worker), as a class has one: each test is a new browser (a new learner). A
    server per module cost its start (Streamlit, torch, the warm-up's runs) each time: the 11
    modules' tests took 950 CPU-seconds of a 2-core box with a server each, 683 with one (issue
    33, item 7; docs/suite-time.md). Its state (run store, class) is the worker's TLS_STATE_DIR. A
    module that needs a server of its own (a teacher's secret, a class state of its own) starts one."""
    import socket

    from tests.helpers.browser import ARTIFACTS, start_server, stop_server, wait_healthy

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    given = int(os.environ.get("TLS_TEST_PORT", "0"))
    above = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0  # worker gwN: the port N above it
    with socket.socket() as s:
        s.bind(("127.0.0.1", given + above if given else 0))
        port = s.getsockname()[1]
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"streamlit-{worker}.log"
    # No warm-up (TLS_WARM_UP=0): its linear probe and full epoch are runs no browser test looks at, and the
    # default demo's features are computed by the first test that starts it. ~20 core-seconds a server
    # (each lane's modules alone, session 28: 144 -> 125 and 135 -> 115); the warm-up has its own test
    # (tests/test_cores.py) and the class of five keeps it, as the shipped server does.
    proc = start_server(port, log, dict(os.environ, TLS_WARM_UP="0"))
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url):
        proc.kill()
        pytest.fail(f"streamlit did not start; see {log.relative_to(ROOT)}")
    yield url
    stop_server(proc)
