"""The server's own HTTP rules (studio.asgi, put in front of Streamlit by app.py): the learner
cookie set by the server, HttpOnly, and `/_stcore/metrics` for this machine only (issue 54, item
6). Against the real `streamlit run app.py` (the shared `server` fixture) and, for the parts a
test machine cannot reach from outside (a forged header, a mapped address), the middleware alone."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from studio import hosts
from studio.asgi import LearnerCookie, MetricsForThisMachine, is_this_machine, learner_in
from studio.learner import TOKEN_PATTERN


def _get(url: str, headers: dict | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, raw, body = error.code, error.headers, error.read()
    found: dict[str, list[str]] = {}
    for name, value in raw.items():
        found.setdefault(name.lower(), []).append(value)
    return status, found, body


def _learner_cookie(headers: dict[str, list[str]]) -> str:
    (cookie,) = [c for c in headers.get("set-cookie", []) if c.startswith("tls_learner=")]
    return cookie


def test_the_page_sets_an_httponly_learner_cookie_and_keeps_the_one_it_was_sent(server):
    status, headers, body = _get(server + "/")
    assert status == 200 and b"<html" in body.lower()
    cookie = _learner_cookie(headers)
    value = cookie.split(";", 1)[0].split("=", 1)[1]
    assert TOKEN_PATTERN.fullmatch(value)
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert {"httponly", "samesite=strict", "path=/"} <= set(flags)
    assert "secure" not in flags  # plain http here: a Secure cookie would never come back
    # A second page with that cookie: the same id back (flags refreshed), not a new learner.
    _, again, _ = _get(server + "/class", {"Cookie": f"tls_learner={value}"})
    assert _learner_cookie(again).startswith(f"tls_learner={value};")
    # A cookie that is no learner id is replaced by one that is.
    _, forged, _ = _get(server + "/", {"Cookie": "tls_learner=<script>"})
    assert TOKEN_PATTERN.fullmatch(_learner_cookie(forged).split(";", 1)[0].split("=", 1)[1])


def test_metrics_answer_this_machine_and_no_student_device(server):
    status, _, body = _get(server + "/_stcore/metrics")
    assert status == 200 and body  # the teacher on the server itself still reads them
    lan = hosts.lan_address()
    if lan is None:
        pytest.skip("this machine has no address but loopback: no student's view to try")
    port = server.rsplit(":", 1)[1]
    status, _, body = _get(f"http://{lan}:{port}/_stcore/metrics")
    assert status == 404 and b"session" not in body.lower()
    # Claiming to be this machine changes nothing: only a proxy in FORWARDED_ALLOW_IPS is believed.
    status, _, _ = _get(f"http://{lan}:{port}/_stcore/metrics", {"X-Forwarded-For": "127.0.0.1"})
    assert status == 404
    status, _, _ = _get(f"http://{lan}:{port}/_stcore/health")
    assert status == 200  # the rest of the server answers students as before


def _through(middleware, scope: dict) -> tuple[int, list[tuple[bytes, bytes]], bool]:
    """Send one request through a middleware around an app that answers 200 text/html; the
    status, the headers and whether the inner app ran."""
    ran = []

    async def inner(scope, receive, send):
        ran.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html></html>"})

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    asyncio.run(middleware(inner)({"type": "http", "headers": [], **scope}, receive, send))
    start = sent[0]
    return start["status"], start.get("headers", []), bool(ran)


@pytest.mark.parametrize(
    ("client", "ours"),
    [
        (("127.0.0.1", 5000), True),
        (("::1", 5000), True),
        (("::ffff:127.0.0.1", 5000), True),  # how a dual-stack server sees 127.0.0.1
        (None, True),  # a Unix socket
        (("192.0.2.7", 5000), False),
        (("::ffff:192.0.2.7", 5000), False),
        (("not an address", 5000), False),
    ],
)
def test_metrics_are_for_this_machine_only_whatever_form_its_address_takes(client, ours):
    assert is_this_machine(client) is ours
    status, _, ran = _through(MetricsForThisMachine, {"path": "/_stcore/metrics", "client": client})
    assert (status, ran) == ((200, True) if ours else (404, False))
    status, _, ran = _through(MetricsForThisMachine, {"path": "/base/_stcore/metrics/", "client": client})
    assert ran is ours  # behind a baseUrlPath, and with a trailing slash
    assert _through(MetricsForThisMachine, {"path": "/", "client": client})[2]  # every other path as before


def test_a_malformed_cookie_header_is_no_learner_and_gets_a_fresh_httponly_id():
    assert learner_in([(b"cookie", b'tls_learner="unterminated; x=\xff')]) is None
    assert learner_in([(b"cookie", b"a=1; tls_learner=abcdefghijklmnop")]) == "abcdefghijklmnop"
    _, headers, _ = _through(LearnerCookie, {"path": "/", "headers": [(b"cookie", b"tls_learner=short")], "scheme": "https"})
    (cookie,) = [v.decode() for k, v in headers if k == b"set-cookie"]
    assert "HttpOnly" in cookie and cookie.endswith("; Secure") and "tls_learner=short" not in cookie


def test_the_first_request_names_the_web_app_that_downloads_are_streamed_from(monkeypatch):
    """studio.download_hold wraps the web app's media route; the app is the one Starlette puts in
    every request's scope, kept by the first request (it was found among every object the garbage
    collector tracks: 1.1 s holding the interpreter, during a fresh server's first page)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from studio import asgi

    monkeypatch.setattr(asgi, "_served_by", [])
    app = Starlette(routes=[Route("/", lambda _request: PlainTextResponse("ok"))], middleware=[Middleware(LearnerCookie)])
    other = Starlette(routes=[], middleware=[Middleware(LearnerCookie)])
    assert asgi.serving_app() is None  # before any request: the janitor asks again later
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b"", "root_path": ""}
    asyncio.run(app(dict(scope), receive, send))
    asyncio.run(other(dict(scope, path="/nothing"), receive, send))
    assert sent[0]["status"] == 200 and asgi.serving_app() is app  # the first, kept
