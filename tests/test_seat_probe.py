"""The probe of issue 54 as a test: a script speaking Streamlit's websocket (tools.seatprobe, as
tools/guessbench.py does) against the real `streamlit run app.py`, with a class open and an
experiment of 4 parts running. One address joins 36 new cookies through the QR's link as fast as
it can, then classmates come from their own addresses. Before: the script filled the seats and
took every part. Now: 30 new members a minute from one address, and a classmate here a while who
never had a part takes an unstarted one back from the address that holds several."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from tests.helpers.browser import free_port, start_server, stop_server, wait_healthy
from tests.test_class_experiment import BASE
from tlcore.serve.classroom import Classroom
from tlcore.serve.classroom import state as class_state
from tlcore.serve.classroom.state import SETTLE_S
from tlcore.serve.store.codec import learner_key
from tools import seatprobe

pytest.importorskip("websockets")

SCRIPT = "10.9.0.66"  # the script's address, as X-Forwarded-For (uvicorn believes it from a proxy it trusts)
# This machine as the trusted proxy: a dual-stack server sees a local client as ::ffff:127.0.0.1,
# which uvicorn's default (127.0.0.1,::1) does not name.
PROXY = "127.0.0.1,::1,::ffff:127.0.0.1"


@pytest.fixture(scope="module")
def class_server(tmp_path_factory):
    state = tmp_path_factory.mktemp("seat-probe")
    room = Classroom(state / "class.json")
    code = room.open()
    room.start_experiment("lr", [1e-3, 1e-2], 2, BASE)  # 4 parts
    port = free_port()
    proc = start_server(
        port, state / "streamlit.log", dict(os.environ, TLS_STATE_DIR=str(state), TLS_WARM_UP="0", FORWARDED_ALLOW_IPS=PROXY)
    )
    url = f"http://127.0.0.1:{port}"
    if not wait_healthy(url):
        proc.kill()
        pytest.fail(f"streamlit did not start; see {state / 'streamlit.log'}")
    yield url, code, state
    stop_server(proc)


def _members(state) -> dict[str, dict]:
    return json.loads((state / "class.json").read_text(encoding="utf-8"))["members"]


def test_a_script_on_one_address_can_neither_fill_the_seats_nor_keep_the_parts_removed_classmates_aside(class_server):
    url, code, state = class_server
    answers, joined = asyncio.run(seatprobe.flood(url, code, 36, SCRIPT, clients=4))
    per_minute = int(class_state.NEW_PER_ADDRESS.amount)
    assert answers["joined"] == per_minute == len(joined), answers  # the first 30, then a wait
    assert answers["busy"] == 36 - per_minute, answers
    # Parts go by member number (the server's order of joining), which four clients at a time can
    # finish in another order: read each cookie's number back from the class file
    numbers = {key: m["number"] for key, m in _members(state).items()}
    joined.sort(key=lambda cookie: numbers[learner_key(cookie)])
    # The script holds every part (it came first), and a classmate is still let in
    assert asyncio.run(seatprobe.parts_held(url, joined[:6], SCRIPT)) == 4
    classmates = [f"classmate-cookie-{i:02d}xyz" for i in range(3)]
    for i, cookie in enumerate(classmates):
        seen = asyncio.run(seatprobe.visit(url, cookie=cookie, address=f"10.9.1.{i + 1}", query=f"join={code}&lang=en"))
        assert seen.answer() == "joined", seen.texts
    # Once here a while (a fresh cookie takes no part from anyone), each classmate is shown a part
    # of their own, taken back from the script's address while its cookies still poll
    time.sleep(SETTLE_S + 1)
    assert asyncio.run(seatprobe.parts_held(url, joined[:6], SCRIPT)) == 4  # still polling, still holding
    for i, cookie in enumerate(classmates):
        assert asyncio.run(seatprobe.parts_held(url, [cookie], f"10.9.1.{i + 1}")) == 1
    assert asyncio.run(seatprobe.parts_held(url, joined, SCRIPT)) == 1
    assert len(_members(state)) == per_minute + 3
