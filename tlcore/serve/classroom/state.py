"""The class's state, server side: a join code, who joined, where the teacher leads, a pause, and
one experiment whose cells the learners' own runs fill; one object per server process behind one lock.

Streamlit cannot push to a session, so every page reads this object from the timer fragment it
already runs (studio.class_panels). A read copies a few small fields under the lock (microseconds):
30 learners polling every 3 s cost the server nothing it can measure (docs/class-experiment.md).

- Join: by code (tlcore.serve.classroom.codes) with a nickname; the class has a size limit (class.toml
  `class_size`). Wrong codes are limited per address (tlcore.serve.guess_limiter), and so are join
  attempts of any kind, so one address cannot flood the teacher's count. Rotating the code keeps who
  joined; the old code is then "expired".
- Lead: the teacher pushes "page X with these settings" (a version number: each learner's page
  follows a version once), pauses and resumes (the queue holds the learners' waiting jobs,
  tlcore.serve.jobs.JobQueue.hold).
- Experiment: cells assigned by tlcore.serve.classroom.design.assign, filled by ordinary queue jobs
  (tag `class`). A learner runs the cell's settings whatever their own are. A cell whose settings
  equal a finished cell's (a level that trains the same plan) is filled from it, not trained again.
  "Run it again" adds a round of new seeds to the same experiment.
- Kept: tlcore.serve.classroom.class_file. A restart loses nothing; a cell whose run was cut by the
  restart is open again.

Not for: drawing (studio.class_panels), running jobs (tlcore.serve.jobs), statistics
(tlcore.serve.classroom.stats).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from limits import parse, storage, strategies

from tlcore.core.events import HistorySnapshot
from tlcore.serve.classroom import class_file
from tlcore.serve.classroom.asking import ClassQuestions
from tlcore.serve.classroom.codes import MAX_RENAMES, Member, clean_nickname, given_nickname, new_code, normal_code
from tlcore.serve.classroom.design import (
    FACTORS,
    MAX_ROUNDS,
    MAX_SEEDS,
    SEED_BASE,
    Cell,
    CellResult,
    Experiment,
    assign,
    cell_config,
    make_cells,
    same_run,
    share,
    summarize,
)
from tlcore.serve.classroom.questions import Question
from tlcore.serve.guess_limiter import GuessLimiter
from tlcore.serve.store import learner_key
from tlcore.train.config import RunConfig

PRESENT_S = 30.0  # a member unseen for this long has left: their open cell goes to someone else
SETTLE_S = 20.0  # a member who joined this recently gets a part after those here longer (a script's fresh cookies wait)
JOINS_PER_ADDRESS = 60  # join attempts one address makes before it must wait (a class behind one NAT: 30)
WRONG_CODES = 10  # wrong codes one learner types before they must wait (60 s, then twice as long)
WRONG_CODES_PER_ADDRESS = 100  # ... one address, every learner on it together (a class of 30 behind one NAT, 3 typos each)
NEW_PER_ADDRESS = parse("30/minute")  # new members from one address (a room of 30 typing the code behind one NAT)
NEW_PER_SERVER = parse("90/minute")  # ... from every address together
SEAT_S = 600.0  # a member unseen this long (and without a part) holds no seat


@dataclass(frozen=True)
class Push:
    version: int  # 0: nothing pushed yet
    page: str = ""  # a page's file stem ("3_finetune")
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """What one learner is asked to run (a copy: reading it takes no lock)."""

    experiment: str
    cell: int  # index into the experiment's cells
    factor: str
    level: Any
    seed: int
    config: RunConfig
    job: str | None
    result: CellResult | None


@dataclass(frozen=True)
class RosterRow:
    """One member as the teacher's roster shows them."""

    key: str  # learner_key (never the id: that is their cookie)
    nickname: str
    number: int
    joined: float  # wall clock
    here: bool  # their page polled within PRESENT_S
    part: tuple[Any, int, int] | None  # (level, seed, round) of their cell, None without one
    state: str  # "none", "open" (to start), "running", "failed", "done", "waiting" (knocking at a locked class)


def by_address(members: list[tuple[str, Member]]) -> list[str]:
    """Learner keys in joining order, taken round-robin over their addresses: the first member of
    each address, then the second of each, ... so that a part goes to a second cookie of one address
    only once every other address's waiting member has one (a script's many cookies on one address
    wait behind the class; a class behind one NAT is one address and keeps its joining order)."""
    rank: dict[str | None, int] = {}
    order = []
    for i, (key, m) in enumerate(members):
        where = m.address if m.address is not None else f"unknown-{key}"
        rank[where] = rank.get(where, -1) + 1
        order.append((rank[where], i, key))
    return [key for _r, _i, key in sorted(order)]


def cell_state(cell: Cell) -> str:
    if cell.done:
        return "done"
    if cell.job:
        return "running"
    return "failed" if cell.failed else "open"


class JoinRefused(Exception):
    """Why a join did not happen: `reason` is a message key (class.join.<reason>)."""

    def __init__(self, reason: str, wait_s: float = 0.0):
        super().__init__(reason)
        self.reason, self.wait_s = reason, wait_s


class Classroom(ClassQuestions):
    """The teacher's class: one per server process (`shared()`), every method behind one lock."""

    def __init__(self, path: Path | None = None, *, size: int = 60, clock: Callable[[], float] = time.monotonic):
        self.path = path  # None: kept in memory only (tests, a server without a state folder)
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self.code: str | None = None  # None: no class open (learners see no join box)
        self.projector_key = ""  # the projector view's URL key (made when the class opens)
        self.members: dict[str, Member] = {}
        self.push_state = Push(0)
        self.paused = False
        self.hide_names = False
        self.experiment: Experiment | None = None
        self.past: list[Experiment] = []  # stopped experiments, newest last (export and reruns)
        self.locked = False  # no new joins (members stay; the teacher admits a late student)
        self.removed: set[str] = set()  # learner keys the teacher removed: they may not join again
        self.left: set[str] = set()  # learner keys that left this class (in memory): "Pause all" still holds them
        self.waiting: dict[str, tuple[str, str]] = {}  # a locked class: key -> (nickname, learner id), in memory
        self.questions: list[Question] = []  # asked, oldest first (the last MAX_QUESTIONS kept)
        self.wait_for_predictions = True  # a part's Start waits while a question is open
        self.tickets_for = ""  # the experiment whose exit tickets are open ("" = none)
        self.tickets: dict[str, dict[str, str]] = {}  # learner key -> ticket question id -> their answer
        self.file_problem = ""  # the class file could not be read (class_file.load): a line for the teacher
        self._wrong = GuessLimiter(free=WRONG_CODES_PER_ADDRESS, per_minute=10**9, forget_s=600.0, clock=clock)
        self._tries = GuessLimiter(free=JOINS_PER_ADDRESS, per_minute=10**9, forget_s=60.0, clock=clock)
        self._wrong_mine = GuessLimiter(free=WRONG_CODES, per_minute=10**9, forget_s=600.0, clock=clock)
        self._rates = strategies.MovingWindowRateLimiter(storage.MemoryStorage())  # new members (the `limits` library)
        self._load()

    # --- the teacher ---
    def open(self) -> str:
        """Open the class (once): its code. Opening again keeps the code and who joined."""
        with self._lock:
            if self.code is None or not self.projector_key:
                self.code = self.code or new_code()
                self.projector_key = secrets.token_urlsafe(12)
                self._save()
            return self.code

    def is_projector(self, key: str) -> bool:
        """Is `key` this class's projector key (the projector view's URL)?"""
        with self._lock:
            return bool(self.projector_key) and secrets.compare_digest(str(key), self.projector_key)

    def rotate(self) -> str:
        """A new code; who joined stays, the old code is refused as expired from now on."""
        with self._lock:
            self.code = new_code()
            self._save()
            return self.code

    def push(self, page: str, settings: dict[str, Any]) -> int:
        with self._lock:
            self.push_state = Push(self.push_state.version + 1, page, dict(settings))
            self._save()
            return self.push_state.version

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self.paused = bool(paused)
            self._save()

    def set_hide_names(self, hide: bool) -> None:
        with self._lock:
            self.hide_names = bool(hide)
            self._save()

    def start_experiment(
        self, factor: str, levels: Sequence[Any], seeds: int, base: RunConfig, *, same_examples: bool = True
    ) -> Experiment:
        """A new experiment (the running one, if any, is stopped first and kept for export).

        same_examples: every cell draws its training and validation examples with the base
        settings' seed (RunConfig.split_seed), so the cells' seeds change only the head's start,
        the batch order and the flips; all cells are measured on the same held-out examples and
        cells of the same level share their frozen prefix's features (computed once: the default
        demo's cell took 7.0 s with a new draw, 3.7 s on the same examples, on the 2-core box).
        False: each seed draws its own examples too (the spread then includes which examples a
        learner happened to get; nothing shared)."""
        if factor not in FACTORS:
            raise ValueError(f"unknown factor {factor!r}; known: {', '.join(FACTORS)}")
        allowed = FACTORS[factor].options(base)
        levels = [lv for lv in allowed if lv in list(levels)]  # the list's order, never a value from outside it
        if not levels:
            raise ValueError("choose at least one level")
        seeds = max(1, min(int(seeds), MAX_SEEDS))
        base = base.replace(split_seed=base.data_seed if same_examples else -1)
        for level in levels:  # every cell's settings must be valid before anyone runs one
            cell_config(base, factor, level, SEED_BASE)
        with self._lock:
            self._stop_locked()
            # the same design started anew goes on from the seeds it had: new evidence, not the same numbers again
            same = [e for e in self.past if e.factor == factor and e.levels == levels and e.base == base.to_dict()]
            first = max((s for e in same for s in e.seeds), default=SEED_BASE - 1) + 1
            seed_list = list(range(first, first + seeds))
            self.experiment = Experiment(
                id=f"exp-{secrets.token_hex(4)}",
                factor=factor,
                levels=levels,
                seeds=seed_list,
                base=base.to_dict(),
                cells=make_cells(len(levels), seed_list),
                started=time.time(),
            )
            self._assign_locked()
            self._save()
            return self.experiment

    def add_round(self) -> Experiment | None:
        """ "Run it again": a round of new seeds for every level, added to the same experiment (the
        last stopped one is reopened), so n grows round by round and the spread between seeds
        appears even in a small class. None: no experiment yet, or MAX_ROUNDS reached."""
        with self._lock:
            exp = self.experiment
            if exp is None and self.past:
                exp = self.past.pop()
                exp.stopped = None
                self.experiment = exp
            if exp is None or exp.round >= MAX_ROUNDS:
                return None
            per_round = exp.seeds_per_round
            first = max(exp.seeds, default=SEED_BASE - 1) + 1
            seeds = list(range(first, first + per_round))
            exp.seeds.extend(seeds)
            exp.cells.extend(make_cells(len(exp.levels), seeds, round=exp.round + 1))
            self._assign_locked()
            self._save()
            return copy.deepcopy(exp)

    def stop_experiment(self) -> None:
        with self._lock:
            self._stop_locked()
            self._save()

    def _stop_locked(self) -> None:
        if self.experiment is not None:
            self.experiment.stopped = time.time()
            self.past.append(self.experiment)
            del self.past[:-5]  # the last five, for export and reruns
            self.experiment = None

    def latest(self) -> Experiment | None:
        """The running experiment, else the last stopped one (a deep copy: safe to read anywhere)."""
        with self._lock:
            exp = self.experiment or (self.past[-1] if self.past else None)
            return copy.deepcopy(exp) if exp is not None else None

    # --- learners ---
    def join(self, code: str, learner: str, nickname: str = "", address: str | None = None, lang: str = "en") -> Member:
        """Join with a code: the member (a second tab of the same learner is the same member).
        lang: the language of a given nickname ("파란 수달 7" on a Korean page)."""
        where = address or "local"
        key = learner_key(learner)
        # wrong codes count per learner (a classmate's typos never lock out the rest of a class behind
        # one NAT) and, far more loosely, per address (a script's many cookies on one address)
        wait = max(self._tries.wait_s(where), self._wrong.wait_s(where), self._wrong_mine.wait_s(key))
        if wait > 0:
            raise JoinRefused("too_many", wait)
        self._tries.wrong(where)  # every attempt counts towards the address's rate
        typed = normal_code(code)
        with self._lock:
            if self.code is None or typed != self.code:
                known = self.code is not None and typed in self._old_codes
                if not known:
                    self._wrong.wrong(where)
                    self._wrong_mine.wrong(key)
                raise JoinRefused("expired" if known else "wrong")
            member = self.members.get(key)
            if member is None:
                if key in self.removed:
                    raise JoinRefused("removed")
                if self.locked:
                    if len(self.waiting) < self.size:  # the teacher sees who waits and may let them in
                        self.waiting[key] = (clean_nickname(nickname) or given_nickname(lang=lang), learner)
                    raise JoinRefused("locked")
                if self._seated_locked() >= self.size:
                    raise JoinRefused("full")
                wait = self._new_member_wait(where)
                if wait > 0:  # new members come no faster than a room of students can type
                    raise JoinRefused("busy", wait)
                member = self._add_locked(key, learner, clean_nickname(nickname) or given_nickname(lang=lang))
                member.address = where
                self._rates.hit(NEW_PER_ADDRESS, "join", where)
                self._rates.hit(NEW_PER_SERVER, "join", "server")
            elif clean_nickname(nickname):
                member.nickname = clean_nickname(nickname)
            member.seen = self._clock()
            self._ids[key] = learner
            self._wrong_mine.right(key)
            self._assign_locked()
            self._save()
            return dataclasses.replace(member)

    def _new_member_wait(self, where: str) -> float:
        """Seconds before a new member from `where` may join (0: now): NEW_PER_ADDRESS, NEW_PER_SERVER."""
        waits = [
            self._rates.get_window_stats(limit, "join", who).reset_time - time.time()
            for limit, who in ((NEW_PER_ADDRESS, where), (NEW_PER_SERVER, "server"))
            if not self._rates.test(limit, "join", who)
        ]
        return max([0.0, *waits])

    def _seated_locked(self) -> int:
        """Seats taken: members seen in the last SEAT_S, or with a part of the running experiment
        (a member who never came back holds no seat: a script's made-up learners cannot keep a class full)."""
        now = self._clock()
        parts = {c.learner for c in self.experiment.cells} if self.experiment is not None else set()
        return sum(1 for k, m in self.members.items() if now - m.seen <= SEAT_S or k in parts)

    # --- the teacher's seats ---
    def set_locked(self, locked: bool) -> None:
        """A locked class takes no new joins; members stay, a late student waits to be let in."""
        with self._lock:
            self.locked = bool(locked)
            if not self.locked:
                self.waiting.clear()
            self._save()

    def admit(self, key: str) -> bool:
        """Let a student who knocked at the locked class in (`key`: their learner key)."""
        with self._lock:
            asked = self.waiting.pop(key, None)
            if asked is None or key in self.members:
                return False
            self.removed.discard(key)
            self._add_locked(key, asked[1], asked[0])
            self._save()
            return True

    def remove(self, key: str) -> bool:
        """The teacher removes a member (`key`: their learner key): their seat and their open cell
        are free, and they may not join again (kept across a restart) until admitted."""
        with self._lock:
            if self.members.pop(key, None) is None:
                return False
            self.removed.add(key)
            self._ids.pop(key, None)
            for cell in self.experiment.cells if self.experiment else ():
                if cell.learner == key and not cell.done:
                    cell.learner, cell.job = None, None
            self._assign_locked()
            self._save()
            return True

    def _add_locked(self, key: str, learner: str, name: str) -> Member:
        number = max((m.number for m in self.members.values()), default=0) + 1
        member = Member(name, number, time.time(), self._clock(), arrived=self._clock())
        self.members[key] = member
        self._ids[key] = learner
        return member

    def roster(self) -> list[RosterRow]:
        """Who joined, in joining order: here now or not, their part of the experiment and its run's state."""
        with self._lock:
            now, exp = self._clock(), self.experiment or (self.past[-1] if self.past else None)
            rows = []
            for key, m in sorted(self.members.items(), key=lambda kv: kv[1].number):
                cell = self._cell_of(exp, key) if exp is not None else None
                state = "none" if cell is None else cell_state(cell)
                part = None if cell is None else (exp.levels[cell.level], cell.seed, cell.round)
                rows.append(RosterRow(key, m.nickname, m.number, m.joined, now - m.seen <= PRESENT_S, part, state))
            waiting = [(k, name) for k, (name, _id) in self.waiting.items()]
        return rows + [RosterRow(k, name, 0, 0.0, True, None, "waiting") for k, name in waiting]

    def leave(self, learner: str) -> None:
        with self._lock:
            key = learner_key(learner)
            if self.members.pop(key, None) is not None:
                self.left.add(key)  # leaving is no way around "Pause all"
                self._assign_locked()
                self._save()

    def under_pause(self, learner: str) -> bool:
        """Is this learner held by the teacher's "Pause all" (a member, or one who left the class)?"""
        key = learner_key(learner)
        with self._lock:
            return self.paused and (key in self.members or key in self.left)

    def rename(self, learner: str, nickname: str) -> str | None:
        """The learner's new name as the class shows it; None when it is empty, names the teacher,
        or the learner already changed their name MAX_RENAMES times."""
        name = clean_nickname(nickname)
        with self._lock:
            member = self.members.get(learner_key(learner))
            if member is None or not name or member.renames >= MAX_RENAMES:
                return None
            if name != member.nickname:
                member.nickname, member.renames = name, member.renames + 1
                self._save_soon()
            return name

    def is_member(self, learner: str) -> bool:
        key = learner_key(learner)
        with self._lock:
            return key in self.members

    def member(self, learner: str) -> Member | None:
        with self._lock:
            m = self.members.get(learner_key(learner))
            return dataclasses.replace(m) if m is not None else None

    def seen(self, learner: str) -> Member | None:
        """A member's page polled: they are here (their cell stays theirs). None: not in the class."""
        key = learner_key(learner)
        with self._lock:
            m = self.members.get(key)
            if m is None:
                return None
            was_away = self._clock() - m.seen > PRESENT_S
            m.seen = self._clock()
            self._ids[key] = learner
            if was_away:
                self._assign_locked()
            return dataclasses.replace(m)

    def count(self) -> tuple[int, int]:
        """(joined, here now)."""
        now = self._clock()
        with self._lock:
            return len(self.members), sum(1 for m in self.members.values() if now - m.seen <= PRESENT_S)

    def shown_name(self, key: str | None, hide: bool | None = None) -> str:
        """How the projector names a member (`key`: a cell's learner): nickname, or #number when names are hidden."""
        with self._lock:
            m = self.members.get(key or "")
            hide = self.hide_names if hide is None else hide
        if m is None:
            return "?"
        return f"#{m.number}" if hide else m.nickname

    # --- the experiment's cells ---
    def assignment(self, learner: str) -> Assignment | None:
        """This learner's cell in the running experiment (assigning one if a cell is free)."""
        key = learner_key(learner)
        with self._lock:
            exp = self.experiment
            if exp is None or key not in self.members:
                return None
            cell = self._cell_of(exp, key)
            if cell is None or cell.done:  # none yet, or theirs is done: a (next) free part, if any
                self._assign_locked()
                cell = self._cell_of(exp, key)
            if cell is None:
                return None
            i = exp.cells.index(cell)
            return Assignment(exp.id, i, exp.factor, exp.levels[cell.level], cell.seed, exp.config(cell), cell.job, cell.result)

    @staticmethod
    def _cell_of(exp: Experiment, key: str) -> Cell | None:
        mine = [c for c in exp.cells if c.learner == key]
        return next((c for c in mine if not c.done), mine[-1] if mine else None)

    def reuse(self, learner: str) -> CellResult | None:
        """Fill this learner's cell from a finished cell with the very same settings (no training)."""
        key = learner_key(learner)
        with self._lock:
            exp = self.experiment
            cell = self._cell_of(exp, key) if exp is not None else None
            if cell is None or cell.done:
                return None
            mine = exp.config(cell)
            for other in [c for e in (*self.past, exp) for c in e.cells]:
                if other.result is not None and other is not cell and same_run(self._config_of(other), mine):
                    m = self.members.get(key)
                    cell.result = dataclasses.replace(
                        other.result,
                        nickname=m.nickname if m else "?",
                        number=m.number if m else 0,
                        reused=True,
                    )
                    self._save()
                    return cell.result
            return None

    def _config_of(self, cell: Cell) -> RunConfig | None:
        for exp in (*self.past, self.experiment):
            if exp is not None and any(c is cell for c in exp.cells):
                return exp.config(cell)
        return None

    def started(self, learner: str, experiment: str, cell: int, job: str) -> bool:
        """The learner's run for `cell` is queued as `job`. False when the cell is no longer theirs."""
        with self._lock:
            exp = self.experiment
            if exp is None or exp.id != experiment or not 0 <= cell < len(exp.cells):
                return False
            c = exp.cells[cell]
            if c.learner != learner_key(learner) or c.done:
                return False
            c.job, c.failed = job, ""
            self._save()
            return True

    def collect(self, read: Callable[[str, str], HistorySnapshot | str | None], only: str | None = None) -> int:
        """Fill cells whose run has ended: `read(job, learner)` (the learner's id, the job's owner)
        gives the run's final snapshot, a state ("failed", "cancelled", "interrupted", "gone") or
        None while it goes on. Returns how many cells changed. Called by the pages' timer
        fragments; cheap when nothing ended. only: one learner's cells (their own page's poll)."""
        mine = learner_key(only) if only is not None else None
        with self._lock:
            exp = self.experiment
            if exp is None:
                return 0
            waiting = [
                (i, c.job, c.learner)
                for i, c in enumerate(exp.cells)
                if c.job and not c.done and c.learner and (mine is None or c.learner == mine)
            ]
        changed = 0
        for i, job, key in waiting:
            owner = self._ids.get(key)
            outcome = read(job, owner) if owner is not None else "gone"
            learner = key
            if outcome is None:
                continue
            with self._lock:
                if self.experiment is not exp or exp.cells[i].job != job:
                    continue
                cell = exp.cells[i]
                m = self.members.get(learner)
                result = (
                    summarize(outcome, nickname=m.nickname if m else "?", number=m.number if m else 0)
                    if isinstance(outcome, HistorySnapshot)
                    else None
                )
                if result is not None:
                    cell.result = result
                else:  # failed, cancelled or gone: the cell is open again for its learner
                    cell.job, cell.failed = None, outcome if isinstance(outcome, str) else "failed"
                changed += 1
        if changed:
            with self._lock:
                self._assign_locked()  # a learner whose run is done takes the next free part
                self._save()
        return changed

    def _assign_locked(self) -> None:
        if self.experiment is None or self.experiment.stopped is not None:
            return
        now = self._clock()
        here = [(k, m) for k, m in sorted(self.members.items(), key=lambda kv: kv[1].number) if now - m.seen <= PRESENT_S]
        settled = [(k, m) for k, m in here if now - m.arrived >= SETTLE_S]  # here a while: parts go to them first
        fresh = [(k, m) for k, m in here if now - m.arrived < SETTLE_S]
        assign(self.experiment.cells, by_address(settled) + by_address(fresh))
        addresses = [(k, m.address if m.address is not None else f"unknown-{k}") for k, m in here]
        share(self.experiment.cells, addresses, {k for k, _ in settled})

    def reassign(self, index: int, key: str) -> bool:
        """The teacher gives an unfinished part to a member (`key`: their learner key); a run going
        for it is left to finish for its learner's record but no longer fills the part."""
        with self._lock:
            exp = self.experiment
            if exp is None or not 0 <= index < len(exp.cells) or key not in self.members or exp.cells[index].done:
                return False
            for cell in exp.cells:  # one open part at a time: the member's other open part is freed
                if cell.learner == key and not cell.done:
                    cell.learner, cell.job = None, None
            exp.cells[index].learner, exp.cells[index].job, exp.cells[index].failed = key, None, ""
            self._assign_locked()
            self._save()
            return True

    # --- reading it all (the projected view, the sidebar) ---
    def view(self) -> ClassView:
        with self._lock:
            now = self._clock()
            return ClassView(
                code=self.code,
                joined=len(self.members),
                here=sum(1 for m in self.members.values() if now - m.seen <= PRESENT_S),
                size=self.size,
                push=self.push_state,
                paused=self.paused,
                hide_names=self.hide_names,
                experiment=copy.deepcopy(self.experiment) if self.experiment else None,
            )

    # --- kept on disk ---
    _old_codes: list[str]
    _ids: dict[str, str]  # learner_key -> the learner's id, in memory only (to read their jobs)

    def _saved(self) -> class_file.Saved:
        return class_file.Saved(
            code=self.code,
            projector=self.projector_key,
            old_codes=self._old_codes,
            members=self.members,
            push=(self.push_state.version, self.push_state.page, self.push_state.settings),
            paused=self.paused,
            hide_names=self.hide_names,
            locked=self.locked,
            removed=sorted(self.removed),
            experiment=self.experiment,
            past=self.past,
            questions=self.questions,
            wait_for_predictions=self.wait_for_predictions,
            tickets_for=self.tickets_for,
            tickets=self.tickets,
        )

    def _save(self) -> None:  # caller holds the lock
        self._dirty = False
        if self.code is not None and (not self._old_codes or self._old_codes[-1] != self.code):
            self._old_codes.append(self.code)
        if self.path is None:
            return
        try:
            class_file.write_private(self.path, class_file.encode(self._saved()))
        except OSError:  # a full or read-only disk must not stop a class: it goes on in memory
            logging.getLogger(__name__).exception("the class could not be saved to %s", self.path)

    def _load(self) -> None:
        """The kept class; a file that cannot be read as one is moved aside (class_file.load) and
        `file_problem` says so to the teacher."""
        self._ids = {}
        saved, self.file_problem = class_file.load(self.path)
        self.code, self._old_codes, self.projector_key = saved.code, list(saved.old_codes), saved.projector
        away = self._clock() - PRESENT_S - 1  # nobody is "here" until their page polls again
        self.members = {k: dataclasses.replace(m, seen=away) for k, m in saved.members.items()}
        self.push_state = Push(*saved.push)
        self.paused, self.hide_names, self.locked = saved.paused, saved.hide_names, saved.locked
        self.removed = set(saved.removed)
        self.experiment, self.past = saved.experiment, saved.past
        self.questions, self.wait_for_predictions = saved.questions, saved.wait_for_predictions
        self.tickets_for, self.tickets = saved.tickets_for, saved.tickets
        self._dirty, self._answers_saved = False, -math.inf
        for cell in self.experiment.cells if self.experiment else ():
            if cell.job and not cell.done:  # its run was cut by the restart: the cell is open again
                cell.job, cell.failed = None, "interrupted"


@dataclass(frozen=True)
class ClassView:
    code: str | None
    joined: int
    here: int
    size: int
    push: Push
    paused: bool
    hide_names: bool
    experiment: Experiment | None
