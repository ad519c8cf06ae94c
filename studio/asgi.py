"""What the server answers over plain HTTP, before any page script runs (app.py puts these in
front of Streamlit's own routes):

- `LearnerCookie`: the learner cookie (studio.learner) is set by the server on its HTTP
  responses, `HttpOnly` (no page script, and so no injected one, can read or copy it),
  `SameSite=Strict`, `Secure` when the browser came over https, for a year. A browser that sent
  none gets a new random id; one that sent a valid id gets the same id back with these flags on
  every page (so a cookie written by a page script before this existed is upgraded in place).
  The websocket that follows carries it, and `studio.learner.owner()` reads it there.
- `MetricsForThisMachine`: `/_stcore/metrics` (Streamlit's counters: sessions, caches, memory)
  answers a client on this machine only; a student's device gets 404. The client is the one
  uvicorn resolved, so a forged X-Forwarded-For changes nothing unless it came through a proxy
  listed in FORWARDED_ALLOW_IPS (docs/teacher-secret.md).

Both are plain ASGI middleware (starlette's own convention), no streamlit inside.
Not for: who may join a class or unlock teacher mode (tlcore.serve.guess_limiter, studio.teacher).
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie

from studio.learner import LEARNER_COOKIE, TOKEN_PATTERN

COOKIE_MAX_AGE_S = 365 * 24 * 3600
METRICS_PATH = "/_stcore/metrics"
_served_by: list = []  # the Starlette app in front of these middlewares, as the first request names it


def serving_app():
    """The running server's Starlette app (Starlette puts itself in every request's scope, "app"),
    as the first request through `LearnerCookie` named it; None before any request."""
    return _served_by[0] if _served_by else None


def learner_in(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The valid learner id among a request's cookies, or None."""
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        jar = SimpleCookie()
        try:
            jar.load(value.decode("latin-1"))
        except Exception:  # noqa: BLE001 -- a malformed Cookie header is no learner
            continue
        morsel = jar.get(LEARNER_COOKIE)
        if morsel is not None and TOKEN_PATTERN.fullmatch(morsel.value):
            return morsel.value
    return None


def cookie_header(learner: str, *, secure: bool) -> tuple[bytes, bytes]:
    flags = f"{LEARNER_COOKIE}={learner}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict"
    return b"set-cookie", (flags + ("; Secure" if secure else "")).encode("latin-1")


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers)


class LearnerCookie:
    """Sets the learner cookie on HTTP responses (see the module's docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if not _served_by and scope.get("app") is not None:
            _served_by.append(scope["app"])
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = learner_in(scope.get("headers") or [])
        secure = scope.get("scheme") == "https"

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                # A new id on whatever answers first (the page, in practice); the same id again,
                # with today's flags, on every page.
                if sent is None or _is_html(headers):
                    headers.append(cookie_header(sent or secrets.token_urlsafe(16), secure=secure))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def is_this_machine(client: tuple | list | None) -> bool:
    """Whether an ASGI scope's client is this machine (a loopback address, IPv4-mapped too, or a Unix socket)."""
    if not client:
        return True  # a Unix socket: only this machine's users can open it
    try:
        address = ipaddress.ip_address(str(client[0]).split("%", 1)[0])
    except ValueError:
        return False
    # A dual-stack server sees 127.0.0.1 as ::ffff:127.0.0.1, which Python < 3.13 calls not loopback.
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class MetricsForThisMachine:
    """`/_stcore/metrics` for this machine only; 404 to everyone else (see the module's docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path = (scope.get("path") or "").rstrip("/")
        if scope["type"] == "http" and path.endswith(METRICS_PATH) and not is_this_machine(scope.get("client")):
            body = b"Not found.\n"
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
