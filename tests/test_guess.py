"""Guessing the teacher's secret against a real server, as a script would (tools.guessbench):
8 websocket clients, a new learner cookie every 5 guesses. Before issue 22 the count was per
cookie and such scripts made thousands of guesses a minute; now at most the first few are
compared and every later guess is refused unseen, whatever cookie it brings."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys

import pytest

from tools.guessbench import attack
from tools.loadtest import wait_healthy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.slow


def class_port() -> int:
    """$TLS_TEST_PORT, else a free one of the ports this project's servers may use (8660-8669)."""
    if os.environ.get("TLS_TEST_PORT"):
        return int(os.environ["TLS_TEST_PORT"])
    for port in range(8660, 8670):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port in 8660-8669")


def test_eight_scripts_rotating_cookies_get_a_handful_of_guesses(tmp_path):
    port = class_port()
    env = {**os.environ, "TLS_TEACHER_SECRET": secrets.token_urlsafe(16), "TLS_STATE_DIR": str(tmp_path),
           "TLS_CLASS_CONFIG": str(tmp_path / "none.toml")}
    log = open(tmp_path / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(url), (tmp_path / "streamlit.log").read_text()[-2000:]
        guessers = asyncio.run(attack(url, clients=8, seconds=20, per_cookie=5, fake_addresses=False))
        compared, refused = sum(g.compared for g in guessers), sum(g.refused for g in guessers)
        cookies = sum(g.cookies for g in guessers)
        assert cookies > 16 and refused > 50, (cookies, compared, refused, [g.errors[:2] for g in guessers])
        assert compared <= 5, (compared, refused)  # this address's free tries, then it waits
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
