"""The run-time estimator: its work model, what it learns from a run, time left during one."""

from __future__ import annotations

import pytest

from tlcore.core.events import EvalEvent, History, HistorySnapshot, Started, StepEvent
from tlcore.train import time_estimate
from tlcore.train.config import RunConfig
from tlcore.train.recipe import run
from tlcore.train.time_estimate import Estimator

SMALL = dict(backbone="studio_resnet", dataset="digits", image_size=32, per_class=8, val_per_class=4, epochs=2)


@pytest.mark.fast
def test_frozen_and_cached_groups_cost_less_than_trained_ones():
    n_train, n_val = 100, 50
    work = {
        s: time_estimate.work_of(RunConfig(strategy=s, freeze_depth=2, **SMALL), n_train, n_val)
        for s in ("linear_probe", "partial", "full")
    }
    assert work["linear_probe"].total_gflop < work["partial"].total_gflop < work["full"].total_gflop
    assert work["full"].cache_gflop == 0 and work["partial"].cache_gflop > 0
    # bigger images, more work: a 4x area costs about 4x
    big = time_estimate.work_of(RunConfig(strategy="full", **{**SMALL, "image_size": 64}), n_train, n_val)
    assert 3.0 < big.total_gflop / work["full"].total_gflop < 5.0


def test_a_finished_run_teaches_the_estimator_and_it_remembers(tmp_path):
    config = RunConfig(strategy="partial", freeze_depth=2, **SMALL)
    history = History(config.to_dict())
    result = run(config, history.append)
    timing = result.timing
    assert set(timing) == {"setup_s", "cache_s", "train_s", "eval_s", "finish_s"} and len(timing["train_s"]) == 2
    estimator = Estimator(tmp_path / "timings.json")
    assert not estimator.measured(config)
    time_estimate.learn_from(config, history.snapshot(), estimator)
    assert estimator.measured(config)
    measured = timing["setup_s"] + timing["cache_s"] + sum(timing["train_s"]) + sum(timing["eval_s"]) + timing["finish_s"]
    learnt = estimator.estimate(config, 10)
    assert learnt == pytest.approx(measured, rel=0.01)  # the same run, predicted from its own rates
    # it follows what it measured, not its first guess (which can be right by chance): the same run
    # measured three times slower is predicted three times longer
    slower, started = Estimator(tmp_path / "slower.json"), history.snapshot().started
    tripled = {k: [3 * s for s in v] if isinstance(v, list) else 3 * v for k, v in timing.items()}
    slower.record(config, tripled, started.train_size, started.val_size)
    assert slower.estimate(config, 10) == pytest.approx(3 * measured, rel=0.01)
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


@pytest.mark.fast
def test_time_left_after_the_first_epoch_uses_the_measured_epoch_time():
    snap = _snapshot(epochs=4, epoch_s=10.0, done_epochs=1)
    assert time_estimate.time_left(snap, snap.times, now=112.0) == pytest.approx(3 * 10.0 - 2.0)
    later = _snapshot(epochs=4, epoch_s=10.0, done_epochs=3)
    assert time_estimate.time_left(later, later.times, now=131.0) == pytest.approx(9.0)
    # what runs of this kind take after their last evaluation is added; after the last epoch it is all that is left
    assert time_estimate.time_left(later, later.times, now=131.0, finish_s=2.0) == pytest.approx(11.0)
    last = _snapshot(epochs=3, epoch_s=10.0, done_epochs=3)
    assert time_estimate.time_left(last, last.times, now=130.5, finish_s=2.0) == pytest.approx(1.5)


@pytest.mark.fast
def test_time_left_in_the_first_epoch_follows_the_step_rate():
    snap = _snapshot(epochs=2, epoch_s=10.0, done_epochs=1)
    first_steps = HistorySnapshot(snap.events[:6], None, snap.times[:6])  # Started + 5 steps at 0.9 s each
    assert time_estimate.time_left(first_steps, first_steps.times, now=snap.times[5]) == pytest.approx(15 * 0.9)
    assert time_estimate.time_left(HistorySnapshot(snap.events[:1], None, snap.times[:1]), snap.times[:1]) is None


@pytest.mark.fast
def test_a_first_epoch_that_encodes_is_not_taken_for_every_epoch():
    """A text probe computes its features in its first epoch (tlcore.text.batches): 10 s of it,
    then epochs of 1 s. Its first epoch's rate carries only to that epoch's end; later epochs
    take the estimator's guess until one is timed, and then their own time, not the first's."""
    snap = _snapshot(epochs=4, epoch_s=10.0, done_epochs=1)
    first_steps = HistorySnapshot(snap.events[:6], None, snap.times[:6])  # 5 of 10 steps at 0.9 s
    said = time_estimate.time_left(first_steps, first_steps.times, now=snap.times[5], later_epoch_s=1.0, finish_s=0.5)
    assert said == pytest.approx(5 * 0.9 + 3 * 1.0 + 0.5)  # not 35 * 0.9 + 0.5 as if all epochs were the first
    after_first = time_estimate.time_left(snap, snap.times, now=snap.times[-1], later_epoch_s=1.0)
    assert after_first == pytest.approx(3 * 1.0)  # not 3 * 10
    events, times = list(snap.events), list(snap.times)
    for s in range(11, 21):  # the second epoch: 1.2 s in all
        events.append(StepEvent(s, 2, 1.0, 1e-3, {"a": 1.0}))
        times.append(110.0 + (s - 10) * 0.1)
    events.append(EvalEvent(2, 20, 1.0, 0.5, 0.5, 11.2, 10.0))
    times.append(111.2)
    second = HistorySnapshot(tuple(events), None, tuple(times))
    assert time_estimate.time_left(second, second.times, now=111.2, later_epoch_s=1.0) == pytest.approx(2 * 1.2)


@pytest.mark.fast
def test_number_of_classes_of_an_upload_is_its_folders(tmp_path):
    for name in ("cats", "dogs", "birds", ".hidden"):
        (tmp_path / name).mkdir()
    assert time_estimate.num_classes(RunConfig(dataset="folder", data_root=str(tmp_path))) == 3
    assert time_estimate.num_classes(RunConfig(**SMALL)) == 10


TEXT = dict(backbone="minilm_l6", dataset="sentiment_en", per_class=40, val_per_class=10, epochs=5)


def _text(strategy: str) -> RunConfig:
    from tlcore.train import presets

    return RunConfig(**{**presets.text().to_dict(), **TEXT, "strategy": strategy})


@pytest.mark.fast
def test_text_counts_what_the_text_trainer_caches_and_what_lora_trains():
    groups = [g for g, _ in time_estimate.group_gflops("minilm_l6", 64)]
    assert time_estimate.frozen_prefix(_text("linear_probe"), groups)[0] == len(groups) - 1  # the whole encoder, once
    assert time_estimate.frozen_prefix(_text("partial"), groups)[0] == 0  # text caches the whole encoder or nothing
    n = time_estimate.run_sizes(_text("full"), 2)
    work = {s: time_estimate.work_of(_text(s), *n) for s in ("linear_probe", "lora", "full")}
    assert work["linear_probe"].total_gflop < work["lora"].total_gflop < work["full"].total_gflop
    sentence, padded = time_estimate.text_tokens(_text("full"))
    assert 3 < sentence < padded <= _text("full").max_length  # the sample sentences are short, batches padded


@pytest.mark.fast
def test_a_cached_text_run_does_not_teach_the_rate_of_training_steps(tmp_path):
    estimator = Estimator(tmp_path / "timings.json")
    probe, full = _text("linear_probe"), _text("full")
    task_key = estimator._keys(full)[2]
    estimator.rates[task_key] = {"s_per_gflop": 0.01, "step_s": 0.005, "setup_s": 0.5}
    before = estimator.estimate(full, 2)
    n_train, n_val = time_estimate.run_sizes(probe, 2)
    timing = {"setup_s": 0.4, "cache_s": 0.3, "train_s": [0.02] * 5, "eval_s": [0.005] * 5, "finish_s": 0.1}
    estimator.record(probe, timing, n_train, n_val)
    measured = 0.4 + 0.3 + 0.1 + 5 * 0.025
    assert estimator.estimate(probe, 2) == pytest.approx(measured, rel=0.01)  # its own kind, learnt exactly
    assert estimator._rate(full, "s_per_gflop", 0) == 0.01  # a no-grad pass says nothing of training steps
    assert estimator.estimate(full, 2) == pytest.approx(before, rel=0.25)  # (set-up and step cost moved a little)


def test_calibrating_text_gives_the_text_rates_of_this_machine(tmp_path):
    estimator = Estimator(tmp_path / "timings.json")
    config = _text("full")
    assert not estimator.knows_device(config)
    time_estimate.calibrate(config, estimator, steps=1)
    assert estimator.knows_device(config)
    rates = estimator.rates[estimator._keys(config)[2]]
    assert {"s_per_gflop", "cache_s_per_gflop", "setup_s"} <= set(rates) and rates["setup_s"] > 0  # the model's build, measured
    assert not estimator.knows_device(RunConfig(**SMALL))  # images keep a rate of their own


@pytest.mark.fast
@pytest.mark.parametrize(
    ("strategy", "augment"),
    [("linear_probe", "flip"), ("partial", "none"), ("partial", "crop_flip"), ("full", "flip"), ("linear_probe", "crop_flip")],
)
def test_the_estimate_counts_the_cached_prefix_the_run_really_caches(strategy, augment):
    """One cached-prefix rule (tlcore.data.sources): what the estimate charges once is what fit caches."""
    from tlcore.core.events import Started

    config = RunConfig(strategy=strategy, freeze_depth=2, augment=augment, **{**SMALL, "epochs": 1})
    events = []
    run(config, events.append)
    started = next(e for e in events if isinstance(e, Started))
    groups = [g for g, _ in time_estimate.group_gflops(config.backbone, config.image_size)]
    assert time_estimate.frozen_prefix(config, groups)[0] == started.cached_depth
    assert (started.cached_depth > 0) == (strategy != "full" and augment != "crop_flip")


@pytest.mark.fast
@pytest.mark.parametrize("strategy", ["linear_probe", "partial"])
def test_the_estimate_counts_what_a_text_run_really_caches(strategy, tmp_path):
    from tests.helpers.text_tiny import save_tiny_model
    from tlcore.core.events import Started
    from tlcore.train import presets

    folder = str(save_tiny_model(tmp_path / "tiny"))
    config = RunConfig(
        **{
            **presets.text().to_dict(),
            "backbone": folder,
            "dataset": "sentiment_en",
            "per_class": 8,
            "val_per_class": 4,
            "epochs": 1,
            "strategy": strategy,
            "freeze_depth": 1,
        }
    )
    events = []
    run(config, events.append)
    started = next(e for e in events if isinstance(e, Started))
    groups = list(started.groups)
    assert time_estimate.frozen_prefix(config, groups)[0] == started.cached_depth
    assert (started.cached_depth == len(groups) - 1) == (strategy == "linear_probe")


@pytest.mark.fast
def test_the_page_treats_only_a_text_run_with_cached_features_as_encoding_in_its_first_epoch(tmp_path):
    """studio.time_notes gives time_left a later epoch's guess only for a text run whose features are
    cached (computed in its first epoch); an image run's prefix is computed before its first step."""
    from studio.time_notes import _later_epoch_s

    estimator = Estimator(tmp_path / "timings.json")

    def started(depth: int) -> HistorySnapshot:
        return HistorySnapshot((Started(10, 5, ("a", "head"), ("a",), 1, 2, "cpu", 80, 20, ("x", "y"), depth),), None, (0.0,))

    probe = _text("linear_probe")
    guess = _later_epoch_s(estimator, probe, started(1))
    assert guess == pytest.approx(estimator.epoch_s(probe, 2)) and 0 < guess < estimator.estimate(probe, 2)
    assert _later_epoch_s(estimator, probe, started(0)) is None
    assert _later_epoch_s(estimator, RunConfig(**SMALL), started(1)) is None
