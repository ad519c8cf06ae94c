"""The class's questions: predict, run, reveal, and the exit tickets, as the Classroom keeps them.

A mixin of tlcore.serve.classroom.state.Classroom: the methods run under the class's one lock and
write through its class file, as every other change to the class does; the questions themselves
(how one is built, checked, revealed) are tlcore.serve.classroom.questions. Answers are written
at most once every ANSWER_SAVE_S: a class of 30 answering in one second rewrites the file once.

Not for: joining, seats or the experiment's cells (state), drawing (studio.predictions).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tlcore.models import catalog
from tlcore.serve.classroom import class_file, questions
from tlcore.serve.classroom.design import Experiment
from tlcore.serve.classroom.questions import Question, QuestionRefused, TicketQuestion
from tlcore.serve.store import learner_key

if TYPE_CHECKING:
    import threading

    from tlcore.serve.classroom.codes import Member

ANSWER_SAVE_S = 1.0  # answers are written to the class file at most this often (the rest on the next poll)


def _trained_groups(exp: Experiment) -> list[str]:
    """The layer groups a "which group moves most" question offers: the backbone's, shallow to deep."""
    try:
        return list(catalog.group_param_counts(exp.base.get("backbone", "")))
    except Exception:  # noqa: BLE001 -- a text model or an unknown backbone: no such question
        return []


class ClassQuestions:
    """The questions' part of the Classroom (its state lives there; see the module docstring)."""

    _lock: threading.Lock
    members: dict[str, Member]
    experiment: Experiment | None
    past: list[Experiment]
    questions: list[Question]
    wait_for_predictions: bool
    tickets_for: str
    tickets: dict[str, dict[str, str]]
    _dirty: bool
    _answers_saved: float
    _save: Callable[[], None]  # the Classroom's: write the class file
    _clock: Callable[[], float]

    def ask(self, kind: str, **what: Any) -> Question:
        """A new question for the class (the open one, if any, closes): built from the running (or
        latest) experiment's setup, or the teacher's own (`text`, `choices`). QuestionRefused: why not."""
        with self._lock:
            exp = self.experiment or (self.past[-1] if self.past else None)
            groups = _trained_groups(exp) if kind == "groups" and exp is not None else None
            q = questions.make_question(kind, exp, groups=groups, asked=time.time(), **what)
            for old in self.questions:
                old.open = False
            self.questions.append(q)
            del self.questions[: -class_file.MAX_QUESTIONS]
            self._save()
            return copy.deepcopy(q)

    def _question(self, qid: str) -> Question:
        q = next((q for q in self.questions if q.id == qid), None)
        if q is None:
            raise QuestionRefused("unknown")
        return q

    def answer(self, learner: str, qid: str, choice: str | None = None, number: float | None = None, confidence: int = 0) -> None:
        """A member's answer to the open question (a later one replaces it until the teacher closes)."""
        key = learner_key(learner)
        with self._lock:
            if key not in self.members:
                raise QuestionRefused("not_member")
            q = self._question(qid)
            given = questions.check_answer(q, choice, number, confidence)
            given.at = time.time()
            q.current()[key] = given
            self._save_soon()

    def set_outcome(self, qid: str, outcome: dict[str, float]) -> None:
        """What the teacher's demo measured, for a question about it (questions.DEMO_KINDS)."""
        with self._lock:
            q = self._question(qid)
            if q.kind in questions.DEMO_KINDS:
                q.outcome = {str(k): float(v) for k, v in list(outcome.items())[: questions.MAX_OUTCOMES]}
                self._save()

    def close_question(self, qid: str) -> None:
        with self._lock:
            self._question(qid).open = False
            self._save()

    def reveal_question(self, qid: str) -> None:
        with self._lock:
            q = self._question(qid)
            q.open, q.revealed = False, True
            self._save()

    def vote_again(self, qid: str) -> Question:
        """Peer instruction: the same question opens for a new vote (the first is kept beside it)."""
        with self._lock:
            q = self._question(qid)
            if q.vote >= questions.MAX_VOTES:
                raise QuestionRefused("votes")
            for other in self.questions:
                other.open = False
            q.votes.append({})
            q.open, q.revealed = True, False
            self._save()
            return copy.deepcopy(q)

    def all_questions(self) -> list[Question]:
        """Every kept question, oldest first (copies: the export reads them)."""
        with self._lock:
            return copy.deepcopy(self.questions)

    def current_question(self) -> Question | None:
        """The latest question (open, closed or revealed), a copy; None before any."""
        with self._lock:
            return copy.deepcopy(self.questions[-1]) if self.questions else None

    def answered(self) -> tuple[int, int]:
        """(answered, joined) for the open question's current vote: the projector's count."""
        with self._lock:
            if self._dirty:  # answers held back by _save_soon: the projector's poll writes them
                self._save()
            q = self.questions[-1] if self.questions else None
            return (len(q.current()) if q is not None else 0), len(self.members)

    def predictions_block_start(self) -> bool:
        """Does a part's Start wait now (a question is open and the teacher did not let runs go first)?"""
        with self._lock:
            return self.wait_for_predictions and any(q.open for q in self.questions[-1:])

    def predicting(self) -> bool:
        """Is the class in its predict phase: a question open, or a running experiment none of
        whose parts has started yet (the teacher is about to ask)? A joined learner's page then
        looks for the question more often (studio.class_panels.pace): nothing trains meanwhile."""
        with self._lock:
            if any(q.open for q in self.questions[-1:]):
                return True
            exp = self.experiment
            return exp is not None and exp.running and not any(c.job or c.result for c in exp.cells)

    def set_wait_for_predictions(self, wait: bool) -> None:
        with self._lock:
            self.wait_for_predictions = bool(wait)
            self._save()

    def open_tickets(self, open_: bool = True) -> None:
        """Exit tickets for the latest experiment: each learner with a finished run gets theirs."""
        with self._lock:
            exp = self.experiment or (self.past[-1] if self.past else None)
            self.tickets_for = exp.id if open_ and exp is not None else ""
            self._save()

    def ticket(self, learner: str) -> tuple[list[TicketQuestion], dict[str, str]]:
        """This learner's exit ticket (built from their own run) and their answers so far."""
        key = learner_key(learner)
        with self._lock:
            exp = self._ticket_experiment()
            if exp is None or key not in self.members:
                return [], {}
            return questions.exit_ticket(exp, key), dict(self.tickets.get(key, {}))

    def answer_ticket(self, learner: str, qid: str, choice: str) -> bool:
        """Keep a ticket answer (the first one counts: it is checked at once); True when right."""
        key = learner_key(learner)
        with self._lock:
            exp = self._ticket_experiment()
            mine = {t.id: t for t in questions.exit_ticket(exp, key)} if exp is not None and key in self.members else {}
            asked = mine.get(qid)
            if asked is None:
                raise QuestionRefused("unknown")
            if str(choice) not in asked.choices:
                raise QuestionRefused("bad_choice")
            answers = self.tickets.setdefault(key, {})
            answers.setdefault(qid, str(choice))
            self._save()
            return answers[qid] == asked.right

    def ticket_report(self) -> dict[str, tuple[int, int, str | None]]:
        """Per ticket question: (answered, right, the most common wrong answer): the teacher's view."""
        with self._lock:
            exp = self._ticket_experiment()
            if exp is None:
                return {}
            rights = {k: {t.id: t.right for t in questions.exit_ticket(exp, k)} for k in self.tickets}
            return questions.ticket_summary(self.tickets, rights)

    def _ticket_experiment(self) -> Experiment | None:
        if not self.tickets_for:
            return None
        return next((e for e in (self.experiment, *self.past) if e is not None and e.id == self.tickets_for), None)

    def _save_soon(self) -> None:
        """An answer: saved at most every ANSWER_SAVE_S (thirty answers in a second rewrite the file once)."""
        now = self._clock()
        if now - self._answers_saved >= ANSWER_SAVE_S:
            self._answers_saved = now
            self._save()
        else:
            self._dirty = True

    def flush(self) -> None:
        """Write answers held back by _save_soon (the teacher's and the projector's polls call it)."""
        with self._lock:
            if self._dirty:
                self._save()
