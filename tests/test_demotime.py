"""tools.demotime reads the page's side of a press from the websocket messages the page received:
a script run's start, the first loss curve with a point, the "Finished" line. Checked here on
messages made as Streamlit makes them, stamped as the page stamps them."""

from __future__ import annotations

import base64
import json

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
