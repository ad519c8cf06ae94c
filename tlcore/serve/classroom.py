"""The class as one experiment, server side: a join code, who joined, where the teacher leads,
a pause, and one experiment whose cells the learners' own runs fill.

Streamlit cannot push to a session, so this is one process-level object behind one lock that
every page reads from the timer fragment it already runs (studio.class_panels). A read copies a
few small fields under the lock (microseconds): 30 learners polling every 3 s cost the server
nothing it can measure (docs/class-experiment.md).

- Join: a 6-character code from an alphabet without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B),
  typed on the start page or carried by the join link (its QR on the projector). A learner joins
  with a nickname of their own or one given ("Blue Otter 7"); the class has a size limit
  (class.toml `class_size`). Wrong codes are limited per address (tlcore.serve.guess_limiter), and so are
  join attempts of any kind, so one address cannot flood the teacher's count. Rotating the code
  keeps who joined; the old code is then "expired".
- Lead: the teacher pushes "page X with these settings" (a version number: each learner's page
  follows a version once), pauses and resumes (the queue holds the learners' waiting jobs,
  tlcore.serve.jobs.JobQueue.hold).
- Experiment: a factor (FACTORS), its levels and seeds; one cell per (level, seed), assigned by
  `assign` (a pure function of the cells and who is here), filled by ordinary queue jobs (tag
  `class`). A learner runs the cell's settings whatever their own are. A cell whose settings equal
  a finished cell's (a rerun, a level that trains the same plan) is filled from it, not trained again.
- Kept: `class.json` in the state folder (tlcore.core.offline.state_dir), replaced atomically,
  0600; each cell keeps its run's summary (accuracy per epoch, mean gradient norm per layer group),
  the runs themselves are jobs in the run store (tlcore.serve.store). A restart loses neither;
  a cell whose run was cut by the restart is open again.

Not for: drawing (studio.class_panels), running jobs (tlcore.serve.jobs), statistics beyond a
level's mean and spread (`level_stats`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlcore.core import offline
from tlcore.core.events import Done, HistorySnapshot
from tlcore.models import catalog
from tlcore.serve.guess_limiter import GuessLimiter
from tlcore.serve.store import learner_key
from tlcore.train import strategies
from tlcore.train.config import RunConfig

ALPHABET = "ACDEFGHJKMNPQRTUVWXY3467"  # read aloud without doubt: no 0 O 1 I L 2 Z 5 S 8 B 9
CODE_LENGTH = 6
PRESENT_S = 30.0  # a member unseen for this long has left: their open cell goes to someone else
SEED_BASE = 1  # seeds are 1, 2, ...: "seed 7" reads as the seventh
MAX_SEEDS = 20
JOINS_PER_ADDRESS = 60  # join attempts one address makes before it must wait (a class behind one NAT: 30)
WRONG_CODES = 10  # wrong codes one address types before it must wait (60 s, then twice as long)
ADJECTIVES = ("Blue", "Red", "Green", "Gold", "Silver", "Quick", "Calm", "Brave", "Bright", "Lucky", "Kind", "Bold")
ANIMALS = ("Otter", "Fox", "Owl", "Panda", "Tiger", "Heron", "Lynx", "Koala", "Seal", "Whale", "Crane", "Hare")
NICKNAME_MAX = 24
TAG = "class"  # the queue tag of a class experiment's runs


def new_code(rng: Callable[[Sequence[str]], str] = secrets.choice) -> str:
    return "".join(rng(ALPHABET) for _ in range(CODE_LENGTH))


def normal_code(typed: str) -> str:
    """What a learner typed, as a code: upper case, spaces and dashes dropped ("abc-d3f" -> "ABCD3F")."""
    return "".join(ch for ch in str(typed).upper() if not ch.isspace() and ch != "-")[:32]


def given_nickname(rng: secrets.SystemRandom | None = None) -> str:
    rng = rng or secrets.SystemRandom()
    return f"{rng.choice(ADJECTIVES)} {rng.choice(ANIMALS)} {rng.randint(1, 99)}"


def clean_nickname(typed: str) -> str:
    """A nickname as shown: printable, one line, at most NICKNAME_MAX characters ('' when nothing is left)."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(typed))
    return " ".join(text.split())[:NICKNAME_MAX]


# ----------------------------------------------------------------------------- factors


@dataclass(frozen=True)
class Factor:
    """A setting the class varies: the RunConfig field it sets, the levels a teacher may pick for
    the current settings, and the ones offered first."""

    name: str
    options: Callable[[RunConfig], tuple]
    first: Callable[[RunConfig], tuple]
    fixed: Callable[[RunConfig, Any], dict[str, Any]] = lambda _base, _level: {}  # what a level also sets


def _strategies(base: RunConfig) -> tuple:
    if base.task == "text":
        return ("scratch", "linear_probe", "partial", "lora", "full")
    return ("scratch", "linear_probe", "partial", "full", "full_llrd")


def _body_groups(base: RunConfig) -> int:
    try:
        if base.task == "text":
            return 0
        return max(len(catalog.group_param_counts(base.backbone)) - 1, 1)
    except Exception:  # noqa: BLE001 -- an unknown backbone: the config's own check says so at submit
        return 1


def _depths(base: RunConfig) -> tuple:
    return tuple(range(0, _body_groups(base) + 1))


def _first_depths(base: RunConfig) -> tuple:
    body = _body_groups(base)
    return tuple(sorted({0, body // 2, body}))


def _backbones(base: RunConfig) -> tuple:
    family = "text" if base.task == "text" else "vision"
    return tuple(b for b in catalog.backbone_names(family) if catalog.weights_cached(b))


FACTORS: dict[str, Factor] = {
    "strategy": Factor(
        "strategy", _strategies, lambda b: ("linear_probe", "partial", "full") if b.task == "image" else ("linear_probe", "lora")
    ),
    "freeze_depth": Factor("freeze_depth", _depths, _first_depths, lambda _b, _level: {"strategy": "partial"}),
    "per_class": Factor("per_class", lambda _b: (5, 10, 20, 50, 100), lambda _b: (5, 20, 50)),
    "lr": Factor("lr", lambda _b: (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2), lambda _b: (1e-4, 1e-3, 1e-2)),
    "backbone": Factor("backbone", _backbones, _backbones),
}


def cell_config(base: RunConfig, factor: str, level: Any, seed: int) -> RunConfig:
    """The settings a cell runs: the fixed settings with the factor at its level and the cell's seed."""
    spec = FACTORS[factor]
    return base.replace(**spec.fixed(base, level), **{factor: level}, seed=int(seed))


# ----------------------------------------------------------------------------- cells and results


@dataclass
class CellResult:
    """What the projected view needs of a finished run (a few hundred bytes, kept with the class)."""

    acc: float  # validation accuracy after the last epoch, 0..1
    accs: list[float]  # after each epoch
    grads: dict[str, float]  # mean L2 gradient norm per trained layer group over the run ({} if none)
    frozen: list[str]  # groups frozen (no norm)
    seconds: float  # the run's wall time
    nickname: str  # who filled it, as they chose to be called
    number: int  # the learner's number in the class (shown when names are hidden)
    reused: bool = False  # filled from an identical finished cell, not trained again


@dataclass
class Cell:
    level: int  # index into the experiment's levels
    seed: int
    learner: str | None = None  # who runs it now (learner_key of their id: the id is their cookie, a secret)
    job: str | None = None  # the queue job filling it
    result: CellResult | None = None
    failed: str = ""  # the last run's failure, in words (the cell is open again)

    @property
    def done(self) -> bool:
        return self.result is not None


@dataclass
class Experiment:
    id: str
    factor: str
    levels: list[Any]
    seeds: list[int]
    base: dict[str, Any]  # RunConfig.to_dict() of the fixed settings
    cells: list[Cell]
    started: float  # wall clock
    stopped: float | None = None
    round: int = 1  # 2, 3, ... after reruns (new seeds each time)

    @property
    def running(self) -> bool:
        return self.stopped is None

    @property
    def same_examples(self) -> bool:
        """Every cell draws the same examples (the seeds vary the training only)."""
        return int(self.base.get("split_seed", -1)) >= 0

    def config(self, cell: Cell) -> RunConfig:
        return cell_config(RunConfig.from_dict(self.base), self.factor, self.levels[cell.level], cell.seed)

    def filled(self) -> int:
        return sum(c.done for c in self.cells)


def make_cells(levels: int, seeds: Iterable[int]) -> list[Cell]:
    """Seed-major order (every level of the first seed, then of the second, ...): learners taking
    cells in this order keep the levels balanced at every moment."""
    return [Cell(level, seed) for seed in seeds for level in range(levels)]


def assign(cells: list[Cell], present: Sequence[str], running: Callable[[Cell], bool] = lambda c: c.job is not None) -> None:
    """Give every present learner one cell, in place: a learner keeps their cell; a cell whose
    learner is gone is free again unless its run is going or done; each learner without a cell
    takes the first free cell in seed-major order, so levels stay balanced as learners join and
    leave. More learners than cells: the rest have none (they watch the projected view)."""
    here = set(present)
    for cell in cells:
        if cell.learner is not None and cell.learner not in here and not cell.done and not running(cell):
            cell.learner, cell.job = None, None
    holding = {c.learner for c in cells if c.learner is not None and not c.done}
    finished = {c.learner for c in cells if c.learner is not None and c.done}
    free = iter([c for c in cells if c.learner is None and not c.done])
    for learner in present:
        if learner in holding or learner in finished:
            continue
        cell = next(free, None)
        if cell is None:
            return
        cell.learner = learner
        holding.add(learner)


@dataclass(frozen=True)
class LevelStats:
    level: Any
    n: int  # finished seeds
    mean: float | None
    sd: float | None  # sample standard deviation (n >= 2)
    ci95: float | None  # half-width of the 95% interval of the mean (Student's t, n >= 2)
    accs: tuple[float, ...]
    pending: int  # cells of this level not finished yet
    running: int = 0  # ... of which a run is queued or going


# Student's t, two-sided 95%, by degrees of freedom (1..30); 1.96 past that.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t95(df: int) -> float:
    return _T95[df - 1] if 1 <= df <= len(_T95) else 1.96


def level_stats(experiment: Experiment) -> list[LevelStats]:
    """Per level: every finished seed's accuracy, their mean, standard deviation and 95% interval."""
    out = []
    for i, level in enumerate(experiment.levels):
        cells = [c for c in experiment.cells if c.level == i]
        accs = tuple(c.result.acc for c in cells if c.result is not None)
        n = len(accs)
        mean = statistics.fmean(accs) if n else None
        sd = statistics.stdev(accs) if n >= 2 else None
        ci = t95(n - 1) * sd / math.sqrt(n) if sd is not None else None
        running = sum(1 for c in cells if c.job and c.result is None)
        out.append(LevelStats(level, n, mean, sd, ci, accs, len(cells) - n, running))
    return out


def grad_table(experiment: Experiment) -> tuple[list[str], list[list[float | None]]]:
    """The class-wide gradient-norm map: layer groups (shallow to deep) x levels, each the mean over
    the level's finished runs of the run's mean norm; None where the group was frozen in every run."""
    groups: list[str] = []
    for cell in experiment.cells:
        if cell.result is not None:
            for g in [*cell.result.frozen, *cell.result.grads]:
                if g not in groups:
                    groups.append(g)
    rows = []
    for g in groups:
        row = []
        for i in range(len(experiment.levels)):
            values = [c.result.grads[g] for c in experiment.cells if c.level == i and c.result and g in c.result.grads]
            row.append(statistics.fmean(values) if values else None)
        rows.append(row)
    return groups, rows


def summarize(snapshot: HistorySnapshot, *, nickname: str, number: int) -> CellResult | None:
    """A finished run's summary, or None when it did not finish (failed, cancelled, still going)."""
    if not isinstance(snapshot.final, Done):
        return None
    evals = snapshot.evals
    if not evals:
        return None
    started = snapshot.started
    sums: dict[str, list[float]] = {}
    for step in snapshot.steps:
        for group, norm in step.grad_norms.items():
            if math.isfinite(norm):
                sums.setdefault(group, []).append(norm)
    return CellResult(
        acc=float(evals[-1].val_acc),
        accs=[float(e.val_acc) for e in evals],
        grads={g: statistics.fmean(v) for g, v in sums.items()},
        frozen=list(started.frozen) if started else [],
        seconds=float(evals[-1].seconds),
        nickname=nickname,
        number=number,
    )


# ----------------------------------------------------------------------------- the class


@dataclass
class Member:
    nickname: str
    number: int  # 1, 2, ... in joining order: what the projector shows when names are hidden
    joined: float  # wall clock
    seen: float = field(default_factory=time.monotonic)  # last poll (not kept: a restart sees everyone anew)


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


class JoinRefused(Exception):
    """Why a join did not happen: `reason` is a message key (class.join.<reason>)."""

    def __init__(self, reason: str, wait_s: float = 0.0):
        super().__init__(reason)
        self.reason, self.wait_s = reason, wait_s


class Classroom:
    """The teacher's class: one per server process (`shared()`), every method behind one lock."""

    def __init__(self, path: Path | None = None, *, size: int = 60, clock: Callable[[], float] = time.monotonic):
        self.path = path  # None: kept in memory only (tests, a server without a state folder)
        self.size = size
        self._clock = clock
        self._lock = threading.Lock()
        self.code: str | None = None  # None: no class open (learners see no join box)
        self.members: dict[str, Member] = {}
        self.push_state = Push(0)
        self.paused = False
        self.hide_names = False
        self.experiment: Experiment | None = None
        self.past: list[Experiment] = []  # stopped experiments, newest last (export and reruns)
        self._wrong = GuessLimiter(free=WRONG_CODES, per_minute=10**9, forget_s=600.0, clock=clock)
        self._tries = GuessLimiter(free=JOINS_PER_ADDRESS, per_minute=10**9, forget_s=60.0, clock=clock)
        self._load()

    # --- the teacher ---
    def open(self) -> str:
        """Open the class (once): its code. Opening again keeps the code and who joined."""
        with self._lock:
            if self.code is None:
                self.code = new_code()
                self._save()
            return self.code

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
            rounds = sum(1 for e in self.past if e.factor == factor and e.levels == levels and e.base == base.to_dict())
            first = SEED_BASE + rounds * seeds  # a rerun adds new seeds: more evidence, not the same numbers again
            seed_list = list(range(first, first + seeds))
            self.experiment = Experiment(
                id=f"exp-{secrets.token_hex(4)}",
                factor=factor,
                levels=levels,
                seeds=seed_list,
                base=base.to_dict(),
                cells=make_cells(len(levels), seed_list),
                started=time.time(),
                round=rounds + 1,
            )
            self._assign_locked()
            self._save()
            return self.experiment

    def rerun(self) -> Experiment | None:
        """The last experiment again, with new seeds."""
        with self._lock:
            last = self.experiment or (self.past[-1] if self.past else None)
        if last is None:
            return None
        base = RunConfig.from_dict(last.base)
        return self.start_experiment(last.factor, last.levels, len(last.seeds), base, same_examples=base.split_seed >= 0)

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
            return _copy(exp) if exp is not None else None

    # --- learners ---
    def join(self, code: str, learner: str, nickname: str = "", address: str | None = None) -> Member:
        """Join with a code: the member (a second tab of the same learner is the same member)."""
        where = address or "local"
        wait = max(self._tries.wait_s(where), self._wrong.wait_s(where))
        if wait > 0:
            raise JoinRefused("too_many", wait)
        self._tries.wrong(where)  # every attempt counts towards the address's rate
        typed = normal_code(code)
        key = learner_key(learner)
        with self._lock:
            if self.code is None or typed != self.code:
                known = self.code is not None and typed in self._old_codes
                if not known:
                    self._wrong.wrong(where)
                raise JoinRefused("expired" if known else "wrong")
            member = self.members.get(key)
            if member is None:
                if len(self.members) >= self.size:
                    raise JoinRefused("full")
                name = clean_nickname(nickname) or given_nickname()
                member = Member(name, max((m.number for m in self.members.values()), default=0) + 1, time.time())
                self.members[key] = member
            elif clean_nickname(nickname):
                member.nickname = clean_nickname(nickname)
            member.seen = self._clock()
            self._ids[key] = learner
            self._wrong.right(where)
            self._assign_locked()
            self._save()
            return dataclasses.replace(member)

    def leave(self, learner: str) -> None:
        with self._lock:
            if self.members.pop(learner_key(learner), None) is not None:
                self._assign_locked()
                self._save()

    def rename(self, learner: str, nickname: str) -> str | None:
        name = clean_nickname(nickname)
        with self._lock:
            member = self.members.get(learner_key(learner))
            if member is None or not name:
                return None
            member.nickname = name
            self._save()
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
            if cell is None:
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
                self._save()
        return changed

    def _assign_locked(self) -> None:
        if self.experiment is None or self.experiment.stopped is not None:
            return
        now = self._clock()
        present = [k for k, m in sorted(self.members.items(), key=lambda kv: kv[1].number) if now - m.seen <= PRESENT_S]
        assign(self.experiment.cells, present)

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
                experiment=_copy(self.experiment) if self.experiment else None,
            )

    # --- kept on disk ---
    _old_codes: list[str]
    _ids: dict[str, str]  # learner_key -> the learner's id, in memory only (to read their jobs)

    def _state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "code": self.code,
            "old_codes": self._old_codes[-20:],
            "members": {k: {"nickname": m.nickname, "number": m.number, "joined": m.joined} for k, m in self.members.items()},
            "push": dataclasses.asdict(self.push_state),
            "paused": self.paused,
            "hide_names": self.hide_names,
            "experiment": _exp_dict(self.experiment),
            "past": [_exp_dict(e) for e in self.past],
        }

    def _save(self) -> None:  # caller holds the lock
        if self.code is not None and (not self._old_codes or self._old_codes[-1] != self.code):
            self._old_codes.append(self.code)
        if self.path is None:
            return
        try:
            write_private(self.path, json.dumps(self._state(), separators=(",", ":")))
        except OSError:  # a full or read-only disk must not stop a class: it goes on in memory
            logging.getLogger(__name__).exception("the class could not be saved to %s", self.path)

    def _load(self) -> None:
        self._old_codes, self._ids = [], {}
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.code = data.get("code")
            self._old_codes = list(data.get("old_codes", []))
            now = self._clock() - PRESENT_S - 1  # nobody is "here" until their page polls again
            self.members = {
                k: Member(str(v["nickname"]), int(v["number"]), float(v["joined"]), now) for k, v in data["members"].items()
            }
            push = data.get("push") or {}
            self.push_state = Push(int(push.get("version", 0)), str(push.get("page", "")), dict(push.get("settings", {})))
            self.paused, self.hide_names = bool(data.get("paused")), bool(data.get("hide_names"))
            self.experiment = _exp_from(data.get("experiment"))
            for cell in self.experiment.cells if self.experiment else ():
                if cell.job and not cell.done:  # its run was cut by the restart: the cell is open again
                    cell.job = None
            self.past = [e for e in (_exp_from(d) for d in data.get("past", [])) if e is not None]
        except (OSError, ValueError, KeyError, TypeError) as error:  # a damaged file: start a fresh class, keep the file aside
            logging.getLogger(__name__).error("class state %s unreadable (%s): a fresh class starts", self.path, error)
            with contextlib.suppress(OSError):
                self.path.replace(self.path.with_suffix(".damaged"))
            self.__init__(self.path, size=self.size, clock=self._clock)


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


def same_run(a: RunConfig | None, b: RunConfig) -> bool:
    """Would these settings train the very same model (device and logging aside)?"""
    if a is None:
        return False
    ignore = {"device", "log_every"}
    da, db = a.to_dict(), b.to_dict()
    return all(da[k] == db[k] for k in da if k not in ignore)


def _copy(exp: Experiment) -> Experiment:
    return _exp_from(_exp_dict(exp))


def _exp_dict(exp: Experiment | None) -> dict | None:
    return dataclasses.asdict(exp) if exp is not None else None


def _exp_from(data: dict | None) -> Experiment | None:
    if not data:
        return None
    cells = []
    for c in data["cells"]:
        result = CellResult(**c["result"]) if c.get("result") else None
        cells.append(Cell(int(c["level"]), int(c["seed"]), c.get("learner"), c.get("job"), result, c.get("failed", "")))
    fields = {k: v for k, v in data.items() if k != "cells"}
    return Experiment(**fields, cells=cells)


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


def predicted(experiment: Experiment) -> dict[str, Any]:
    """What the seeds' matrix predicts for this experiment's data and backbone: the similarity, the
    size, and the level the matrix would choose (None when the factor is not one it chooses)."""
    base = RunConfig.from_dict(experiment.base)
    try:
        similarity = catalog.similarity_of(base.dataset, base.backbone) if base.task == "image" else "different"
    except Exception:  # noqa: BLE001 -- a folder or an unknown dataset: call it different
        similarity = "different"
    size = strategies.size_of(base.per_class)
    rec = strategies.recommend(similarity, size, _body_groups(base) + 1)
    choice: Any = None
    if experiment.factor == "strategy":
        choice = rec.strategy if rec.strategy in experiment.levels else None
    elif experiment.factor == "freeze_depth":
        choice = min(experiment.levels, key=lambda d: abs(d - rec.freeze_depth))
    return {"similarity": similarity, "size": size, "strategy": rec.strategy, "freeze_depth": rec.freeze_depth, "level": choice}


_shared: Classroom | None = None
_shared_lock = threading.Lock()


def shared(size: int = 60) -> Classroom:
    """The server's one class, kept in `state_dir()/class.json`."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Classroom(offline.state_dir() / "class.json", size=size)
        return _shared


def run_alone(
    base: RunConfig,
    factor: str,
    levels: Sequence[Any],
    seeds: int,
    *,
    run: Callable[..., dict | None] | None = None,
    on_cell: Callable[[Experiment, int], None] | None = None,
    same_examples: bool = True,
) -> Experiment:
    """The class experiment without a class (`python -m tlcore class-experiment`): one virtual
    learner per cell, each cell's run one after the other, filled through the same assignment,
    collection and reuse as in class, so its figures reproduce the projected view's."""
    from tlcore.core.events import History

    if run is None:
        from tlcore.train.recipe import run
    room = Classroom(size=MAX_SEEDS * max(len(levels), 1))
    code = room.open()
    exp = room.start_experiment(factor, levels, seeds, base, same_examples=same_examples)
    learners = [f"cli-learner-{i:03d}" for i in range(len(exp.cells))]
    for name in learners:
        room.join(code, name, name.removeprefix("cli-"))
    for name in learners:
        mine = room.assignment(name)
        if mine is None or mine.result is not None:
            continue
        if room.reuse(name) is None:
            history = History(mine.config.to_dict())
            run(mine.config, history.append)
            room.started(name, exp.id, mine.cell, f"cli-{mine.cell}")
            room.collect(lambda _job, _owner, snap=history.snapshot(): snap if snap.final is not None else "failed", only=name)
        if on_cell is not None:
            on_cell(room.latest(), mine.cell)
    return room.latest()
