"""Only the class's host names (studio.hosts; issue 29, item 4): the server fills Streamlit's
`server.allowedHosts` with this machine's names on its first page run, so a websocket that names
another host (DNS rebinding) is refused, while every name and address of this machine, and the
names in TLS_ALLOWED_HOSTS, are let in. A list the admin set is kept; `*` keeps accept-all."""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest

from studio import hosts


@pytest.fixture
def fresh_guard(monkeypatch):
    """guard() as on a server's first page run, and Streamlit's option as it was, after."""
    from streamlit import config

    before = config.get_option("server.allowedHosts")
    monkeypatch.setattr(hosts, "_guarded", False)
    yield config
    config.set_option("server.allowedHosts", before)


@pytest.mark.fast
def test_the_machines_names_are_its_host_name_its_addresses_and_the_ones_given(monkeypatch):
    monkeypatch.setenv("TLS_ALLOWED_HOSTS", "Classroom.Example, *.school.example")
    names = hosts.machine_names()
    assert {"localhost", "127.0.0.1", socket.gethostname().lower()} <= set(names)
    assert {"classroom.example", "*.school.example"} <= set(names)
    assert hosts.interface_addresses() <= set(names) and "127.0.0.1" in hosts.interface_addresses()
    assert not any("%" in n for n in names)


@pytest.mark.fast
def test_guard_fills_the_list_once_and_keeps_an_admins_own(fresh_guard, monkeypatch):
    config = fresh_guard
    monkeypatch.delenv("TLS_ALLOWED_HOSTS", raising=False)
    config.set_option("server.allowedHosts", [])
    assert hosts.guard() == config.get_option("server.allowedHosts") == hosts.machine_names()
    assert hosts.guard() is None  # once per process
    monkeypatch.setattr(hosts, "_guarded", False)
    config.set_option("server.allowedHosts", ["classroom.local"])  # the admin's own
    assert hosts.guard() is None and config.get_option("server.allowedHosts") == ["classroom.local"]
    monkeypatch.setattr(hosts, "_guarded", False)
    config.set_option("server.allowedHosts", [])
    monkeypatch.setenv("TLS_ALLOWED_HOSTS", "*")  # accept every Host, as Streamlit's default
    assert hosts.guard() is None and config.get_option("server.allowedHosts") == []


def upgrade_status(url: str, host: str) -> int:
    """The HTTP status of a websocket upgrade on /_stcore/stream sent with `host` as its Host (and Origin)."""
    port = urlparse(url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (
                f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n"
                f"Origin: http://{host}:{port}\r\n\r\n"
            ).encode()
        )
        return int(s.recv(4096).split()[1])


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_a_running_server_refuses_a_websocket_for_another_host_and_lets_its_own_names_in(server):
    from tests.helpers.browser import chromium_page

    with chromium_page(1280, 720) as page:  # the first page run fills the list
        page.goto(f"{server}/?lang=en")
        page.locator("h1").first.wait_for(timeout=120_000)
    assert upgrade_status(server, "rebound.example") == 403  # DNS rebinding: another site's name
    own = [socket.gethostname(), "localhost", *sorted(a for a in hosts.interface_addresses() if ":" not in a)]
    for name in own:
        assert upgrade_status(server, name) == 101, name
