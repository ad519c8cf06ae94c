"""Guessing the teacher's secret against a real server, as a script would (tools.guessbench):
8 websocket clients, a new learner cookie every 5 guesses. Before issue 22 the count was per
cookie and such scripts made thousands of guesses a minute; now at most the first few are
compared and every later guess is refused unseen, whatever cookie it brings."""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import pytest

from tools.guessbench import Guesser, attack
from tools.loadtest import free_port, start_server, stop_server, wait_healthy

pytestmark = pytest.mark.slow


def test_eight_scripts_rotating_cookies_get_a_handful_of_guesses(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "TLS_TEACHER_SECRET": secrets.token_urlsafe(16),
        "TLS_STATE_DIR": str(tmp_path),
        "TLS_CLASS_CONFIG": str(tmp_path / "none.toml"),
        "TLS_WARM_UP": "0",  # nothing here trains: no head start to pay for (~40 CPU-seconds)
    }
    proc = start_server(port, tmp_path / "streamlit.log", env)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_healthy(url), (tmp_path / "streamlit.log").read_text()[-2000:]
        # 8 s: the address's first wait after its free tries is 60 s, so 8 s or 20 s of guessing is
        # the same test (measured here: 82 cookies, 5 compared, 390 refused in 8 s); 12 s fewer of
        # eight clients at the server (issue 33, item 7)
        # the server's first page runs once first (a cold start took ~10 s with eight clients at once on the
        # 2-core box, session 33: the 8 s then measured the start-up, not the guessing)
        asyncio.run(Guesser(url, per_cookie=0, fake_addresses=False).one_cookie(time.monotonic() + 60))
        guessers = asyncio.run(attack(url, clients=8, seconds=8, per_cookie=5, fake_addresses=False))
        compared, refused = sum(g.compared for g in guessers), sum(g.refused for g in guessers)
        cookies = sum(g.cookies for g in guessers)
        assert cookies > 16 and refused > 50, (cookies, compared, refused, [g.errors[:2] for g in guessers])
        assert compared <= 5, (compared, refused)  # this address's free tries, then it waits
    finally:
        stop_server(proc)
