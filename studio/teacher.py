"""Teacher mode and settings links: the teacher's side of a class.

- The teacher unlocks teacher mode with the secret from the class file or the server's
  environment (tlcore.serve.class_limits; never a built-in password, at least 12 characters). Wrong
  secrets are limited per client address and for the whole server (tlcore.serve.guess_limiter), never
  per cookie: a browser chooses its cookies.
- Teacher mode belongs to the browser tab that unlocked it: a random grant kept on the
  server and in that session's state (which no client message can write), checked against
  the learner and the Streamlit session on every use. A copied cookie carries neither; a
  reload or a new tab asks for the secret again, and so does the tab after grant_s(). The
  Class page has a button to leave teacher mode.
- While scripts guess (from many forged addresses, the limiter then holding every new address
  back), the teacher still gets in: the server's log has a one-time code (`one_time_code`) that
  unlocks in place of the secret, never held back by the limiter (12 characters of 24: a script
  guessing thousands a minute would need longer than the universe has had); used once, a new
  one is logged.
- The teacher's runs go first in the queue; the Class page lists every job by nickname and
  cancels any.
- A settings link carries the teacher's demo settings (`?settings=strategy:partial,...`):
  a student who opens it gets the valid ones applied and is told which were ignored.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass

import streamlit as st

from studio import learner
from studio.choices import CHOICES, _valid, holds
from studio.feedback import held_messages, say
from studio.i18n import duration, t, translated
from studio.learner import owner, session_id
from studio.server import class_room, class_timer_s, job_queue
from studio.state import DEFAULTS, callback
from tlcore.core import settings
from tlcore.core.messages import LearnerError
from tlcore.models import catalog
from tlcore.serve import class_limits
from tlcore.serve.classroom import ALPHABET
from tlcore.serve.guess_limiter import GuessLimiter
from tlcore.serve.jobs import JobSummary
from tlcore.serve.store import learner_key
from tlcore.train.config import RunConfig

TRIES = 5  # wrong secrets from one address before it must wait (60 s, then twice as long each time)
SERVER_TRIES = 10  # wrong secrets the whole server takes in any minute, from anyone


def grant_s() -> float:
    """How long a tab stays unlocked; then the secret is asked again ($TLS_TEACHER_HOURS, 4 hours)."""
    return settings.get("TLS_TEACHER_HOURS") * 3600


MAX_GRANTS = 64  # tabs in teacher mode at once (the oldest is dropped past it)
_GRANT = "_teacher_grant"  # session-state key of this tab's grant


@dataclass(frozen=True)
class Grant:
    learner: str  # the learner id (cookie) that unlocked
    session: str | None  # the Streamlit session (browser tab) that unlocked
    until: float  # clock() after which the secret is asked again


clock = time.monotonic  # the grants' clock (a test moves it on instead of waiting)
# Process-level, like the queue: no client message can reset them.
guard = GuessLimiter(free=TRIES, per_minute=SERVER_TRIES)
_grants: dict[str, Grant] = {}  # grant token -> who holds it
_lock = threading.Lock()

# The settings a link carries: the image pages' demo settings (not uploads, not the language),
# each with the label its widget shows.
LABELS = {
    "backbone": "backbone.label",
    "strategy": "strategy.label",
    "freeze_depth": "freeze.label",
    "lr": "lr.label",
    "head_lr_mult": "head_mult.label",
    "layer_decay": "decay.label",
    "dataset": "data.label",
    "per_class": "train.per_class",
    "image_size": "train.image_size",
    "epochs": "train.epochs",
}
LINK_KEYS = tuple(LABELS)


def nickname(learner_id: str) -> str:
    """A short name for a learner that says nothing of their secret id: 'student-3f2a9c'."""
    return "student-" + hashlib.sha256(f"tls-nickname:{learner_id}".encode()).hexdigest()[:6]


def class_name(learner_id: str) -> str:
    """How the teacher's list names a learner: their class nickname (or #n when names are hidden),
    else the short hash of one who never joined the class."""
    room = class_room()
    member = room.member(learner_id)
    return room.shown_name(learner_key(learner_id)) if member is not None else nickname(learner_id)


def limits() -> class_limits.ClassLimits:
    return class_limits.load()


def network_address() -> str | None:
    """The address this browser connects from (studio.learner.network_address)."""
    return learner.network_address()


def client_address() -> str:
    """The address to count wrong secrets against: one name for every connection whose address
    is unknown (those from this machine itself)."""
    return network_address() or "local"


def is_teacher() -> bool:
    """Has this tab unlocked teacher mode (and not left it, and not for longer than grant_s())?"""
    token = st.session_state.get(_GRANT)
    if not token:
        return False
    with _lock:
        grant = _grants.get(token)
        if grant is not None and clock() >= grant.until:
            del _grants[token]
            grant = None
    if grant is None or grant.learner != owner() or grant.session != session_id():
        st.session_state.pop(_GRANT, None)
        return False
    return True


ONE_TIME_LENGTH = 12  # characters of classroom.ALPHABET: about 55 bits
_one_time = {"code": ""}  # the one-time code now in the server's log ("" until the first page)
log = logging.getLogger("tlstudio.teacher")


def one_time_code() -> str:
    """The code the server's log shows now (made and logged on first use, and again after each use)."""
    with _lock:
        if not _one_time["code"]:
            _one_time["code"] = _new_one_time()
        return _one_time["code"]


def _new_one_time() -> str:
    code = "".join(secrets.choice(ALPHABET) for _ in range(ONE_TIME_LENGTH))
    log.warning("teacher mode: one-time code %s (type it in place of the secret; it works once, "
                "even while wrong guesses make others wait; a new one is logged after use)", code)  # fmt: skip
    return code


def _is_one_time(typed: str) -> bool:
    """Is `typed` the one-time code? If so it is used up (a new one goes to the log)."""
    code = one_time_code()
    given = "".join(typed.split()).upper()
    if len(given) != ONE_TIME_LENGTH or not secrets.compare_digest(given.encode(), code.encode()):
        return False
    with _lock:
        if _one_time["code"] != code:  # another tab used it a moment ago
            return False
        _one_time["code"] = _new_one_time()
    return True


def unlock(secret: str) -> tuple[str, float]:
    """('ok' | 'wrong' | 'wait' | 'off', seconds to wait). 'wait': this address, or the whole
    server, made too many wrong guesses lately; the secret is then not even compared. The
    one-time code from the server's log unlocks whatever the limiter says."""
    expected = limits().teacher_secret if limits().teacher_mode else ""
    if not expected:
        return "off", 0.0
    address = client_address()
    if not _is_one_time(secret):
        wait = guard.wait_s(address)
        if wait > 0:
            return "wait", wait
        if not secrets.compare_digest(secret.encode(), expected.encode()):
            if secret:  # an empty field (Unlock pressed by mistake) tells nothing: not counted
                guard.wrong(address)
            return "wrong", 0.0
        guard.right(address)
    token, now = secrets.token_urlsafe(32), clock()
    with _lock:
        for old in [k for k, g in _grants.items() if g.until <= now]:
            del _grants[old]
        while len(_grants) >= MAX_GRANTS:
            del _grants[min(_grants, key=lambda k: _grants[k].until)]
        _grants[token] = Grant(owner(), session_id(), now + grant_s())
    st.session_state[_GRANT] = token
    job_queue().promote(owner(), priority())  # a Start pressed before unlocking goes to the front too
    return "ok", 0.0


def unlock_clicked() -> None:
    """The unlock form's callback: the secret from its field; a refusal said under the form."""
    with held_messages("unlock"):
        answer, wait = unlock(st.session_state.get("teacher_secret", ""))
        if answer != "ok":
            say("error", t(f"class.unlock.{answer}", tries=TRIES, wait=duration(max(1.0, wait))))


def leave() -> None:
    """This tab leaves teacher mode (its grant is gone from the server too)."""
    token = st.session_state.pop(_GRANT, None)
    with _lock:
        _grants.pop(token or "", None)


def is_teacher_id(learner: str) -> bool:
    """Is this learner id (a job's owner) one with a tab in teacher mode now?"""
    now = clock()
    with _lock:
        return any(g.learner == learner and now < g.until for g in _grants.values())


def priority() -> int:
    return 1 if is_teacher() else 0


def settings_link(base: str = "") -> str:
    """The current image settings as a link for students (the page, its language, the settings)."""
    query = urllib.parse.urlencode({"lang": st.session_state.get("lang", "en"), "settings": current_settings()})
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
    number within its slider's range and steps: studio.choices.CHOICES and RANGES, which the
    widgets draw from) and the run it leaves is one this class allows (RunConfig, the class's
    limits); else the learner's own value stays."""
    raw = st.query_params.get("settings")
    if not raw:
        return None
    del st.query_params["settings"]
    return apply_settings(str(raw))


def current_settings() -> str:
    """This session's image settings as a link writes them ("strategy:partial,epochs:3,...")."""
    return ",".join(f"{k}:{st.session_state[k]}" for k in LINK_KEYS if k in st.session_state)


def apply_settings(raw: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Settings written as a link writes them, applied to this learner where valid (see
    `apply_link_settings`; the teacher's push to the class uses it too)."""
    found: dict[str, object] = {}
    written: dict[str, str] = {}
    ignored: list[tuple[str, str]] = []
    for pair in raw.split(",")[: len(LINK_KEYS) * 2]:
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
    learner.learners.save(owner(), found)
    return sorted(k for k in found if k != "data_source"), ignored


def _allowed(key: str, settings: dict) -> bool:
    if not holds(key, settings[key], settings):
        return False
    try:
        limits().check_within_limits(RunConfig(**{k: settings[k] for k in LINK_KEYS}))
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


def cluster_line() -> None:
    """The Ray cluster's state for the teacher (nothing when the server trains here by design)."""
    status = getattr(job_queue(), "cluster_status", None)
    if status is None:
        return
    now = status()
    text = t(f"class.ray.{now.state}", gpus=now.gpus, cpus=now.cpus) + (
        " " + t(f"class.ray.reason.{now.reason}") if now.reason else ""
    )
    {"connected": st.success, "connecting": st.info}.get(now.state, st.warning)(text, icon=":material/hub:")


# --- the Class page's list of runs ------------------------------------------------------

REFRESH_S = 3.0  # while any run is active, the teacher's list redraws itself (a Cancel shows at once)
ENDED_SHOWN = 20  # ended runs listed, newest first (each learner's latest are kept in the run store)
# The runs going and the next ones in line are rows with a Cancel button; the runs further back and the
# ended ones are one table each. A row of columns is about ten elements: a class experiment of 30 drew
# 30-50 of them every REFRESH_S, 22% of the server's page-script time in the class (py-spy, session 40).
NEXT_WITH_CANCEL = 5


def class_runs() -> None:
    """Every run on the server, active ones first, each with Cancel; redrawn every REFRESH_S
    while any is active, so a cancelled or finished run changes state without a click."""

    # Redrawn while a run is active or a class has members (their runs may start any moment): a list
    # drawn when nothing ran once said "No runs yet" after the class's three runs had finished.
    live = any(row.active for row in job_queue().list_all()) or class_room().count()[0] > 0

    @st.fragment(run_every=class_timer_s(REFRESH_S) if live else None)
    def runs() -> None:
        rows = job_queue().list_all()
        if live and not any(row.active for row in rows) and class_room().count()[0] == 0:
            st.rerun()  # once: stop refreshing (the class's count starts it again: studio.class_panels.joined_count)
        if not rows:
            st.caption(t("class.no_jobs"))
        places_per_address()
        ended = [row for row in rows if not row.active]
        near = [row for row in rows if row.active and row.position <= NEXT_WITH_CANCEL]  # running: position 0
        further = [row for row in rows if row.active and row.position > NEXT_WITH_CANCEL]
        for row in near:
            _run_row(row)
        if further:
            st.caption(t("class.further_back", n=len(further), next=NEXT_WITH_CANCEL))
            _runs_table(further)
        _runs_table(ended[:ENDED_SHOWN])
        if len(ended) > ENDED_SHOWN:
            st.caption(t("class.more_ended", n=len(ended) - ENDED_SHOWN))

    runs()


def places_per_address() -> None:
    """How many learners (cookies) hold a place in the line from each client address: one person
    with three browsers holds three places unless the class file allows one per address."""
    counts = getattr(job_queue(), "learners_by_address", lambda: {})()
    if not counts:
        return
    st.caption(t("class.addresses", places=" · ".join(f"{_address_text(a)}: {n}" for a, n in counts.items())))
    crowded = [(a, n) for a, n in counts.items() if a is not None and n > 1]  # (none with one_run_per_address)
    if crowded:
        address, n = crowded[0]
        st.warning(t("class.address_crowded", n=n, address=_address_text(address)), icon=":material/devices:")


def _address_text(address: str | None) -> str:
    return f"`{address.replace('`', '')}`" if address else t("class.address_unknown")


def _row_text(row: JobSummary) -> tuple[str, str, str, str]:
    """A run's who, state, what and time, as markdown."""
    from studio.i18n import run_labels
    from studio.widgets import backbone_title

    first = row.configs[0]
    labels = ", ".join(run_labels(row))
    dataset = (
        translated(f"dataset.{first.dataset}", catalog.dataset(first.dataset).title)
        if first.dataset in catalog.dataset_names()
        else first.dataset
    )
    what = t(
        "class.what",
        labels=labels,
        backbone=backbone_title(first.backbone),
        dataset=dataset,
        per_class=first.per_class,
        epochs=first.epochs,
    )
    who = t("class.teacher_name") if is_teacher_id(row.owner) else class_name(row.owner)
    if row.owner == owner():
        who += f" ({t('class.you')})"
    who = f"**{who}**" + (" · " + t("class.teacher_job") if row.priority and who.startswith("student") else "")
    state = t(f"class.state.{row.state}") + (f" ({row.position})" if row.position else "")
    note = t(f"class.note.{row.note}") if row.note else ""
    return who, state + (f" · {note}" if note else ""), what, duration(row.elapsed_s) if row.elapsed_s else "–"


def _run_row(row: JobSummary) -> None:
    """A run with its Cancel button (a run going, or one of the next in line)."""
    who, state, what, took = _row_text(row)
    cols = st.columns([2, 2, 4, 1.2, 1.2])
    cols[0].markdown(who)
    cols[1].markdown(state)
    cols[2].caption(what)
    cols[3].markdown(took)
    cols[4].button(t("class.cancel"), key=f"cancel:{row.id}", on_click=callback(job_queue().cancel_any), args=(row.id,))


def _runs_table(rows: list[JobSummary]) -> None:
    """Runs without a button (further back in line, or ended): one table, one element."""
    if not rows:
        return
    head = [t("class.col.who"), t("class.col.state"), t("class.col.what"), t("class.col.time")]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _row_text(row)) + " |" for row in rows]
    st.markdown("\n".join(lines))


# --- the run store, for the teacher ----------------------------------------------------


def store_notice() -> None:
    """One line when finished runs are not being saved (the store's file is locked, damaged,
    not SQLite, newer or unwritable: tlcore.serve.store), saying what happened and what to do; nothing
    while all is well. The class goes on either way."""
    health_of = getattr(job_queue(), "store_health", None)
    health = health_of() if health_of is not None else None
    if health is None or health.state == "ok":
        return
    st.warning(
        t(
            f"class.store.{health.state}",
            path=health.path.replace("`", "'"),
            detail=" ".join(health.detail.replace("`", "'").split())[:200],
            waiting=health.waiting,
        )
    )
