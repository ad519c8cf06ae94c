"""tools.demotime reads the page's side of a press from the websocket messages the page received:
a script run's start, the first loss curve with a point, the "Finished" line. Checked here on
messages made as Streamlit makes them, stamped as the page stamps them."""

from __future__ import annotations

import base64
import json
import math

import pytest

pytestmark = pytest.mark.fast


def frame(stamp: float, fill) -> list:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    msg = ForwardMsg()
    fill(msg)
    return [stamp, base64.b64encode(msg.SerializeToString()).decode()]


def chart(points: list[float]):
    spec = json.dumps({"data": [{"type": "scatter", "x": points, "y": points}], "layout": {}})
    return lambda msg: setattr(msg.delta.new_element.plotly_chart, "spec", spec)


def test_the_runs_the_first_curve_with_a_point_and_finished_are_found_by_their_arrival():
    from tools.demotime import DONE_TEXT, received

    frames = [
        frame(10.0, lambda m: m.new_session.SetInParent()),  # the click's run
        frame(10.2, chart([])),  # the live panel before the first step: no point yet
        frame(11.0, lambda m: m.new_session.SetInParent()),  # a poll
        frame(11.3, chart([1])),  # the first curve
        frame(12.0, chart([1, 2])),
        frame(15.0, lambda m: m.new_session.SetInParent()),  # the run that draws the end
        frame(15.4, lambda m: setattr(m.delta.new_element.alert, "body", "Waiting: 1 ahead")),
        frame(15.5, lambda m: setattr(m.delta.new_element.alert, "body", DONE_TEXT + "4.2 s.")),
    ]

    got = received(frames, DONE_TEXT)

    assert got == {"runs": [10.0, 11.0, 15.0], "curve": 11.3, "finished": 15.5}


def test_the_end_is_split_at_the_run_that_drew_it():
    from types import SimpleNamespace

    from tlcore.core.events import Started, StepEvent
    from tools.demotime import page_parts

    started = Started(4, 2, ("a",), (), 100, 200, "CPU (test)", 20, 10, ("cat", "dog"))
    step = StepEvent(1, 1, 1.0, 0.01, {"a": 0.1}, ())
    snap = SimpleNamespace(events=[started, step], times=[0.5, 2.0])  # seconds from the job's start
    job = SimpleNamespace(runs=[snap], started_at=100.0, finished_at=110.0)
    got = {"runs": [99.0, 102.5, 110.25, 111.0], "curve": 102.75, "finished": 110.75}
    seen = {"curve": 4.0, "end": 12.0}  # seconds after the click, on screen

    parts = dict(page_parts(job, 99.0, seen, got))

    assert parts == pytest.approx(
        {
            "first step event -> its curve received (poll, page's script)": 0.75,
            "first curve received -> on screen (the browser)": 0.25,
            "job finished -> the run that drew it began (polling)": 0.25,
            "that run began -> Finished received (page's script)": 0.5,
            "Finished received -> on screen (the browser)": 0.25,
        }
    )


def test_the_cpu_during_a_run_is_read_between_the_samples_nearest_its_start_and_end():
    from tools.demotime import CpuDuring

    cpu = CpuDuring(server_pid=0)
    # (Unix time, the server's CPU seconds so far, the renderers') every 50 ms
    cpu.samples = [(100.0 + 0.05 * i, 10.0 + 0.1 * i, 3.0 + 0.02 * i) for i in range(100)]

    spent = cpu.between(101.0, 103.0)  # samples 20 and 60

    assert spent == pytest.approx({"server": 4.0, "renderers": 0.8})
    assert math.isnan(CpuDuring(server_pid=0).between(1.0, 2.0)["server"])  # nothing sampled: no figure


def test_a_process_cpu_seconds_grow_with_the_work_it_does():
    import os
    import time

    from tools.cpu_by_process import core_seconds, pids_of

    before = core_seconds(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert core_seconds(os.getpid()) - before >= 0.2
    assert core_seconds(2**22 + 7) == 0.0  # a process that is not there
    assert pids_of("no such kind of process") == []


def test_each_press_says_what_the_server_and_the_browser_spent_while_the_job_ran():
    from types import SimpleNamespace

    from tlcore.core.events import Started, StepEvent
    from tools.demotime import CpuDuring, parts

    started = Started(4, 2, ("a",), (), 100, 200, "CPU (test)", 20, 10, ("cat", "dog"))
    step = StepEvent(1, 1, 1.0, 0.01, {"a": 0.1}, ())
    job = SimpleNamespace(runs=[SimpleNamespace(events=[started, step], times=[0.1, 0.4])], started_at=100.0, finished_at=102.0)
    cpu = CpuDuring(server_pid=0)
    cpu.samples = [(99.0, 5.0, 1.0), (100.0, 5.5, 1.5), (102.0, 9.0, 2.25), (103.0, 9.5, 3.0)]
    results = [(99.9, {"curve": 0.6, "end": 2.4}, 0.5, {}, cpu)]

    split = parts(results, [job])

    assert split["server core-s, job start -> end"] == pytest.approx([3.5])
    assert split["Chromium renderers core-s, job start -> end"] == pytest.approx([0.75])
    assert split["click -> first curve on screen"] == [0.6] and split["click -> Finished on screen"] == [2.4]


class FakePage:
    """A page whose status reads come from a list, one per read: the last run's "Finished" may stay
    on screen until the new one replaces it (a warm text run ends within the click's own redraw)."""

    def __init__(self, statuses: list[dict]) -> None:
        self.statuses = statuses
        self.clicked = False

    def get_by_role(self, role: str, name: str):
        page = self

        class Button:
            first = property(lambda self: self)

            def click(self, **_kw) -> None:
                page.clicked = True

        return Button()

    def evaluate(self, _js, _args):
        base = {"position": None, "running": False, "curve": False, "done": False, "stopped": False, "failed": False}
        return base | (self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]) | {"exceptions": 0}


@pytest.mark.parametrize(
    ("statuses", "measured"),
    [
        ([{"done": True}] * 3 + [{}] * 2 + [{"curve": True}] + [{"curve": True, "done": True}], True),  # the old line goes first
        ([{"done": True}] * 3 + [{"done": True, "running": True}] + [{"done": True, "curve": True}], True),  # it never goes
        ([{"done": True}] * 40, False),  # the press never started a run: no end is taken from the last run's line
    ],
)
def test_a_later_press_is_measured_from_its_own_run_even_when_the_last_finished_line_stays(monkeypatch, statuses, measured):
    from tools import demotime

    monkeypatch.setattr(demotime.time, "sleep", lambda _s: None)
    clock = iter(i * 0.05 for i in range(100_000))
    monkeypatch.setattr(demotime.time, "monotonic", lambda: next(clock))
    page = FakePage(statuses)
    seen = demotime.time_one_press(page, "Start", first=False)
    assert page.clicked
    assert ("end" in seen) == measured, seen
    if measured:
        assert seen["outcome"] == "done" and seen["end"] > 0.1 and "curve" in seen
