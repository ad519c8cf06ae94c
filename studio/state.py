"""Process-wide and per-session state: the job queue, who this browser is, what it runs.

- One `JobQueue` per server process (`tlcore.serve.jobs.shared_queue`, a module global: any
  browser can send Streamlit's "clear cache" message, so nothing the class depends on may
  live in `st.cache_resource`), shared by every browser.
- Each browser session gets an owner id, secret to it; the queue allows one active job
  per owner and shows or stops a job only for its owner.
- The job ids a session started live in `st.session_state` under a slot name
  ("finetune", "race", ...), so leaving a page and coming back shows the run again.
- Settings shared between pages (the strategy chosen on page 2 is used on page 3) live
  in session state too, under their own keys (widgets are views of them, studio.settings);
  `keep_settings()` gives them first values and saves them for the learner.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import math
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from studio.choices import CHOICES, RANGES, Steps, _valid, holds, register_choices, register_ranges  # noqa: F401 -- state.Steps etc. stay importable
from studio.feedback import held_messages, replay_messages, say  # noqa: F401 -- state.say etc. stay importable
from tlcore.models import catalog
from tlcore.serve import caps, estimate, server_queue, store, uploads
from tlcore.serve.jobs import JobQueue, return_freed_memory, shared_queue, shared_queue_made
from tlcore.train import presets, recipe
from tlcore.train.config import RunConfig
from tlcore.train.device import lower_thread_priority

VAL_PER_CLASS = presets.VAL_PER_CLASS
# Widget keys shared across pages, with their first values: the engine's image preset
# (tlcore.train.presets; the default demo finishes in about 15 s on a 2-core CPU, see README).
_PRESET = presets.image()
DEFAULTS: dict[str, object] = {
    **{
        k: getattr(_PRESET, k)
        for k in (
            "backbone",
            "strategy",
            "freeze_depth",
            "lr",
            "head_lr_mult",
            "layer_decay",
            "dataset",
            "per_class",
            "image_size",
            "epochs",
        )
    },
    "data_source": "offline",  # offline | download | upload
    "race_strategies": list(presets.RACE),
}
# Other session values a learner expects back after a reload (not widgets with defaults).
EXTRA_SETTINGS = ("lang", "cell")


def job_queue() -> JobQueue:
    """The server's one queue (a test may put its own under `_queue_override`)."""
    return shared_queue(_start_server_queue)


# Training runs at a lower CPU priority than the pages (nice +10, TLS_WORKER_NICE to change, 0 to
# turn off): a class's clicks and a fresh visitor's page are answered first, training takes the rest.
WORKER_NICE = int(os.environ.get("TLS_WORKER_NICE", "10"))


def _start_server_queue() -> JobQueue:
    """Runs once per server process, when the first page asks for the queue (again only if
    it raised: nothing here may, a store that cannot be used included; see tlcore.serve.store).

    On a CPU the queue's workers and each run's torch threads come from the core count or the
    class file (tlcore.serve.cores): a lone run uses every core and gives them back while pages are
    drawn (`page_running`) or other runs start. Measured on a shared 2-core machine before:
    torch on every core while the web server worked made a step of the default demo take
    4.8 s instead of 0.2 s (its threads wait on each other when one is descheduled).
    """
    server_started()
    _start_warm_up()
    # Trains here, or on a Ray cluster when $TLS_RAY_ADDRESS is set (tlcore.serve.server_queue);
    # every finished run improves the time estimates and is kept on disk (tlcore.serve.store).
    limits = caps.load()  # the class's limits and quotas per learner (stored runs, queue places)
    return server_queue(
        on_run_done=estimate.learn_from,
        store=store.open_default(limits),
        caps=limits,
        stale_after_s=CLOSED_TAB_S,
        nice=WORKER_NICE,
    )


_warm_up_started = False


def _start_warm_up() -> None:
    """Once per process, even should the queue's start be tried again."""
    global _warm_up_started
    with _started:
        if _warm_up_started:
            return
        _warm_up_started = True
    warm_up = threading.Thread(target=lambda: _warm_up(), name="tlstudio-warm-up", daemon=True)
    warm_up.start()

    # torch code still running in a daemon thread when the interpreter exits aborts the
    # process ("terminate called without an active exception"): the warm-up's runs stop at
    # their next step and the exit waits for that (a server stopped while it warms up exits at once).
    def stop_warm_up() -> None:
        _warm_up_stop.set()
        warm_up.join(60)

    atexit.register(stop_warm_up)


_warm_up_stop = threading.Event()


def _warm_up() -> None:
    """Run the default demo once, in the background at low priority, so the class's first Start
    costs what every later one does: its data, the pretrained network, the frozen part's
    features and the forgetting photos' answers are then ready; and the race's runs
    (tlcore.train.presets.warm_ups)."""
    try:
        lower_thread_priority(10)  # pages first, while the server starts
        for config in presets.warm_ups():
            recipe.warm_up(config, should_stop=_warm_up_stop.is_set)
        catalog.group_param_counts(presets.image().backbone)  # pages 2 and 3 draw the groups on a first visit
        default = RunConfig(backbone=str(DEFAULTS["backbone"]), image_size=int(DEFAULTS["image_size"]))
        text = presets.text()
        for config in (default, text):  # a first rate of this machine's own for each task, for the first estimates
            if _warm_up_stop.is_set():
                return
            if not estimate.shared_estimator().knows_device(config) and catalog.weights_cached(config.backbone):
                estimate.calibrate(config)
    except Exception as error:  # noqa: BLE001 -- only a head start; the run reports real problems
        logging.getLogger(__name__).info("warm-up skipped: %s", error)
    try:  # "what it looks at" (tlcore.lab.explain): grad-cam imports OpenCV and matplotlib, seconds on a busy CPU
        import pytorch_grad_cam  # noqa: F401
    except ImportError as error:  # the page says how to install it
        logging.getLogger(__name__).info("grad-cam not warmed up: %s", error)


_started = threading.Lock()
_swept = False
REAP_EVERY_S = float(os.environ.get("TLS_UPLOAD_REAP_S", "30"))  # how often ended sessions' uploads are deleted


def _session_connected(session: str) -> bool:
    """Is this browser session connected to the server now? (True when no server runs: tests.)"""
    from streamlit.runtime import Runtime

    return not Runtime.exists() or Runtime.instance().is_active_session(session)


def _disconnected_ttl() -> float:
    """How long Streamlit keeps a closed tab's session for a reconnect (then it has ended)."""
    try:
        return float(st.get_option("server.disconnectedSessionTTL"))
    except Exception:  # noqa: BLE001 -- an older Streamlit without the option
        return 120.0


upload_folders = uploads.UploadFolders(  # process-level, like the job queue: no client message can drop it
    is_connected=_session_connected, is_busy=lambda owner: job_queue().active_for(owner) is not None, grace_s=_disconnected_ttl()
)


# A closed tab's run is cancelled after this long (a reload re-attaches well within it). The
# page's own polling is not the signal: a browser may slow a background tab's timers to once
# a minute. The websocket is: while any tab of the learner is connected (background tabs
# included), the janitor below keeps their runs alive.
CLOSED_TAB_S = float(os.environ.get("TLS_CLOSED_TAB_S", "45"))
KEEP_ALIVE_EVERY_S = min(REAP_EVERY_S, CLOSED_TAB_S / 4)


def keep_connected_runs_alive(q: JobQueue, store: LearnerStore, is_connected=None) -> int:
    """Heartbeat every active job whose learner has a connected tab; returns how many."""
    is_connected = is_connected or _session_connected
    alive = 0
    for job, who in q.active_jobs():
        if any(is_connected(s) for s in store.sessions_of(who)):
            q.heartbeat(job, who)
            alive += 1
    return alive


def _reap_forever() -> None:
    last_reap = time.monotonic()
    while True:
        time.sleep(KEEP_ALIVE_EVERY_S)
        try:
            if shared_queue_made():
                keep_connected_runs_alive(job_queue(), learners)
            if time.monotonic() - last_reap >= REAP_EVERY_S:
                last_reap = time.monotonic()
                upload_folders.reap()
                return_freed_memory()  # pages' renders leave freed heap behind too (jobs trim their own)
        except Exception as error:  # noqa: BLE001 -- a janitor must not die; the next round retries
            logging.getLogger(__name__).warning("clean-up failed: %s", error)


def server_started() -> None:
    """Once per server process: delete upload folders a crashed or killed server left behind,
    and start deleting those of sessions that end from now on."""
    global _swept
    with _started:
        if not _swept:
            uploads.sweep_stale()
            threading.Thread(target=_reap_forever, name="tlstudio-upload-janitor", daemon=True).start()
            _swept = True


def upload_folder() -> uploads.UploadFolder:
    """This session's private folder for uploads (0700, random name): replaced uploads are
    deleted at once, the folder itself once the session has ended (see UploadFolders)."""
    server_started()
    folder = upload_folders.get(_session_id() or owner(), owner())
    st.session_state["_uploads"] = folder  # for a look from tests; the process-level registry owns it
    return folder


def new_upload_slot(kind: str, digest: str, reuse: Callable[[Path, Path], None] | None = None) -> Path:
    """An empty folder for a new upload of `kind` ("images", "text", "camera") in the session's
    private folder, named by the upload's content. The previous upload of that kind is deleted
    (it was replaced), unless this learner's waiting or running run reads it: a queued run must
    train on the data it was started with. Then it goes when the session ends.

    reuse(new, previous): fills the new folder from the previous one before that is deleted
    (camera shots hard-link the pictures already written: a new shot writes one file)."""
    name = f"{kind}-{digest[:16]}"
    previous = st.session_state.get(f"_upload_slot:{kind}")
    if previous and previous != name and reuse is None:
        drop_upload_slot(kind)
    st.session_state[f"_upload_slot:{kind}"] = name
    folder = upload_folder().slot(name)
    if reuse is not None and previous and previous != name:
        try:
            reuse(folder, upload_folder().path / previous)
        finally:
            if not _read_by_a_run(upload_folder().path / previous):
                upload_folder().drop(previous)
    return folder


def check_upload_room(incoming: int) -> None:
    """Raise tlcore.serve.uploads.UploadError (saying what to do) when `incoming` more bytes would pass
    what this session's uploads or everyone's may keep (tlcore.serve.caps: upload_mb_per_session,
    upload_mb_total); 0: is what the session holds now over it (a zip may understate its size)."""
    limits = caps.load()
    upload_folder()  # this session's folder, known to the registry
    upload_folders.check_room(
        _session_id() or owner(), incoming, session_mb=limits.upload_mb_per_session, total_mb=limits.upload_mb_total
    )


def drop_upload_slot(kind: str) -> None:
    """Delete the last upload of `kind` (refused, or replaced), unless a run of this learner's reads it."""
    name = st.session_state.pop(f"_upload_slot:{kind}", None)
    if name and not _read_by_a_run(upload_folder().path / name):
        upload_folder().drop(name)


def _read_by_a_run(folder: Path) -> bool:
    job = queue().active_for(owner())
    view = queue().get(job, owner(), heartbeat=False) if job else None
    return view is not None and any(c.data_root and Path(c.data_root).is_relative_to(folder) for c in view.configs)


def queue() -> JobQueue:
    return st.session_state.get("_queue_override") or job_queue()


@contextlib.contextmanager
def page_running():
    """Around a page's run (app.py, the live panel's timer): training on a CPU server leaves
    the pages a core while they are drawn (tlcore.serve.cores)."""
    with queue().drawing():
        yield


def kept_model(model_id: str | None, learner: str | None = None):
    """This learner's fine-tuned model on the server's shelf (tlcore.serve.shelf), or None: gone, or
    another learner's (an id from someone else's result finds nothing here)."""
    return queue().shelf.get(learner or owner(), model_id)


LEARNER_COOKIE = "tls_learner"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


class LearnerStore:
    """Each learner's settings and run ids, kept for the life of the server process.

    A learner is a browser, known by a random token in a cookie: a reload (F5) or a second
    tab of the same browser finds the same settings and re-attaches to the same runs, and
    a link the teacher copies from the address bar carries no one's identity.
    """

    def __init__(self, max_learners: int = 5000):
        self._data: OrderedDict[str, dict] = OrderedDict()
        self._sessions: OrderedDict[str, str] = OrderedDict()  # Streamlit session id -> learner
        self._lock = threading.Lock()
        self.max_learners = max_learners

    def load(self, learner: str) -> dict:
        with self._lock:
            return dict(self._data.get(learner, {}))

    def bind_session(self, session: str | None, learner: str) -> None:
        if session:
            with self._lock:
                self._sessions[session] = learner
                self._sessions.move_to_end(session)
                while len(self._sessions) > 4 * self.max_learners:
                    self._sessions.popitem(last=False)

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
    the same browser), else it is new and `remember_learner()` writes the cookie. It is
    kept in session state too; should a "clear cache" message empty that, the cookie,
    fixed for the session's life, gives the same id back.
    """
    if "owner" not in st.session_state:
        token = _cookie(LEARNER_COOKIE)
        if not (token and _TOKEN.fullmatch(token)):
            # No cookie yet (a first visit): Streamlit's session id, random and kept through
            # the "clear cache" message, finds the id this session was given before.
            token = learners.token_of_session(_session_id()) or secrets.token_urlsafe(16)
        st.session_state["owner"] = token
        learners.bind_session(_session_id(), token)
    return st.session_state["owner"]


def _session_id() -> str | None:
    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def _cookie(name: str) -> str | None:
    try:
        value = st.context.cookies.get(name)
    except Exception:  # noqa: BLE001 -- no request context (tests): no cookie
        return None
    return value if isinstance(value, str) else None


def remember_learner() -> None:
    """Once per session, when the browser did not send the learner cookie, set it (a year,
    this site only, never sent to other sites)."""
    me = owner()
    if st.session_state.get("_cookie_set") or _cookie(LEARNER_COOKIE) == me:
        return
    st.session_state["_cookie_set"] = True
    st.html(
        f"<script>document.cookie = '{LEARNER_COOKIE}={me}; path=/; max-age=31536000; SameSite=Strict';</script>",
        unsafe_allow_javascript=True,
    )


def job_id(slot: str) -> str | None:
    """The job this session shows in `slot`. A session that has no entry for it (a server
    restart emptied the LearnerStore, or a learner it had to forget) asks the queue for this
    learner's latest job of that kind, which the run store keeps across restarts."""
    key = f"job:{slot}"
    if key not in st.session_state:
        latest = getattr(queue(), "latest", None)
        st.session_state[key] = latest(owner(), slot) if latest is not None else None
    return st.session_state[key]


def set_job_id(slot: str, value: str | None) -> None:
    st.session_state[f"job:{slot}"] = value
    remember_job(slot, value)


def settle() -> None:
    """Put every choice setting back on one of its options.

    Streamlit's selectbox and multiselect send their value as the displayed label; after a
    language switch the browser can send the old language's label, which matches no option
    and arrives as the label itself (seen: `unknown backbone 'Studio ResNet (...) · works
    offline'`). Such a value is replaced by this learner's last good value, else the default.
    A number its slider cannot hold (RANGES) is moved to the nearest one it can.
    """
    saved = learners.load(owner())
    defaults = _all_defaults
    for key, options_of in CHOICES.items():
        if key not in st.session_state:
            continue
        options = list(options_of())
        if _valid(st.session_state[key], options):
            continue
        if key in saved and _valid(saved[key], options):
            st.session_state[key] = saved[key]
        elif key in defaults and _valid(defaults[key], options):
            st.session_state[key] = defaults[key]
        elif options:
            st.session_state[key] = options[0]
    for key, steps_of in RANGES.items():  # a number its slider cannot hold would break the page on every run
        value = st.session_state.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            steps = steps_of(st.session_state)
            if not steps.holds(value):
                st.session_state[key] = steps.nearest(value if math.isfinite(value) else defaults.get(key, steps.lo))


# The first values of every setting group keep_settings has seen (images, text).
_all_defaults: dict[str, object] = dict(DEFAULTS)


def callback(fn: Callable[..., None]) -> Callable[..., None]:
    """A widget callback that first settles the choices and never shows a raw error box:
    a failure is logged and said in words at the top of the page."""

    @functools.wraps(fn)
    def safe(*args, **kwargs):
        try:
            for key, value in DEFAULTS.items():  # a callback can run before any page did
                if key not in st.session_state:
                    st.session_state[key] = value
            settle()
            return fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 -- a class must never see a traceback
            logging.getLogger(__name__).exception("callback %s failed", fn.__name__)
            st.session_state["_callback_error"] = f"{type(error).__name__}: {error}"
            return None

    return safe


def job_slots() -> dict[str, str | None]:
    return {k: v for k, v in st.session_state.items() if isinstance(k, str) and k.startswith("job:")}


def keep_settings(defaults: dict[str, object] | None = None, *, group: str = "images") -> None:
    """Give every shared setting a value and keep it for this learner across reloads.

    Settings are ordinary session values, never widget keys (each widget is drawn from its
    setting: `studio.settings.bound`), so neither a page that does not draw a widget nor a
    fragment's re-run can drop one. A new session (a reload, another tab) starts from what
    this learner had, then the defaults.
    """
    defaults = DEFAULTS if defaults is None else defaults
    _all_defaults.update(defaults)
    me = owner()
    if not st.session_state.get(f"_restored:{group}"):
        saved = learners.load(me)
        for key, value in saved.items():
            if (key in defaults or key.startswith("job:") or key in EXTRA_SETTINGS) and key not in st.session_state:
                st.session_state[key] = value
        st.session_state[f"_restored:{group}"] = True
    for key, value in defaults.items():
        st.session_state[key] = st.session_state.get(key, value)
    settle()
    learners.save(me, {k: st.session_state[k] for k in (*defaults, *EXTRA_SETTINGS) if k in st.session_state} | job_slots())


def remember_job(slot: str, value: str | None) -> None:
    learners.save(owner(), {f"job:{slot}": value})
