"""Teacher mode and settings links: the teacher's side of a class.

- The teacher unlocks teacher mode with the secret from the class file or the server's
  environment (tlcore.caps; never a built-in password). Unlocking is bound to the
  teacher's learner id on the server, not to anything a browser can set; wrong secrets are
  rate-limited per learner.
- The teacher's runs go first in the queue; the Class page lists every job by nickname and
  cancels any.
- A settings link carries the teacher's demo settings (`?settings=strategy:partial,...`):
  a student who opens it gets the valid ones applied and is told which were ignored.
"""

from __future__ import annotations

import secrets
import threading
import time
import urllib.parse

import streamlit as st

from studio.state import CHOICES, DEFAULTS, _valid, learners, owner
from tlcore import caps, catalog
from tlcore.config import RunConfig
from tlcore.messages import LearnerError

TRIES, WINDOW_S = 5, 60.0  # wrong secrets allowed per learner per minute
_teachers: set[str] = set()  # learner ids that unlocked teacher mode (process-level, like the queue)
_tries: dict[str, list[float]] = {}
_lock = threading.Lock()

# The settings a link carries: the image pages' demo settings (not uploads, not the language),
# each with the label its widget shows.
LABELS = {"backbone": "backbone.label", "strategy": "strategy.label", "freeze_depth": "freeze.label",
          "lr": "lr.label", "head_lr_mult": "head_mult.label", "layer_decay": "decay.label", "dataset": "data.label",
          "per_class": "train.per_class", "image_size": "train.image_size", "epochs": "train.epochs"}
LINK_KEYS = tuple(LABELS)


def limits() -> caps.Caps:
    return caps.load()


def is_teacher() -> bool:
    with _lock:
        return owner() in _teachers


def unlock(secret: str) -> str:
    """'ok', 'wrong', 'wait' (too many wrong tries this minute) or 'off' (no teacher mode)."""
    expected = limits().teacher_secret
    if not expected:
        return "off"
    me, now = owner(), time.monotonic()
    with _lock:
        recent = [t for t in _tries.get(me, []) if now - t < WINDOW_S]
        if len(recent) >= TRIES:
            _tries[me] = recent
            return "wait"
        if secrets.compare_digest(secret.encode(), expected.encode()):
            _teachers.add(me)
            _tries.pop(me, None)
            return "ok"
        _tries[me] = [*recent, now]
        return "wrong"


def priority() -> int:
    return 1 if is_teacher() else 0


def settings_link(base: str = "") -> str:
    """The current image settings as a link for students (the page, its language, the settings)."""
    pairs = ",".join(f"{k}:{st.session_state[k]}" for k in LINK_KEYS if k in st.session_state)
    query = urllib.parse.urlencode({"lang": st.session_state.get("lang", "en"), "settings": pairs})
    return f"{base}?{query}"


def _parse(key: str, text: str):
    kind = type(DEFAULTS[key])
    return kind(float(text)) if kind is int else kind(text)


def apply_link_settings() -> tuple[list[str], list[str]] | None:
    """Apply a settings link's valid settings to this learner (once: the parameter is then
    removed from the address); returns (applied, ignored) names, or None without a link."""
    raw = st.query_params.get("settings")
    if not raw:
        return None
    del st.query_params["settings"]
    found: dict[str, object] = {}
    ignored: list[str] = []
    for pair in str(raw).split(",")[:len(LINK_KEYS) * 2]:
        key, _, text = pair.partition(":")
        if key not in LINK_KEYS:
            ignored.append(key[:30] or "?")
            continue
        try:
            value = _parse(key, text)
        except ValueError:
            ignored.append(key)
            continue
        options = CHOICES.get(key)
        if options is not None and not _valid(value, list(options())):
            ignored.append(key)
            continue
        if key == "dataset" and value not in catalog.dataset_names(task="image", kind="offline"):
            ignored.append(key)  # a link shares samples every machine has, not downloads or uploads
            continue
        found[key] = value
    # Each setting must leave a run this class allows (RunConfig's checks and the class's
    # limits); one that does not is ignored and the learner's own value stays.
    merged = {k: st.session_state.get(k, DEFAULTS[k]) for k in LINK_KEYS}
    for key, value in list(found.items()):
        try:
            limits().check(RunConfig(**(merged | {key: value})))
            merged[key] = value
        except LearnerError:
            ignored.append(key)
            del found[key]
    if "dataset" in found:
        found["data_source"] = "offline"
    st.session_state.update(found)
    learners.save(owner(), found)
    return sorted(k for k in found if k != "data_source"), ignored
