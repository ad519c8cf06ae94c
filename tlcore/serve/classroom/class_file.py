"""The class as kept on disk: `class.json` in the state folder, written atomically (0600) and read
back strictly.

Any content of the file loads as a clean class or not at all: `decode` checks every field's type
and range (a member's number, a cell's level against its experiment's levels, a run's settings
through RunConfig) and raises ClassFileError with what is wrong; `load` moves a file it cannot read
to `class.json.damaged` and says so in one line for the teacher (the Class page shows it). Runs are
jobs in the run store, never in this file, so a damaged class file loses no run. Not for: the
class's behaviour (tlcore.serve.classroom.state).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlcore.serve.classroom.codes import NICKNAME_MAX, Member, clean_nickname, normal_code
from tlcore.serve.classroom.design import FACTORS, MAX_ROUNDS, MAX_SEEDS, Cell, CellResult, Experiment
from tlcore.serve.classroom.questions import CONFIDENCE, KINDS, MAX_OUTCOMES, MAX_VOTES, Answer, Question
from tlcore.train.config import RunConfig

VERSION = 2
MAX_BYTES = 4 * 2**20  # a class of 60 with five experiments' summaries is about 200 KB
MAX_MEMBERS = 1000
MAX_LEVELS = 50
MAX_PAST = 5
MAX_QUESTIONS = 20


class ClassFileError(ValueError):
    """What is wrong with a class file, in words."""


@dataclass
class Saved:
    """Everything a class keeps across a restart."""

    code: str | None = None
    projector: str = ""  # the projector view's key (its URL's `key`): kept when the code rotates
    old_codes: list[str] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    push: tuple[int, str, dict[str, Any]] = (0, "", {})
    paused: bool = False
    hide_names: bool = False
    locked: bool = False
    removed: list[str] = field(default_factory=list)  # learner keys the teacher removed (they may not join again)
    experiment: Experiment | None = None
    past: list[Experiment] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    wait_for_predictions: bool = True
    tickets_for: str = ""
    tickets: dict[str, dict[str, str]] = field(default_factory=dict)


# ----------------------------------------------------------------------------- writing


def exp_dict(exp: Experiment | None) -> dict | None:
    return dataclasses.asdict(exp) if exp is not None else None


def encode(saved: Saved) -> str:
    return json.dumps(
        {
            "version": VERSION,
            "code": saved.code,
            "projector": saved.projector,
            "old_codes": saved.old_codes[-20:],
            "members": {k: {"nickname": m.nickname, "number": m.number, "joined": m.joined} for k, m in saved.members.items()},
            "push": {"version": saved.push[0], "page": saved.push[1], "settings": saved.push[2]},
            "paused": saved.paused,
            "hide_names": saved.hide_names,
            "locked": saved.locked,
            "removed": saved.removed[-MAX_MEMBERS:],
            "experiment": exp_dict(saved.experiment),
            "past": [exp_dict(e) for e in saved.past[-MAX_PAST:]],
            "questions": [dataclasses.asdict(q) for q in saved.questions[-MAX_QUESTIONS:]],
            "wait_for_predictions": saved.wait_for_predictions,
            "tickets_for": saved.tickets_for,
            "tickets": saved.tickets,
        },
        separators=(",", ":"),
    )


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------- reading, strictly


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise ClassFileError(what)


def _obj(value: Any, what: str) -> dict:
    _need(isinstance(value, dict), f"{what} is not an object")
    return value


def _list(value: Any, what: str, most: int) -> list:
    _need(isinstance(value, list), f"{what} is not a list")
    _need(len(value) <= most, f"{what} has more than {most} entries")
    return value


def _int(value: Any, what: str, low: int = 0, high: int = 2**31) -> int:
    _need(isinstance(value, int) and not isinstance(value, bool), f"{what} is not a whole number")
    _need(low <= value <= high, f"{what} is out of range ({value})")
    return value


def _num(value: Any, what: str) -> float:
    _need(isinstance(value, int | float) and not isinstance(value, bool), f"{what} is not a number")
    _need(math.isfinite(value), f"{what} is not finite")
    return float(value)


def _str(value: Any, what: str, most: int = 200) -> str:
    _need(isinstance(value, str) and len(value) <= most, f"{what} is not a short text")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _bool(value: Any, what: str) -> bool:
    _need(isinstance(value, bool), f"{what} is not true or false")
    return value


def _member(value: Any, what: str) -> Member:
    m = _obj(value, what)
    name = clean_nickname(_str(m.get("nickname"), f"{what}'s nickname", NICKNAME_MAX * 4)) or "?"
    # nobody is "here" until their page polls again: `seen` is set by the class on load
    return Member(name, _int(m.get("number"), f"{what}'s number", 1, 10**6), _num(m.get("joined"), f"{what}'s joined"), 0.0)


def _result(value: Any, what: str) -> CellResult:
    r = _obj(value, what)
    accs = [_num(a, f"{what}'s accuracy") for a in _list(r.get("accs"), f"{what}'s accuracies", 1000)]
    grads = {_str(g, f"{what}'s group"): _num(v, f"{what}'s norm") for g, v in _obj(r.get("grads"), f"{what}'s norms").items()}
    frozen = [_str(g, f"{what}'s frozen group") for g in _list(r.get("frozen"), f"{what}'s frozen groups", 1000)]
    acc = _num(r.get("acc"), f"{what}'s accuracy")
    _need(0.0 <= acc <= 1.0, f"{what}'s accuracy is out of range")
    return CellResult(
        acc=acc,
        accs=accs,
        grads=grads,
        frozen=frozen,
        seconds=_num(r.get("seconds"), f"{what}'s seconds"),
        nickname=_str(r.get("nickname"), f"{what}'s nickname"),
        number=_int(r.get("number"), f"{what}'s number", 0, 10**6),
        reused=_bool(r.get("reused", False), f"{what}'s reused"),
    )


def _cell(value: Any, what: str, levels: int, default_round: int) -> Cell:
    c = _obj(value, what)
    result = c.get("result")
    return Cell(
        level=_int(c.get("level"), f"{what}'s level", 0, levels - 1),
        seed=_int(c.get("seed"), f"{what}'s seed", 0, 10**6),
        learner=_opt_str(c.get("learner"), f"{what}'s learner"),
        job=_opt_str(c.get("job"), f"{what}'s job"),
        result=None if result is None else _result(result, f"{what}'s result"),
        failed=_str(c.get("failed", ""), f"{what}'s failure"),
        round=_int(c.get("round", default_round), f"{what}'s round", 1, MAX_ROUNDS),
    )


def _level(value: Any, what: str) -> Any:
    _need(isinstance(value, str | int | float) and not isinstance(value, bool), f"{what} is not a level")
    return value


def decode_experiment(value: Any, what: str = "the experiment") -> Experiment | None:
    if value is None:
        return None
    e = _obj(value, what)
    factor = _str(e.get("factor"), f"{what}'s factor")
    _need(factor in FACTORS, f"{what}'s factor {factor!r} is unknown")
    levels = [_level(v, f"{what}'s level") for v in _list(e.get("levels"), f"{what}'s levels", MAX_LEVELS)]
    _need(bool(levels), f"{what} has no levels")
    seeds = [_int(s, f"{what}'s seed", 0, 10**6) for s in _list(e.get("seeds"), f"{what}'s seeds", MAX_SEEDS * MAX_ROUNDS)]
    base = _obj(e.get("base"), f"{what}'s settings")
    try:
        RunConfig.from_dict(base)
    except Exception as error:  # noqa: BLE001 -- any refusal of the settings is the file's fault
        raise ClassFileError(f"{what}'s settings are not valid ({error})") from None
    default_round = _int(e.get("round", 1), f"{what}'s round", 1, MAX_ROUNDS)  # (version 1: one round per experiment)
    cells = [
        _cell(c, f"{what}'s cell", len(levels), default_round)
        for c in _list(e.get("cells"), f"{what}'s cells", MAX_LEVELS * MAX_SEEDS * MAX_ROUNDS)
    ]
    stopped = e.get("stopped")
    return Experiment(
        id=_str(e.get("id"), f"{what}'s id", 64),
        factor=factor,
        levels=levels,
        seeds=seeds,
        base=base,
        cells=cells,
        started=_num(e.get("started"), f"{what}'s start"),
        stopped=None if stopped is None else _num(stopped, f"{what}'s stop"),
    )


def _answer(value: Any, what: str) -> Answer:
    a = _obj(value, what)
    number = a.get("number")
    confidence = _int(a.get("confidence", 0), f"{what}'s confidence", 0, max(CONFIDENCE))
    return Answer(
        choice=_str(a.get("choice", ""), f"{what}'s choice", 100),
        number=None if number is None else _num(number, f"{what}'s number"),
        confidence=confidence,
        at=_num(a.get("at", 0.0), f"{what}'s time"),
    )


def _question(value: Any, what: str = "a question") -> Question:
    q = _obj(value, what)
    kind = _str(q.get("kind"), f"{what}'s kind")
    _need(kind in KINDS, f"{what}'s kind {kind!r} is unknown")
    votes = _list(q.get("votes", [{}]), f"{what}'s votes", MAX_VOTES)
    _need(bool(votes), f"{what} has no vote")
    level = q.get("level")
    return Question(
        id=_str(q.get("id"), f"{what}'s id", 64),
        kind=kind,
        choices=[_str(c, f"{what}'s choice", 100) for c in _list(q.get("choices", []), f"{what}'s choices", 50)],
        labels=[_str(c, f"{what}'s label") for c in _list(q.get("labels", []), f"{what}'s labels", 50)],
        text=_str(q.get("text", ""), f"{what}'s text", 400),
        experiment=_str(q.get("experiment", ""), f"{what}'s experiment", 64),
        level=None if level is None else _int(level, f"{what}'s level", 0, MAX_LEVELS),
        votes=[
            {_str(k, "a learner"): _answer(a, f"{what}'s answer") for k, a in _obj(v, f"{what}'s vote").items()} for v in votes
        ],
        open=_bool(q.get("open", False), f"{what}'s open"),
        revealed=_bool(q.get("revealed", False), f"{what}'s revealed"),
        asked=_num(q.get("asked", 0.0), f"{what}'s time"),
        answer=_str(q.get("answer", ""), f"{what}'s answer", 100),
        outcome=_outcome(q.get("outcome", {}), f"{what}'s outcome"),
    )


def _outcome(value: Any, what: str) -> dict[str, float]:
    found = _obj(value, what)
    _need(len(found) <= MAX_OUTCOMES, f"{what} has more than {MAX_OUTCOMES} entries")
    return {_str(k, what, 100): _num(v, what) for k, v in found.items()}


def decode(text: str) -> Saved:
    """A class file's text as a class, or ClassFileError saying what is wrong."""
    _need(len(text) <= MAX_BYTES, f"the file is larger than {MAX_BYTES // 2**20} MB")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ClassFileError(f"not JSON ({str(error)[:80]})") from None
    d = _obj(data, "the file")
    _int(d.get("version", 1), "the version", 1, VERSION)
    push = _obj(d.get("push", {}), "the push")
    members = _obj(d.get("members", {}), "the members")
    _need(len(members) <= MAX_MEMBERS, f"more than {MAX_MEMBERS} members")
    experiment = decode_experiment(d.get("experiment"))
    past = [decode_experiment(e, "a past experiment") for e in _list(d.get("past", []), "the past experiments", 50)]
    code = _opt_str(d.get("code"), "the code")
    # a code nobody can type (" ", "abc"): whatever a learner types is normalised first, so it would never match
    _need(code is None or (code != "" and normal_code(code) == code), "the code is not one a learner can type")
    return Saved(
        code=code,
        projector=_str(d.get("projector", ""), "the projector's key", 64),
        old_codes=[_str(c, "an old code", 32) for c in _list(d.get("old_codes", []), "the old codes", 1000)],
        members={_str(k, "a member's key"): _member(v, "a member") for k, v in members.items()},
        push=(
            _int(push.get("version", 0), "the push's version"),
            _str(push.get("page", ""), "the push's page"),
            _obj(push.get("settings", {}), "the push's settings"),
        ),
        paused=_bool(d.get("paused", False), "paused"),
        hide_names=_bool(d.get("hide_names", False), "hide_names"),
        locked=_bool(d.get("locked", False), "locked"),
        removed=[_str(k, "a removed learner") for k in _list(d.get("removed", []), "the removed learners", MAX_MEMBERS * 10)],
        experiment=experiment,
        past=[e for e in past if e is not None][-MAX_PAST:],
        questions=[_question(q) for q in _list(d.get("questions", []), "the questions", MAX_QUESTIONS)],
        wait_for_predictions=_bool(d.get("wait_for_predictions", True), "wait_for_predictions"),
        tickets_for=_str(d.get("tickets_for", ""), "tickets_for", 64),
        tickets={
            _str(k, "a learner"): {
                _str(q, "a ticket question", 40): _str(a, "a ticket answer", 100) for q, a in _obj(v, "a ticket").items()
            }
            for k, v in _obj(d.get("tickets", {}), "the tickets").items()
        },
    )


def load(path: Path | None) -> tuple[Saved, str]:
    """The class kept at `path` and "" ; a fresh class and a line for the teacher when the file
    cannot be read as a class (it is moved to `<name>.damaged`, its runs stay in the run store)."""
    if path is None or not path.exists():
        return Saved(), ""
    try:
        size = path.stat().st_size
        _need(size <= MAX_BYTES, f"the file is larger than {MAX_BYTES // 2**20} MB")
        return decode(path.read_text(encoding="utf-8", errors="strict")), ""
    except (OSError, UnicodeDecodeError, ClassFileError) as error:
        aside = path.with_name(path.name + ".damaged")
        logging.getLogger(__name__).error("class state %s unreadable (%s): a fresh class starts", path, error)
        with contextlib.suppress(OSError):
            path.replace(aside)
        return Saved(), f"{error} · {aside}"
