"""The class's seats and its file (tlcore.serve.classroom): the roster, remove and lock, nicknames
in the learner's language, a class file that cannot break the app (any shape thrown at the loader
loads as a clean class or is moved aside with a line for the teacher), and the join link's address
(studio.hosts.public_root)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_class_experiment import BASE, Clock, snapshot
from tlcore.serve import classroom
from tlcore.serve.classroom import Classroom, JoinRefused, class_file
from tlcore.serve.store import learner_key


def a_class(tmp_path=None):
    room = Classroom(tmp_path / "class.json" if tmp_path else None, clock=Clock())
    return room, room.open()


# ----------------------------------------------------------------------------- the roster, remove and lock


def test_the_roster_names_each_member_with_their_part_and_their_runs_state():
    room, code = a_class()
    room.join(code, "a", "Ann")
    room.join(code, "b", "Ben")
    exp = room.start_experiment("lr", [1e-3, 1e-2], 1, BASE)
    rows = room.roster()
    assert [(r.nickname, r.number, r.here, r.state) for r in rows] == [("Ann", 1, True, "open"), ("Ben", 2, True, "open")]
    assert rows[0].part == (1e-3, 1, 1) and rows[1].part == (1e-2, 1, 1)
    room.started("a", exp.id, room.assignment("a").cell, "job-a")
    room.collect(lambda job, learner: snapshot(0.7) if job == "job-a" else None)
    room.started("b", exp.id, room.assignment("b").cell, "job-b")
    assert [r.state for r in room.roster()] == ["done", "running"]
    room._clock.now += classroom.PRESENT_S + 1  # Ben's page stopped polling
    room.seen("a")
    assert [r.here for r in room.roster()] == [True, False]


def test_a_removed_member_loses_their_seat_and_open_cell_and_cannot_join_again_even_after_a_restart(tmp_path):
    room, code = a_class(tmp_path)
    room.join(code, "a", "Ann")
    room.join(code, "b", "Ben")
    room.start_experiment("lr", [1e-3, 1e-2], 1, BASE)
    assert room.remove(learner_key("b"))
    assert room.count()[0] == 1 and room.assignment("b") is None
    assert room.latest().cells[1].learner is None  # Ben's part is free for someone else
    with pytest.raises(JoinRefused) as refused:
        room.join(code, "b", "Ben again")
    assert refused.value.reason == "removed"
    back = Classroom(tmp_path / "class.json", clock=Clock())
    with pytest.raises(JoinRefused):
        back.join(code, "b")
    room.join(code, "c", "Cleo")  # a new learner still joins
    assert room.latest().cells[1].learner == learner_key("c")


def test_lock_the_class_keeps_members_and_holds_a_late_student_until_the_teacher_admits_them():
    room, code = a_class()
    room.join(code, "a", "Ann")
    room.set_locked(True)
    room.join(code, "a")  # a member's second tab is still theirs
    with pytest.raises(JoinRefused) as refused:
        room.join(code, "late", "Lee")
    assert refused.value.reason == "locked" and room.count()[0] == 1
    waiting = [r for r in room.roster() if r.state == "waiting"]
    assert [r.nickname for r in waiting] == ["Lee"]
    assert room.admit(waiting[0].key) and room.is_member("late") and room.member("late").nickname == "Lee"
    assert not room.admit(waiting[0].key)  # once


def test_a_given_nickname_follows_the_learners_language_and_nobody_passes_for_the_teacher():
    room, code = a_class()
    ko = room.join(code, "k", "", lang="ko")
    adjective, animal, number = ko.nickname.split(" ")
    assert adjective in classroom.codes.ADJECTIVES["ko"] and animal in classroom.codes.ANIMALS["ko"] and number.isdigit()
    assert room.join(code, "t", "Teacher").nickname != "Teacher"
    assert classroom.clean_nickname(" teacher ") == "" and classroom.clean_nickname("선생님") == ""


def test_renames_are_limited_and_written_at_most_once_a_second(tmp_path):
    room, code = a_class(tmp_path)
    room.join(code, "a", "Ann")
    writes = []
    room._save = lambda: writes.append(1)  # the class file's writes, counted
    names = [room.rename("a", f"Ann {i}") for i in range(classroom.MAX_RENAMES + 5)]
    assert names[: classroom.MAX_RENAMES] == [f"Ann {i}" for i in range(classroom.MAX_RENAMES)]
    assert names[classroom.MAX_RENAMES :] == [None] * 5  # refused: the panel says why
    assert room.member("a").nickname == f"Ann {classroom.MAX_RENAMES - 1}"
    assert len(writes) <= 2  # ten renames in a moment: one write now, the rest with the next (ANSWER_SAVE_S)


def test_leaving_the_class_is_no_way_around_pause_all():
    room, code = a_class()
    room.join(code, "a", "Ann")
    room.set_paused(True)
    assert room.under_pause("a")
    room.leave("a")
    assert not room.is_member("a") and room.under_pause("a")  # still held while the class is paused
    assert not room.under_pause("never-joined")
    room.set_paused(False)
    assert not room.under_pause("a")


def test_a_nickname_is_shown_as_typed_never_as_markdown():
    from studio.i18n import as_text

    shown = as_text("**Ann** [x](http://e.io) www.evil.io :red[hi] $x$ <b>")
    assert "**" not in shown.replace("\\*", "") and "](" not in shown and ":red[" not in shown and "$x$" not in shown
    assert "www." not in shown  # a zero-width space breaks the autolink
    assert as_text("Ben 7") == "Ben 7" and as_text("파란 수달 7") == "파란 수달 7"


# ----------------------------------------------------------------------------- the class file


def kept_class(tmp_path) -> dict:
    room, code = a_class(tmp_path)
    room.join(code, "a", "Ann")
    exp = room.start_experiment("lr", [1e-3, 1e-2], 1, BASE)
    room.started("a", exp.id, 0, "job-a")
    room.collect(lambda job, learner: snapshot(0.7))
    room.add_round()
    return json.loads((tmp_path / "class.json").read_text())


def test_a_kept_class_reads_back_with_its_rounds_roster_lock_and_projector_key(tmp_path):
    data = kept_class(tmp_path)
    assert data["version"] == class_file.VERSION
    back = Classroom(tmp_path / "class.json", clock=Clock())
    exp = back.latest()
    assert back.file_problem == "" and exp.round == 2 and [c.round for c in exp.cells] == [1, 1, 2, 2]
    assert exp.cells[0].result.acc == 0.7 and back.projector_key == data["projector"]


def test_a_version_1_class_file_still_loads(tmp_path):
    data = kept_class(tmp_path)
    data["version"] = 1
    data.pop("projector")
    data["experiment"]["round"] = 2
    for cell in data["experiment"]["cells"]:
        cell.pop("round")
    (tmp_path / "class.json").write_text(json.dumps(data))
    back = Classroom(tmp_path / "class.json", clock=Clock())
    assert back.file_problem == "" and {c.round for c in back.latest().cells} == {2}
    back.open()
    assert back.projector_key  # made on opening


@pytest.mark.parametrize(
    "text",
    [
        "null",
        "[]",
        '"class"',
        '{"members": []}',
        '{"members": {"k": null}}',
        '{"members": {"k": {"nickname": "A", "number": "1", "joined": 0}}}',
        '{"push": {"version": "x"}}',
        '{"experiment": {"factor": "lr", "levels": [0.001], "cells": [{"level": 5, "seed": 1}]}}',
        '{"paused": "yes"}',
        "[" * 100_000 + "]" * 100_000,  # deep nesting
        '{"code": "ABCDEF", "old_codes": "ABCDEF"}',
    ],
)
def test_class_json_of_a_wrong_shape_starts_a_clean_class_and_says_so(tmp_path, text):
    path = tmp_path / "class.json"
    path.write_text(text)
    room = Classroom(path, clock=Clock())
    assert room.code is None and room.members == {} and room.experiment is None
    assert room.file_problem and (tmp_path / "class.json.damaged").exists()
    code = room.open()  # and the class goes on
    room.join(code, "a")
    assert Classroom(path, clock=Clock()).file_problem == ""


def test_class_json_with_an_out_of_range_level_is_moved_aside(tmp_path):
    data = kept_class(tmp_path)
    data["experiment"]["cells"][0]["level"] = 7
    (tmp_path / "class.json").write_text(json.dumps(data))
    room = Classroom(tmp_path / "class.json", clock=Clock())
    assert "level is out of range" in room.file_problem and room.latest() is None


def test_class_json_too_large_is_moved_aside(tmp_path):
    path = tmp_path / "class.json"
    path.write_text(json.dumps({"old_codes": ["X" * 30] * (class_file.MAX_BYTES // 30)}))
    assert "larger than" in Classroom(path, clock=Clock()).file_problem


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
KEYS = ["version", "code", "old_codes", "members", "push", "paused", "hide_names", "locked", "removed", "experiment", "past"]


def test_class_json_with_a_code_nobody_can_type_is_moved_aside(tmp_path):
    """Found by the property test below in a fresh clone's run (session 35): a kept code of " "
    loaded, and no typed code could ever match it (what a learner types is normalised first)."""
    for i, code in enumerate((" ", "", "abc234", "AB C2")):
        path = tmp_path / f"class-{i}.json"
        path.write_text(json.dumps({"code": code}))
        room = Classroom(path, clock=Clock())
        assert room.code is None and room.file_problem, code  # moved aside, with a line for the teacher
        room.join(room.open(), "probe")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6) | json_values,
    cell=st.dictionaries(st.sampled_from(["level", "seed", "learner", "job", "result", "round"]), json_values, max_size=6),
)
def test_class_json_any_shape_loads_as_a_clean_class_or_is_moved_aside(tmp_path, shape, cell):
    """Hypothesis throws JSON shapes at the loader (the whole file, and a cell inside a real kept
    experiment): never an exception; either a class that works or a fresh one with a line."""
    path = tmp_path / "class.json"
    for text in (json.dumps(shape), _with_cell(cell)):
        path.write_text(text)
        room = Classroom(path, clock=Clock())
        code = room.open()
        room.join(code, "probe")
        room.view()
        room.roster()
        exp = room.latest()
        if exp is not None:
            classroom.level_stats(exp)
            room.assignment("probe")
        path.unlink(missing_ok=True)
        (tmp_path / "class.json.damaged").unlink(missing_ok=True)


_KEPT: dict = {}


def _with_cell(cell: dict) -> str:
    if not _KEPT:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:
            _KEPT.update(kept_class(Path(folder)))
    data = json.loads(json.dumps(_KEPT))
    data["experiment"]["cells"][0] = cell
    return json.dumps(data)


# ----------------------------------------------------------------------------- the join link's address


def test_the_join_link_uses_the_lan_address_when_the_teacher_opened_localhost(monkeypatch):
    from studio import hosts

    monkeypatch.delenv("TLS_PUBLIC_URL", raising=False)
    monkeypatch.setattr(hosts, "interface_addresses", lambda: {"127.0.0.1", "::1", "169.254.3.4", "192.168.1.20"})
    assert hosts.public_root("http://localhost:8501/class") == ("http://192.168.1.20:8501", True)
    assert hosts.public_root("http://127.0.0.1:8501/class") == ("http://192.168.1.20:8501", True)
    # a name students can type is kept as the teacher opened it
    assert hosts.public_root("http://class.school.example:8501/class") == ("http://class.school.example:8501", True)
    monkeypatch.setattr(hosts, "interface_addresses", lambda: {"127.0.0.1", "::1"})
    assert hosts.public_root("http://127.0.0.1:8501/class") == ("http://127.0.0.1:8501", False)
    monkeypatch.setenv("TLS_PUBLIC_URL", "https://studio.school.example/")
    assert hosts.public_root("http://127.0.0.1:8501/class") == ("https://studio.school.example", True)


def test_with_fewer_learners_than_parts_a_learner_whose_run_is_done_takes_the_next_part():
    room, code = a_class()
    room.join(code, "a", "Ann")
    room.join(code, "b", "Ben")
    exp = room.start_experiment("lr", [1e-3, 1e-2], 2, BASE)  # 4 parts, 2 learners
    first = room.assignment("a")
    assert (first.cell, room.assignment("b").cell) == (0, 1)
    room.started("a", exp.id, first.cell, "job-a")
    room.collect(lambda job, learner: snapshot(0.7))
    second = room.assignment("a")
    assert second.cell == 2 and second.result is None and second.seed == 2  # the next free part, seed-major
    assert room.assignment("b").cell == 1  # Ben keeps his
    assert [r.state for r in room.roster()] == ["open", "open"]


def test_one_address_many_cookies_gets_a_second_part_only_after_every_other_address_has_one():
    room, code = a_class()
    for i in range(4):  # a script: four cookies on one address, joining first
        room.join(code, f"bot-{i}", address="10.0.0.66")
    room.join(code, "ann", "Ann", address="10.0.0.1")
    room.join(code, "ben", "Ben", address="10.0.0.2")
    room.start_experiment("lr", [1e-3, 1e-2], 1, BASE)  # 2 parts
    holders = {c.learner for c in room.latest().cells}
    assert holders == {learner_key("bot-0"), learner_key("ann")}  # one for the script's address, one for Ann
    assert room.assignment("ben") is None and room.assignment("bot-1") is None


def test_parts_go_first_to_members_here_for_a_while_then_to_those_who_just_joined():
    """Issue 54 item 2: parts go first to members present for a while. Two students behind the
    school's one address joined minutes ago; three fresh cookies, each from an address of its own,
    join just before the teacher starts 2 parts: round-robin over addresses alone gave them the
    second part ahead of the second student."""
    from tlcore.serve.classroom.state import SETTLE_S

    room, code = a_class()
    room.join(code, "ann", "Ann", address="10.0.0.1")
    room.join(code, "ben", "Ben", address="10.0.0.1")
    room._clock.now += SETTLE_S + 1
    room.seen("ann")
    room.seen("ben")
    for i in range(3):
        room.join(code, f"bot-{i}", address=f"10.0.9.{i}")
    room.start_experiment("lr", [1e-3, 1e-2], 1, BASE)  # 2 parts
    assert {c.learner for c in room.latest().cells} == {learner_key("ann"), learner_key("ben")}
    room._clock.now += SETTLE_S + 1  # the newcomers settle in: the next experiment's 6 parts reach all five
    for who in ("ann", "ben", "bot-0", "bot-1", "bot-2"):
        room.seen(who)
    room.start_experiment("lr", [1e-3, 1e-2], 3, BASE)  # 6 parts
    assert all(room.assignment(who) is not None for who in ("ann", "ben", "bot-0", "bot-1", "bot-2"))


def test_a_script_that_took_every_part_before_the_class_came_gives_them_back_as_classmates_arrive():
    """Issue 54: 20 cookies of one address took all 15 parts of a running experiment in 2.5 s and
    classmates were told every part had a learner. A classmate from another address, here a while,
    who never had a part now takes an unstarted one from an address that holds more than one; a
    started run is never taken, and a class behind one NAT keeps its joining order."""
    from tlcore.serve.classroom.state import SETTLE_S

    room, code = a_class()
    room.start_experiment("lr", [1e-3, 1e-2], 2, BASE)  # 4 parts, nobody here yet
    for i in range(6):
        room.join(code, f"bot-{i}", address="10.0.0.66")
    bots = {learner_key(f"bot-{i}") for i in range(6)}
    assert all(c.learner in bots for c in room.latest().cells)  # the script came first: every part is its
    exp = room.latest()
    room.started("bot-0", exp.id, room.assignment("bot-0").cell, "job-bot-0")  # one of the script's runs is going
    classmates = (("ann", "10.0.0.1"), ("ben", "10.0.0.2"), ("cy", "10.0.0.3"), ("di", "10.0.0.4"))
    for name, address in classmates:
        room.join(code, name, name.title(), address=address)
    assert room.assignment("ann") is None  # just joined: a fresh cookie takes no part from anyone
    room._clock.now += SETTLE_S + 1  # here a while now (and the script's cookies still polling)
    for who in [f"bot-{i}" for i in range(6)] + [name for name, _ in classmates]:
        room.seen(who)
    room.assignment("ann")
    holders = [c.learner for c in room.latest().cells]
    assert learner_key("bot-0") in holders  # its run is going: kept
    assert {learner_key("ann"), learner_key("ben"), learner_key("cy")} <= set(holders)
    assert room.assignment("di") is None  # the script's last part is a started run: nothing more to give
    assert sum(1 for h in holders if h in bots) == 1

    nat, code = a_class()  # one address for everyone: the first to join keep their parts
    nat.start_experiment("lr", [1e-3], 1, BASE)
    nat.join(code, "first", address="10.0.0.9")
    nat.join(code, "second", address="10.0.0.9")
    assert nat.latest().cells[0].learner == learner_key("first") and nat.assignment("second") is None


def test_a_part_comes_back_from_the_address_with_an_unstarted_one_even_when_another_holds_more_running():
    from tlcore.serve.classroom.design import Cell, share

    running = [Cell(0, s, learner=f"x{s}", job=f"job-{s}") for s in range(3)]  # one address: three runs going
    idle = [Cell(1, s, learner=f"y{s}") for s in range(2)]  # another: two parts not started
    here = [*[(f"x{s}", "10.0.0.7") for s in range(3)], *[(f"y{s}", "10.0.0.8") for s in range(2)], ("ann", "10.0.0.1")]
    assert share([*running, *idle], here, {"ann"}) == 1
    assert idle[1].learner == "ann" and all(c.learner.startswith("x") for c in running)


def test_the_teacher_reassigns_a_part():
    room, code = a_class()
    room.join(code, "a", "Ann", address="1.1.1.1")
    room.join(code, "b", "Ben", address="1.1.1.2")
    room.start_experiment("lr", [1e-3], 1, BASE)  # one part, Ann has it
    assert room.assignment("a") is not None and room.assignment("b") is None
    assert room.reassign(0, learner_key("b"))
    assert room.latest().cells[0].learner == learner_key("b") and room.assignment("a") is None
    assert not room.reassign(5, learner_key("b")) and not room.reassign(0, "nobody")
