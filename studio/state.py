"""What this session chose and runs: the shared settings and the job shown in each slot.

- Settings shared between pages (the strategy chosen on page 2 is used on page 3) live in
  session state under their own keys (widgets are views of them, studio.bound_widgets);
  `keep_settings()` gives them first values and saves them for the learner (studio.learner),
  `settle()` puts a setting that holds no option of its widget back on one.
- The job ids a session started live in session state under a slot name ("finetune",
  "race", ...), so leaving a page and coming back shows the run again.
- `callback` wraps every widget callback: choices settled first, a failure said in words.
Not for: who the learner is (studio.learner) or the server's queue (studio.server).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

import streamlit as st

from studio import learner
from studio.choices import CHOICES, RANGES, _valid
from studio.learner import owner
from studio.server import job_queue
from tlcore.train import presets

# Settings shared across pages, with their first values: the engine's image preset
# (tlcore.train.presets; the default demo finishes in about 3 s on a 2-core CPU, see README).
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


def job_id(slot: str) -> str | None:
    """The job this session shows in `slot`. A session that has no entry for it (a server
    restart emptied the LearnerStore, or a learner it had to forget) asks the queue for this
    learner's latest job of that kind, which the run store keeps across restarts."""
    key = f"job:{slot}"
    if key not in st.session_state:
        latest = getattr(job_queue(), "latest", None)
        st.session_state[key] = latest(owner(), slot) if latest is not None else None
    return st.session_state[key]


def set_job_id(slot: str, value: str | None) -> None:
    st.session_state[f"job:{slot}"] = value
    remember_job(slot, value)


def remember_job(slot: str, value: str | None) -> None:
    learner.learners.save(owner(), {f"job:{slot}": value})


def job_slots() -> dict[str, str | None]:
    return {k: v for k, v in st.session_state.items() if isinstance(k, str) and k.startswith("job:")}


def settle() -> None:
    """Put every choice setting back on one of its options.

    Streamlit's selectbox and multiselect send their value as the displayed label; after a
    language switch the browser can send the old language's label, which matches no option
    and arrives as the label itself (seen: `unknown backbone 'Studio ResNet (...) · works
    offline'`). Such a value is replaced by this learner's last good value, else the default.
    A number its slider cannot hold (RANGES) is moved to the nearest one it can.
    """
    saved = learner.learners.load(owner())
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


def keep_settings(defaults: dict[str, object] | None = None, *, group: str = "images") -> None:
    """Give every shared setting a value and keep it for this learner across reloads.

    Settings are ordinary session values, never widget keys (each widget is drawn from its
    setting: `studio.bound_widgets.bound`), so neither a page that does not draw a widget nor a
    fragment's re-run can drop one. A new session (a reload, another tab) starts from what
    this learner had, then the defaults.
    """
    defaults = DEFAULTS if defaults is None else defaults
    _all_defaults.update(defaults)
    me = owner()
    if not st.session_state.get(f"_restored:{group}"):
        saved = learner.learners.load(me)
        for key, value in saved.items():
            if (key in defaults or key.startswith("job:") or key in EXTRA_SETTINGS) and key not in st.session_state:
                st.session_state[key] = value
        st.session_state[f"_restored:{group}"] = True
    for key, value in defaults.items():
        st.session_state[key] = st.session_state.get(key, value)
    settle()
    learner.learners.save(
        me, {k: st.session_state[k] for k in (*defaults, *EXTRA_SETTINGS) if k in st.session_state} | job_slots()
    )
