"""The one typed run result (tlcore.core.events.RunResult): what the stream, the store and the
processes carry, and what a run stored before it existed reads back as."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from tlcore.core.events import Done, History, HistorySnapshot, RunResult

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)


def stored_and_read_back(result: RunResult) -> RunResult:
    history = History()
    history.append(Done(result))
    text = json.dumps(history.snapshot().to_dict())  # what tlcore.serve.store writes
    return HistorySnapshot.from_dict(json.loads(text)).result


def test_a_result_survives_the_store_with_what_json_can_hold():
    image = np.zeros((4, 4, 3), np.uint8)
    result = RunResult(
        val_acc=np.float32(0.75),
        best_val_acc=0.8,
        confusion=[[3, 1], [0, 4]],
        classes=["cat", "dog"],
        weight_drift={"stem": 0.0, "head": 0.2},
        misclassified=[{"image": image, "true": "cat", "pred": "dog"}],
        timing={"cache_s": 0.1, "train_s": [0.5, 0.4]},
        model=object(),  # the trained network: returned to the caller, never stored or sent
    )
    back = stored_and_read_back(result)
    assert isinstance(back, RunResult) and isinstance(back.val_acc, float) and back.val_acc == 0.75
    assert back.confusion == [[3, 1], [0, 4]] and back.classes == ["cat", "dog"] and back.timing == result.timing
    assert back.misclassified == [{"true": "cat", "pred": "dog"}]  # the image array dropped, the rest kept
    assert back.model is None and "model" not in result.to_dict()


def test_a_run_stored_before_the_typed_result_reads_back_with_defaults_and_its_extra_keys():
    old = {"type": "Done", "result": {"val_acc": 0.5, "seconds": 2.0, "pid": 123}}  # no confusion, no timing
    snap = HistorySnapshot.from_dict({"events": [old]})
    result = snap.result
    assert result.val_acc == 0.5 and result.seconds == 2.0
    assert result.confusion == [] and result.timing == {} and result.model_id is None
    assert result.extra == {"pid": 123} and result.to_dict()["pid"] == 123  # kept, and written back as it came


def test_a_done_event_crosses_a_process_boundary_without_the_model():
    done = Done(RunResult(val_acc=0.6, strategy="partial", model=None))
    again = pickle.loads(pickle.dumps(done))  # what tlcore.serve.process_jobs and Ray send
    assert again == done and again.result.strategy == "partial"


def test_a_dict_given_to_done_becomes_the_typed_result():
    assert Done({"val_acc": 0.4, "model_id": "m1"}).result == RunResult(val_acc=0.4, model_id="m1")
