"""The Streamlit server under test: a free port, start, health, stop, and its run store's record."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tools.loadtest.texts import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return True
        except OSError:
            time.sleep(0.3)
    return False


def start_server(port: int, log_path: Path, env: dict, script: str = "app.py", root: Path = ROOT) -> subprocess.Popen:
    """`streamlit run app.py` with only the port given on the command line: the rest of the
    settings come from .streamlit/config.toml, as when the teacher starts it (`script`: another
    entry point, e.g. frame.py alone, without app.py's server around it: tools.firstpage's baseline;
    `root`: another checkout's code, e.g. a worktree of an older commit: tools.demotime --base)."""
    log = open(log_path, "w")  # noqa: SIM115 -- closed with the process by stop_server
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port)],
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    proc._tls_log = log  # type: ignore[attr-defined]
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc._tls_log.close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def fresh_server(prefix: str, root: Path = ROOT, **settings: str) -> Iterator[tuple[str, Path, subprocess.Popen]]:
    """`streamlit run app.py` (of the checkout at `root`) on a free port with a fresh state folder (and
    these TLS_* settings), answering: (its URL, the state folder, the process); stopped on the way out."""
    state = Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ, TLS_STATE_DIR=str(state), TLS_CLASS_CONFIG=str(state / "class.toml"), **settings)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(port, state / "streamlit.log", env, root=root)
    try:
        if not wait_healthy(url):
            raise RuntimeError(f"streamlit did not start; see {state / 'streamlit.log'}")
        yield url, state, server
    finally:
        stop_server(server)


def read_server_jobs(path: Path, teacher_id: str, since: float) -> list[tuple[bool, float, float | None, float | None]]:
    """Every job submitted since `since` as the server recorded it: (the teacher's?, submitted,
    started, finished), Unix times. Read through the store's own reader (tlcore.serve.store)."""
    from tlcore.serve.store import RunStore, learner_key

    if not path.exists():
        return []
    store = RunStore(path)
    try:
        jobs = store.times(since)
    finally:
        store.close()
    key = learner_key(teacher_id)
    return [(job.learner == key, job.submitted_at, job.started_at, job.finished_at) for job in jobs]
