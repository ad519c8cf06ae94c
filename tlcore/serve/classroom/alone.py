"""The class experiment without a class (`python -m tlcore class-experiment`): one virtual learner per
cell, each cell's run one after the other, through the same assignment, collection and reuse as in a
class, so its figures reproduce the projected view's.

Not for: a real class (state), its statistics (stats).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tlcore.core.events import History
from tlcore.serve.classroom.design import MAX_SEEDS, Experiment
from tlcore.serve.classroom.state import Classroom
from tlcore.train import recipe
from tlcore.train.config import RunConfig


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
    run = run or recipe.run
    room = Classroom(size=MAX_SEEDS * max(len(levels), 1))
    code = room.open()
    exp = room.start_experiment(factor, levels, seeds, base, same_examples=same_examples)
    learners = [f"cli-learner-{i:03d}" for i in range(len(exp.cells))]
    for name in learners:
        room.join(code, name, name.removeprefix("cli-"))
    for name in learners:
        for present in learners:  # every virtual learner is still here: none of their parts goes to another
            room.seen(present)
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
