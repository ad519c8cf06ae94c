"""A server's warm-up: the runs it makes once, before the class comes, so that each page's first
Start costs what later ones do. The image demo's and the race's (tlcore.train.presets.warm_ups)
first, then page 5's first run in English and Korean (tlcore.text.first_run.warm_ups), each run's
freed memory given back before the next. Run where the runs will train: the server's own process
(studio.server) or its training process (tlcore.serve.process_jobs).

Not for: what a server does to its memory after it (tlcore.serve.machine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tlcore.serve import machine
from tlcore.text import first_run
from tlcore.train import presets, recipe
from tlcore.train.config import RunConfig

log = logging.getLogger(__name__)


def configs() -> tuple[RunConfig, ...]:
    """The warm-up's runs, in order: the image pages' first (the demo a class starts with), then the text page's."""
    return (*presets.warm_ups(), *first_run.warm_ups())


def run_all(should_stop: Callable[[], bool] = lambda: False) -> int:
    """Each of `configs()` once, its result dropped (tlcore.train.recipe.warm_up); one that fails is
    logged and the next goes on (only a head start: the learner's run reports real problems).
    Stops between runs, and inside one, when `should_stop()` says so. Returns how many ran."""
    done = 0
    for config in configs():
        if should_stop():
            break
        try:
            done += recipe.warm_up(config, should_stop=should_stop)
        except Exception as error:  # noqa: BLE001 -- see above
            log.info("warm-up of %s skipped: %s", config.to_cli(), error)
        # what the run freed goes back before the next allocates its own (the C heap keeps it otherwise:
        # the text runs after the image ones peaked at 2.9-3.3 GB against 2.6-2.7 GB without them)
        machine.return_freed_memory()
    return done
