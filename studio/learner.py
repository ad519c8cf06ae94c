"""Who this browser is: a learner, known by a random cookie, with settings and run ids kept
for the life of the server process.

- Each browser gets an owner id, secret to it (`owner()`); the queue allows one active job per
  owner and shows or stops a job only for its owner.
- A reload (F5) or a second tab of the same browser sends the cookie and finds the same
  learner; a link the teacher copies from the address bar carries no one's identity.
Not for: what the learner chose (studio.state) or the server's queue (studio.server).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

LEARNER_COOKIE = "tls_learner"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")


class LearnerStore:
    """Each learner's settings and run ids, kept for the life of the server process.

    A learner is a browser, known by a random token in a cookie: a reload (F5) or a second
    tab of the same browser finds the same settings and re-attaches to the same runs, and
    a link the teacher copies from the address bar carries no one's identity.
    """

    def __init__(self, max_learners: int = 5000, busy=lambda _learner: False):
        self._data: OrderedDict[str, dict] = OrderedDict()
        self._sessions: OrderedDict[str, str] = OrderedDict()  # Streamlit session id -> learner
        self._lock = threading.Lock()
        self.max_learners = max_learners
        # busy(learner): has a run waiting or going (studio.server sets it). Such a learner's
        # sessions are never the ones dropped when too many were seen: a background tab draws
        # nothing, so its session is the oldest, and the janitor keeps a run alive only while it
        # finds a connected session of the learner (20,000 new sessions once ended a background
        # tab's run as "tab closed").
        self.busy = busy

    def load(self, learner: str) -> dict:
        with self._lock:
            return dict(self._data.get(learner, {}))

    def bind_session(self, session: str | None, learner: str) -> None:
        if session:
            with self._lock:
                self._sessions[session] = learner
                self._sessions.move_to_end(session)
                over = len(self._sessions) - 4 * self.max_learners
                if over > 0:
                    spared: dict[str, bool] = {}
                    for old in list(self._sessions):
                        if over <= 0:
                            break
                        who = self._sessions[old]
                        if who not in spared:
                            spared[who] = bool(self.busy(who))
                        if not spared[who]:
                            del self._sessions[old]
                            over -= 1

    def token_of_session(self, session: str | None) -> str | None:
        with self._lock:
            return self._sessions.get(session) if session else None

    def sessions_of(self, learner: str) -> list[str]:
        with self._lock:
            return [s for s, who in self._sessions.items() if who == learner]

    def save(self, learner: str, values: dict) -> None:
        with self._lock:
            self._data.setdefault(learner, {}).update(values)
            self._data.move_to_end(learner)
            while len(self._data) > self.max_learners:
                self._data.popitem(last=False)


learners = LearnerStore()  # process-level, like the job queue: no client message can drop it


def owner() -> str:
    """A secret id for this learner (the queue's unit of 'one job each').

    It comes from the learner cookie when the browser sent one (a reload or another tab of
    the same browser), else it is new. The server sets the cookie on its HTTP answers, HttpOnly
    (studio.asgi), so a page opened in a browser always sends one. It is kept in session state too; should a "clear cache" message empty that, the cookie,
    fixed for the session's life, gives the same id back.
    """
    if "owner" not in st.session_state:
        token = _cookie(LEARNER_COOKIE)
        if not (token and TOKEN_PATTERN.fullmatch(token)):
            # No cookie yet (a first visit): Streamlit's session id, random and kept through
            # the "clear cache" message, finds the id this session was given before.
            token = learners.token_of_session(session_id()) or secrets.token_urlsafe(16)
        st.session_state["owner"] = token
        learners.bind_session(session_id(), token)
    return st.session_state["owner"]


def session_id() -> str | None:
    """This browser tab's Streamlit session id (None outside a script run: tests, threads)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def network_address() -> str | None:
    """The address this browser connects from: Streamlit's view of the websocket's peer, or
    None where it is unknown (a connection from this machine itself, which Streamlit reports as
    None; no request context; AppTest's stand-in object)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 -- no request context
        address = None
    return address if isinstance(address, str) and address else None


def _cookie(name: str) -> str | None:
    try:
        value = st.context.cookies.get(name)
    except Exception:  # noqa: BLE001 -- no request context (tests): no cookie
        return None
    return value if isinstance(value, str) else None
