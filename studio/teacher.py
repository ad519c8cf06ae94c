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

from studio.i18n import t, translated
from studio.state import CHOICES, DEFAULTS, _valid, callback, holds, learners, owner, queue
from tlcore import caps, catalog
from tlcore.config import RunConfig
from tlcore.jobs import JobSummary, nickname
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
        else:
            _tries[me] = [*recent, now]
            return "wrong"
    queue().promote(me, priority())  # a Start pressed before unlocking goes to the front too
    return "ok"


def is_teacher_id(learner: str) -> bool:
    """Is this learner id (a job's owner) one that unlocked teacher mode?"""
    with _lock:
        return learner in _teachers


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


# --- the Class page's list of runs ------------------------------------------------------

REFRESH_S = 3.0  # while any run is active, the teacher's list redraws itself (a Cancel shows at once)
ENDED_SHOWN = 20  # ended runs listed, newest first (all are kept in the run store)


def class_runs() -> None:
    """Every run on the server, active ones first, each with Cancel; redrawn every REFRESH_S
    while any is active, so a cancelled or finished run changes state without a click."""
    active = any(row.state in ("queued", "running") for row in queue().list_all())

    @st.fragment(run_every=REFRESH_S if active else None)
    def runs() -> None:
        rows = queue().list_all()
        if any(row.state in ("queued", "running") for row in rows) != active:
            st.rerun()  # once: start or stop refreshing
        if not rows:
            st.caption(t("class.no_jobs"))
        ended = [row for row in rows if row.state not in ("queued", "running")]
        for row in rows[:len(rows) - len(ended) + ENDED_SHOWN]:
            _run_row(row)
        if len(ended) > ENDED_SHOWN:
            st.caption(t("class.more_ended", n=len(ended) - ENDED_SHOWN))

    runs()


def _run_row(row: JobSummary) -> None:
    from studio.jobs_ui import duration
    from studio.widgets import backbone_title

    first = row.configs[0]
    labels = ", ".join(t(f"strategy.{label}") if label == config.strategy else label
                       for label, config in zip(row.labels, row.configs, strict=False))
    dataset = translated(f"dataset.{first.dataset}", catalog.dataset(first.dataset).title) \
        if first.dataset in catalog.dataset_names() else first.dataset
    what = t("class.what", labels=labels, backbone=backbone_title(first.backbone), dataset=dataset,
             per_class=first.per_class, epochs=first.epochs)
    cols = st.columns([2, 2, 4, 1.2, 1.2])
    who = t("class.teacher_name") if is_teacher_id(row.owner) else nickname(row.owner)
    if row.owner == owner():
        who += f" ({t('class.you')})"
    cols[0].markdown(f"**{who}**" + (" · " + t("class.teacher_job") if row.priority and who.startswith("student") else ""))
    state = t(f"class.state.{row.state}") + (f" ({row.position})" if row.position else "")
    note = t(f"class.note.{row.note}") if row.note else ""
    cols[1].markdown(state + (f" · {note}" if note else ""))
    cols[2].caption(what)
    cols[3].markdown(duration(row.elapsed_s) if row.elapsed_s else "–")
    if row.state in ("queued", "running"):
        cols[4].button(t("class.cancel"), key=f"cancel:{row.id}", on_click=callback(queue().cancel_any), args=(row.id,))


# --- the run store, for the teacher ----------------------------------------------------


def store_notice() -> None:
    """One line when finished runs are not being saved (the store's file is locked, damaged,
    not SQLite, newer or unwritable: tlcore.store), saying what happened and what to do; nothing
    while all is well. The class goes on either way."""
    health_of = getattr(queue(), "store_health", None)
    health = health_of() if health_of is not None else None
    if health is None or health.state == "ok":
        return
    st.warning(t(f"class.store.{health.state}", path=health.path.replace("`", "'"),
                 detail=" ".join(health.detail.replace("`", "'").split())[:200], waiting=health.waiting))
