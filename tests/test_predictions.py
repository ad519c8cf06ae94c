"""Predict, run, reveal, engine side (tlcore.serve.classroom.questions and state): questions built
from the setup, answers counted once per learner and changeable until closed, bad input refused,
the reveal beside the measured levels and their seed noise, vote again, exit tickets from a
learner's own run, and all of it kept across a restart."""

from __future__ import annotations

import pytest

from tests.test_class_experiment import BASE, Clock, snapshot
from tlcore.serve import classroom
from tlcore.serve.classroom import CellResult, Classroom, QuestionRefused, exit_ticket, personal, reveal, top_two


def a_class(tmp_path=None, learners=("a", "b", "c")):
    room = Classroom(tmp_path / "class.json" if tmp_path else None, clock=Clock())
    code = room.open()
    for name in learners:
        room.join(code, name, name.upper())
    return room


def fill(room, accs_by_level):
    """Finish the experiment's cells with these accuracies (level -> list, seed by seed)."""
    exp = room.experiment
    for level, accs in accs_by_level.items():
        cells = [c for c in exp.cells if c.level == level]
        for cell, acc in zip(cells, accs):
            cell.result = CellResult(acc, [acc], {"stage4": 2.0 * acc, "head": 1.0}, ["stem"], 1.0, "x", 1)
            cell.learner = cell.learner or f"k{level}{cell.seed}"


def test_questions_come_from_the_setup_and_bad_ones_are_refused():
    room = a_class()
    with pytest.raises(QuestionRefused) as no_exp:
        room.ask("winner")
    assert no_exp.value.reason == "no_experiment"
    room.start_experiment("lr", [1e-4, 1e-3, 1e-2], 2, BASE)
    assert room.ask("winner").choices == ["0", "1", "2"]
    assert room.ask("beyond_noise").choices == ["yes", "no"]
    assert room.ask("accuracy", level=1).level == 1
    groups = room.ask("groups").choices
    assert groups[0] == "stem" and "head" in groups  # the backbone's layer groups, shallow to deep
    for bad in ([], ["only one"], [f"c{i}" for i in range(50)], ["same", "same"]):
        with pytest.raises(QuestionRefused):
            room.ask("own", text="Which?", choices=bad)
    with pytest.raises(QuestionRefused):
        room.ask("own", text="   ", choices=["a", "b"])
    own = room.ask("own", text='=HYPERLINK("http://x","y") <b>bold</b>', choices=["<script>x</script>", "two\nlines"])
    assert own.labels == ["<script>x</script>", "two lines"]  # kept as plain text: the pages escape it
    assert [q.open for q in room.questions] == [False] * 4 + [True]  # asking closes the one before


def test_an_answer_counts_once_per_learner_changes_until_closed_and_bad_answers_are_refused():
    room = a_class()
    room.start_experiment("lr", [1e-4, 1e-3, 1e-2], 1, BASE)
    q = room.ask("winner")
    room.answer("a", q.id, "0")
    room.answer("a", q.id, "2", confidence=3)  # changed: still one answer
    room.answer("b", q.id, "1")
    assert room.answered() == (2, 3)
    assert room.current_question().current()[classroom.learner_key("a")].choice == "2"
    for choice, number, confidence, reason in (("7", None, 0, "bad_choice"), ("1", None, 9, "bad_confidence")):
        with pytest.raises(QuestionRefused) as refused:
            room.answer("c", q.id, choice, number, confidence)
        assert refused.value.reason == reason
    with pytest.raises(QuestionRefused) as outsider:
        room.answer("not-a-member", q.id, "1")
    assert outsider.value.reason == "not_member"
    acc = room.ask("accuracy", level=0)
    for number in (-1, 101, float("nan"), "x", None):
        with pytest.raises(QuestionRefused):
            room.answer("a", acc.id, number=number)
    room.answer("a", acc.id, number=72.44)
    room.close_question(acc.id)
    with pytest.raises(QuestionRefused) as closed:
        room.answer("b", acc.id, number=50)
    assert closed.value.reason == "closed" and room.answered() == (1, 3)


def test_a_parts_start_waits_for_the_predictions_unless_the_teacher_lets_runs_go():
    room = a_class()
    room.start_experiment("lr", [1e-4, 1e-3], 1, BASE)
    q = room.ask("winner")
    assert room.predictions_block_start()
    room.set_wait_for_predictions(False)
    assert not room.predictions_block_start()
    room.set_wait_for_predictions(True)
    room.close_question(q.id)
    assert not room.predictions_block_start()


def test_top_two_says_whether_the_gap_is_beyond_the_seed_noise():
    room = a_class()
    room.start_experiment("lr", [1e-4, 1e-3, 1e-2], 3, BASE)
    fill(room, {0: [0.50, 0.52, 0.54], 1: [0.74, 0.75, 0.76], 2: [0.70, 0.60, 0.80]})
    top = top_two(room.experiment)
    assert top.order == (1, 2, 0) and top.best == 1 and top.second == 2
    assert top.gap == pytest.approx(0.05) and top.beyond is False  # 0.01's seeds spread 10 points
    fill(room, {2: [0.60, 0.61, 0.62]})
    assert top_two(room.experiment).beyond is True and top_two(room.experiment).p < 0.05
    one = a_class()
    one.start_experiment("lr", [1e-4, 1e-3], 1, BASE)
    fill(one, {0: [0.5], 1: [0.7]})
    assert top_two(one.experiment).beyond is None  # one seed each: the noise is unknown


def test_the_reveal_puts_the_class_predictions_beside_the_measured_levels_and_each_learners_sentence():
    room = a_class()
    room.start_experiment("lr", [1e-4, 1e-3, 1e-2], 3, BASE)
    q = room.ask("winner")
    room.answer("a", q.id, "2")  # 0.01 wins, says Ann
    room.answer("b", q.id, "2")
    room.answer("c", q.id, "1")
    fill(room, {0: [0.50, 0.52, 0.54], 1: [0.74, 0.75, 0.76], 2: [0.60, 0.61, 0.62]})
    room.reveal_question(q.id)
    asked = room.current_question()
    outcome = reveal(asked, room.experiment)
    assert asked.revealed and not asked.open
    assert outcome.counts == [{"0": 0, "1": 1, "2": 2}] and outcome.expected == "2" and outcome.right == "1"
    ann = personal(asked, outcome, classroom.learner_key("a"))
    assert ann.right is False and ann.rank == 2 and ann.behind == pytest.approx(14.0)
    assert personal(asked, outcome, classroom.learner_key("c")).right is True
    assert not personal(asked, outcome, "nobody").answered
    acc = room.ask("accuracy", level=1)
    room.answer("a", acc.id, number=80)
    mine = personal(room.current_question(), reveal(room.current_question(), room.experiment), classroom.learner_key("a"))
    assert mine.off_by == pytest.approx(5.0) and mine.within_noise is False


def test_vote_again_keeps_the_first_vote_beside_the_second():
    room = a_class()
    room.start_experiment("lr", [1e-4, 1e-3], 2, BASE)
    q = room.ask("beyond_noise")
    room.answer("a", q.id, "no")
    room.answer("b", q.id, "no")
    room.reveal_question(q.id)
    again = room.vote_again(q.id)
    assert again.vote == 2 and again.open and not again.revealed
    room.answer("a", q.id, "yes")
    outcome = reveal(room.current_question(), room.experiment)
    assert outcome.counts == [{"yes": 0, "no": 2}, {"yes": 1, "no": 0}] and outcome.answered == [2, 1]
    room.vote_again(q.id)
    with pytest.raises(QuestionRefused):
        room.vote_again(q.id)  # a first vote and two more at most


def test_an_exit_ticket_is_built_from_the_learners_own_run_and_checked_at_once():
    room = a_class()
    exp = room.start_experiment("lr", [1e-3, 1e-2], 3, BASE)
    assert room.ticket("a") == ([], {})  # not open yet
    a_cell = room.assignment("a").cell
    room.started("a", exp.id, a_cell, "job-a")
    room.collect(lambda job, learner: snapshot(0.71))
    level = room.experiment.cells[a_cell].level
    others = [c for c in room.experiment.cells if c.level == level and c.result is None][:2]
    for cell, acc in zip(others, (0.74, 0.77)):
        cell.result = CellResult(acc, [acc], {"stage1": 1.0, "head": 2.0}, ["stem"], 1.0, "x", 2)
    room.open_tickets()
    ticket, answers = room.ticket("a")
    ids = [t.id for t in ticket]
    assert ids == ["noise", "frozen", "moved"] and answers == {}
    noise = ticket[0]
    assert noise.params["acc"] == pytest.approx(71.0) and noise.params["n"] == 3 and noise.right == "yes"
    assert ticket[2].right == "stage1"  # snapshot(): stage1 and head both 3.0 on average; a tie goes to the shallower
    assert room.answer_ticket("a", "frozen", "frozen") is True
    assert room.answer_ticket("a", "moved", "head") is False
    assert room.answer_ticket("a", "moved", "stage1") is False  # the first answer counts
    with pytest.raises(QuestionRefused):
        room.answer_ticket("a", "frozen", "=HYPERLINK()")
    with pytest.raises(QuestionRefused):
        room.answer_ticket("b", "noise", "yes")  # Ben has no finished run: no ticket
    assert room.ticket_report() == {"frozen": (1, 1, None), "moved": (1, 0, "head")}
    assert exit_ticket(room.experiment, "nobody") == []


def test_questions_answers_votes_and_exit_tickets_survive_a_restart(tmp_path):
    room = a_class(tmp_path)
    room.start_experiment("lr", [1e-3, 1e-2], 1, BASE)
    q = room.ask("winner")
    room.answer("a", q.id, "1", confidence=2)
    room.reveal_question(q.id)
    room.vote_again(q.id)
    room.answer("b", q.id, "0")
    room._clock.now += 5
    room.answered()  # the projector's poll writes answers held back
    room.set_wait_for_predictions(False)
    room.open_tickets()
    back = Classroom(tmp_path / "class.json", clock=Clock())
    kept = back.current_question()
    assert back.file_problem == "" and kept.id == q.id and kept.vote == 2 and kept.open
    assert kept.votes[0][classroom.learner_key("a")].confidence == 2 and classroom.learner_key("b") in kept.votes[1]
    assert not back.wait_for_predictions and back.tickets_for == room.experiment.id
    assert "a" not in kept.votes[0] and "b" not in kept.votes[1]  # learner ids kept as hashes, never the cookie


def test_a_race_prediction_is_revealed_against_the_teachers_race_and_kept(tmp_path):
    """Before the teacher's race on page 4 (no class experiment needed): which strategy wins?"""
    room = a_class(tmp_path)
    with pytest.raises(QuestionRefused) as one:
        room.ask("race", choices=["full"], text="job-before")
    assert one.value.reason == "race_count"
    q = room.ask("race", choices=["linear_probe", "partial", "full", "partial"], text="job-before")
    assert q.choices == ["linear_probe", "partial", "full"] and q.text == "job-before"  # twice is once
    room.answer("a", q.id, "full")
    room.answer("b", q.id, "linear_probe")
    assert reveal(room.current_question(), None).right is None  # no race has run since the question
    room.set_outcome(q.id, {"linear_probe": 0.61, "partial": 0.72, "full": 0.69})
    room.reveal_question(q.id)
    again = Classroom(tmp_path / "class.json", clock=Clock()).current_question()  # a restart keeps it
    out = reveal(again, None)
    assert out.right == "partial" and out.counts[0] == {"linear_probe": 1, "partial": 0, "full": 1}
    assert personal(again, out, classroom.learner_key("a")).right is False


def test_a_fine_tune_prediction_is_a_number_compared_with_the_teachers_run():
    room = a_class()
    q = room.ask("demo", text="")
    assert q.kind == "demo" and q.choices == []
    room.answer("a", q.id, None, 70.0)
    with pytest.raises(QuestionRefused):
        room.answer("b", q.id, None, 140.0)
    room.set_outcome(q.id, {"acc": 0.745})
    out = reveal(room.current_question(), None)
    assert out.measured == pytest.approx(74.5) and out.numbers == [[70.0]]
    mine = personal(room.current_question(), out, classroom.learner_key("a"))
    assert mine.off_by == pytest.approx(-4.5)


def test_class_json_with_a_demo_outcome_too_large_is_moved_aside(tmp_path):
    import json

    room = a_class(tmp_path)
    q = room.ask("race", choices=["linear_probe", "full"])
    data = json.loads((tmp_path / "class.json").read_text())
    data["questions"][-1]["outcome"] = {f"s{i}": 0.5 for i in range(classroom.questions.MAX_OUTCOMES + 1)}
    (tmp_path / "class.json").write_text(json.dumps(data))
    fresh = Classroom(tmp_path / "class.json", clock=Clock())
    assert fresh.file_problem and not fresh.all_questions()
    assert q.id  # (the first class's question)
