"""Show a background job: queue place, progress, live charts, a Stop button, the results.

`job_panel(slot)` is the one entry point a page needs after submitting a job with
`submit(slot, configs)`. While the job is queued or running, a fragment polls the queue
every `POLL_S` seconds (which also tells the queue someone is still watching); when the
job ends, one full rerun draws the final state without polling. Any page can use it,
for any job of the queue (image or text): everything drawn comes from the job's
HistorySnapshots.

Every read and Stop goes through `_view` and `_request_stop`, which name this session as
the owner: the queue shows a job only to the session that started it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import streamlit as st

from studio import plots, takeaway
from studio.i18n import current_lang, duration, explain, explain_error, run_labels, t
from studio.state import callback, held_messages, job_id, owner, page_running, queue, replay_messages, say, set_job_id
from tlcore.core import metrics
from tlcore.core.events import Cancelled, Done, Failed, HistorySnapshot
from tlcore.core.messages import LearnerError
from tlcore.serve import estimate
from tlcore.serve.jobs import AddressLimitError, JobLimitError, JobView
from tlcore.train.config import RunConfig

# Seconds between redraws of a running job: the curve moves and the end shows within half a
# second (the default demo trains for about 3 s). Only the runs going poll this fast (one or
# two at a time on a CPU server); a Stop click reruns at once whatever the pace.
POLL_S = 1.0
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


# The learner's own run, whose model the server keeps for Try it and the download (tlcore.serve.shelf):
# the Fine-tune page's, the Text page's, and page 1's two-run experiment (its last run, fine-tuned
# from the pretrained weights, fills that page's Try it). Races, sweeps and the matrix keep none.
KEEPS_MODEL = ("finetune", "text", "experiment")


def submit(slot: str, configs: RunConfig | list[RunConfig], labels: list[str] | None = None) -> bool:
    """Send runs to the queue for this session; if the queue refuses, say why. True when queued."""
    from studio import teacher

    try:
        new_id = queue().submit(
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

    st.button(label, on_click=start, **button)
    replay_messages(f"start:{slot}")


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


def is_running(slot: str) -> bool:
    """True while the slot's job is queued or running (its Start button is hidden then)."""
    view = _view(job_id(slot), heartbeat=False)
    return view is not None and view.active


def active_elsewhere(slot: str) -> bool:
    """True when this session has a job going that another page started."""
    active = queue().active_for(owner())
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
                latest = _view(current)
                if latest is not None and latest.state == "running" and not any(r.steps for r in latest.runs):
                    latest = _first_step(current, 0.8 * POLL_S) or latest  # the first curve when it exists, not a poll later
                if latest is not None and latest.state == "running" and _ends_within(latest, POLL_S):
                    queue().wait_until_ended(current, owner(), POLL_S)  # the result at once, not a poll later
                    latest = _view(current)
                if latest is None or not latest.active:
                    st.session_state[f"scroll_end:{slot}"] = True  # bring the results into view
                    st.rerun()  # once, to draw the final state outside the polling fragment
                if poll_every(latest) != poll_every(view):
                    st.rerun()  # near the front, or running: once, to poll at the new pace
                with page_running():
                    _draw_live(slot, latest, live_charts)

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


def _ends_within(view: JobView, seconds: float) -> bool:
    """Will the job (its last run going) end within `seconds`, by its measured pace?"""
    if view.current < len(view.runs) - 1:
        return False
    left = job_time_left(view)
    return left is not None and left <= seconds


def _view(job: str | None, *, heartbeat: bool = True) -> JobView | None:
    """This session's job (None when it is gone, or, whatever the id, not this session's)."""
    return queue().get(job, owner(), heartbeat=heartbeat) if job else None


def _request_stop(job: str) -> None:
    if queue().cancel(job, owner()):
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
        return
    snap = view.runs[view.current]
    _progress(view, snap)
    where_line(view)
    if not live_charts:
        return
    if len(view.runs) > 1:
        draw_race(view, key=f"live:{slot}")
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


def job_time_left(view: JobView) -> float | None:
    now = time.monotonic()
    current = view.runs[view.current]
    estimator = estimate.shared_estimator()
    guesses = [_estimate(estimator, c) for c in view.configs]
    scale = 1.0
    finished = [(snap, guess) for snap, guess in zip(view.runs[: view.current], guesses, strict=False) if snap.times and guess]
    if finished:  # how long this job's runs really took, against their estimates
        scale = sum(s.times[-1] - s.times[0] for s, _ in finished) / sum(g for _, g in finished)
    left = estimate.time_left(current, current.times, now, finish_s=estimator.finish_s(view.configs[view.current]))
    if left is None:
        return None
    return left + scale * sum(g or 0.0 for g in guesses[view.current + 1 :])


def _estimate(estimator, config: RunConfig) -> float | None:
    try:
        return estimator.estimate(config, estimate.num_classes(config))
    except Exception:  # noqa: BLE001 -- an estimate is a courtesy; never break the page for it
        return None


LONG_RUN_S = float(os.environ.get("TLS_LONG_RUN_S", "120"))  # a class-friendly length for one demo


def estimate_note(make: Callable[[], RunConfig | list[RunConfig] | None]) -> float | None:
    """Before Start: how long the run(s) that `make()` describes should take on this machine,
    and a warning when that is longer than a class demo should be. (`make` may draw an
    "invalid settings" message; that is left to the Start click, so it is drawn and dropped.)"""
    holder = st.empty()
    with holder.container():
        configs = make()
    holder.empty()
    if configs is None:
        return None
    configs = [configs] if isinstance(configs, RunConfig) else configs
    if not all(configs):
        return None
    estimator = estimate.shared_estimator()
    guesses = [_estimate(estimator, c) for c in configs]
    if not configs or any(g is None for g in guesses):
        return None
    total = sum(guesses)
    measured = all(estimator.measured(c) for c in configs)
    about = (
        t("estimate.under_second", device=t("estimate.here"))
        if total < 0.5
        else t("estimate.about", time=duration(total), device=t("estimate.here"))
    )
    text = about + " " + (t("estimate.measured") if measured else t("estimate.first"))
    from studio import teacher

    limit = teacher.limits().max_seconds
    text += " " + t("caps.time", limit=duration(limit))  # said before Start, enforced by the queue
    if total > limit:
        st.warning(text + " " + t("caps.over_time", limit=duration(limit)), icon=":material/timer_off:")
        return total
    if total > LONG_RUN_S:
        st.warning(text + " " + t("estimate.long", limit=duration(LONG_RUN_S)), icon=":material/schedule:")
    else:
        st.caption(":material/schedule: " + text)
    return total


def where_line(view: JobView) -> None:
    """A run meant for the class's Ray cluster that trained on this server instead: one line."""
    if view.where == "local":
        st.caption(":material/cloud_off: " + t("job.ray_local"))


def _draw_end(view: JobView) -> None:
    where_line(view)
    final = [s.final for s in view.runs]
    failed = next((f for f in final if isinstance(f, Failed)), None)
    if failed is not None:
        st.error(t("job.failed", message=explain(failed.key, failed.values, failed.message)))
    elif view.state == "cancelled" or any(isinstance(f, Cancelled) for f in final):
        if view.note == "time_limit":
            from studio import teacher

            st.warning(t("job.note.time_limit", limit=duration(teacher.limits().max_seconds)))
        elif view.note:
            st.warning(t(f"job.note.{view.note}"))
        else:
            st.warning(t("job.cancelled"))
    elif all(isinstance(f, Done) for f in final):
        st.success(t("job.done", seconds=f"{view.elapsed_s:.1f}"))


# --- charts ------------------------------------------------------------------------


def translator() -> Callable[[str], str]:
    lang = current_lang()
    return lambda key: t(key, lang=lang)


FIGURES_KEPT = 4  # chart sets kept per session (live panel, finished run, a race, one spare)


def snap_version(snap: HistorySnapshot) -> int:
    """A run's history only grows: its length says whether anything new arrived."""
    return len(snap.events)


def figures(key: str, version, build: Callable[[], tuple]) -> tuple:
    """The figures `build()` makes, rebuilt only when `version` (or the language) changed.

    Building the four plotly figures of a run costs about 100 ms of server CPU (plotly
    validates every trace and layout property); serialising ready ones about 5 ms. The live
    panel redraws every second, and on a full page (a click, a finished run) every chart is
    redrawn too, mostly with nothing new: measured with `python -m tools.loadtest`, this is
    the server time a class of pollers spends for nothing. Kept in session state (this
    learner's own figures), a few sets at most."""
    store = st.session_state.setdefault("_figures", {})
    stamp = (version, current_lang())
    hit = store.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    figs = build()
    store.pop(key, None)
    store[key] = (stamp, figs)
    while len(store) > FIGURES_KEPT:
        store.pop(next(iter(store)))
    return figs


def chart(fig, caption_key: str, key: str) -> None:
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
    st.caption(t(caption_key))


def draw_run_charts(snap: HistorySnapshot, *, key: str, live: bool = False) -> None:
    """Loss and accuracy curves, gradient-norm heatmap and bars, throughput. While the run
    trains (`live`), only the loss curve and the heatmap are built and drawn: redrawing four
    charts every second took the training's CPU (docs/demo-speed.md)."""
    tr = translator()
    evals = snap.evals
    cols = st.columns(3)
    cols[0].metric(
        t("metric.step"), f"{snap.steps[-1].step if snap.steps else 0} / {snap.started.total_steps if snap.started else '?'}"
    )
    cols[1].metric(t("metric.val_acc"), f"{evals[-1].val_acc:.1%}" if evals else "–")
    unit = "sentences" if (snap.config or {}).get("task") == "text" else "images"  # per task
    cols[2].metric(t(f"metric.{unit}_per_s"), f"{evals[-1].examples_per_s:.0f}" if evals else "–", help=t(f"help.{unit}_per_s"))
    if live:
        loss, heatmap = figures(key, snap_version(snap), lambda: (plots.loss_figure(snap, tr), plots.grad_norm_heatmap(snap, tr)))
        left, right = st.columns(2)
        with left:
            chart(loss, "caption.loss", f"{key}:loss")
        with right:
            chart(heatmap, "caption.grad_heatmap", f"{key}:grad")
        return
    figs = figures(
        key,
        snap_version(snap),
        lambda: (
            plots.loss_figure(snap, tr),
            plots.accuracy_figure(snap, tr),
            plots.grad_norm_heatmap(snap, tr),
            plots.grad_norm_bars(snap, tr),
        ),
    )
    left, right = st.columns(2)
    with left:
        chart(figs[0], "caption.loss", f"{key}:loss")
    with right:
        chart(figs[1], "caption.acc", f"{key}:acc")
    left, right = st.columns([3, 2])
    with left:
        chart(figs[2], "caption.grad_heatmap", f"{key}:grad")
    with right:
        chart(figs[3], "caption.grad_bars", f"{key}:bars")


def draw_race(view: JobView, *, key: str) -> None:
    """Several runs of one job: validation curves overlaid, one per label."""
    tr = translator()
    runs = {label: snap for label, snap in zip(run_labels(view), view.runs, strict=False) if snap.started is not None}
    version = tuple(len(snap.evals) for snap in runs.values())  # the curves move once an epoch, not every step
    figs = figures(key, version, lambda: (plots.race_figure(runs, "val/acc", tr), plots.race_figure(runs, "val/loss", tr)))
    left, right = st.columns(2)
    with left:
        chart(figs[0], "caption.race_acc", f"{key}:race_acc")
    with right:
        chart(figs[1], "caption.race_loss", f"{key}:race_loss")


def race_table(view: JobView) -> list[dict]:
    """One row per finished run: final and best validation accuracy, training throughput,
    the frozen groups whose features were computed once (cached), trainable share.

    No seconds: on a shared machine the same run's time swings several-fold with the load,
    so wall times of different runs teach nothing. Throughput is per example through the
    part that trains, which is what caching a frozen prefix speeds up."""
    rows = []
    text = bool(view.configs) and view.configs[0].task == "text"
    for label, snap in zip(run_labels(view), view.runs, strict=False):
        result = snap.result
        if result is None:
            continue
        share = metrics.Trainable(result["trainable_params"], result["total_params"]).values()
        rows.append(
            {
                t("race.col.strategy"): label,
                t("race.col.val_acc"): round(result["val_acc"], 3),
                t("race.col.best_acc"): round(result["best_val_acc"], 3),
                **({} if text else {t("race.col.imagenet"): takeaway.forgetting_cell(result)}),
                t("race.col.throughput_text" if text else "race.col.throughput"): round(train_throughput(snap)),
                t("race.col.cached"): cached_groups(snap),
                t("race.col.trainable"): f"{share['trainable']} / {share['total']}",
                t("race.col.share"): f"{share['percent']}%",
            }
        )
    return rows


def train_throughput(snap: HistorySnapshot) -> float:
    """Examples per second through the trained part, median epoch (the engine's `train_per_s`;
    for a run recorded before it existed, the median of its epochs' own rates)."""
    result = snap.result or {}
    if result.get("train_per_s"):
        return float(result["train_per_s"])
    rates = sorted(e.examples_per_s for e in snap.evals)
    if not rates:
        return float(result.get("examples_per_s", 0.0))
    mid = len(rates) // 2
    return rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2


def cached_groups(snap: HistorySnapshot) -> str:
    """'stem → stage2': the frozen groups run once over the data, their outputs kept; '–' if none."""
    depth = int((snap.result or {}).get("cached_depth") or (snap.started.cached_depth if snap.started else 0) or 0)
    groups = list(snap.started.groups) if snap.started else []
    if depth <= 0 or not groups:
        return "–"
    names = groups[:depth]
    return names[0] if len(names) == 1 else f"{names[0]} → {names[-1]}"


def draw_race_results(view: JobView) -> None:
    """A finished job of several runs: overlaid curves and the results table."""
    draw_race(view, key=f"end:{view.id}")
    rows = race_table(view)
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
        text = bool(view.configs) and view.configs[0].task == "text"
        st.caption(
            t("caption.race_table", unit=t("race.unit.sentences" if text else "race.unit.images"), cached=t("race.col.cached"))
        )
        takeaway.race_caption([snap.result for snap in view.runs])


def draw_result_header(view: JobView) -> dict | None:
    """The finished run's curves, its note and the results heading; returns the result (None if it did not finish)."""
    snap = view.runs[0]
    if snap.started is not None:
        draw_run_charts(snap, key=f"end:{view.id}")
    result = snap.result
    if result is None:
        return None
    if result.get("note"):
        note = result.get("note_message") or {}
        st.info(explain(note.get("key"), note.get("values"), result["note"]))
    st.subheader(t("results.title"))
    return result


def draw_results(view: JobView) -> None:
    """The finished single run: curves, confusion matrix, mistakes, weight drift, downloads."""
    snap, config = view.runs[0], view.configs[0]
    result = draw_result_header(view)
    if result is None:
        return
    tr = translator()
    classes = result.get("classes") or list(snap.started.classes)
    left, right = st.columns(2)
    with left:
        if result.get("confusion"):
            chart(plots.confusion_figure(result["confusion"], classes, tr), "caption.confusion", f"end:{view.id}:confusion")
    with right:
        if result.get("weight_drift"):
            frozen = snap.started.frozen if snap.started else ()
            chart(plots.drift_figure(result["weight_drift"], frozen, tr), "caption.drift", f"end:{view.id}:drift")
        else:
            st.caption(t("results.no_drift"))
    # A run read back from the server's store (tlcore.serve.store) has its images back as PNG decodes;
    # one whose image could not be kept is left out rather than drawn as a broken image.
    wrong = [item for item in result.get("misclassified") or [] if item.get("image") is not None]
    st.markdown(f"**{t('results.mistakes')}**")
    if wrong:
        cols = st.columns(6)
        for i, item in enumerate(wrong):
            cols[i % 6].image(
                item["image"], caption=t("results.true_pred", true=item["true"], pred=item["pred"]), width="stretch", clamp=True
            )
        st.caption(t("caption.mistakes"))
    else:
        st.caption(t("results.no_mistakes"))
    takeaway.forgetting_panel(result)
    draw_downloads(snap, config, key=view.id)


def draw_downloads(snap: HistorySnapshot, config: RunConfig, *, key: str) -> None:
    st.markdown(f"**{t('results.downloads')}**")
    cols = st.columns(2)
    cols[0].download_button(
        t("results.csv"), snap.to_csv(), file_name="history.csv", mime="text/csv", key=f"csv:{key}", help=t("help.csv")
    )
    cols[1].download_button(
        t("results.json"),
        config.to_json(),
        file_name="config.json",
        mime="application/json",
        key=f"json:{key}",
        help=t("help.json"),
    )
    st.caption(t("results.cli"))
    st.code(config.to_cli(), language="bash")
    takeaway.model_download(snap, config, key=key)
