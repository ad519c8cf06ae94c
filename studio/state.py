"""Process-wide and per-session state: the job queue, who this browser is, what it runs.

- One `JobQueue` per server process (`st.cache_resource`), shared by every browser.
- Each browser session gets an owner id; the queue allows one active job per owner.
- The job ids a session started live in `st.session_state` under a slot name
  ("finetune", "race", ...), so leaving a page and coming back shows the run again.
- Settings shared between pages (the strategy chosen on page 2 is used on page 3) live
  in session state too; `keep_settings()` stops Streamlit from dropping them when the
  page that owns their widgets is not on screen.
"""

from __future__ import annotations

import uuid

import streamlit as st

from tlcore.jobs import JobQueue

# Widget keys shared across pages, with their first values (the app's fast defaults).
DEFAULTS: dict[str, object] = {
    "backbone": "studio_resnet",
    "strategy": "partial",
    "freeze_depth": 2,
    "lr": 1e-3,
    "head_lr_mult": 10.0,
    "layer_decay": 0.7,
    "dataset": "synthetic_novel",
    "per_class": 20,
    "image_size": 32,
    "epochs": 3,
}


@st.cache_resource(show_spinner=False)
def job_queue() -> JobQueue:
    """The server's one queue; a test may replace it with `set_job_queue`."""
    return JobQueue()


def queue() -> JobQueue:
    return st.session_state.get("_queue_override") or job_queue()


def owner() -> str:
    """A random id for this browser session (the queue's unit of 'one job each')."""
    if "owner" not in st.session_state:
        st.session_state["owner"] = uuid.uuid4().hex
    return st.session_state["owner"]


def job_id(slot: str) -> str | None:
    return st.session_state.get(f"job:{slot}")


def set_job_id(slot: str, value: str | None) -> None:
    st.session_state[f"job:{slot}"] = value


def keep_settings() -> None:
    """Give every shared setting a value, and keep it when its widget is off screen.

    Streamlit deletes a widget's state in any run where the widget is not drawn; writing
    the value back once per run makes it an ordinary session value that survives.
    """
    for key, value in DEFAULTS.items():
        st.session_state[key] = st.session_state.get(key, value)
