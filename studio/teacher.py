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

import math
import re
import secrets
import threading
import time
import urllib.parse

import streamlit as st

from studio.i18n import t
from studio.state import CHOICES, DEFAULTS, _valid, holds, learners, owner
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
    """A link's text as the setting's type. A number must be finite (`inf`, `nan` and `1e999`
    are no slider's value) and a count whole; anything else is a ValueError."""
    kind = type(DEFAULTS[key])
    if kind not in (int, float):
        return kind(text)
    number = float(text)
    if not math.isfinite(number) or (kind is int and not number.is_integer()):
        raise ValueError(text)
    return kind(number)


def apply_link_settings() -> tuple[list[str], list[tuple[str, str]]] | None:
    """Apply a settings link's valid settings to this learner (once: the parameter is then
    removed from the address); returns (applied names, ignored (name, value) pairs as the
    link wrote them), or None without a link.

    A setting is applied only when its widget can hold it (a choice among its options, a
    number within its slider's range and steps: studio.state.CHOICES and RANGES, which the
    widgets draw from) and the run it leaves is one this class allows (RunConfig, the class's
    limits); else the learner's own value stays."""
    raw = st.query_params.get("settings")
    if not raw:
        return None
    del st.query_params["settings"]
    found: dict[str, object] = {}
    written: dict[str, str] = {}
    ignored: list[tuple[str, str]] = []
    for pair in str(raw).split(",")[:len(LINK_KEYS) * 2]:
        key, _, text = pair.partition(":")
        if key not in LINK_KEYS:
            ignored.append((key, text))
            continue
        try:
            value = _parse(key, text)
        except ValueError:
            ignored.append((key, text))
            continue
        options = CHOICES.get(key)
        if options is not None and not _valid(value, list(options())):
            ignored.append((key, text))
            continue
        if key == "dataset" and value not in catalog.dataset_names(task="image", kind="offline"):
            ignored.append((key, text))  # a link shares samples every machine has, not downloads or uploads
            continue
        found[key], written[key] = value, text
    # In LINK_KEYS order, so a range that depends on another setting (the freeze depth on the
    # backbone, the examples on the dataset) is checked against the link's own.
    merged = {k: st.session_state.get(k, DEFAULTS[k]) for k in (*LINK_KEYS, "data_source")}
    for key in [k for k in LINK_KEYS if k in found]:
        changed = merged | {key: found[key]} | ({"data_source": "offline"} if key == "dataset" else {})
        if _allowed(key, changed):
            merged = changed
        else:
            ignored.append((key, written[key]))
            del found[key]
    if "dataset" in found:
        found["data_source"] = "offline"
    st.session_state.update(found)
    learners.save(owner(), found)
    return sorted(k for k in found if k != "data_source"), ignored


def _allowed(key: str, settings: dict) -> bool:
    if not holds(key, settings[key], settings):
        return False
    try:
        limits().check(RunConfig(**{k: settings[k] for k in LINK_KEYS}))
    except LearnerError:
        return False
    return True


def link_names(keys: list[str]) -> str:
    """Applied settings by the labels their widgets show."""
    return ", ".join(t(LABELS[k]) for k in keys)


def left_out_names(pairs: list[tuple[str, str]]) -> str:
    """Ignored settings: a known one by its widget's label and the value the link gave, an
    unknown one by its name, both as plain text (the link is anyone's text)."""
    return ", ".join(f"{t(LABELS[k])} = {plain(v)}" if k in LABELS else plain(k) for k, v in pairs)


def plain(text: str, most: int = 30) -> str:
    """Anyone's text, shown inside markdown as plain text: at most `most` characters; letters,
    digits, spaces and `- _ . +` kept (escaped), anything else `?`. No markup and no link: an
    autolink needs `:` and `/` (http://), `@` (mail) or "www." (a zero-width space goes before
    each dot; after it, as Chromium showed, "www.<ZWSP>evil.example" still became a link)."""
    kept = "".join(c if c.isalnum() or c in " -_.+" else "?" for c in text[:most])
    return re.sub(r"([-_.+])", lambda m: ("\u200b" if m[1] == "." else "") + "\\" + m[1], kept).strip() or "?"
