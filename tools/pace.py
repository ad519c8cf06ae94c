"""How busy this box is now, for the bounds that only say "not hung".

A test (or a load-test step) that waits on the app bounds its wait, so that a hang fails instead
of stalling the suite. Those bounds are set on an idle 2-core box. On a box that other work keeps
busy (a CI runner beside a build; session 20 ran the suite beside two busy loops and 14 tests
failed on such bounds, none on a wrong result) the same work takes longer without anything being
wrong. So these bounds are counted in *idle seconds*: a second of waiting on a box that is twice
as busy as it has cores counts as half a second.

`slower()` is that factor: the 1-minute load average per CPU this process may use, from 1 (idle)
to 4 (so a real hang still fails within four times its bound). The speed goals are never scaled:
they are figures that the load-test and benchmark commands print against their targets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from tlcore.serve.cores import count as cpus  # the cores this process may run on

MOST = 4.0  # never more than four times a bound


def slower() -> float:
    """How many times slower than idle this box is now: runnable work per CPU, 1 to MOST."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return min(MOST, max(1.0, load / cpus()))


def within(seconds: float) -> float:
    """`seconds` of an idle box, as seconds on this box now."""
    return seconds * slower()


def wait_for(pred: Callable[[], object], idle_seconds: float, poll: float = 0.01) -> bool:
    """Call `pred` until it is true (True) or `idle_seconds` of idle-box time have passed (False).

    The time counted is the time waited divided by `slower()`, read at most every half second."""
    spent, factor, read_at = 0.0, slower(), time.monotonic()
    last = read_at
    while spent < idle_seconds:
        if pred():
            return True
        time.sleep(poll)
        now = time.monotonic()
        spent += (now - last) / factor
        last = now
        if now - read_at > 0.5:
            factor, read_at = slower(), now
    return bool(pred())
