"""Show a background job: queue place, progress, live charts, a Stop button, the results.

`job_panel(slot)` is the one entry point a page needs after submitting a job with
`submit(slot, configs)`. While the job is queued or running, a fragment polls the queue
every `POLL_S` seconds (which also tells the queue someone is still watching); when the
job ends, one full rerun draws the final state without polling. Near the end (every run past
its last epoch, or due to end within a poll by its pace) a poll, once drawn, waits on the job's
end (`FINISH_WAIT_S`, or the rest of its period): the end is drawn the moment it happens, not a
poll later. Any page can use it, for any job of the queue (image or text): everything drawn
comes from the job's HistorySnapshots.

Every read and Stop goes through `_view` and `_request_stop`, which name this session as
the owner: the queue shows a job only to the session that started it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from studio.feedback import announce, held_messages, replay_messages, say
from studio.feedback import error as show_error
from studio.i18n import duration, explain, explain_error, run_labels, t
from studio.learner import owner
from studio.results import draw_race, draw_results, draw_run_charts
from studio.server import class_room, job_queue, page_running
from studio.state import callback, job_id, set_job_id
from studio.time_notes import job_time_left
from tlcore.core.events import Cancelled, Done, Failed, HistorySnapshot
from tlcore.core.messages import LearnerError
from tlcore.serve.jobs import AddressLimitError, JobLimitError, JobView
from tlcore.train.config import RunConfig

# Seconds between redraws of a running job: the curve moves and the end shows within half a
# second (the default demo trains for about 3 s). Only the runs going poll this fast (one or
# two at a time on a CPU server); a Stop click reruns at once whatever the pace.
POLL_S = 1.0


# Past the last epoch a poll waits this long on the job's end before it draws again: the finish
# (forgetting, confusion matrix) takes 0.1-0.3 s on a class server, 1-3.5 s on a loaded 2-core box,
# where a redraw each second took 0.3-0.5 s in which the end went unseen. A click meanwhile (Stop
# has nothing left to stop) is answered when the wait ends.
FINISH_WAIT_S = 3 * POLL_S


# While waiting, only the queue position can change: a class of 30 waiting would otherwise
# cost the server 30 script runs a second for nothing (measured: python -m tools.loadtest).
QUEUED_POLL_S = 2.0


# Far back in the line the position changes once per job ahead (a minute or more in class):
# a slower poll there, the usual pace once next-but-one (a class of 30 pressing Start together:
# about 15 script runs a second -> 7).
FAR_POLL_S, NEAR = 5.0, 2


def poll_every(view: JobView) -> float:
    """Seconds between redraws of the live panel for a job in this state and place in line."""
    if view.state == "running":
        return POLL_S
    return QUEUED_POLL_S if view.position <= NEAR else FAR_POLL_S


# The learner's own run, whose model the server keeps for Try it and the download (tlcore.serve.kept_models):
# the Fine-tune page's, the Text page's, and page 1's two-run experiment (its last run, fine-tuned
# from the pretrained weights, fills that page's Try it). Races, sweeps and the matrix keep none.
KEEPS_MODEL = ("finetune", "text", "experiment")


def submit(slot: str, configs: RunConfig | list[RunConfig], labels: list[str] | None = None) -> bool:
    """Send runs to the queue for this session; if the queue refuses, say why. True when queued."""
    from studio import teacher

    if paused_for_me():  # the teacher paused the class: nothing new starts (a page drawn before may still offer Start)
        say("warning", t("class.paused_start"))
        return False
    try:
        new_id = job_queue().submit(
            configs,
            owner(),
            labels,
            tag=slot,
            priority=teacher.priority(),
            address=teacher.network_address(),
            keep_model=slot in KEEPS_MODEL,
        )
    except AddressLimitError:  # the class allows one run per client address (class.toml)
        say("warning", t("job.one_per_address"))
        return False
    except JobLimitError:
        say("warning", t("job.one_at_a_time"))
        return False
    except LearnerError as error:  # over the class's limits: which, and what to choose
        say("error", explain_error(error))
        return False
    set_job_id(slot, new_id)
    return True


def start_button(
    slot: str, label: str, make: Callable[[], RunConfig | list[RunConfig] | None], labels: list[str] | None = None, **button
) -> None:
    """A Start button for `slot`: `make()` gives the run(s), `labels` name a race's runs.

    The job is queued in the button's callback, before the script runs, so the one script
    run a click causes already draws the live panel: a class pressing Start together costs
    the server one page run each, not two (submit, then a rerun to redraw). What the settings
    or the queue refuse is said under the button, not at the top of the page."""

    @callback
    def start() -> None:
        with held_messages(f"start:{slot}"):
            configs = make()
            if configs and (isinstance(configs, RunConfig) or all(configs)):
                submit(slot, configs, labels)

    paused = paused_for_me()
    st.button(label, on_click=start, **(button | ({"disabled": True} if paused else {})))
    if paused:
        st.caption(t("class.paused_start"))
    replay_messages(f"start:{slot}")


def paused_for_me() -> bool:
    """Has the teacher paused the class this learner joined (the teacher's own Start stays on)?"""
    from studio import teacher

    room = class_room()
    return room.under_pause(owner()) and not teacher.is_teacher()


# The page follows its live panel: on every full run of the script while a job goes (Start,
# any click, a page change), the panel's container (`st.container(key="live-<slot>")`, which
# Streamlit gives the class `st-key-live-<slot>`) is scrolled to the top of the view, under
# Streamlit's header, on any page and wherever the page draws it. It is tried again for a
# few seconds, as the rest of the page is redrawn around it, until the learner (or anything
# else: a test's click scrolls too) scrolls, clicks or types.
# A running job's panel reserves a view's height, so that even at the very end of a page it
# can come to the top, and the charts that arrive later grow into the space in view.
FOLLOW = """<style>.st-key-TARGET { min-height: RESERVE; }</style>
<script>
(() => {  // run RUN of this session's script: a new text, so the browser runs it again
  let left = null;  // [scrolling element, its scrollTop] as this script last left them
  const scroller = (el) => {
    for (let p = el.parentElement; p; p = p.parentElement) {
      const overflow = getComputedStyle(p).overflowY;
      if ((overflow === 'auto' || overflow === 'scroll') && p.scrollHeight > p.clientHeight) return p;
    }
    return document.scrollingElement;
  };
  const show = () => {
    const el = document.querySelector('.st-key-TARGET');
    if (!el || !el.getClientRects().length) return;  // not drawn yet, or in a hidden tab
    if (left && Math.abs(left[0].scrollTop - left[1]) > 2) return stop();  // someone else scrolled since
    const header = document.querySelector('[data-testid="stHeader"]');
    el.style.scrollMarginTop = ((header ? header.offsetHeight : 0) + 8) + 'px';
    el.scrollIntoView({block: 'start'});
    const box = scroller(el);
    left = [box, box.scrollTop];
  };
  const timers = [0, 150, 400, 800, 1500, 2500].map(ms => setTimeout(show, ms));
  const STOP_ON = ['wheel', 'touchmove', 'keydown', 'mousedown'];
  function stop() { timers.forEach(clearTimeout); for (const e of STOP_ON) window.removeEventListener(e, stop, true); }
  for (const e of STOP_ON) window.addEventListener(e, stop, {capture: true, once: true});
})();
</script>"""


def follow(target: str, *, reserve: bool = False) -> None:
    """Bring the element with the Streamlit key `target` into view after this script run.

    Each script run draws a fresh copy (a counter in the script's text: st.html runs a
    script when its sanitised HTML changes, and an HTML comment is sanitised away), so the
    browser runs it again on every full run. The polling fragment does not call it: the
    page does not pull a learner back while they read, only when they click."""
    runs = st.session_state["_follow_runs"] = st.session_state.get("_follow_runs", 0) + 1
    html = FOLLOW.replace("TARGET", target).replace("RESERVE", "calc(100vh - 7rem)" if reserve else "0")
    st.html(html.replace("RUN", str(runs)), unsafe_allow_javascript=True)


def _announce_live(view: JobView, snap: HistorySnapshot) -> None:
    """One sentence when a run starts (as soon as the page sees it running: a text run prepares its
    data for seconds before its first event) and after each epoch (not every step)."""
    label = run_labels(view)[view.current]
    evals = snap.evals
    text = t("live.started", label=label, run=view.current + 1, runs=len(view.runs))
    said_start = f"_said_start:{view.id}:{view.current}"  # the start is said even when a poll missed it
    if evals and snap.started is not None:
        epoch = t("live.epoch", label=label, epoch=evals[-1].epoch, epochs=snap.started.epochs, acc=f"{evals[-1].val_acc:.0%}")
        text = epoch if st.session_state.get(said_start) else f"{text} {epoch}"
    st.session_state[said_start] = True
    announce(text, f"{view.id}:{view.current}:{len(evals)}")


def is_running(slot: str) -> bool:
    """True while the slot's job is queued or running (its Start button is hidden then)."""
    view = _view(job_id(slot), heartbeat=False)
    return view is not None and view.active


def active_elsewhere(slot: str) -> bool:
    """True when this session has a job going that another page started."""
    active = job_queue().active_for(owner())
    return active is not None and active != job_id(slot)


def live_panel(*slots: str) -> str | None:
    """Draw the live panel of the first of `slots` whose job is queued or running, and return
    that slot (None when none is going; then nothing is drawn).

    A page calls this under its title, so while a run goes its panel comes first, in view at
    1280x720 above any tabs, and draws that slot's finished job (`job_panel`) in its usual
    place otherwise."""
    for slot in slots:
        if is_running(slot):
            view = job_panel(slot, only_live=True)
            if view is not None and view.active:
                return slot
    return None


def job_panel(
    slot: str, *, results: Callable[[JobView], None] | None = None, live_charts: bool = True, only_live: bool = False
) -> JobView | None:
    """Draw the slot's job; `results(view)` draws the finished job (default: run results).
    With `only_live`, a finished job is not drawn (the page draws it elsewhere)."""
    current = job_id(slot)
    if current is None:
        return None
    view = _view(current)
    if view is None:  # the server restarted or forgot it
        set_job_id(slot, None)
        return None
    if only_live and not view.active:
        return view
    if view.active:
        with st.container(key=f"live-{slot}"):
            # Queued, the panel is one line; running, it fills the view (the change of state
            # reruns the page once: see poll).
            follow(f"live-{slot}", reserve=view.state == "running")
            # The Stop button lives outside the polling fragment: a button redrawn every
            # second can swallow a click that lands mid-redraw.
            _stop_control(slot, view.id)

            @st.fragment(run_every=poll_every(view))
            def poll() -> None:
                began = time.monotonic()
                latest = _view(current)
                if latest is not None and latest.state == "running" and not any(r.steps for r in latest.runs):
                    latest = _first_step(current, 0.8 * POLL_S) or latest  # the first curve when it exists, not a poll later
                if latest is None or not latest.active:
                    _show_end(slot)
                if poll_every(latest) != poll_every(view):
                    st.rerun()  # near the front, or running: once, to poll at the new pace
                with page_running():
                    _draw_live(slot, latest, live_charts)
                if latest.state == "running" and (_finishing(latest) or _ends_within(latest, POLL_S)):
                    # The end is near: this poll, once drawn, waits on it (drawing nothing) and the result
                    # is drawn the moment the job ends, not a poll later. Past the last epoch nothing
                    # new comes before the end, so the wait is not cut into polls that redraw the same.
                    wait = FINISH_WAIT_S if _finishing(latest) else POLL_S - (time.monotonic() - began)
                    if job_queue().wait_until_ended(current, owner(), wait):
                        _show_end(slot)

            poll()
    else:
        with st.container(key=f"end-{slot}"):
            if st.session_state.pop(f"scroll_end:{slot}", False):
                follow(f"end-{slot}")  # once, when the run ends: its results replace the live panel
            _draw_end(view)
            (results or draw_results)(view)
    return view


def _first_step(job: str, seconds: float) -> JobView | None:
    """A job running with no step yet: its view once the first step is in (or `seconds` on).
    Waits in this session's script thread, drawing nothing (a second's poll left the default
    demo's first point up to a second on the server)."""
    deadline = time.monotonic() + seconds
    while True:
        view = _view(job, heartbeat=False)
        if view is None or not view.active or any(r.steps for r in view.runs) or time.monotonic() >= deadline:
            return view
        time.sleep(0.05)


def _show_end(slot: str) -> None:
    """The job has ended: one full run draws its final state outside the polling fragment."""
    st.session_state[f"scroll_end:{slot}"] = True  # bring the results into view
    st.rerun()


def _finishing(view: JobView) -> bool:
    """Has every run of the job trained its last epoch? What is left (forgetting, the confusion
    matrix, the store's write) ends the job in a second or two whatever the estimates say."""
    return all(
        snap.final is not None or (snap.started is not None and len(snap.evals) >= snap.started.epochs) for snap in view.runs
    )


def _ends_within(view: JobView, seconds: float) -> bool:
    """Will the job (its last run going) end within `seconds`, by its measured pace?"""
    if view.current < len(view.runs) - 1:
        return False
    left = job_time_left(view)
    return left is not None and left <= seconds


def _view(job: str | None, *, heartbeat: bool = True) -> JobView | None:
    """This session's job (None when it is gone, or, whatever the id, not this session's)."""
    return job_queue().get(job, owner(), heartbeat=heartbeat) if job else None


def _request_stop(job: str) -> None:
    if job_queue().cancel(job, owner()):
        st.session_state[f"stopping:{job}"] = True


def _stop_control(slot: str, job: str) -> None:
    if st.session_state.get(f"stopping:{job}"):
        # The trainer stops at its next step; say so at once instead of showing a dead button.
        st.info(t("job.stopping"), icon=":material/hourglass_top:")
    else:
        st.button(
            t("job.stop"),
            key=f"stop:{slot}",
            on_click=_request_stop,
            args=(job,),
            help=t("help.stop"),
            type="secondary",
            icon=":material/stop_circle:",
        )


def _draw_live(slot: str, view: JobView, live_charts: bool) -> None:
    if view.state == "queued":
        st.info(t("job.waiting", position=view.position))
        announce(t("job.waiting", position=view.position), f"{view.id}:queued:{view.position}")
        return
    snap = view.runs[view.current]
    _progress(view, snap)
    _announce_live(view, snap)
    where_line(view)
    if not live_charts:
        return
    if len(view.runs) > 1:
        draw_race(view, key=f"live:{slot}", live=True)
    else:
        draw_run_charts(snap, key=f"live:{slot}", live=True)


def _progress(view: JobView, snap: HistorySnapshot) -> None:
    """Overall progress of the job (several runs count equally) with the time left: this
    run's from its own measured epoch (or step) times, later runs' from the estimator,
    scaled by how this job's finished runs compared with their estimates."""
    n = len(view.runs)
    done = (view.current + snap.progress) / n
    label = run_labels(view)[view.current]
    if snap.started is None:
        text = t("job.preparing", run=view.current + 1, runs=n, label=label)
    else:
        left = job_time_left(view)
        text = t(
            "job.progress",
            run=view.current + 1,
            runs=n,
            label=label,
            percent=round(100 * done),
            left=duration(left) if left is not None else "…",
        )
    st.progress(min(done, 1.0), text=text)


def where_line(view: JobView) -> None:
    """A run meant for the class's Ray cluster that trained on this server instead: one line."""
    if view.where == "local":
        st.caption(":material/cloud_off: " + t("job.ray_local"))


def _draw_end(view: JobView) -> None:
    where_line(view)
    final = [s.final for s in view.runs]
    failed = next((f for f in final if isinstance(f, Failed)), None)
    said = f"{view.id}:end"
    if failed is not None:
        show_error(t("job.failed", message=explain(failed.key, failed.values, failed.message)), said)
    elif view.state == "cancelled" or any(isinstance(f, Cancelled) for f in final):
        if view.note == "time_limit":
            from studio import teacher

            text = t("job.note.time_limit", limit=duration(teacher.limits().max_seconds))
        elif view.note:
            text = t(f"job.note.{view.note}")
        else:
            text = t("job.cancelled")
        st.warning(text)
        announce(text, said)
    elif all(isinstance(f, Done) for f in final):
        st.success(t("job.done", seconds=f"{view.elapsed_s:.1f}"))
        accs = [s.result.val_acc for s in view.runs if s.result and s.result.val_acc is not None]
        done = t("job.done", seconds=f"{view.elapsed_s:.1f}")
        announce(done + (" " + t("live.done_acc", acc=f"{max(accs):.0%}") if accs else ""), said)
