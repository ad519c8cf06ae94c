"""A class of five on one server, scaled down from `python -m tools.loadtest --students 30`:
three Chromium students and two Streamlit-protocol students press Start on page 3 within
2 s. Each page must show its queue position or its run's end, a fresh visitor must get an
interactive page 3 (within 15 s here; the command prints the issue's 5 s target), nobody
may see an error (an exception box or the app's "something went wrong" line), and the
server's memory must stay bounded and come back after the class (issue 11, point 5).

Short runs: the teacher's cap (`max_seconds`, class.toml) stops each job after 4 s, and the
class is left once every page answered; closed tabs' runs are then cancelled
(`TLS_CLOSED_TAB_S`=5) before memory is read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.browser import ARTIFACTS, CHROMIUM, within

pytest.importorskip("playwright.sync_api")
pytest.importorskip("websockets")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]


def test_a_class_of_five_presses_start_together(monkeypatch):
    from tools import loadtest

    monkeypatch.setenv("TLS_CLOSED_TAB_S", "5")
    ARTIFACTS.mkdir(exist_ok=True)
    report = loadtest.run_class(
        students=5,
        browsers=3,
        max_seconds=4,
        timeout=within(90),
        probe_every=8,
        settle=6,  # past TLS_CLOSED_TAB_S (5): then the server idle 3 s (Sampler.wait_idle) before memory is read
        teacher=False,
        until="ok",
        log_dir=ARTIFACTS,
        say=lambda *_: None,
    )
    with open(ARTIFACTS / "loadtest_5.txt", "w") as out:
        report.print(out)
    checks = {name: (passed, figure) for name, passed, figure in report.checks()}
    assert [s.error for s in report.students if s.error] == []
    # Every student's page answered: a queue position, or the run's end.
    assert all(s.ok for s in report.students), [vars(s) for s in report.students]
    assert sum(s.t_position is not None for s in report.students) >= 3  # one run at a time on 2 cores: most wait
    assert checks["no error boxes"][0], checks["no error boxes"][1]
    times = [t for _, t in report.tti]
    assert times and None not in times, report.tti
    # The 5 s is a figure of the load-test command (python -m tools.loadtest prints it
    # against the target); measured here on a 2-core box that also runs the browsers, it swings
    # 3.3-5.8 s from run to run. The suite guards what broke a class before: a server that
    # stopped answering new visitors for minutes.
    limit = float(os.environ.get("TLS_TTI_LIMIT_S", 3 * loadtest.TTI_TARGET_S))
    assert max(times) < limit, report.tti
    assert report.rss_peak < loadtest.PEAK_TARGET_MB
    assert report.rss_after - report.rss_start < loadtest.AFTER_TARGET_MB, (report.rss_start, report.rss_after)
