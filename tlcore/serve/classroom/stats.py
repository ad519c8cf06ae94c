"""The class experiment's statistics: per level every finished seed's accuracy, their mean, standard
deviation and 95% interval (Student's t from scipy), and the class-wide gradient-norm map.

Kept small and pure (an Experiment in, numbers out) so the projected view, the exports and the CLI
read the same figures. Not for: drawing them (studio.class_view).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import cache
from typing import Any

from tlcore.serve.classroom.design import Experiment


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


@cache
def t95(df: int) -> float:
    """Student's t, two-sided 95%, for `df` degrees of freedom (12.706 at 1, 1.96 as df grows)."""
    from scipy import stats as scipy_stats  # (1.7 s to import on a 2-core box: only when a level has 2 seeds)

    return float(scipy_stats.t.ppf(0.975, df)) if df >= 1 else math.inf


def level_stats(experiment: Experiment) -> list[LevelStats]:
    """Per level: every finished seed's accuracy (every round's), their mean, standard deviation and 95% interval."""
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


@dataclass(frozen=True)
class TopTwo:
    """The measured best level, the runner-up, and whether the gap is beyond the seed noise."""

    order: tuple[int, ...]  # levels with a finished run, best mean first
    means: dict[int, float]  # level -> mean accuracy (0..1)
    best: int | None
    second: int | None
    gap: float | None  # best mean - runner-up mean (0..1)
    noise: float | None  # the pooled standard deviation between seeds of a level (0..1)
    p: float | None  # Welch's t-test of best vs runner-up (scipy); None with fewer than 2 seeds in either
    beyond: bool | None  # p < 0.05: the gap is beyond the seed noise (None: not enough seeds to tell)


def pooled_sd(stats: list[LevelStats]) -> float | None:
    """The seeds' standard deviation pooled over the levels with 2 or more finished seeds."""
    parts = [(s.n - 1, s.sd) for s in stats if s.sd is not None and s.n >= 2]
    df = sum(d for d, _ in parts)
    return math.sqrt(sum(d * sd * sd for d, sd in parts) / df) if df else None


def top_two(experiment: Experiment) -> TopTwo:
    stats = level_stats(experiment)
    means = {i: s.mean for i, s in enumerate(stats) if s.mean is not None}
    order = tuple(sorted(means, key=lambda i: -means[i]))
    best = order[0] if order else None
    second = order[1] if len(order) > 1 else None
    gap = means[best] - means[second] if second is not None else None
    p = beyond = None
    if second is not None and stats[best].n >= 2 and stats[second].n >= 2:
        a, b = stats[best].accs, stats[second].accs
        if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:  # no noise at all: any gap is beyond it
            p = 0.0 if gap else 1.0
        else:
            from scipy import stats as scipy_stats  # (heavy: imported when a reveal needs it)

            p = float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
        beyond = p < 0.05
    return TopTwo(order, means, best, second, gap, pooled_sd(stats), p, beyond)
