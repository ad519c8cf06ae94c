"""tools.pace: the "not hung" bounds of the tests and the load test count idle-box seconds."""

from __future__ import annotations

import pytest

from tests.helpers.fakes import Clock
from tools import pace

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)


@pytest.fixture
def two_cpus(monkeypatch):
    monkeypatch.setattr(pace, "cpus", lambda: 2)


@pytest.mark.parametrize(("load", "factor"), [(0.3, 1.0), (2.0, 1.0), (5.0, 2.5), (40.0, pace.MOST)])
def test_a_box_is_as_many_times_slower_as_it_has_runnable_work_per_cpu(monkeypatch, two_cpus, load, factor):
    monkeypatch.setattr(pace.os, "getloadavg", lambda: (load, 0.0, 0.0))
    assert pace.slower() == factor
    assert pace.within(10) == pytest.approx(10 * factor)


def test_a_wait_on_a_busy_box_counts_its_seconds_as_fewer(monkeypatch, two_cpus):
    """On a box twice as busy as it has cores, 0.3 idle seconds are about 0.6 seconds of waiting
    (on a clock the wait's own sleeps move: `Clock`)."""
    monkeypatch.setattr(pace.os, "getloadavg", lambda: (4.0, 0.0, 0.0))
    clock = Clock()
    monkeypatch.setattr(pace, "time", clock)
    t = clock.now
    assert pace.wait_for(lambda: False, 0.3) is False
    assert clock.now - t == pytest.approx(0.6, abs=0.011)  # to within one poll


def test_a_wait_ends_as_soon_as_its_condition_holds(monkeypatch, two_cpus):
    monkeypatch.setattr(pace.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    clock = Clock()
    monkeypatch.setattr(pace, "time", clock)
    calls = iter([False, False, True])
    t = clock.now
    assert pace.wait_for(lambda: next(calls), 30) is True
    assert clock.now - t == pytest.approx(0.02)  # two polls, and not one more
    assert next(calls, "asked no more") == "asked no more"


def test_without_a_load_average_the_box_counts_as_idle(monkeypatch):
    def unreadable():
        raise OSError("no /proc/loadavg")

    monkeypatch.setattr(pace.os, "getloadavg", unreadable)
    assert pace.slower() == 1.0
