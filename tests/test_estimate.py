"""The run-time estimator: its work model, what it learns from a run, time left during one."""

from __future__ import annotations

import pytest

from tlcore import estimate
from tlcore.config import RunConfig
from tlcore.estimate import Estimator
from tlcore.events import EvalEvent, History, HistorySnapshot, Started, StepEvent
from tlcore.recipe import run

SMALL = dict(backbone="studio_resnet", dataset="digits", image_size=32, per_class=8, val_per_class=4, epochs=2)


def test_frozen_and_cached_groups_cost_less_than_trained_ones():
    n_train, n_val = 100, 50
    work = {s: estimate.work_of(RunConfig(strategy=s, freeze_depth=2, **SMALL), n_train, n_val)
            for s in ("linear_probe", "partial", "full")}
    assert work["linear_probe"].total_gflop < work["partial"].total_gflop < work["full"].total_gflop
    assert work["full"].cache_gflop == 0 and work["partial"].cache_gflop > 0
    # bigger images, more work: a 4x area costs about 4x
    big = estimate.work_of(RunConfig(strategy="full", **{**SMALL, "image_size": 64}), n_train, n_val)
    assert 3.0 < big.total_gflop / work["full"].total_gflop < 5.0


def test_a_finished_run_teaches_the_estimator_and_it_remembers(tmp_path):
    config = RunConfig(strategy="partial", freeze_depth=2, **SMALL)
    history = History(config.to_dict())
    result = run(config, history.append)
    timing = result["timing"]
    assert set(timing) == {"setup_s", "cache_s", "train_s", "eval_s", "finish_s"} and len(timing["train_s"]) == 2
    estimator = Estimator(tmp_path / "timings.json")
    cold = estimator.estimate(config, 10)
    assert not estimator.measured(config)
    estimate.learn_from(config, history.snapshot(), estimator)
    assert estimator.measured(config)
    measured = timing["setup_s"] + timing["cache_s"] + sum(timing["train_s"]) + sum(timing["eval_s"]) + timing["finish_s"]
    learnt = estimator.estimate(config, 10)
    assert learnt == pytest.approx(measured, rel=0.01)  # the same run, predicted from its own rates
    assert learnt != pytest.approx(cold, rel=0.01)
    # a new server process reads the rates back
    assert Estimator(tmp_path / "timings.json").estimate(config, 10) == pytest.approx(learnt)
    # and a longer run of the same kind is predicted longer, in proportion to its epochs
    longer = RunConfig(strategy="partial", freeze_depth=2, **{**SMALL, "epochs": 6})
    assert estimator.estimate(longer, 10) > 2 * (learnt - timing["setup_s"] - timing["cache_s"])


def _snapshot(epochs: int, epoch_s: float, done_epochs: int, steps_per_epoch: int = 10) -> HistorySnapshot:
    events, times = [Started(epochs * steps_per_epoch, epochs, ("a", "head"), (), 1, 2, "cpu", 100, 20, ("x", "y"))], [100.0]
    for e in range(1, done_epochs + 1):
        for s in range(1, steps_per_epoch + 1):
            step = (e - 1) * steps_per_epoch + s
            events.append(StepEvent(step, e, 1.0, 1e-3, {"a": 1.0}))
            times.append(100.0 + (e - 1) * epoch_s + s * epoch_s * 0.9 / steps_per_epoch)
        events.append(EvalEvent(e, e * steps_per_epoch, 1.0, 0.5, 0.5, e * epoch_s, 10.0))
        times.append(100.0 + e * epoch_s)
    return HistorySnapshot(tuple(events), None, tuple(times))


def test_time_left_after_the_first_epoch_uses_the_measured_epoch_time():
    snap = _snapshot(epochs=4, epoch_s=10.0, done_epochs=1)
    assert estimate.time_left(snap, snap.times, now=112.0) == pytest.approx(3 * 10.0 - 2.0)
    later = _snapshot(epochs=4, epoch_s=10.0, done_epochs=3)
    assert estimate.time_left(later, later.times, now=131.0) == pytest.approx(9.0)
    # what runs of this kind take after their last evaluation is added; after the last epoch it is all that is left
    assert estimate.time_left(later, later.times, now=131.0, finish_s=2.0) == pytest.approx(11.0)
    last = _snapshot(epochs=3, epoch_s=10.0, done_epochs=3)
    assert estimate.time_left(last, last.times, now=130.5, finish_s=2.0) == pytest.approx(1.5)


def test_time_left_in_the_first_epoch_follows_the_step_rate():
    snap = _snapshot(epochs=2, epoch_s=10.0, done_epochs=1)
    first_steps = HistorySnapshot(snap.events[:6], None, snap.times[:6])  # Started + 5 steps at 0.9 s each
    assert estimate.time_left(first_steps, first_steps.times, now=snap.times[5]) == pytest.approx(15 * 0.9)
    assert estimate.time_left(HistorySnapshot(snap.events[:1], None, snap.times[:1]), snap.times[:1]) is None


def test_number_of_classes_of_an_upload_is_its_folders(tmp_path):
    for name in ("cats", "dogs", "birds", ".hidden"):
        (tmp_path / name).mkdir()
    assert estimate.num_classes(RunConfig(dataset="folder", data_root=str(tmp_path))) == 3
    assert estimate.num_classes(RunConfig(**SMALL)) == 10
