"""What the class server starts once per process: the job queue, its warm-up, the janitor.

- One `JobQueue` per server process (`tlcore.serve.jobs.shared_queue`, a module global: any
  browser can send Streamlit's "clear cache" message, so nothing the class depends on may
  live in `st.cache_resource`), shared by every browser: `job_queue()`; and one class,
  `class_room()` (tlcore.serve.classroom.shared).
- The warm-up runs the default demo once in the background, so the class's first Start costs
  what every later one does.
- The janitor keeps connected learners' runs alive, deletes ended sessions' uploads and lets
  fetched downloads' bytes go (studio.download_hold).
Not for: who a browser is (studio.learner) or a session's upload slots (studio.upload_slots).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time

import streamlit as st

from studio import asgi, download_hold, learner
from studio.learner import LearnerStore, owner
from tlcore.core import settings
from tlcore.core.events import HistorySnapshot
from tlcore.explain import feature_space
from tlcore.models import catalog
from tlcore.serve import class_limits, classroom, cores, jobs, server_queue, store, warm_up
from tlcore.serve.jobs import JobQueue
from tlcore.serve.machine import freeze_what_is_loaded, return_freed_memory
from tlcore.serve.upload_folders import UploadFolders, sweep_stale
from tlcore.train import presets, time_estimate
from tlcore.train.config import RunConfig
from tlcore.train.device import lower_thread_priority

# Training runs at a lower CPU priority than the pages (nice +10, TLS_WORKER_NICE to change, 0 to
# turn off): a class's clicks and a fresh visitor's page are answered first, training takes the rest.
# A run that starts while other programs keep a core busy trains as their equal instead
# (tlcore.serve.cores.pages_first): a nice weighs against them too, not only against the pages.
# A closed tab's run is cancelled after this long (a reload re-attaches well within it). The
# page's own polling is not the signal: a browser may slow a background tab's timers to once
# a minute. The websocket is: while any tab of the learner is connected (background tabs
# included), the janitor below keeps their runs alive.
# ($TLS_CLOSED_TAB_S, 45 s; ended sessions' uploads are deleted every $TLS_UPLOAD_REAP_S, 30 s)


def job_queue() -> JobQueue:
    """The server's one queue (tlcore.serve.jobs.shared_queue), started by the first page that asks for it."""
    return jobs.shared_queue(_start_server_queue)


# Some of the class's timers run three times slower while other programs keep a whole core busy: a
# learner's pulse while the class trains (studio.class_panels.pace) and the teacher's roster and list of
# runs; what the class watches (the projector, the teacher's projected view) keeps its pace. Beside two
# busy loops a cell's one torch thread shares the cores with the loops and the class's page scripts
# (30 pulses: 10 script runs a second, each holding the interpreter while the loops hold the cores).
# A class of 30 cells beside two loops, 2-core box: 284-288 s with every timer at its pace, 247-250 s
# so (docs/class-load.md, session 41). Read when a page is drawn: a timer keeps its pace until its
# page's next run. ($TLS_BUSY_STRETCH, 3)


def class_timer_s(every_s: float) -> float:
    """A class timer's period for a page drawn now: `every_s`, or $TLS_BUSY_STRETCH times it while other
    programs keep a core busy (tlcore.serve.cores.BusyElsewhere, the queue's reading)."""
    if job_queue().elsewhere.cores() < 1.0:
        return every_s
    return every_s * max(1.0, settings.get("TLS_BUSY_STRETCH"))


def class_room() -> classroom.Classroom:
    """The server's one class (tlcore.serve.classroom.shared)."""
    return classroom.shared(size=class_limits.load().class_size)


def read_job(job: str, learner: str) -> HistorySnapshot | str | None:
    """A class cell's run as the class needs it: the final snapshot, how it ended, or None while it goes."""
    view = job_queue().get(job, learner, heartbeat=False)
    if view is None:
        return "gone"
    if view.active:
        return None
    return view.runs[-1] if view.state == "done" and view.runs else view.state


def hold_class_jobs(q: JobQueue, room: classroom.Classroom) -> None:
    """The teacher's "pause all": the class members' waiting jobs are held (the teacher's, and
    those of anyone not in the class, still run); resumed, they go in their order."""
    q.hold((lambda job: job.priority == 0 and room.under_pause(job.owner)) if room.paused else None)


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
    warm = settings.get("TLS_WARM_UP")
    if warm:
        _start_warm_up()
    # Trains here, or on a Ray cluster when $TLS_RAY_ADDRESS is set (tlcore.serve.server_queue);
    # every finished run improves the time estimates and is kept on disk (tlcore.serve.store).
    limits = class_limits.load()  # the class's limits and quotas per learner (stored runs, queue places)
    # training and pages share this interpreter: a waiting thread gets it within 1 ms, not 5 (tlcore.serve.cores)
    cores.hand_over_interpreter(settings.get("TLS_SWITCH_INTERVAL_MS"))
    made = server_queue(
        on_run_done=time_estimate.learn_from,
        store=store.open_default(limits),
        limits=class_limits.load,  # read when used: a teacher's edit holds from the next Start
        stale_after_s=settings.get("TLS_CLOSED_TAB_S"),
        nice=settings.get("TLS_WORKER_NICE"),
        warm=warm,  # a queue that trains in worker processes warms its first one up (tlcore.serve.process_jobs)
    )
    hold_class_jobs(made, classroom.shared(size=limits.class_size))  # a class paused before a restart stays paused
    return made


@contextlib.contextmanager
def page_running():
    """Around a page's run (app.py, the live panel's timer): training on a CPU server leaves
    the pages a core while they are drawn (tlcore.serve.cores)."""
    with job_queue().drawing():
        yield


def kept_model(model_id: str | None, learner_id: str | None = None):
    """This learner's fine-tuned model on the server's shelf (tlcore.serve.kept_models), or None: gone, or
    another learner's (an id from someone else's result finds nothing here)."""
    return job_queue().shelf.get(learner_id or owner(), model_id)


# --- the warm-up ---------------------------------------------------------------------

_started = threading.Lock()
_warm_up_started = False
_warm_up_stop = threading.Event()
# The warm-up starts with the first page (the queue's start) and lets it be drawn first: its data
# preparation is Python that shares the interpreter with the page's script (py-spy, tools.firstpage).
FIRST_PAGE_S = 3.0
# Measured (tools.firstpage, 3 trials each): a fresh server's first page drawn 1.89 s after it answered
# with no background work, 2.40-2.55 s with the first feature views computed from the start.
FIRST_VIEWS_AFTER_S = 5.0


def _start_warm_up() -> None:
    """Once per process, even should the queue's start be tried again."""
    global _warm_up_started
    with _started:
        if _warm_up_started:
            return
        _warm_up_started = True
    thread = threading.Thread(target=lambda: _warm_up(), name="tlstudio-warm-up", daemon=True)
    thread.start()

    # torch code still running in a daemon thread when the interpreter exits aborts the
    # process ("terminate called without an active exception"): the warm-up's runs stop at
    # their next step and the exit waits for that (a server stopped while it warms up exits at once).
    def stop_warm_up() -> None:
        _warm_up_stop.set()
        thread.join(60)

    atexit.register(stop_warm_up)


def start_first_views(after_s: float | None = None) -> None:
    """Pages 1 and 3's first feature views (`feature_space.first_views`), on the feature worker, from
    the server's start (app.py), before any page asks: the first learner's view is then a lookup,
    where it cost the bodies' forward passes (tools.firstpage --feature-view). They begin
    `FIRST_VIEWS_AFTER_S` after the server's start, so a page opened at once is drawn first; the
    worker runs at nice +10 and stops at the server's exit within a layer. Off with TLS_WARM_UP=0."""
    if not settings.get("TLS_WARM_UP"):
        return

    def start() -> None:
        spaces = feature_space.shared_spaces()
        with contextlib.suppress(feature_space.Busy, RuntimeError):  # the server stops meanwhile
            for view in feature_space.first_views():
                spaces.start(view)

    after_s = FIRST_VIEWS_AFTER_S if after_s is None else after_s
    if after_s <= 0:
        start()
        return
    timer = threading.Timer(after_s, start)
    timer.daemon = True  # nothing to wait for at exit
    timer.start()


def _warm_up() -> None:
    """Run the default demo once, in the background at low priority, so the class's first Start
    costs what every later one does: its data, the pretrained network, the frozen part's
    features and the forgetting photos' answers are then ready; then the race's runs and page 5's
    first text run (tlcore.serve.warm_up). Off with TLS_WARM_UP=0 (tlcore.core.settings). It starts
    with the first page (the queue's start); the first feature views start earlier, with the
    server (`start_first_views`)."""
    if _warm_up_stop.wait(FIRST_PAGE_S):  # the server stops first
        return
    try:
        lower_thread_priority(10)  # pages first, while the server starts
        queue = job_queue()
        if not getattr(queue, "warms_itself", False):  # else its training process does
            # on a run's torch threads: fewer while pages are drawn or other programs are busy
            warm_up.run_all(should_stop=lambda: queue.pace_this_thread() or _warm_up_stop.is_set())
        image = presets.image()
        catalog.group_param_counts(image.backbone)  # pages 2 and 3 draw the groups on a first visit
        feature_space.load_libraries()  # the first feature view's scikit-learn, loaded once here
        default = RunConfig(backbone=image.backbone, image_size=image.image_size)
        for config in (default, presets.text()):  # a first rate of this machine's own for each task
            if _warm_up_stop.is_set():
                return
            if not time_estimate.shared_estimator().knows_device(config) and catalog.weights_cached(config.backbone):
                time_estimate.calibrate(config)
    except Exception as error:  # noqa: BLE001 -- only a head start; the run reports real problems
        logging.getLogger(__name__).info("warm-up skipped: %s", error)
    # The C heap keeps what a CPU server's training frees, for its next run (tlcore.serve.machine):
    # the warm-up's runs left about 700 MB of it resident, at rest, before the class came.
    return_freed_memory()
    freeze_what_is_loaded()  # what is loaded by now stays out of the class's garbage collections


# --- the janitor: connected learners' runs kept alive, ended sessions' uploads deleted ---------


def session_connected(session: str) -> bool:
    """Is this browser session connected to the server now? (True when no server runs: tests.)"""
    from streamlit.runtime import Runtime

    return not Runtime.exists() or Runtime.instance().is_active_session(session)


def _disconnected_ttl() -> float:
    """How long Streamlit keeps a closed tab's session for a reconnect (then it has ended)."""
    try:
        return float(st.get_option("server.disconnectedSessionTTL"))
    except Exception:  # noqa: BLE001 -- an older Streamlit without the option
        return 120.0


learner.learners.busy = lambda who: job_queue().active_for(who) is not None  # their tabs' sessions are kept
upload_folders = UploadFolders(  # process-level, like the job queue: no client message can drop it
    is_connected=session_connected, is_busy=lambda who: job_queue().active_for(who) is not None, grace_s=_disconnected_ttl()
)


def keep_connected_runs_alive(q: JobQueue, store: LearnerStore, is_connected=None) -> int:
    """Heartbeat every active job whose learner has a connected tab; returns how many."""
    is_connected = is_connected or session_connected
    alive = 0
    for job, who in q.active_jobs():
        if any(is_connected(s) for s in store.sessions_of(who)):
            q.heartbeat(job, who)
            alive += 1
    return alive


def _stream_downloads() -> bool:
    """Model downloads streamed from disk (studio.download_hold); False before the server's first
    request names its web app (studio.asgi: ask again next round), else True (tried once)."""
    if asgi.serving_app() is None:
        return False
    try:
        download_hold.stream_on_server()
    except Exception as error:  # noqa: BLE001 -- downloads then go through memory, as Streamlit's own do
        logging.getLogger(__name__).warning("downloads not streamed: %s", error)
    return True


def _reap_forever() -> None:
    streaming = _stream_downloads()
    last_reap = time.monotonic()
    while True:
        time.sleep(min(settings.get("TLS_UPLOAD_REAP_S"), settings.get("TLS_CLOSED_TAB_S") / 4))
        streaming = streaming or _stream_downloads()
        try:
            if jobs.shared_queue_made():
                keep_connected_runs_alive(job_queue(), learner.learners)
            download_hold.release_on_server()  # downloads fetched: their bytes go (none run a page)
            if time.monotonic() - last_reap >= settings.get("TLS_UPLOAD_REAP_S"):
                last_reap = time.monotonic()
                upload_folders.reap()
                return_freed_memory()  # pages' renders leave freed heap behind too (jobs trim their own)
        except Exception as error:  # noqa: BLE001 -- a janitor must not die; the next round retries
            logging.getLogger(__name__).warning("clean-up failed: %s", error)


_swept = False


def server_started() -> None:
    """Once per server process: delete upload folders a crashed or killed server left behind,
    and start deleting those of sessions that end from now on."""
    global _swept
    with _started:
        if not _swept:
            download_hold.install_on_server()
            sweep_stale()
            threading.Thread(target=_reap_forever, name="tlstudio-upload-janitor", daemon=True).start()
            _swept = True
