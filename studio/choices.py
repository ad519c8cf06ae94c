"""What a setting may hold: the options of a choice, the steps of a slider.

Widget groups register their settings' options (register_choices) and slider ranges
(register_ranges) here, and draw their widgets from the same functions; studio.state.settle
puts a setting that holds none of them back on one that it can. Not for: a learner's saved
values (studio.state) or the widgets themselves (studio.widgets, studio.bound_widgets).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# --- choices that must hold one of their options ------------------------------------

# setting key -> the options it may hold (a function: registries can grow while the
# server runs). Widget groups register theirs (studio.widgets, studio.text.widgets).
CHOICES: dict[str, Callable[[], Sequence]] = {}


def register_choices(options: dict[str, Callable[[], Sequence]]) -> None:
    CHOICES.update(options)


def _valid(value, options: Sequence) -> bool:
    if isinstance(value, list):
        return all(v in options for v in value)
    return value in options


# --- numbers that must be a value their slider can hold --------------------------------


@dataclass(frozen=True)
class Steps:
    """The values a slider holds: lo, lo + step, ..., hi."""

    lo: float
    hi: float
    step: float = 1

    def holds(self, value) -> bool:
        """Is `value` one of them? (A finite number, in range, on a step.)"""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if not self.lo <= value <= self.hi:
            return False
        steps = (value - self.lo) / self.step
        return abs(steps - round(steps)) < 1e-6

    def nearest(self, value) -> float:
        """The held value closest to a finite `value` (an int where the slider counts)."""
        steps = round((min(max(value, self.lo), self.hi) - self.lo) / self.step)
        near = min(self.lo + steps * self.step, self.hi)
        return int(near) if isinstance(self.step, int) and isinstance(self.lo, int) else round(near, 9)


# setting key -> the Steps of its slider, given the settings (some ranges depend on another
# setting: the backbone's layer groups, the dataset's size) and the class's limits. Widget
# groups register theirs and draw their sliders from the same functions (studio.widgets).
RANGES: dict[str, Callable[[Mapping], Steps]] = {}


def register_ranges(ranges: dict[str, Callable[[Mapping], Steps]]) -> None:
    RANGES.update(ranges)


def holds(key: str, value, settings: Mapping) -> bool:
    """Can the widget of `key` hold `value` (with these other settings)? True for a key
    without a registered range."""
    return key not in RANGES or RANGES[key](settings).holds(value)
