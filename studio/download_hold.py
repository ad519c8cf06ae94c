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

It reaches into Streamlit's media manager (its lock and its per-session file map): where a
Streamlit version lacks them, `install` says so once in the log and leaves Streamlit's own
behaviour in place (tests/test_download_hold.py fails on such a version).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tlcore.core import settings


def hold_s() -> float:
    """A download's bytes are held at most this long from the click, for a request that never
    came ($TLS_DOWNLOAD_HOLD_S, 60 s)."""
    return settings.get("TLS_DOWNLOAD_HOLD_S")


FETCHED_S = 2.0  # held this long after its request (another request for it, a retry, finds it)
HOLDER = "tlstudio-download-hold"  # the session id the held files are filed under (no browser has it)

_log = logging.getLogger(__name__)


class _Hold:
    """What one manager holds: file id -> when it was made (clock seconds)."""

    def __init__(self, clock: Callable[[], float]):
        self.clock = clock
        self.lock = threading.Lock()
        self.made: dict[str, float] = {}
        self.fetched: dict[str, float] = {}  # file id -> when its bytes were first asked for


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


def release_on_server() -> int:
    """The janitor's round: the running server's expired downloads let go and collected."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return 0
    return release_expired(Runtime.instance().media_file_mgr)
