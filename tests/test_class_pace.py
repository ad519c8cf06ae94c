"""The class's timers beside busy programs (issue 56, item 5): while other programs keep a core busy,
the teacher's roster and list of runs and (while the class trains) a learner's pulse redraw
$TLS_BUSY_STRETCH (3) times less often; what the class watches (the projector, the teacher's projected
view) keeps its pace, and so does everything on a quiet server."""

from __future__ import annotations

import pytest

from tests import test_class_experiment
from tests.helpers.fakes import BusyElsewhere

class_app = test_class_experiment.class_app  # the fixture: a class with its own Classroom, queue and teacher


@pytest.fixture
def timers(monkeypatch):
    """Every fragment timer a page run asks the browser for (Streamlit's auto_rerun message), in seconds."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    asked: list[float] = []
    keep = ScriptRunContext.enqueue

    def enqueue(self, msg):
        if msg.WhichOneof("type") == "auto_rerun":
            asked.append(round(msg.auto_rerun.interval, 3))
        return keep(self, msg)

    monkeypatch.setattr(ScriptRunContext, "enqueue", enqueue)
    return asked


@pytest.mark.parametrize("busy", [0.0, 1.4])
def test_the_class_timers_slow_down_only_while_other_programs_keep_a_core_busy(class_app, timers, busy):
    room, queue, open_page, as_teacher = class_app
    queue.elsewhere = BusyElsewhere(busy)
    stretch = 3.0 if busy >= 1.0 else 1.0
    teacher = as_teacher()
    learner = open_page("pages/6_class.py", "learner-0001", query={"join": room.code})
    assert room.is_member("learner-0001")
    timers.clear()
    learner.run()
    assert timers == [3.0]  # the learner's pulse before an experiment: never stretched (the class waits for the teacher)
    timers.clear()
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.number_input(key="w:class_seeds").set_value(1).run()
    timers.clear()
    teacher.button(key="class_exp_start").click().run()
    # the count and roster (2 s) and the runs list (3 s) slower; the projected view of the running
    # experiment (2 s: what the class watches) and the sidebar's queue line (3 s, not the class's) unchanged
    assert sorted(timers) == sorted([2.0 * stretch, 3.0 * stretch, 2.0, 3.0]), timers
    timers.clear()
    open_page("pages/6_class.py", "projector-window", query={"view": "projector", "key": room.projector_key})
    view = [s for s in timers if s != 3.0]  # (the page frame's own 3 s timers, not the class's: unchanged)
    assert view == [2.0], timers  # the projector keeps its pace: the class watches it
    timers.clear()
    learner.run()
    assert set(timers) == {1.0}, timers  # the class is about to predict: the pulse's fast pace, never stretched (nothing trains)
    exp = room.latest()
    part = room.assignment("learner-0001")
    assert room.started("learner-0001", exp.id, part.cell, "job-1")  # the learner's part trains: the class trains
    timers.clear()
    learner.run()
    assert timers == [3.0 * stretch], timers
