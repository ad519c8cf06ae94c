"""Finished runs survive a server restart (tlcore.store): a new JobQueue on the same SQLite
file gives each learner their runs back, and only theirs; what was queued or running is
marked interrupted; the file stays bounded; an admin can export every run."""

from __future__ import annotations

import csv
import json
import threading

import numpy as np

from tests.test_app import app, buttons, ok
from tests.test_jobs import fake_run, wait_for
from tlcore import cli
from tlcore.config import RunConfig
from tlcore.events import Done, Failed, Started, StepEvent
from tlcore.jobs import JobQueue
from tlcore.store import RunStore, learner_key

RACE = [RunConfig(backbone="studio_resnet", strategy=s) for s in ("scratch", "linear_probe")]


def run_with_mistakes(config, emit, should_stop):
    """A finished run whose result holds what JSON cannot: image arrays and numpy numbers."""
    emit(Started(2, 1, ("a", "head"), ("a",), 10, 20, "cpu", 4, 2, ("cat", "dog")))
    emit(StepEvent(1, 1, 0.7, 0.01, {"head": 0.5}, ("a",)))
    emit(StepEvent(2, 1, 0.5, 0.01, {"head": 0.4}, ("a",)))
    image = (np.arange(8 * 8 * 3) % 256).astype(np.uint8).reshape(8, 8, 3)
    emit(Done({"val_acc": np.float32(0.5), "best_val_acc": 0.5, "strategy": config.strategy, "confusion": [[1, 1], [0, 2]],
               "misclassified": [{"image": image, "true": "cat", "pred": "dog"}], "classes": ["cat", "dog"],
               "trainable_params": 10, "total_params": 20}))
    return {}


def finished_job(q: JobQueue, owner: str, configs, tag: str) -> str:
    job = q.submit(configs, owner, tag=tag)
    assert wait_for(lambda: q.get(job, owner).state == "done")
    return job


def test_a_restart_loses_no_finished_run_and_shows_it_only_to_its_learner(tmp_path):
    path = tmp_path / "runs.sqlite"
    before = JobQueue(run_with_mistakes, store=RunStore(path))
    race = finished_job(before, "alice-secret-cookie", RACE, "race")
    seen = before.get(race, "alice-secret-cookie")

    after = JobQueue(fake_run(), store=RunStore(path))  # the server restarted: nothing in memory
    assert after.latest("alice-secret-cookie", "race") == race
    assert after.latest("alice-secret-cookie", "finetune") is None and after.latest("bob", "race") is None
    back = after.get(race, "alice-secret-cookie")
    assert back.state == "done" and back.labels == ("scratch", "linear_probe") and back.configs == seen.configs
    assert [r.events[:-1] for r in back.runs] == [r.events[:-1] for r in seen.runs]
    assert abs(back.elapsed_s - seen.elapsed_s) < 0.01
    result = back.runs[1].result
    assert result["val_acc"] == 0.5 and result["confusion"] == [[1, 1], [0, 2]]
    assert np.array_equal(result["misclassified"][0]["image"], seen.runs[1].result["misclassified"][0]["image"])
    # Ownership holds for stored jobs too; the learner's secret id is never written to disk.
    assert after.get(race, "bob") is None and after.get(race, "") is None
    assert after.cancel(race, "bob") is False
    assert b"alice-secret-cookie" not in path.read_bytes()
    assert after.active_for("alice-secret-cookie") is None
    finished_job(after, "alice-secret-cookie", RunConfig(), "finetune")  # and she can start again


def test_runs_queued_or_running_at_a_restart_come_back_interrupted(tmp_path):
    path = tmp_path / "runs.sqlite"
    gate = threading.Event()
    old = JobQueue(fake_run(steps=5, delay=0, gate=gate), store=RunStore(path))
    running = old.submit(RunConfig(), "alice", tag="finetune")
    waiting = old.submit(RACE, "bob", tag="race")
    assert wait_for(lambda: old.get(running, "alice").state == "running")

    new = JobQueue(fake_run(steps=5, delay=0), store=RunStore(path))  # the old server died here
    for job, owner, runs in ((running, "alice", 1), (waiting, "bob", 2)):
        view = new.get(job, owner)
        assert view.state == "interrupted" and len(view.runs) == runs
        assert all(isinstance(r.final, Failed) and r.final.key == "run.interrupted" for r in view.runs)
    assert new.active_for("alice") is None and new.snapshot() == {"running": 0, "waiting": 0}
    old.cancel(running, "alice")
    old.cancel(waiting, "bob")
    gate.set()


def test_the_store_keeps_only_the_latest_runs(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite", max_runs=3)
    q = JobQueue(fake_run(steps=1, delay=0), store=store)
    jobs = [finished_job(q, f"learner-{i}", RunConfig(), "finetune") for i in range(5)]
    assert store.count() == 3
    assert [store.load(j) is not None for j in jobs] == [False, False, True, True, True]


def test_export_lists_every_stored_run_without_learner_secrets(tmp_path, capsys):
    path = tmp_path / "runs.sqlite"
    q = JobQueue(run_with_mistakes, store=RunStore(path))
    race = finished_job(q, "alice-secret", RACE, "race")
    single = finished_job(q, "bob-secret", RunConfig(strategy="full"), "finetune")

    assert cli.main(["runs", "export", "--db", str(path), "--out", str(tmp_path / "runs.jsonl")]) == 0
    assert "wrote 2 job(s)" in capsys.readouterr().out
    lines = (tmp_path / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    records = {r["job"]: r for r in map(json.loads, lines)}
    assert set(records) == {race, single}
    assert records[race]["labels"] == ["scratch", "linear_probe"] and records[race]["state"] == "done"
    assert records[race]["learner"] == learner_key("alice-secret")[:12]
    assert [e["type"] for e in records[single]["runs"][0]["events"]] == ["Started", "StepEvent", "StepEvent", "Done"]
    assert records[single]["configs"][0]["strategy"] == "full"

    assert cli.main(["runs", "export", "--db", str(path), "--out", str(tmp_path / "runs.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "runs.csv", encoding="utf-8")))
    assert [(r["job"], r["label"], r["outcome"]) for r in rows] == [
        (race, "scratch", "Done"), (race, "linear_probe", "Done"), (single, "full", "Done")]
    assert float(rows[0]["val_acc"]) == 0.5 and json.loads(rows[2]["config"])["strategy"] == "full"
    text = (tmp_path / "runs.jsonl").read_text() + (tmp_path / "runs.csv").read_text()
    assert "alice-secret" not in text and "bob-secret" not in text

    assert cli.main(["runs", "export", "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "x.csv")]) == 1


def test_after_a_restart_the_page_finds_the_learners_last_run(tmp_path):
    path = tmp_path / "runs.sqlite"
    finished_job(JobQueue(run_with_mistakes, store=RunStore(path)), "alice", RunConfig(), "finetune")

    # A new server process: a new queue on the same file, an empty LearnerStore (conftest), Alice's cookie.
    at = app("pages/3_finetune.py", queue=JobQueue(fake_run(), store=RunStore(path)), owner="alice")
    ok(at)
    assert any("Finished in" in s.value for s in at.success)
    assert at.get("plotly_chart") and buttons(at, "start")  # her curves again, and Start for a new run
    stranger = app("pages/3_finetune.py", queue=JobQueue(fake_run(), store=RunStore(path)), owner="bob")
    ok(stranger)
    assert not stranger.success and stranger.session_state["job:finetune"] is None
