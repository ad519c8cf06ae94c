"""The class-experiment load test's report splits a class's time from the run store's clock
values: when the Start presses reached the queue, when runs began and ended, how long they ran."""

from __future__ import annotations

import math

import pytest

from tlcore.serve.store import JobTimes
from tools.loadtest.experiment import run_times


def test_run_times_reads_presses_runs_and_gaps_from_the_store_clock():
    t0 = 1000.0
    stored = [  # id, learner, submitted, started, finished; one after the other, a gap of 0.5 s
        JobTimes("a", "x", t0 + 0.2, t0 + 0.3, t0 + 2.3),
        JobTimes("b", "y", t0 + 0.4, t0 + 2.8, t0 + 5.8),
        JobTimes("c", "z", t0 + 1.1, t0 + 5.8, t0 + 6.8),
    ]
    r = run_times(stored, t0)
    assert r["submitted"] == 3 and r["last_submit"] == pytest.approx(1.1)
    assert r["first_start"] == pytest.approx(0.3) and r["last_end"] == pytest.approx(6.8)
    assert r["busy"] == pytest.approx(2.0 + 3.0 + 1.0)
    assert r["run_median"] == pytest.approx(2.0) and r["run_max"] == pytest.approx(3.0)
    assert r["gap_max"] == pytest.approx(0.5) and r["gap_median"] == pytest.approx(0.5)


def test_run_times_of_a_class_whose_runs_never_began_are_not_numbers():
    r = run_times([JobTimes("a", "x", 1000.5, None, None)], 1000.0)
    assert r["submitted"] == 1 and r["last_submit"] == pytest.approx(0.5)
    assert all(math.isnan(r[k]) for k in ("first_start", "last_end", "run_median", "gap_max")) and r["busy"] == 0


def test_the_last_end_is_the_latest_finish_when_two_runs_overlap():
    t0 = 1000.0
    stored = [JobTimes("a", "x", t0, t0 + 0.1, t0 + 9.0), JobTimes("b", "y", t0, t0 + 0.2, t0 + 3.0)]
    assert run_times(stored, t0)["last_end"] == pytest.approx(9.0)


def test_the_class_experiment_mode_runs_the_plan_and_browsers_it_is_given(monkeypatch):
    """`--workers`, `--threads` and `--students-compete` reach the class experiment (they were once
    dropped: a run said "two at a time" and measured the default plan)."""
    from tools.loadtest import __main__ as cli
    from tools.loadtest import experiment

    seen = []
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **kw: seen.append(kw) or {})
    monkeypatch.setattr(experiment, "TARGETS", {"any": lambda r: True})
    assert cli.main(["--class-experiment", "--workers", "2", "--threads", "1"]) == 0
    assert cli.main(["--class-experiment", "--students-compete"]) == 0
    assert seen[0]["workers"] == 2 and seen[0]["threads"] == 1 and seen[0]["students_idle"] is True
    assert seen[1]["workers"] == 0 and seen[1]["threads"] == 0 and seen[1]["students_idle"] is False


def test_the_class_file_carries_the_plan(tmp_path):
    import tomllib

    from tools.loadtest.classroom import class_toml

    plan = tomllib.loads(class_toml(tmp_path, max_seconds=None, workers=2, threads=1, secret="s").read_text())
    assert plan["limits"] == {"cpu_workers": 2, "threads_per_job": 1} and plan["teacher"]["secret"] == "s"
    default = tomllib.loads(class_toml(tmp_path, max_seconds=None, workers=0, threads=0, secret="s").read_text())
    assert default["limits"] == {}
