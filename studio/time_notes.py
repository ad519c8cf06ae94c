"""How long a run takes, said to the learner: before Start (`estimate_note`, with the class's
time limit) and while it runs (`job_time_left`, from the run's own epoch times).

The numbers come from tlcore.train.time_estimate (this machine's measured rates); this module only
words them. Not for: the live panel itself (studio.job_panel).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from studio.i18n import duration, t
from tlcore.core import settings
from tlcore.serve.jobs import JobView
from tlcore.train import time_estimate
from tlcore.train.config import RunConfig


def job_time_left(view: JobView) -> float | None:
    now = time.monotonic()
    current = view.runs[view.current]
    estimator = time_estimate.shared_estimator()
    guesses = [_estimate(estimator, c) for c in view.configs]
    scale = 1.0
    finished = [(snap, guess) for snap, guess in zip(view.runs[: view.current], guesses, strict=False) if snap.times and guess]
    if finished:  # how long this job's runs really took, against their estimates
        scale = sum(s.times[-1] - s.times[0] for s, _ in finished) / sum(g for _, g in finished)
    config = view.configs[view.current]
    left = time_estimate.time_left(
        current, current.times, now, finish_s=estimator.finish_s(config), later_epoch_s=_later_epoch_s(estimator, config, current)
    )
    if left is None:
        return None
    return left + scale * sum(g or 0.0 for g in guesses[view.current + 1 :])


def _later_epoch_s(estimator, config: RunConfig, snap) -> float | None:
    """A text run whose features are cached computes them in its first epoch (tlcore.text.batches):
    the estimator's guess of a later epoch, for `time_left`; None for every other run."""
    if config.task != "text" or snap.started is None or not snap.started.cached_depth:
        return None
    return _estimate(estimator, config, estimator.epoch_s)


def _estimate(estimator, config: RunConfig, guess=None) -> float | None:
    """`guess` (the estimator's whole run by default) for a config, or None when it cannot say."""
    try:
        return (guess or estimator.estimate)(config, time_estimate.num_classes(config))
    except Exception:  # noqa: BLE001 -- an estimate is a courtesy; never break the page for it
        return None


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
    estimator = time_estimate.shared_estimator()
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
    long_run_s = settings.get("TLS_LONG_RUN_S")  # a class-friendly length for one demo
    if total > long_run_s:
        st.warning(text + " " + t("estimate.long", limit=duration(long_run_s)), icon=":material/schedule:")
    else:
        st.caption(":material/schedule: " + text)
    return total
