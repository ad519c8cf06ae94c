"""The shelf of fine-tuned models: training returns the model, the server keeps a learner's own
run only, per learner and bounded by bytes; nobody gets another learner's model."""

from __future__ import annotations

import dataclasses
import threading

import pytest
import torch

from tests.helpers.fakes import wait_for
from tlcore.core.events import Done, RunResult, Started
from tlcore.models import catalog
from tlcore.serve.class_limits import ClassLimits
from tlcore.serve.jobs import JobQueue
from tlcore.serve.kept_models import KeptModels
from tlcore.train.config import RunConfig
from tlcore.train.finetuned import Finetuned, model_bytes

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)

TINY = RunConfig(
    backbone="studio_resnet",
    dataset="digits",
    per_class=3,
    val_per_class=2,
    image_size=16,
    epochs=1,
    strategy="full",
    pretrained="no",
    augment="none",
)


def linear(n_in: int = 64, n_out: int = 2) -> Finetuned:
    return Finetuned(torch.nn.Linear(n_in, n_out), ("a", "b")[:n_out] if n_out <= 2 else tuple("abcdefgh"[:n_out]), 0, "test")


def returning_a_model(gate: threading.Event | None = None):
    """A stand-in for recipe.run: the event contract, and the trained model in what it returns."""

    def run(config, emit, should_stop):
        emit(Started(1, 1, ("body", "head"), (), 1, 1, "cpu", 1, 1, ("a", "b")))
        result = RunResult(val_acc=0.5, strategy=config.strategy)
        emit(Done(result))
        if gate is not None:
            gate.wait(5)  # between the run's Done and its return: the page must not see Done yet
        return dataclasses.replace(result, model=linear(4 * 2**10))  # 16 KB of weights

    return run


def finished(q: JobQueue, job: str, owner: str, timeout: float = 10.0):
    assert wait_for(lambda: q.get(job, owner).state == "done", timeout)
    return q.get(job, owner)


def test_a_learners_model_survives_another_learners_sweeps_and_races():
    q = JobQueue.started(returning_a_model(), shelf=KeptModels(per_learner=2, learner_mb=1, total_mb=1))
    mine = finished(q, q.submit(TINY, "anna", tag="finetune", keep_model=True), "anna")
    model_id = mine.runs[0].result.model_id
    for _ in range(3):  # another learner's three sweeps (8 runs each) and races (4 runs)
        finished(q, q.submit([TINY] * 8, "ben", tag="sweep"), "ben")
        finished(q, q.submit([TINY] * 4, "ben", tag="race"), "ben")
    assert q.shelf.get("anna", model_id) is not None
    assert q.shelf.usage() == {"models": 1, "bytes": model_bytes(q.shelf.get("anna", model_id).model), "learners": 1}


def test_a_race_or_an_experiment_keeps_nothing():
    q = JobQueue.started(returning_a_model())
    view = finished(q, q.submit([TINY] * 3, "anna", tag="race"), "anna")
    assert all(run.result.model_id is None for run in view.runs)
    view = finished(q, q.submit(TINY, "anna", tag="matrix"), "anna")  # one run, but not the learner's own
    assert view.runs[0].result.model_id is None and q.shelf.usage()["models"] == 0


def test_the_learners_own_two_run_experiment_keeps_its_last_run_only():
    q = JobQueue.started(returning_a_model())
    view = finished(q, q.submit([TINY.replace(strategy="scratch"), TINY], "anna", tag="experiment", keep_model=True), "anna")
    assert view.runs[0].result.model_id is None and view.runs[1].result.model_id
    assert q.shelf.usage()["models"] == 1


def test_the_page_sees_done_with_the_models_id_never_before_it_is_kept():
    gate = threading.Event()
    q = JobQueue.started(returning_a_model(gate))
    job = q.submit(TINY, "anna", tag="finetune", keep_model=True)
    assert wait_for(lambda: q.get(job, "anna").runs[0].started is not None)
    assert q.get(job, "anna").runs[0].final is None  # the run said Done; its model is not kept yet
    gate.set()
    view = finished(q, job, "anna")
    assert q.shelf.get("anna", view.runs[0].result.model_id) is not None


def test_each_learner_keeps_their_newest_within_their_bytes():
    size = model_bytes(linear(2**14).model)  # 128 KB
    shelf = KeptModels(per_learner=3, learner_mb=2.5 * size / 2**20, total_mb=100)
    keys = [shelf.keep("anna", linear(2**14)) for _ in range(4)]
    assert [shelf.get("anna", k) is not None for k in keys] == [False, False, True, True]  # 2 fit in 2.5 models' bytes
    shelf = KeptModels(per_learner=2, learner_mb=100, total_mb=100)
    keys = [shelf.keep("anna", linear()) for _ in range(3)]
    assert [shelf.get("anna", k) is not None for k in keys] == [False, True, True]  # the newest two
    big = KeptModels(per_learner=2, learner_mb=size / 2**20 / 2, total_mb=100)
    assert big.get("anna", big.keep("anna", linear(2**14))) is not None  # one too big still stays: the newest


def test_all_learners_together_stay_within_the_servers_bytes_the_one_holding_most_giving_first():
    size = model_bytes(linear(2**14).model)
    shelf = KeptModels(per_learner=2, learner_mb=100, total_mb=3.5 * size / 2**20)
    anna = shelf.keep("anna", linear(2**14))
    ben = [shelf.keep("ben", linear(2**14)) for _ in range(2)]
    assert shelf.usage()["models"] == 3
    cleo = shelf.keep("cleo", linear(2**14))
    assert shelf.get("ben", ben[0]) is None  # past the server's bound: the oldest of who holds most
    assert shelf.get("anna", anna) and shelf.get("ben", ben[1]) and shelf.get("cleo", cleo)
    assert shelf.usage()["bytes"] <= 3.5 * size
    again = shelf.keep("cleo", linear(2**14))  # the keeper's own older model goes before anyone else's
    assert shelf.get("cleo", cleo) is None and shelf.get("cleo", again) and shelf.get("anna", anna)


def test_two_big_runs_from_two_cookies_never_push_a_classmates_small_model_off():
    """Measured before: two from-scratch ViT runs from two cookies evicted a classmate's kept model."""
    small, big = linear(2**10), linear(2**15)  # 8 KB, 256 KB
    shelf = KeptModels(per_learner=2, learner_mb=100, total_mb=1.5 * model_bytes(big.model) / 2**20)
    classmate = shelf.keep("classmate", small)
    first = shelf.keep("cookie-1", big)
    second = shelf.keep("cookie-2", linear(2**15))
    assert shelf.get("classmate", classmate) is not None
    assert shelf.get("cookie-2", second) is not None and shelf.get("cookie-1", first) is None


def test_a_learner_cannot_get_another_learners_model_by_its_id():
    shelf = KeptModels()
    model_id = shelf.keep("anna", linear())
    assert shelf.get("anna", model_id) is not None
    assert shelf.get("ben", model_id) is None and shelf.get("", model_id) is None and shelf.get("anna", None) is None


def test_the_class_file_bounds_the_shelf():
    shelf = ClassLimits(kept_models_per_learner=1, kept_mb_per_learner=5, kept_mb_total=50).kept_models()
    assert (shelf.per_learner, shelf.learner_bytes, shelf.total_bytes) == (1, 5 * 2**20, 50 * 2**20)
    assert JobQueue.started(returning_a_model(), limits=ClassLimits(kept_models_per_learner=1)).shelf.per_learner == 1


def test_a_real_fine_tune_through_the_queue_is_kept_on_the_cpu_for_its_owner():
    q = JobQueue.started()  # tlcore.train.recipe.run
    view = finished(q, q.submit(TINY, "anna", tag="finetune", keep_model=True), "anna", timeout=120)
    entry = q.shelf.get("anna", view.runs[0].result.model_id)
    assert entry.classes == tuple(str(i) for i in range(10)) and entry.backbone == "studio_resnet"
    assert not entry.model.training and next(entry.model.parameters()).device.type == "cpu"
    # without its last step's gradients: a class of 30 default runs kept about 300 MB of them (issue 56, item 3)
    assert any(p.requires_grad for p in entry.model.parameters())
    assert all(p.grad is None for p in entry.model.parameters())
    x = torch.zeros(1, 3, 16, 16, dtype=torch.uint8)
    assert entry.model(x).shape == (1, 10)
    assert catalog.backbone("studio_resnet")  # the model's backbone is a registered one
