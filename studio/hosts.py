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


# --- the address students open (the join link and its QR) -----------------------------------

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"}


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    return host in LOOPBACK or host.startswith("127.") or host.endswith(".localhost")


def lan_address() -> str | None:
    """This machine's address on its network, as a student's device reaches it: the first private
    IPv4 address of an interface (192.168.x, 10.x, 172.16-31.x), else any non-loopback IPv4 one."""
    import ipaddress

    found = []
    for text in interface_addresses():
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if address.version == 4 and not address.is_loopback and not address.is_link_local:
            found.append(address)
    found.sort(key=lambda a: (not a.is_private, a.packed))
    return str(found[0]) if found else None


def public_root(opened: str) -> tuple[str, bool]:
    """The root URL students open, and whether a student's device can reach it.

    `opened`: the URL the teacher's browser opened (st.context.url). In order: $TLS_PUBLIC_URL
    (a configured name, e.g. behind a proxy); the host the teacher opened when it is not a loopback
    name; this machine's LAN address with the same port and scheme; else the loopback address
    itself, said as unreachable (the Class page then says how to fix it)."""
    from urllib.parse import urlsplit

    configured = settings.get("TLS_PUBLIC_URL").strip().rstrip("/")
    if configured:
        return configured, True
    parts = urlsplit(opened or "http://localhost:8501")
    scheme, host, port = parts.scheme or "http", parts.hostname or "localhost", parts.port
    path = parts.path.rstrip("/").rsplit("/", 1)[0]  # the page's own name off ("/class" -> "")
    suffix = f":{port}" if port else ""
    if not _is_loopback(host):
        return f"{scheme}://{parts.netloc}{path}", True
    lan = lan_address()
    if lan is not None:
        return f"{scheme}://{lan}{suffix}{path}", True
    return f"{scheme}://{parts.netloc}{path}", False
