"""Only the class's host names: Streamlit's `server.allowedHosts`, filled with this machine's names.

By default Streamlit accepts a websocket whatever the request's `Host` header says, so a page on
another site whose name is made to resolve to the class server (DNS rebinding) could open a
session on it. `server.allowedHosts` refuses any other Host (403 on `/_stcore/stream`), but the
names differ per classroom, so no list can be shipped in `.streamlit/config.toml`. Instead the
server fills it on its first page run with the names a student can type for this machine:

    localhost, 127.0.0.1, ::1, the host name and its fully qualified name, every address of the
    machine's network interfaces, and the names in $TLS_ALLOWED_HOSTS (comma-separated: a
    reverse proxy's name, a DNS alias; `*.school.example` for subdomains)

Streamlit reads the option at every websocket request, so the list holds from then on. A list the
admin set (config.toml, `--server.allowedHosts`, STREAMLIT_SERVER_ALLOWED_HOSTS) is left as it is;
`TLS_ALLOWED_HOSTS=*` keeps Streamlit's accept-all default. Before the first page run the
default holds: the first visitor (the teacher starting up) is not checked.

Not for: CORS or XSRF (shipped on in .streamlit/config.toml).
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
import threading

from tlcore.core import settings

log = logging.getLogger(__name__)
_done = threading.Lock()
_guarded = False
SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


def interface_addresses() -> set[str]:
    """Every IPv4 and IPv6 address of this machine's network interfaces (Linux; elsewhere what
    the host name resolves to)."""
    found: set[str] = set()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _index, name in socket.if_nameindex():
                request = struct.pack("256s", name.encode()[:15])
                try:
                    answer = fcntl.ioctl(s.fileno(), SIOCGIFADDR, request)
                    found.add(socket.inet_ntoa(answer[20:24]))
                except OSError:
                    continue  # an interface without an IPv4 address
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/net/if_inet6") as f:  # one address a line, 32 hex digits first
            for line in f:
                raw = bytes.fromhex(line.split()[0])
                found.add(socket.inet_ntop(socket.AF_INET6, raw))
    except (OSError, ValueError, IndexError):
        pass
    return found


def machine_names() -> list[str]:
    """The names and addresses a student can type for this machine, plus $TLS_ALLOWED_HOSTS."""
    names = {"localhost", "127.0.0.1", "::1"}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names.add(name.lower())
            try:
                names.update(info[4][0] for info in socket.getaddrinfo(name, None))
            except OSError:
                pass
    names |= interface_addresses()
    names |= {n.strip().lower() for n in settings.get("TLS_ALLOWED_HOSTS").split(",") if n.strip()}
    return sorted(n.split("%", 1)[0] for n in names)  # an IPv6 link-local address without its zone


def guard() -> list[str] | None:
    """Once per server process: fill `server.allowedHosts` with `machine_names()` unless the admin
    set it or asked for every host (`TLS_ALLOWED_HOSTS=*`). Returns the list it set (None: left)."""
    global _guarded
    with _done:
        if _guarded:
            return None
        _guarded = True
    from streamlit import config

    if settings.get("TLS_ALLOWED_HOSTS") == "*" or config.get_option("server.allowedHosts"):
        return None
    names = machine_names()
    config.set_option("server.allowedHosts", names)
    log.info("websockets accepted for these host names only (server.allowedHosts): %s", ", ".join(names))
    return names
