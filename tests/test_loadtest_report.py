"""The class-experiment load test's report splits a class's time from the run store's clock
values: when the Start presses reached the queue, when runs began and ended, how long they ran."""

from __future__ import annotations

import math

import pytest

from tlcore.serve.store import JobTimes
from tools.loadtest.experiment import run_times

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)


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
    assert seen[0]["predict"] is True  # the class predicts first unless told not to
    assert cli.main(["--class-experiment", "--no-predictions"]) == 0 and seen[2]["predict"] is False


def test_the_class_file_carries_the_plan(tmp_path):
    import tomllib

    from tools.loadtest.classroom import class_toml

    plan = tomllib.loads(class_toml(tmp_path, max_seconds=None, workers=2, threads=1, secret="s").read_text())
    assert plan["limits"] == {"cpu_workers": 2, "threads_per_job": 1} and plan["teacher"]["secret"] == "s"
    default = tomllib.loads(class_toml(tmp_path, max_seconds=None, workers=0, threads=0, secret="s").read_text())
    assert default["limits"] == {}


def _forward(kind: str, **fields) -> bytes:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    if kind == "auto_rerun":
        msg.auto_rerun.fragment_id, msg.auto_rerun.interval = fields["fragment"], fields["interval"]
    elif kind == "new_session":
        msg.new_session.name = "app"
        msg.metadata.run.script_run_id = "run"
        msg.metadata.run.fragment_ids.extend(fields.get("fragments", []))
    return msg.SerializeToString()


def test_a_websocket_student_reruns_each_fragment_on_its_own_timer_as_the_frontend_does():
    """A class member's 0.3 s and 0.9 s fragments rerun at their own paces (the old client reran
    both at the shorter one); a fragment's own run keeps the timers, a full run clears them. The
    seconds are the event loop's own (`VirtualTimeLoop`): counts, not a box's speed."""
    import asyncio

    from streamlit.proto.BackMsg_pb2 import BackMsg

    from tests.helpers.fakes import VirtualTimeLoop
    from tools.loadtest.students import Student, WsStudent

    sent: list[str] = []

    class FakeSocket:
        async def send(self, raw: bytes) -> None:
            msg = BackMsg()
            msg.ParseFromString(raw)
            sent.append(msg.rerun_script.fragment_id)

    async def scenario() -> tuple[dict, list]:
        client, ws = WsStudent(Student("s", "websocket"), "http://x"), FakeSocket()
        client.handle(_forward("auto_rerun", fragment="fast", interval=0.3))
        client.handle(_forward("auto_rerun", fragment="slow", interval=0.9))
        poller = asyncio.create_task(client.poll_fragments(ws))
        await asyncio.sleep(1.9)
        client.handle(_forward("new_session", fragments=["fast"]))  # a fragment's own run: timers stay
        before = dict((f, sent.count(f)) for f in ("fast", "slow"))
        client.handle(_forward("new_session"))  # a full run: every timer cleared until the server asks again
        sent.clear()
        await asyncio.sleep(0.8)  # more than twice the fast timer's interval, on the loop's clock
        client.closing = True
        poller.cancel()
        return before, list(sent)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        before, after_full_run = runner.run(scenario())
    assert before == {"fast": 6, "slow": 2}, before  # in 1.9 s: not 6 and 6, as the old client sent
    assert after_full_run == []  # nothing in the 0.8 s after the full run
