"""The class on the projector, in AppTest: the projector view (the code before, the question, the
runs and the fixed settings after; no buttons; a wrong key opens nothing), the teacher's roster and
runs by nickname, "Run it again" adding a round, a learner's part saying what a seed is, and the
exports carrying every round and the fixed settings."""

from __future__ import annotations

import csv
import io

from tests import test_class_experiment
from tests.helpers.fakes import wait_for

class_app = test_class_experiment.class_app  # the fixture: a class with its own Classroom, queue and teacher


def html_of(at) -> str:
    return "".join(e.proto.body for e in at.get("html"))


def projector(open_page, room, key=None):
    return open_page("pages/6_class.py", "projector-window", query={"view": "projector", "key": key or room.projector_key})


def test_the_projector_view_shows_the_code_before_and_the_question_and_runs_during_with_no_buttons(class_app):
    room, _, open_page, as_teacher = class_app
    teacher = as_teacher()
    view = projector(open_page, room)
    body = html_of(view)
    assert room.code[:3] in body and room.code[3:] in body and "class-qr" in body and "Joined: 0" in body
    assert not view.button and not view.get("link_button")  # nothing to press on the projector
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.number_input(key="w:class_seeds").set_value(1).run()
    teacher.button(key="class_exp_start").click().run()
    view.run()
    body = html_of(view)
    assert "Does the learning rate change accuracy more than the seed does?" in body
    assert "0 of 3 runs" in body and "Fixed settings:" in body and "Epochs: 3" in body
    assert "with only 3 epochs the smallest rate (0.0001)" in body  # the claim matches the design
    assert not view.button


def test_a_wrong_projector_key_opens_nothing(class_app):
    room, _, open_page, as_teacher = class_app
    as_teacher()
    view = projector(open_page, room, key="guessed")
    assert "not this class's" in view.warning[0].value and room.code not in html_of(view)


def test_the_teacher_sees_a_roster_and_every_class_run_by_nickname(class_app):
    room, queue, open_page, as_teacher = class_app
    teacher = as_teacher()
    ann = open_page("pages/6_class.py", "learner-0001", query={"join": room.code})
    room.rename("learner-0001", "Ann")
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.number_input(key="w:class_seeds").set_value(1).run()
    teacher.button(key="class_exp_start").click().run()
    ann.run()
    ann.button(key="class_start").click().run()
    job = ann.session_state["job:class"]
    wait_for(lambda: not queue.get(job, "learner-0001", heartbeat=False).active)
    teacher.run()
    body = html_of(teacher)
    assert "#1 Ann" in body and "Here now" in body  # the roster
    names = [m.value for m in teacher.markdown]
    assert any("**Ann**" in m for m in names), names  # the run list names the learner, not a hash
    assert not any("student-" in m for m in names)


def test_run_it_again_adds_a_round_and_both_exports_keep_every_round_and_the_fixed_settings(class_app, monkeypatch):
    from studio import class_view

    room, _, _, as_teacher = class_app
    teacher = as_teacher()
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.number_input(key="w:class_seeds").set_value(1).run()
    teacher.button(key="class_exp_start").click().run()
    first = room.latest()
    teacher.button(key="class_exp_rerun").click().run()
    again = room.latest()
    assert again.id == first.id and again.round == 2 and len(again.cells) == 6
    assert any("Round 2 added" in s.value for s in teacher.success)
    rows = list(csv.DictReader(io.StringIO(class_view.to_csv(class_view.rows(again, room.shown_name)))))
    assert [r["round"] for r in rows] == ["1", "1", "1", "2", "2", "2"]
    assert rows[0]["fixed_epochs"] == "3" and rows[0]["fixed_backbone"] == again.base["backbone"]
    page = class_view.to_html(again, None, room.shown_name)
    assert "Does the learning rate change accuracy more than the seed does?" in page
    assert "<table>" in page and "Epochs: 3" in page and "with only 3 epochs" in page
    # The CSV button's file is made with the page: its rows are the page's, and a page run that changes
    # nothing keeps its address (a deferred file's id changed with every run: a click while the
    # teacher's page redrew found it gone, CI of session 40).
    made = files_made(monkeypatch)
    teacher.run()
    shown = csv_button(teacher)
    assert [r["round"] for r in csv.DictReader(io.StringIO(made[shown]))] == ["1", "1", "1", "2", "2", "2"]
    assert csv_button(teacher.run()) == shown


def files_made(monkeypatch) -> dict[str, str]:
    """Every file AppTest's media store is given from here on, by its address's name."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    made: dict[str, str] = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        file_id = keep(self, path_or_data, mimetype, kind, filename)
        made[file_id] = path_or_data.decode("utf-8") if isinstance(path_or_data, bytes) else str(path_or_data)
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    return made


def csv_button(at) -> str:
    """The file id behind the teacher's "Every run (CSV)" as the page drew it."""
    (button,) = [e.proto for e in at.get("download_button") if e.proto.label == "Every run (CSV)"]
    assert button.url and not button.deferred_file_id, button  # made with the page, not on the click
    return button.url.rsplit("/", 1)[1].split(".")[0]


def test_a_learners_part_says_what_a_seed_is_and_what_the_class_asks(class_app):
    room, _, open_page, as_teacher = class_app
    teacher = as_teacher()
    learner = open_page("pages/6_class.py", "learner-0001", query={"join": room.code})
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.button(key="class_exp_start").click().run()
    learner.run()
    assert any("A seed fixes the chance in a run" in c.value for c in learner.caption)
    assert any("Does the learning rate change accuracy more than the seed does?" in m.value for m in learner.markdown)


def test_the_join_link_offers_a_nickname_after_one_scan(class_app):
    room, _, open_page, as_teacher = class_app
    as_teacher()
    by_link = open_page(None, "learner-0001", query={"join": room.code})
    assert room.is_member("learner-0001")
    by_link.text_input(key="offer_nick:start").set_value("Mina")
    by_link.button(key="offer:start").click().run()
    assert room.member("learner-0001").nickname == "Mina"
    assert any("Your name in class is now **Mina**" in s.value for s in by_link.success)
