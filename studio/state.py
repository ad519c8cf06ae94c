"""Process-wide and per-session state: the job queue, who this browser is, what it runs.

- One `JobQueue` per server process (`tlcore.jobs.shared_queue`, a module global: any
  browser can send Streamlit's "clear cache" message, so nothing the class depends on may
  live in `st.cache_resource`), shared by every browser.
- Each browser session gets an owner id, secret to it; the queue allows one active job
  per owner and shows or stops a job only for its owner.
- The job ids a session started live in `st.session_state` under a slot name
  ("finetune", "race", ...), so leaving a page and coming back shows the run again.
- Settings shared between pages (the strategy chosen on page 2 is used on page 3) live
  in session state too; `keep_settings()` stops Streamlit from dropping them when the
  page that owns their widgets is not on screen.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

from tlcore import backbones, datasets
from tlcore.jobs import JobQueue, shared_queue

VAL_PER_CLASS = 20  # validation images per class: enough to measure, fast on a CPU
_REAL = backbones.offline_default() == "efficientnet_lite0"
# The first dataset: real Fashion-MNIST when Debian's package is installed, else the real
# handwritten digits that ship with scikit-learn (the page says how to get Fashion-MNIST).
_FIRST_DATASET = "fashion_mnist" if datasets.fashion_available() else "digits"

# Widget keys shared across pages, with their first values (the app's fast defaults:
# the default demo finishes in about 10 s on a 2-core CPU, see README).
DEFAULTS: dict[str, object] = {
    "backbone": backbones.offline_default(),
    "strategy": "partial",
    "freeze_depth": 2,
    "lr": 1e-3,
    "head_lr_mult": 10.0,
    "layer_decay": 0.7,
    "data_source": "offline",  # offline | download | upload
    "dataset": _FIRST_DATASET if _REAL else "synthetic_novel",
    "per_class": 20,
    "image_size": 96 if _REAL else 32,
    "epochs": 3,
    "race_strategies": ["scratch", "linear_probe", "partial", "full"],
}


def job_queue() -> JobQueue:
    """The server's one queue (a test may put its own under `_queue_override`)."""
    return shared_queue(_start_server_queue)


def _start_server_queue() -> JobQueue:
    """Runs once per server process, when the first page asks for the queue.

    On a CPU, training leaves one core to the web server (script runs, charts): when torch
    wants every core and anything else runs, its threads wait on each other. Measured on a
    shared 2-core machine: a training step of the default demo took 4.8 s with 2 threads
    and 0.2 s with 1; the default race of four strategies took 144 s vs 35 s in the app.
    Set TLS_TORCH_THREADS to override.
    """
    if not torch.cuda.is_available():
        threads = int(os.environ.get("TLS_TORCH_THREADS", "0")) or max(1, (os.cpu_count() or 2) - 1)
        torch.set_num_threads(threads)
    threading.Thread(target=_warm_up, name="tlstudio-warm-up", daemon=True).start()
    return JobQueue()


def _warm_up() -> None:
    """Load the default sample data and the offline backbone once, in the background, so
    the class's first Start does not wait for them (the data loader caches its result)."""
    try:
        datasets.load_dataset(str(DEFAULTS["dataset"]), per_class=int(DEFAULTS["per_class"]), val_per_class=VAL_PER_CLASS,
                              image_size=int(DEFAULTS["image_size"]), seed=0)
        backbones.build_model(str(DEFAULTS["backbone"]), 10, pretrained=True, image_size=int(DEFAULTS["image_size"]))
    except Exception as error:  # noqa: BLE001 -- only a head start; the run reports real problems
        logging.getLogger(__name__).info("warm-up skipped: %s", error)


def queue() -> JobQueue:
    return st.session_state.get("_queue_override") or job_queue()


def owner() -> str:
    """A secret id for this browser session (the queue's unit of 'one job each').

    Streamlit's own session id is random, known only to this browser, and survives the
    "clear cache" message that empties session state; a fresh owner id after such a
    message would let a learner start a second run and lose sight of the first.
    """
    if "owner" not in st.session_state:
        ctx = get_script_run_ctx(suppress_warning=True)
        st.session_state["owner"] = ctx.session_id if ctx is not None else secrets.token_urlsafe(16)
    return st.session_state["owner"]


def job_id(slot: str) -> str | None:
    return st.session_state.get(f"job:{slot}")


def set_job_id(slot: str, value: str | None) -> None:
    st.session_state[f"job:{slot}"] = value


def keep_settings() -> None:
    """Give every shared setting a value, and keep it when its widget is off screen.

    Streamlit deletes a widget's state in any run where the widget is not drawn, and
    starts a widget afresh when its label changes (as on a language switch); writing the
    value back once per run makes it an ordinary session value that survives both.
    """
    for key, value in DEFAULTS.items():
        st.session_state[key] = st.session_state.get(key, value)
