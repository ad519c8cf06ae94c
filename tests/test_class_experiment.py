"""The class as one experiment, engine side (tlcore.serve.classroom): codes, joining, the
assignment of cells, the statistics, persistence, and the queue's hold for "pause all"."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from tlcore.core.events import Done, EvalEvent, Failed, History, Started, StepEvent
from tlcore.serve import classroom
from tlcore.serve.classroom import Cell, Classroom, JoinRefused, assign, level_stats, make_cells
from tlcore.serve.jobs import JobQueue
from tlcore.serve.store import learner_key
from tlcore.train.config import RunConfig

BASE = RunConfig(backbone="studio_resnet", dataset="synthetic_novel", image_size=32, per_class=5, epochs=1)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def snapshot(acc: float, grads=None, frozen=("stem",)):
    h = History({})
    h.append(Started(3, 1, ("stem", "stage1", "head"), tuple(frozen), 10, 20, "cpu", 10, 10, ("a", "b")))
    h.append(StepEvent(1, 1, 0.5, 1e-3, grads or {"stage1": 2.0, "head": 4.0}))
    h.append(StepEvent(2, 1, 0.4, 1e-3, grads or {"stage1": 4.0, "head": 2.0}))
    h.append(EvalEvent(1, 2, 0.4, acc, 0.9, 1.5, 100.0))
    h.append(Done({"val_acc": acc}))
    return h.snapshot()


@pytest.mark.fast
def test_join_codes_are_six_unambiguous_characters():
    codes = {classroom.new_code() for _ in range(300)}
    assert all(len(c) == 6 for c in codes)
    assert not set("".join(codes)) & set("0O1IL2Z5S8B")
    assert len(codes) > 290  # random, not a counter
    assert classroom.normal_code(" abc-d3f ") == "ABCD3F"


@pytest.mark.fast
def test_join_by_code_with_a_nickname_or_a_given_one_and_a_second_tab_is_the_same_member():
    room = Classroom(clock=Clock())
    code = room.open()
    me = room.join(code.lower(), "learner-a", "  Mina\x1b[31m ")
    assert me.nickname == "Mina [31m" and me.number == 1
    again = room.join(code, "learner-a")  # a second tab of the same browser
    assert again.number == 1 and room.count()[0] == 1
    other = room.join(code, "learner-b")
    assert other.number == 2 and len(other.nickname.split()) == 3  # "Blue Otter 7"


@pytest.mark.fast
def test_wrong_expired_and_full_codes_are_refused_with_their_reason():
    room = Classroom(size=2, clock=Clock())
    with pytest.raises(JoinRefused) as no_class:
        room.join("ABCDEF", "a")
    assert no_class.value.reason == "wrong"
    old = room.open()
    room.join(old, "a")
    new = room.rotate()
    assert new != old and room.count()[0] == 1  # who joined stays
    with pytest.raises(JoinRefused) as expired:
        room.join(old, "b")
    assert expired.value.reason == "expired"
    room.join(new, "b")
    with pytest.raises(JoinRefused) as full:
        room.join(new, "c")
    assert full.value.reason == "full"


@pytest.mark.fast
def test_a_flood_of_join_attempts_from_one_address_is_limited_and_never_fills_the_class():
    clock = Clock()
    room = Classroom(size=500, clock=clock)
    code = room.open()
    refused = joined = 0
    for i in range(200):  # 200 attempts in a minute, each with a fresh cookie
        try:
            room.join(code, f"bot-{i}", address="10.0.0.9")
            joined += 1
        except JoinRefused as e:
            assert e.reason in ("busy", "too_many") and e.wait_s > 0
            refused += 1
        clock.now += 0.3
    assert joined == classroom.state.NEW_PER_ADDRESS.amount and refused == 200 - joined  # 30 a minute: a room typing
    room.join(code, "classmate", address="10.0.0.10")  # another address is not slowed
    wrong = 0
    for _ in range(classroom.WRONG_CODES + 3):
        try:
            room.join("QQQQQQ", "guesser", address="10.0.0.11")
        except JoinRefused as e:
            wrong += e.reason == "wrong"
    assert wrong == classroom.WRONG_CODES  # then this learner must wait, right code or not
    with pytest.raises(JoinRefused) as waits:
        room.join(code, "guesser", address="10.0.0.11")
    assert waits.value.reason == "too_many"


def test_nobody_behind_one_nat_is_locked_out_for_a_neighbours_typos_but_a_scripts_cookies_are():
    room = Classroom(size=100, clock=Clock())
    code = room.open()
    for _ in range(classroom.WRONG_CODES + 2):  # one classmate mistypes, again and again
        with pytest.raises(JoinRefused):
            room.join("QQQQQQ", "typo", address="192.168.0.1")
    for i in range(5):  # the rest of the class behind the same address joins with the right code
        room.join(code, f"student-{i}", address="192.168.0.1")
    assert room.count()[0] == 5
    refused = [None]
    for i in range(classroom.state.WRONG_CODES_PER_ADDRESS + 5):  # a script: a new cookie for every guess
        try:
            room.join("QQQQQQ", f"bot-{i}", address="10.9.9.9")
        except JoinRefused as e:
            refused.append(e.reason)
    # stopped by the address's attempts (60 in a row) before its wrong codes (100) ran out
    assert refused.count("wrong") == classroom.JOINS_PER_ADDRESS and refused[-1] == "too_many"


def test_members_who_never_came_back_hold_no_seat():
    clock = Clock()
    room = Classroom(size=2, clock=clock)
    code = room.open()
    room.join(code, "a", address="1.1.1.1")
    room.join(code, "b", address="1.1.1.2")
    with pytest.raises(JoinRefused):
        room.join(code, "c", address="1.1.1.3")
    clock.now += classroom.state.SEAT_S + 1
    room.seen("a")  # Ann is still here; Ben never came back
    room.join(code, "c", address="1.1.1.3")
    assert room.count()[0] == 3


@pytest.mark.fast
def test_assignment_is_balanced_as_learners_join_and_a_leavers_open_cell_goes_to_the_next():
    cells = make_cells(3, [1, 2])
    assign(cells, ["a", "b"])
    assert [c.learner for c in cells] == ["a", "b", None, None, None, None]  # two levels of seed 1 first
    assign(cells, ["a", "b", "c", "d"])
    assert {c.level for c in cells if c.learner} == {0, 1, 2}
    assert [c.learner for c in cells][:4] == ["a", "b", "c", "d"]
    # b leaves before starting: their cell goes to the next learner without one
    assign(cells, ["a", "c", "d", "e"])
    assert cells[1].learner == "e"
    # d has a run going when they leave: the cell stays theirs until it ends
    cells[3].job = "job-d"
    assign(cells, ["a", "c", "e"])
    assert cells[3].learner == "d"


@pytest.mark.fast
def test_rejoin_keeps_ones_cell_and_more_learners_than_cells_leaves_the_rest_watching():
    cells = make_cells(2, [1])
    assign(cells, ["a", "b", "c"])
    assert [c.learner for c in cells] == ["a", "b"]
    assign(cells, ["b", "a", "c"])  # order of polling changes nothing
    assert [c.learner for c in cells] == ["a", "b"]
    cells[0].result = classroom.CellResult(0.5, [0.5], {}, [], 1.0, "a", 1)
    assign(cells, ["b", "c"])  # a finished cell is never taken from its learner
    assert cells[0].learner == "a"


@pytest.mark.fast
def test_the_classroom_assigns_cells_and_reassigns_when_a_learner_is_away():
    clock = Clock()
    room = Classroom(clock=clock)
    code = room.open()
    for name in "abc":
        room.join(code, name)
    exp = room.start_experiment("strategy", ["full", "linear_probe"], 2, BASE)
    assert exp.levels == ["linear_probe", "full"]  # the factor's own order
    mine = room.assignment("a")
    assert (mine.level, mine.seed, mine.config.strategy, mine.config.seed) == ("linear_probe", 1, "linear_probe", 1)
    assert room.assignment("b").level == "full" and room.assignment("c").seed == 2
    clock.now += classroom.PRESENT_S + 1
    room.seen("a")
    room.seen("c")
    room.join(code, "d")
    holders = {c.learner for c in room.latest().cells if c.learner}
    assert holders == {learner_key(x) for x in "acd"}  # b, away, holds no cell; d took one of the first three
    room.seen("b")
    assert room.assignment("d").cell < 3 and room.assignment("b") is not None  # b back: a free cell again


@pytest.mark.fast
def test_the_run_uses_the_assignment_and_results_fill_cells_and_failures_reopen_them():
    room = Classroom(clock=Clock())
    code = room.open()
    room.join(code, "a", "Ann")
    room.join(code, "b", "Ben")
    room.start_experiment("freeze_depth", [0, 2], 1, BASE.replace(strategy="full"))
    a, b = room.assignment("a"), room.assignment("b")
    assert a.config.strategy == "partial" and a.config.freeze_depth == 0 and b.config.freeze_depth == 2
    assert room.started("a", a.experiment, a.cell, "job-a")
    assert not room.started("a", a.experiment, b.cell, "job-x")  # not a's cell
    assert room.started("b", b.experiment, b.cell, "job-b")
    outcomes = {"job-a": snapshot(0.75), "job-b": "failed"}
    assert room.collect(lambda job, learner: outcomes[job]) == 2
    exp = room.latest()
    assert exp.cells[0].result.acc == 0.75 and exp.cells[0].result.nickname == "Ann"
    assert exp.cells[0].result.grads == {"stage1": 3.0, "head": 3.0} and exp.cells[0].result.frozen == ["stem"]
    assert exp.cells[1].result is None and exp.cells[1].job is None and exp.cells[1].failed == "failed"
    assert room.assignment("b").cell == 1  # Ben may press Start again


@pytest.mark.fast
def test_level_stats_give_mean_sd_and_a_t_interval_and_count_pending_cells():
    exp = classroom.Experiment(
        "e", "strategy", ["linear_probe", "full"], [1, 2, 3], BASE.to_dict(), make_cells(2, [1, 2, 3]), 0.0
    )
    for cell, acc in zip([c for c in exp.cells if c.level == 0], (0.70, 0.72, 0.74)):
        cell.result = classroom.CellResult(acc, [acc], {"head": 1.0}, ["stem"], 1.0, "x", 1)
    exp.cells[1].result = classroom.CellResult(0.8, [0.8], {"head": 3.0, "stem": 1.0}, [], 1.0, "y", 2)
    probe, full = level_stats(exp)
    assert probe.n == 3 and probe.mean == pytest.approx(0.72) and probe.sd == pytest.approx(0.02)
    assert probe.ci95 == pytest.approx(4.303 * 0.02 / 3**0.5, rel=1e-4)  # t(0.975, 2) = 4.3027 (scipy)
    assert full.n == 1 and full.sd is None and full.pending == 2
    groups, rows = classroom.grad_table(exp)
    assert groups == ["stem", "head"]
    assert rows == [[None, 1.0], [1.0, 3.0]]  # stem frozen in every probe run: no value, not a zero


@pytest.mark.fast
def test_a_cell_identical_to_a_finished_one_is_filled_without_training():
    room = Classroom(clock=Clock())
    code = room.open()
    room.join(code, "a")
    first = room.start_experiment("lr", [1e-3], 1, BASE)
    room.started("a", first.id, 0, "job-a")
    room.collect(lambda job, learner: snapshot(0.6))
    # the same settings again in a new experiment (same seed: lr levels and seeds given explicitly)
    room.stop_experiment()
    room.experiment = classroom.Experiment("e2", "lr", [1e-3], [1], first.base, make_cells(1, [1]), 0.0)
    room.join(code, "b")
    room.experiment.cells[0].learner = learner_key("b")
    reused = room.reuse("b")
    assert reused is not None and reused.reused and reused.acc == 0.6 and room.latest().filled() == 1


def test_run_it_again_adds_a_round_of_new_seeds_to_the_same_experiment():
    room = Classroom(clock=Clock())
    code = room.open()
    room.join(code, "a")
    first = room.start_experiment("strategy", ["linear_probe", "partial"], 1, BASE)
    a = room.assignment("a")
    room.started("a", first.id, a.cell, "job-a")
    room.collect(lambda job, learner: snapshot(0.7))
    again = room.add_round()
    assert again.id == first.id and again.seeds == [1, 2] and again.round == 2
    assert [(c.level, c.seed, c.round) for c in again.cells] == [(0, 1, 1), (1, 1, 1), (0, 2, 2), (1, 2, 2)]
    assert again.cells[0].result.acc == 0.7  # the first round's run is kept: n grows round by round
    room.stop_experiment()  # stopped: "Run it again" reopens it with a third round
    third = room.add_round()
    assert third.id == first.id and third.running and third.seeds == [1, 2, 3] and len(third.cells) == 6
    stats = level_stats(third)
    assert stats[0].n == 1 and stats[0].pending == 2 and stats[0].running == 0
    # a new design is its own experiment; the same design started anew goes on from its seeds
    other = room.start_experiment("strategy", ["linear_probe", "partial"], 2, BASE)
    assert other.id != first.id and other.seeds == [4, 5] and other.round == 1


@pytest.mark.fast
def test_an_experiments_seeds_share_its_examples_unless_the_teacher_asks_for_new_ones():
    room = Classroom(clock=Clock())
    room.open()
    base = BASE.replace(seed=7)
    same = room.start_experiment("lr", [1e-3, 1e-2], 2, base)
    configs = [same.config(c) for c in same.cells]
    assert same.same_examples and {c.split_seed for c in configs} == {7} and {c.data_seed for c in configs} == {7}
    assert len({c.seed for c in configs}) == 2  # the seeds still differ: the head's start, the order, the flips
    assert room.add_round().same_examples  # another round keeps the choice
    own = room.start_experiment("lr", [1e-3, 1e-2], 2, base, same_examples=False)
    assert not own.same_examples and [own.config(c).data_seed for c in own.cells] == [c.seed for c in own.cells]


@pytest.mark.usefixtures("no_warm_up")  # the cache counts below are this test's runs' alone
def test_cells_on_the_same_examples_draw_the_same_split_and_compute_the_frozen_features_once():
    from tlcore.data import feature_cache
    from tlcore.train import tasks
    from tlcore.train.recipe import run

    base = BASE.replace(strategy="partial", freeze_depth=1, augment="none", split_seed=3)
    one, two = (tasks.of(base.replace(seed=s)).load(base.replace(seed=s)) for s in (1, 2))
    assert one.train_x.equal(two.train_x) and one.val_x.equal(two.val_x)
    other = tasks.of(base).load(base.replace(seed=1, split_seed=-1))  # its own draw: other examples
    assert not other.train_x.equal(one.train_x)
    feature_cache.shared.clear()
    first, second = (run(base.replace(seed=s), lambda e: None) for s in (1, 2))
    assert (feature_cache.shared.misses, feature_cache.shared.hits) == (1, 1)
    assert first.val_loss != second.val_loss  # seeds still matter


@pytest.mark.fast
def test_the_class_survives_a_restart_in_a_private_file(tmp_path):
    path = tmp_path / "class.json"
    room = Classroom(path, clock=Clock())
    code = room.open()
    room.join(code, "a", "Ann")
    exp = room.start_experiment("strategy", ["linear_probe", "full"], 1, BASE)
    room.started("a", exp.id, 0, "job-a")
    room.collect(lambda job, learner: snapshot(0.7))
    room.push("3_finetune", {"epochs": 5})
    room.set_paused(True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    back = Classroom(path, clock=Clock())
    assert back.code == code and back.member("a").nickname == "Ann" and back.paused
    assert back.push_state.settings == {"epochs": 5} and back.latest().cells[0].result.acc == 0.7
    path.write_text("{not json")
    fresh = Classroom(path, clock=Clock())
    assert fresh.code is None and (tmp_path / "class.json.damaged").exists()
    assert "not JSON" in fresh.file_problem and "class.json.damaged" in fresh.file_problem


@pytest.mark.fast
def test_one_lock_many_threads_joining_at_once_give_distinct_numbers():
    room = Classroom(size=100, clock=Clock())
    code = room.open()
    room.start_experiment("strategy", ["linear_probe", "partial"], 25, BASE)  # 20 seeds at most: 40 cells
    threads = [threading.Thread(target=room.join, args=(code, f"l{i}"), kwargs={"address": f"a{i}"}) for i in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    exp = room.latest()
    assert sorted(m.number for m in room.members.values()) == list(range(1, 51))
    holders = [c.learner for c in exp.cells]
    assert len(holders) == 40 and None not in holders and len(set(holders)) == 40  # one cell each, none twice


@pytest.mark.fast
def test_pause_holds_the_learners_waiting_jobs_and_the_teachers_still_run():
    release, busy = threading.Event(), threading.Event()
    order = []

    def run(config, emit, should_stop):
        order.append(config.seed)
        if config.seed == 1:
            busy.set()
            release.wait(10)
        emit(Done({}))

    queue = JobQueue.started(run, workers=1)
    first = queue.submit(BASE.replace(seed=1), "busy")  # occupies the worker
    assert busy.wait(10)
    queue.hold(lambda job: job.priority == 0)
    student = queue.submit(BASE.replace(seed=2), "student")
    teacher = queue.submit(BASE.replace(seed=3), "teacher", priority=1)
    release.set()
    assert queue.wait_until_ended(teacher, "teacher", 10)
    assert queue.get(student, "student").state == "queued"  # held after the teacher's ran
    queue.hold(None)
    assert queue.wait_until_ended(student, "student", 10)
    assert order == [1, 3, 2] and queue.get(first, "busy").state == "done"


@pytest.mark.fast
def test_class_state_file_keeps_no_learner_id_only_its_hash(tmp_path):
    room = Classroom(tmp_path / "class.json", clock=Clock())
    room.join(room.open(), "cookie-1", "Ann")
    text = (tmp_path / "class.json").read_text()
    assert "cookie-1" not in text  # the id is the learner's cookie: a secret
    assert json.loads(text)["members"][learner_key("cookie-1")]["nickname"] == "Ann"


@pytest.mark.fast
def test_failed_snapshot_is_not_a_result():
    h = History({})
    h.append(Failed("x", "boom"))
    assert classroom.summarize(h.snapshot(), nickname="a", number=1) is None
    assert Cell(0, 1).done is False


def test_the_cli_runs_the_same_experiment_alone_and_prints_each_levels_spread(tmp_path, capsys):
    from tlcore import cli

    out = tmp_path / "cells.csv"
    code = cli.main(["class-experiment", "--factor", "strategy", "--levels", "linear_probe,partial", "--seeds", "2",
                     "--backbone", "studio_resnet", "--dataset", "synthetic_novel", "--image-size", "32",
                     "--per-class", "5", "--epochs", "1", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert "cell 4/4" in printed and "linear_probe" in printed and "95% CI" in printed
    rows = out.read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("cell,level,seed,val_acc")
    assert {r.split(",")[2] for r in rows[1:]} == {"1", "2"}  # two seeds per level
    assert all(0.0 <= float(r.split(",")[3]) <= 1.0 for r in rows[1:])


@pytest.mark.fast
def test_the_cli_refuses_a_level_the_factor_does_not_have(capsys):
    from tlcore import cli

    assert cli.main(["class-experiment", "--factor", "strategy", "--levels", "bogus"]) == 2
    assert "levels of strategy must be among" in capsys.readouterr().err


# --- in the pages (AppTest) -----------------------------------------------------------------


@pytest.fixture
def class_app(monkeypatch):
    """A class with its own Classroom and queue, a teacher's secret, and a way to open pages in it."""
    from studio import teacher as teacher_ui
    from tests.helpers.apptest import CLASSROOM, SECRET, app, unlock
    from tests.helpers.fakes import fake_run

    monkeypatch.setenv("TLS_TEACHER_SECRET", SECRET)
    room, queue = Classroom(), JobQueue.started(fake_run)

    def open_page(page, owner, state=None, **kw):
        return app(page, queue=queue, owner=owner, state={CLASSROOM: room, **(state or {})}, **kw)

    def as_teacher():
        at = open_page("pages/6_class.py", "teacher-cookie-0001")
        unlock(at, SECRET)
        assert teacher_ui.is_teacher_id("teacher-cookie-0001")
        return at

    yield room, queue, open_page, as_teacher


def test_a_learner_not_in_a_class_sees_no_join_box_until_a_class_is_open(class_app):
    room, _, open_page, _ = class_app
    at = open_page(None, "learner-0001")
    assert not [w for w in at.text_input if w.key == "join_code:start"]
    room.open()
    at = open_page(None, "learner-0002")
    assert at.text_input(key="join_code:start").label == "Class code"


def test_join_by_the_link_and_by_the_code_in_korean_with_clear_messages(class_app):
    room, _, open_page, as_teacher = class_app
    teacher = as_teacher()
    code = room.code
    assert code and code in "".join(m.value for m in teacher.markdown)  # the code on the projector
    by_link = open_page(None, "learner-0001", query={"join": code})
    assert any("You joined the class as" in s.value for s in by_link.success)
    ko = open_page(None, "learner-0002", lang="ko")
    ko.text_input(key="join_code:start").set_value("QQQQQQ")
    ko.button(key="join:start").click().run()
    assert any("이 수업의 코드가 아닙니다" in e.value for e in ko.error)
    ko.text_input(key="join_code:start").set_value(code.lower())
    ko.text_input(key="join_nick:start").set_value("미나")
    ko.button(key="join:start").click().run()
    assert any("미나" in s.value for s in ko.success) and room.count()[0] == 2


def test_pause_all_turns_a_class_members_start_off_and_says_why(class_app):
    room, queue, open_page, as_teacher = class_app
    teacher = as_teacher()
    member = open_page("pages/3_finetune.py", "learner-0001", query={"join": room.code})
    outsider = open_page("pages/3_finetune.py", "learner-0002")
    teacher.button(key="class_pause").click().run()
    assert room.paused
    member.run()
    assert member.button(key="start").disabled
    assert any("The teacher paused the class" in c.value for c in member.caption)
    outsider.run()
    assert not outsider.button(key="start").disabled  # not in the class: no difference
    teacher.button(key="class_resume").click().run()
    member.run()
    assert not member.button(key="start").disabled


def test_a_learners_part_runs_the_assignment_not_their_own_settings(class_app):
    room, queue, open_page, as_teacher = class_app
    teacher = as_teacher()
    learner = open_page("pages/6_class.py", "learner-0001", query={"join": room.code}, state={"epochs": 7})
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.number_input(key="w:class_seeds").set_value(1).run()
    teacher.button(key="class_exp_start").click().run()
    assert room.latest().levels == [1e-4, 1e-3, 1e-2]
    learner.run()
    assert any("Your part of the class experiment" in m.value for m in learner.markdown)
    assert any("whatever you chose on the other pages" in c.value for c in learner.caption)
    learner.button(key="class_start").click().run()
    job = learner.session_state["job:class"]
    ran = queue.get(job, "learner-0001").configs[0]
    part = next(c for c in room.latest().cells if c.job == job)  # (once done, the learner's next part is another)
    assert ran == room.latest().config(part) and ran.lr == 1e-4 and ran.seed == 1 and ran.epochs != 7
    assert ran.split_seed == room.latest().config(room.latest().cells[1]).split_seed >= 0  # the same examples for all
    assert queue.wait_until_ended(job, "learner-0001", 30)
    teacher.run()
    assert room.latest().filled() == 1  # the projected view collected it
    assert "1 of 3" in teacher.get("plotly_chart")[0].proto.spec
    assert any("Every dot trained and was measured on the same examples" in c.value for c in teacher.caption)


def test_a_class_experiment_started_before_the_page_redrew_for_a_new_factor_uses_its_first_levels(class_app):
    """In Chromium on a busy server: the teacher picked a factor and pressed Start before any run of
    the page had drawn that factor's levels (the runs in between were cut short by the next click);
    Start said "could not start: choose at least one level" while the page went on to show three."""
    room, _, _, as_teacher = class_app
    teacher = as_teacher()
    assert "class_levels:per_class" not in teacher.session_state
    teacher.session_state["class_factor"] = "per_class"  # what the factor's own callback set; no run drew it since
    teacher.button(key="class_exp_start").click().run()
    assert not [e.value for e in teacher.error]
    assert room.latest().factor == "per_class" and room.latest().levels == [5, 20, 50]


@pytest.mark.fast
def test_the_projected_charts_are_built_once_per_state_of_the_experiment():
    from studio import class_view

    room = Classroom(clock=Clock())
    code = room.open()
    room.join(code, "a")
    exp = room.start_experiment("lr", [1e-3, 1e-2], 2, BASE)
    first = class_view.result_chart(exp)
    assert class_view.result_chart(exp) is first  # the projector's next redraw: nothing new, nothing built
    assert class_view.result_chart(exp, mine=0) is not first  # another viewer's dot: its own figure
    room.started("a", exp.id, 0, "job-a")
    # A cell taken and started changes nothing drawn (its level's "still running" counted it already):
    # the burst of a class's Start presses builds nothing.
    assert class_view.result_chart(room.latest()) is first
    assert "(0 of 4 runs)" in first.layout.title.text
    room.collect(lambda job, learner: snapshot(0.6))
    after = class_view.result_chart(room.latest())
    assert after is not first and "(1 of 4 runs)" in after.layout.title.text
    assert class_view.grad_chart(room.latest()) is class_view.grad_chart(room.latest())


@pytest.mark.fast
def test_the_class_gradient_map_has_its_numbers_as_a_table():
    """Issue 31, item 3: the projected gradient map's text alternative, a row per layer group."""
    from studio import class_view

    room = Classroom(clock=Clock())
    code = room.open()
    room.join(code, "a")
    exp = room.start_experiment("lr", [1e-3, 1e-2], 1, BASE)
    room.started("a", exp.id, 0, "job-a")
    room.collect(lambda job, learner: snapshot(0.6))
    columns = class_view.grad_columns(room.latest())
    assert list(columns) == ["Layer group", class_view.level_label("lr", 1e-3), class_view.level_label("lr", 1e-2)]
    assert columns["Layer group"] == ["stem", "stage1", "head"]
    assert list(columns.values())[1] == ["frozen", "3", "3"]  # stem frozen; the two steps' mean norms
    assert list(columns.values())[2] == ["–", "–", "–"]  # no run of that level yet
    assert "stage1" in class_view.grad_summary(room.latest()) or "head" in class_view.grad_summary(room.latest())


def test_the_class_experiment_design_survives_a_page_change_and_start_uses_it(class_app):
    """Streamlit drops a widget's own value when a run does not draw it (a page change, a timer
    fragment's re-run): the design is the teacher's setting, so Start uses what the page shows."""
    room, _, _, as_teacher = class_app
    teacher = as_teacher()
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.multiselect(key="w:class_levels:lr").unselect(0.01).run()
    teacher.number_input(key="w:class_seeds").set_value(2).run()
    teacher.checkbox(key="w:class_same_examples").uncheck().run()
    teacher.switch_page("pages/3_finetune.py").run()
    teacher.switch_page("pages/6_class.py").run()
    assert teacher.selectbox(key="w:class_factor").value == "lr"
    assert teacher.multiselect(key="w:class_levels:lr").value == [1e-4, 1e-3]
    assert teacher.number_input(key="w:class_seeds").value == 2
    assert teacher.checkbox(key="w:class_same_examples").value is False
    teacher.button(key="class_exp_start").click().run()
    exp = room.latest()
    assert (exp.factor, exp.levels, len(exp.seeds), exp.same_examples) == ("lr", [1e-4, 1e-3], 2, False)


def test_the_push_goes_to_the_page_the_teacher_chose_after_a_page_change(class_app):
    room, _, _, as_teacher = class_app
    teacher = as_teacher()
    teacher.selectbox(key="w:class_push_page").set_value("5_text").run()
    teacher.switch_page("pages/3_finetune.py").run()
    teacher.switch_page("pages/6_class.py").run()
    assert teacher.selectbox(key="w:class_push_page").value == "5_text"
    teacher.button(key="class_push").click().run()
    assert (room.push_state.version, room.push_state.page) == (1, "5_text")


def test_the_teacher_can_give_each_seed_its_own_examples(class_app):
    room, _, _, as_teacher = class_app
    teacher = as_teacher()
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.checkbox(key="w:class_same_examples").uncheck().run()
    teacher.button(key="class_exp_start").click().run()
    exp = room.latest()
    assert not exp.same_examples and all(exp.config(c).data_seed == c.seed for c in exp.cells)
    assert any("Each seed drew its own training and validation examples" in c.value for c in teacher.caption)


def test_the_class_experiment_alone_fills_every_cell_however_long_its_runs_take(monkeypatch):
    """`python -m tlcore class-experiment` runs the cells one after the other: a virtual learner whose
    turn comes after more than PRESENT_S of others' runs still holds their part (it once lost it to a
    learner who had finished, and the experiment ended a cell short)."""
    import time

    from tests.helpers.fakes import fake_run

    monkeypatch.setattr(classroom.state, "PRESENT_S", 0.05)

    def slow_run(config, emit):
        time.sleep(0.02)  # six cells: 0.12 s in all, longer than PRESENT_S
        return fake_run(config, emit, lambda: False)

    exp = classroom.run_alone(RunConfig(), "lr", [1e-4, 1e-3, 1e-2], 2, run=slow_run)
    assert exp.filled() == len(exp.cells) == 6


def test_a_part_whose_run_a_restart_cut_tells_its_learner_why_and_starts_again(class_app, tmp_path):
    """Issue 54: students whose class run a restart cut were not told; their part just showed Start."""
    # The engine: the restarted server's class reads the run that was going as interrupted
    kept = Classroom(tmp_path / "class.json")
    kept.join(kept.open(), "ann")
    exp = kept.start_experiment("lr", [1e-3], 1, BASE)
    kept.started("ann", exp.id, 0, "job-before-restart")
    back = Classroom(tmp_path / "class.json")
    assert (back.latest().cells[0].job, back.latest().cells[0].failed) == (None, "interrupted")

    # The page: the learner reads why, then Start runs the part again
    room, queue, open_page, as_teacher = class_app
    teacher = as_teacher()
    learner = open_page("pages/6_class.py", "learner-0001", query={"join": room.code})
    teacher.selectbox(key="w:class_factor").set_value("lr").run()
    teacher.button(key="class_exp_start").click().run()
    learner.run()
    assert not [w for w in learner.warning if "restarted" in w.value]
    part = room.assignment("learner-0001")
    room.started("learner-0001", part.experiment, part.cell, "job-cut")
    assert room.collect(lambda job, learner: "interrupted") == 1
    learner.run()
    said = [w.value for w in learner.warning if "server restarted while your run was going" in w.value]
    assert said and "Start my part" in said[0]
    learner.button(key="class_start").click().run()
    assert room.latest().cells[part.cell].job == learner.session_state["job:class"]
    assert room.latest().cells[part.cell].failed == ""
    learner.run()
    assert not [w for w in learner.warning if "restarted" in w.value]


@pytest.mark.fast
def test_a_copy_of_the_experiment_is_whole_and_shares_nothing_that_can_change():
    """Experiment, Cell and CellResult copy themselves (the pulse copies the experiment on every poll):
    every field as copy.deepcopy's walk would make it, and no list or dict shared with the class's own."""
    import copy
    import dataclasses

    from tlcore.serve.classroom.design import CellResult, Experiment

    cells = make_cells(3, range(2))
    for i, cell in enumerate(cells):  # every field away from its default
        cell.learner, cell.job, cell.failed, cell.round = f"learner-{i}", f"job-{i}", "out of memory", 2
        cell.result = CellResult(0.5 + i / 100, [0.3, 0.5], {"stage4": 1.5}, ["stem"], 3.2, f"otter {i}", i + 1, True)
    exp = Experiment("exp-1", "lr", [1e-4, 1e-3, 1e-2], [1, 2], RunConfig().to_dict(), cells, 100.0, 200.0)
    for field in (*dataclasses.fields(Experiment), *dataclasses.fields(cells[0]), *dataclasses.fields(cells[0].result)):
        owner = (
            exp
            if field in dataclasses.fields(Experiment)
            else cells[0]
            if field in dataclasses.fields(cells[0])
            else cells[0].result
        )
        if field.default is not dataclasses.MISSING:  # a field added later with a default is covered here too
            assert getattr(owner, field.name) != field.default, field.name
    twin = copy.deepcopy(exp)
    assert dataclasses.asdict(twin) == dataclasses.asdict(exp)
    twin.levels.append(1.0)
    twin.seeds.append(9)
    twin.base["lr"] = 9.0
    twin.cells[0].learner = "someone else"
    twin.cells[0].result.accs.append(0.9)
    twin.cells[0].result.grads["head"] = 2.0
    twin.cells[0].result.frozen.append("stage1")
    twin.cells.pop()
    assert exp.levels == [1e-4, 1e-3, 1e-2] and exp.seeds == [1, 2] and exp.base["lr"] != 9.0 and len(exp.cells) == 6
    assert cells[0].learner == "learner-0" and cells[0].result.accs == [0.3, 0.5]
    assert cells[0].result.grads == {"stage4": 1.5} and cells[0].result.frozen == ["stem"]


@pytest.mark.fast
def test_a_copy_of_a_question_is_whole_and_shares_no_answer():
    import copy
    import dataclasses

    from tlcore.serve.classroom.questions import Answer, Question

    q = Question("q-1", "own", ["0", "1"], ["cats", "dogs"], "Which?", "exp-1", 2,
                 [{"a": Answer("0", 40.0, 2, 5.0)}, {"b": Answer("1", None, 1, 6.0)}], False, True, 7.0, "1",
                 {"acc": 0.5})  # fmt: skip
    for field in dataclasses.fields(Question):  # every field away from its default
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        assert getattr(q, field.name) != default, field.name
    twin = copy.deepcopy(q)
    assert dataclasses.asdict(twin) == dataclasses.asdict(q)
    twin.votes[0]["a"].choice = "1"
    twin.votes[-1]["c"] = Answer("0")
    twin.choices.append("2")
    twin.labels.append("birds")
    twin.outcome["acc"] = 0.9
    assert q.votes[0]["a"].choice == "0" and "c" not in q.votes[-1]
    assert q.choices == ["0", "1"] and q.labels == ["cats", "dogs"] and q.outcome == {"acc": 0.5}
