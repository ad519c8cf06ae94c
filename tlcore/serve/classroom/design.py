"""The class experiment's design: the factor the class varies (FACTORS) and its levels, the seeds,
the fixed settings, and the cells (level x seed x round) that learners' runs fill.

A cell's settings are the fixed settings with the factor at the cell's level and the cell's seed
(`cell_config`). Cells are assigned by `assign`, a pure function of the cells and who is here, in
seed-major order so the levels stay balanced at every moment. "Run it again" adds a round: new
seeds for every level, in the same experiment, so a small class builds up its n round by round.
A finished run leaves a few hundred bytes in its cell (`summarize`: accuracy per epoch, mean
gradient norm per layer group). Not for: statistics (tlcore.serve.classroom.stats), who joined and
the lock (tlcore.serve.classroom.state).
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tlcore.core.events import Done, HistorySnapshot
from tlcore.models import catalog
from tlcore.train import strategies
from tlcore.train.config import RunConfig

SEED_BASE = 1  # seeds are 1, 2, ...: "seed 7" reads as the seventh
MAX_SEEDS = 20  # seeds per level in one round
MAX_ROUNDS = 10  # rounds of one experiment ("Run it again" adds one)
TAG = "class"  # the queue tag of a class experiment's runs

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

    def __deepcopy__(self, memo: dict) -> CellResult:  # what copy.deepcopy makes of its fields, without its walk
        return CellResult(self.acc, list(self.accs), dict(self.grads), list(self.frozen), self.seconds, self.nickname,
                          self.number, self.reused)  # fmt: skip


@dataclass
class Cell:
    level: int  # index into the experiment's levels
    seed: int
    learner: str | None = None  # who runs it now (learner_key of their id: the id is their cookie, a secret)
    job: str | None = None  # the queue job filling it
    result: CellResult | None = None
    failed: str = ""  # the last run's failure, in words (the cell is open again)
    round: int = 1  # 1, 2, ...: "Run it again" adds a round of new seeds

    def __deepcopy__(self, memo: dict) -> Cell:
        result = self.result.__deepcopy__(memo) if self.result is not None else None
        return Cell(self.level, self.seed, self.learner, self.job, result, self.failed, self.round)

    @property
    def done(self) -> bool:
        return self.result is not None


@dataclass
class Experiment:
    id: str
    factor: str
    levels: list[Any]
    seeds: list[int]  # every round's seeds, in order
    base: dict[str, Any]  # RunConfig.to_dict() of the fixed settings
    cells: list[Cell]
    started: float  # wall clock
    stopped: float | None = None

    def __deepcopy__(self, memo: dict) -> Experiment:
        """A copy safe to read anywhere, as copy.deepcopy's walk made it: the class's pulse copies the
        experiment on every learner's poll (its walk over 30 cells was 5% of the server's time held in a
        class experiment, py-spy, session 40)."""
        return Experiment(self.id, self.factor, copy.deepcopy(self.levels, memo), list(self.seeds),
                          copy.deepcopy(self.base, memo), [c.__deepcopy__(memo) for c in self.cells], self.started,
                          self.stopped)  # fmt: skip

    @property
    def running(self) -> bool:
        return self.stopped is None

    @property
    def round(self) -> int:
        """The latest round (1 until "Run it again")."""
        return max((c.round for c in self.cells), default=1)

    @property
    def seeds_per_round(self) -> int:
        return max(1, sum(1 for c in self.cells if c.round == 1) // max(len(self.levels), 1))

    @property
    def same_examples(self) -> bool:
        """Every cell draws the same examples (the seeds vary the training only)."""
        return int(self.base.get("split_seed", -1)) >= 0

    def config(self, cell: Cell) -> RunConfig:
        return cell_config(RunConfig.from_dict(self.base), self.factor, self.levels[cell.level], cell.seed)

    def filled(self) -> int:
        return sum(c.done for c in self.cells)

    def started_runs(self) -> int:
        """Cells whose run is queued or going (a cell assigned but not started is not running)."""
        return sum(1 for c in self.cells if c.job and c.result is None)


def make_cells(levels: int, seeds: Iterable[int], round: int = 1) -> list[Cell]:  # noqa: A002 -- the class's word
    """Seed-major order (every level of the first seed, then of the second, ...): learners taking
    cells in this order keep the levels balanced at every moment."""
    return [Cell(level, seed, round=round) for seed in seeds for level in range(levels)]


def assign(cells: list[Cell], present: Sequence[str], running: Callable[[Cell], bool] = lambda c: c.job is not None) -> None:
    """Give every present learner one open cell, in place: a learner keeps their cell; a cell whose
    learner is gone is free again unless its run is going or done; each learner without a cell
    takes the first free cell in seed-major order, so levels stay balanced as learners join and
    leave; then learners whose run is done take the next free cells (fewer learners than cells:
    each runs several parts, one after the other). More learners than cells: the rest have none
    (they watch the projected view)."""
    here = set(present)
    for cell in cells:
        if cell.learner is not None and cell.learner not in here and not cell.done and not running(cell):
            cell.learner, cell.job = None, None
    holding = {c.learner for c in cells if c.learner is not None and not c.done}
    finished = {c.learner for c in cells if c.learner is not None and c.done}
    free = iter([c for c in cells if c.learner is None and not c.done])
    newcomers = [learner for learner in present if learner not in holding and learner not in finished]
    again = [learner for learner in present if learner not in holding and learner in finished]
    for learner in [*newcomers, *again]:  # first a part for everyone, then a next part for those done
        cell = next(free, None)
        if cell is None:
            return
        cell.learner = learner
        holding.add(learner)


def share(cells: list[Cell], here: Sequence[tuple[str, str]], settled: Collection[str] = ()) -> int:
    """After `assign`: a settled learner (`settled`: here for a while) who never had a part, from
    an address that holds none, takes an unstarted part from an address that holds more than one
    (the last such part first), in place; the number of parts moved. `here`: (learner, address)
    of the present learners in joining order. So a script's many cookies on one address, joined
    before the class, give their parts back to classmates who have been here a while; fresh cookies
    never take a part from anyone (a class behind one NAT keeps what it has), and a started run is
    never taken (its learner keeps it)."""
    address_of = dict(here)
    ever = {c.learner for c in cells if c.learner is not None}
    held: dict[str | None, list[Cell]] = {}
    for cell in cells:
        if cell.learner is not None and not cell.done:
            held.setdefault(address_of.get(cell.learner), []).append(cell)
    moved = 0
    for learner, address in here:
        if learner not in settled or learner in ever or held.get(address):
            continue
        donors = [group for group in held.values() if len(group) > 1 and any(c.job is None for c in group)]
        if not donors:
            break
        donor = max(donors, key=len)  # the address holding the most, of those with an unstarted part
        spare = next(c for c in reversed(donor) if c.job is None)
        donor.remove(spare)
        spare.learner, spare.failed = learner, ""
        held.setdefault(address, []).append(spare)
        ever.add(learner)
        moved += 1
    return moved


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


def same_run(a: RunConfig | None, b: RunConfig) -> bool:
    """Would these settings train the very same model (device and logging aside)?"""
    if a is None:
        return False
    ignore = {"device", "log_every"}
    da, db = a.to_dict(), b.to_dict()
    return all(da[k] == db[k] for k in da if k not in ignore)


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
