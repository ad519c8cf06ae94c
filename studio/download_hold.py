"""A download's bytes held until its browser has fetched them, then let go.

A download button built on click (`st.download_button(data=callable)`) runs the callable when
the learner clicks, stores the bytes in Streamlit's in-memory media store and sends the
browser their URL. The stored file belongs to no session: Streamlit marks it at the end of the
next script run of ANY session and deletes it at the one after. In a class, where 30 tabs'
timers finish script runs several times a second, the bytes could be gone before the
learner's browser asked for them (Chromium then reports the download as failed or canceled:
seen 3 times in 36 downloads with 3 learners, `python -m tools.loadtest.hammer`). And on a
quiet server no script run comes at all, so an 87 MB text model stayed in memory for as long
as nobody clicked anything.

`install(manager)` wraps the manager's `execute_deferred`: each file it makes is held (kept
referenced, under a session id no browser has) until the browser has asked for it (the media
route reads the bytes whole, then sends them), or for `hold_s()` at most. `release_expired()`
lets go of those and collects them; the janitor (studio.server) calls it every few seconds, so
a download's bytes leave the server a few seconds after their request (at most `hold_s()` after
the click) even when no page runs.

A file that is on disk already (a model's zip, `FromDisk`) never enters memory at all: its click
gives the browser a /media URL with a random one-time name, and Streamlit's media route, wrapped
by `serve_from_disk(app)`, streams that file from disk (Starlette's FileResponse: 64 KB at a time,
as fast as the browser reads, Range requests included). Why: Streamlit's media route answers with
the whole file as one body, and Python 3.11's asyncio copies what the socket has not yet taken
into a buffer of its own, so every request for an 87 MB text model held up to 87 MB more until
that browser had read it, and the browser asks twice (a check, then the download). Over a class's
Wi-Fi that is seconds per learner: 30 learners, 5 GB. Streamed, a request holds 64 KB.

It reaches into Streamlit's media manager (its lock and its per-session file map) and its web
app's media route: where a Streamlit version lacks them, `install` or `serve_from_disk` says so
once in the log and leaves Streamlit's own behaviour in place (downloads then go through memory;
tests/test_download_hold.py fails on such a version).
"""

from __future__ import annotations

import logging
import mimetypes
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tlcore.core import settings
from tlcore.core.bounded import LRU


def hold_s() -> float:
    """A download's bytes are held at most this long from the click, for a request that never
    came ($TLS_DOWNLOAD_HOLD_S, 60 s)."""
    return settings.get("TLS_DOWNLOAD_HOLD_S")


FETCHED_S = 2.0  # held this long after its request (another request for it, a retry, finds it)
HOLDER = "tlstudio-download-hold"  # the session id the held files are filed under (no browser has it)
ON_DISK_S = 600.0  # a streamed download's URL answers this long after its click (retries, a slow start)
ON_DISK_URLS = 2000  # and at most this many such URLs are kept (the oldest go first): a few bytes each


class FromDisk:
    """A download button's `data` whose bytes are a file on disk: `make()` returns the file's path
    (built on the click if need be), or the bytes to send instead (a note, when there is no file).
    Streamed from disk where `serve_from_disk` is in place; otherwise called as Streamlit calls any
    `data` callable, and the file is read into memory."""

    def __init__(self, make: Callable[[], Path | bytes]):
        self.make = make

    def __call__(self) -> bytes:
        made = self.make()
        return made.read_bytes() if isinstance(made, Path) else made


@dataclass(frozen=True)
class _OnDisk:
    path: Path
    filename: str  # the name the browser saves it under
    mimetype: str
    made: float  # clock seconds of the click


_log = logging.getLogger(__name__)


class _Hold:
    """What one manager holds: file id -> when it was made (clock seconds)."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.lock = threading.Lock()
        self.made: dict[str, float] = {}
        self.fetched: dict[str, float] = {}  # file id -> when its bytes were first asked for
        self.streaming = False  # the media route streams FromDisk files (serve_from_disk)
        self.on_disk: LRU[str, _OnDisk] = LRU(ON_DISK_URLS)  # one-time name -> its file, for the media route


def _file_id(url: str) -> str:
    """The stored file's id from its URL ("/media/<id>.zip") or its file name ("<id>.zip")."""
    return url.rsplit("/", 1)[-1].split(".", 1)[0]


def install(manager, clock: Callable[[], float] = time.monotonic) -> bool:
    """Hold every file this media manager makes for a download button from now on; True when
    it could (once per manager: a second call changes nothing)."""
    if getattr(manager, "_tlstudio_hold", None) is not None:
        return True
    needs = ("execute_deferred", "_files_by_session_and_coord", "_lock", "_storage")
    if not all(hasattr(manager, name) for name in needs) or not hasattr(manager._storage, "get_file"):  # noqa: SLF001
        _log.warning("this Streamlit's media manager has no place to hold a download: downloads are not held")
        return False
    execute, hold = manager.execute_deferred, _Hold(clock)

    def execute_and_hold(file_id: str) -> str:
        with manager._lock:  # noqa: SLF001
            entry = manager._deferred_callables.get(file_id)  # noqa: SLF001
        if hold.streaming and entry is not None and isinstance(entry["callable"], FromDisk):
            made = entry["callable"].make()
            if isinstance(made, Path):
                return _stream_url(manager, hold, made, entry["filename"] or made.name, entry["mimetype"])
        url = execute(file_id)
        made = _file_id(url)
        with manager._lock:  # noqa: SLF001 -- see the module's docstring
            manager._files_by_session_and_coord[HOLDER][made] = made  # noqa: SLF001
        with hold.lock:
            hold.made[made] = hold.clock()
            hold.fetched.pop(made, None)  # a new click: held until its own request
        return url

    storage = manager._storage  # noqa: SLF001
    get_file = storage.get_file

    def get_and_note(filename: str):
        found = get_file(filename)  # what the media route calls for each request ("<id>.zip")
        made = _file_id(filename)
        with hold.lock:
            if made in hold.made:
                hold.fetched.setdefault(made, hold.clock())
        return found

    manager.execute_deferred = execute_and_hold
    storage.get_file = get_and_note
    manager._tlstudio_hold = hold  # noqa: SLF001
    return True


def release_expired(manager, now: float | None = None) -> int:
    """Let go of the files asked for FETCHED_S ago, or held for hold_s(), and collect what no session
    uses; returns how many were let go. Streamlit deletes a download on the second collection after it is
    let go (the first marks it)."""
    hold: _Hold | None = getattr(manager, "_tlstudio_hold", None)
    if hold is None:
        return 0
    now = hold.clock() if now is None else now
    longest = hold_s()
    with hold.lock:
        expired = [
            made
            for made, at in hold.made.items()
            if now - at >= longest or (made in hold.fetched and now - hold.fetched[made] >= FETCHED_S)
        ]
        for made in expired:
            del hold.made[made]
            hold.fetched.pop(made, None)
    for name, item in hold.on_disk.items():
        if now - item.made >= ON_DISK_S:
            hold.on_disk.pop(name)
    if expired:
        with manager._lock:  # noqa: SLF001
            held = manager._files_by_session_and_coord.get(HOLDER, {})  # noqa: SLF001
            for made in expired:
                held.pop(made, None)
    manager.remove_orphaned_files()
    return len(expired)


def held(manager) -> int:
    """How many downloads this manager holds now."""
    hold: _Hold | None = getattr(manager, "_tlstudio_hold", None)
    if hold is None:
        return 0
    with hold.lock:
        return len(hold.made)


def install_on_server() -> bool:
    """Hold the running server's downloads (no server, as in AppTest: nothing to do)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return False
    return install(Runtime.instance().media_file_mgr)


def stream_on_server() -> bool:
    """Stream the running server's FromDisk downloads from disk (`install_on_server` first); False
    before the server's first request (its web app is not known yet: ask again)."""
    from streamlit.runtime import Runtime

    from studio import asgi

    app = asgi.serving_app()
    if not Runtime.exists() or app is None:
        return False
    return serve_from_disk(Runtime.instance().media_file_mgr, app)


def release_on_server() -> int:
    """The janitor's round: the running server's expired downloads let go and collected."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return 0
    return release_expired(Runtime.instance().media_file_mgr)


# --- streamed from disk ------------------------------------------------------------------------


def _stream_url(manager, hold: _Hold, path: Path, filename: str, mimetype: str) -> str:
    """A one-time /media URL for a file on disk (random: it is the capability to fetch it)."""
    name = secrets.token_hex(16)
    hold.on_disk.put(name, _OnDisk(path, filename, mimetype or "application/octet-stream", hold.clock()))
    extension = mimetypes.guess_extension(mimetype or "") or Path(filename).suffix
    return f"{manager._storage._media_endpoint}/{name}{extension}"  # noqa: SLF001 -- Streamlit's own URL form


def streamed(manager) -> int:
    """How many streamed-download URLs this manager answers now."""
    hold: _Hold | None = getattr(manager, "_tlstudio_hold", None)
    return len(hold.on_disk) if hold else 0


def serve_from_disk(manager, app) -> bool:
    """Make the web app's media route stream this manager's FromDisk downloads from disk (others
    go on to Streamlit's own answer); True when it could. `install(manager)` first."""
    from starlette.responses import FileResponse, PlainTextResponse, Response

    hold: _Hold | None = getattr(manager, "_tlstudio_hold", None)
    route = next(
        (
            r
            for r in getattr(getattr(app, "router", None), "routes", [])
            if "/media/{file_id" in getattr(r, "path", "") and "GET" in (getattr(r, "methods", None) or ())
        ),
        None,
    )
    if hold is None or route is None:
        _log.warning("this Streamlit's web app has no media route to stream from: downloads go through memory")
        return False
    if getattr(route.app, "_tlstudio_streams", False):
        hold.streaming = True
        return True
    streamlit_answer = route.app

    async def answer(scope, receive, send) -> None:
        name = str(scope.get("path_params", {}).get("file_id", "")).split(".", 1)[0]
        item = hold.on_disk.get(name)
        if item is None:
            await streamlit_answer(scope, receive, send)
            return
        if dict(scope.get("headers", ())).get(b"sec-fetch-mode", b"navigate") != b"navigate":
            # a script's fetch, not the download: Streamlit's page asks for every download's URL once
            # (`fetch(url)`, only to check its status) and never reads the answer. An unread 87 MB
            # answer holds one of the browser's six connections to the server until the page's
            # garbage is collected: after a few downloads, the next download and the page's pictures
            # waited for minutes (one learner of three lost a download a round, tools/loadtest/hammer).
            # "No content" answers the check at once; the download itself (a navigation) gets the file.
            await Response(status_code=204)(scope, receive, send)
            return
        if not item.path.is_file():  # trimmed from the disk since the click: click again
            await PlainTextResponse("This download has expired: click its button again.", status_code=404)(scope, receive, send)
            return
        response = FileResponse(
            item.path, media_type=item.mimetype, filename=item.filename, content_disposition_type="attachment"
        )
        await response(scope, receive, send)

    answer._tlstudio_streams = True  # type: ignore[attr-defined]
    route.app = answer
    hold.streaming = True
    return True
