"""Predict, run, reveal: the class's predictions before a demo, and the exit ticket after it.

A question is class state beside the experiment (kept in the class file): its kind, choices derived
from the setup (the experiment's levels, the backbone's layer groups, yes/no), or the teacher's own
multiple choice, or a claim from the seeds' question bank; one answer per learner per vote,
changeable until the teacher closes; "vote again" opens a second vote of the same question (peer
instruction). Answers are counted while open and shown only at the reveal.

The reveal is a pure function of (a question's answers, the experiment's finished cells):
`reveal` gives the class's choices beside the measured outcome and whether the difference is beyond
the seed noise (tlcore.serve.classroom.stats.top_two); `personal` compares one learner's answer with
it. An exit ticket (`exit_ticket`) is built from a learner's own finished run and their level's
class summary: questions whose right answer the data decides. Sentences are the pages' (studio),
from the numbers here. Not for: drawing (studio.predictions), the class's lock (state).
"""

from __future__ import annotations

import math
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tlcore.serve.classroom.design import Experiment
from tlcore.serve.classroom.stats import TopTwo, grad_table, level_stats, top_two

KINDS = ("winner", "accuracy", "beyond_noise", "groups", "own", "claim", "race", "demo")
# About the teacher's own demo on the projector, not the class experiment: which strategy wins the
# race on page 4 ("race"), the accuracy the fine-tune on page 3 reaches ("demo"). Their outcome is
# the teacher's run that finished after the question was asked (set_outcome at the reveal).
DEMO_KINDS = ("race", "demo")
NUMBER_KINDS = ("accuracy", "demo")  # answered with a number (a predicted accuracy), not a choice
MAX_OUTCOMES = 16
MAX_CHOICES = 8  # a teacher's own question: 2..8 choices
MAX_TEXT = 200  # ... its text, in characters
MAX_CHOICE_TEXT = 80
MAX_VOTES = 3  # a first vote and two "vote again"
CONFIDENCE = (0, 1, 2, 3)  # not said, a guess, fairly sure, sure
YES_NO = ("yes", "no")
# The seeds' claims (shared/seeds: the matrix, the learning-rate advice, freeze depth by data size,
# feature extraction vs fine-tuning vs adapters), each a question with the answer the claim gives;
# offered with the demo that tests it. The pages word them (class.bank.<id>.q / .<choice>).
BANK: dict[str, dict[str, Any]] = {
    "matrix_small_similar": {"factors": ("strategy", "freeze_depth"), "choices": ("linear_probe", "partial", "full"), "answer": "linear_probe"},
    "matrix_large_different": {"factors": ("strategy", "freeze_depth", "per_class"), "choices": ("linear_probe", "partial", "full"), "answer": "full"},
    "lr_small": {"factors": ("lr",), "choices": ("small", "large"), "answer": "small"},
    "freeze_by_size": {"factors": ("freeze_depth", "per_class"), "choices": ("more", "fewer"), "answer": "more"},
    "adapters": {"factors": ("strategy",), "choices": ("head", "adapters", "all"), "answer": "adapters"},
}  # fmt: skip


class QuestionRefused(ValueError):
    """Why a question or an answer was not taken: `reason` is a message key (class.ask.<reason>)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Answer:
    choice: str = ""  # a choice's id ("0" for the first level, "yes", a group's name, "2" for an own choice)
    number: float | None = None  # the "accuracy" kind: percent, 0..100
    confidence: int = 0  # CONFIDENCE
    at: float = 0.0  # wall clock of the last change

    def __deepcopy__(self, memo: dict) -> Answer:  # (every field a scalar)
        return Answer(self.choice, self.number, self.confidence, self.at)


@dataclass
class Question:
    id: str
    kind: str  # KINDS
    choices: list[str]  # the choice ids (none for "accuracy")
    labels: list[str] = field(default_factory=list)  # "own": the teacher's choice texts (plain text)
    text: str = ""  # "own": the teacher's question; "claim": the bank's id
    experiment: str = ""  # the experiment it asks about ("" where none)
    level: int | None = None  # "accuracy": the level whose accuracy is predicted
    votes: list[dict[str, Answer]] = field(default_factory=lambda: [{}])  # learner key -> answer, per vote
    open: bool = True
    revealed: bool = False
    asked: float = 0.0
    answer: str = ""  # "claim": the claim's answer; "own": the teacher's right choice if they gave one
    outcome: dict[str, float] = field(default_factory=dict)  # DEMO_KINDS: "race": strategy -> accuracy; "demo": {"acc": ...}

    def __deepcopy__(self, memo: dict) -> Question:
        """What copy.deepcopy's walk made, without the walk: every learner's pulse copies the question
        with the class's answers (tlcore.serve.classroom.asking)."""
        votes = [{key: answer.__deepcopy__(memo) for key, answer in vote.items()} for vote in self.votes]
        return Question(self.id, self.kind, list(self.choices), list(self.labels), self.text, self.experiment, self.level,
                        votes, self.open, self.revealed, self.asked, self.answer, dict(self.outcome))  # fmt: skip

    @property
    def vote(self) -> int:
        """1 for the first vote, 2 after "vote again", ..."""
        return len(self.votes)

    def current(self) -> dict[str, Answer]:
        return self.votes[-1]


def clean_text(text: Any, most: int) -> str:
    """A teacher's or a student's text as shown: printable, one line, at most `most` characters."""
    plain = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return " ".join(plain.split())[:most]


def make_question(
    kind: str,
    experiment: Experiment | None,
    *,
    groups: list[str] | None = None,
    level: int | None = None,
    text: str = "",
    choices: list[str] | None = None,
    answer: str = "",
    asked: float = 0.0,
) -> Question:
    """A question built from the setup (or the teacher's own), checked: QuestionRefused says why not."""
    if kind not in KINDS:
        raise QuestionRefused("unknown_kind")
    exp_id = experiment.id if experiment is not None else ""
    qid = f"q-{secrets.token_hex(4)}"
    if kind == "own":
        text = clean_text(text, MAX_TEXT)
        labels = [clean_text(c, MAX_CHOICE_TEXT) for c in choices or []]
        labels = [c for c in labels if c]
        if not text:
            raise QuestionRefused("no_text")
        if not 2 <= len(labels) <= MAX_CHOICES:
            raise QuestionRefused("choice_count")
        if len(set(labels)) != len(labels):
            raise QuestionRefused("same_choices")
        ids = [str(i) for i in range(len(labels))]
        right = answer if answer in ids else ""
        return Question(qid, kind, ids, labels, text, exp_id, asked=asked, answer=right)
    if kind == "claim":
        if text not in BANK:
            raise QuestionRefused("unknown_claim")
        return Question(
            qid, kind, list(BANK[text]["choices"]), text=text, experiment=exp_id, asked=asked, answer=BANK[text]["answer"]
        )
    if kind == "race":  # the race's strategies, as the teacher set them on page 4
        names = list(dict.fromkeys(c for c in (clean_text(c, MAX_CHOICE_TEXT) for c in choices or []) if c))
        if not 2 <= len(names) <= MAX_CHOICES:
            raise QuestionRefused("race_count")
        return Question(qid, kind, names, text=clean_text(text, 64), asked=asked)
    if kind == "demo":  # (text: the teacher's job in the slot when asked; the outcome is a later one)
        return Question(qid, kind, [], text=clean_text(text, 64), asked=asked)
    if experiment is None:
        raise QuestionRefused("no_experiment")
    if kind == "winner":
        if len(experiment.levels) < 2:
            raise QuestionRefused("one_level")
        return Question(qid, kind, [str(i) for i in range(len(experiment.levels))], experiment=exp_id, asked=asked)
    if kind == "accuracy":
        level = 0 if level is None else int(level)
        if not 0 <= level < len(experiment.levels):
            raise QuestionRefused("bad_level")
        return Question(qid, kind, [], experiment=exp_id, level=level, asked=asked)
    if kind == "beyond_noise":
        return Question(qid, kind, list(YES_NO), experiment=exp_id, asked=asked)
    # "groups": which layer group's gradients will be largest (the trained groups of the backbone)
    names = [g for g in (groups or []) if g]
    if len(names) < 2:
        raise QuestionRefused("no_groups")
    return Question(qid, kind, names[: MAX_CHOICES * 2], experiment=exp_id, asked=asked)


def check_answer(q: Question, choice: str | None, number: float | None, confidence: int) -> Answer:
    """An answer as kept, or QuestionRefused (closed, a choice not offered, a number out of range)."""
    if not q.open:
        raise QuestionRefused("closed")
    if confidence not in CONFIDENCE:
        raise QuestionRefused("bad_confidence")
    if q.kind in NUMBER_KINDS:
        try:
            value = float(number)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise QuestionRefused("bad_number") from None
        if not math.isfinite(value) or not 0.0 <= value <= 100.0:
            raise QuestionRefused("bad_number")
        return Answer(number=round(value, 1), confidence=confidence)
    if str(choice) not in q.choices:
        raise QuestionRefused("bad_choice")
    return Answer(choice=str(choice), confidence=confidence)


# ----------------------------------------------------------------------------- the reveal


@dataclass(frozen=True)
class Reveal:
    """A question's answers beside what the runs measured."""

    counts: list[dict[str, int]]  # per vote: choice id -> learners ("accuracy": none)
    numbers: list[list[float]]  # per vote: the predicted accuracies ("accuracy" only)
    answered: list[int]  # per vote: how many answered
    top: TopTwo | None  # the measured best level, the runner-up and the seed noise (None: no runs yet)
    right: str | None  # the choice the data (or the claim) makes right; None: not decided (yet)
    measured: float | None = None  # "accuracy": the level's measured mean, percent
    spread: float | None = None  # ... and its standard deviation, percent
    top_group: str | None = None  # "groups": the group whose mean gradient norm was largest

    @property
    def expected(self) -> str | None:
        """The class's most common choice in the latest vote (None: nobody answered)."""
        last = self.counts[-1] if self.counts else {}
        return max(last, key=lambda c: (last[c], c)) if any(last.values()) else None


def reveal(q: Question, experiment: Experiment | None) -> Reveal:
    counts = [dict(Counter(a.choice for a in vote.values() if a.choice)) for vote in q.votes]
    for vote_counts in counts:
        for c in q.choices:
            vote_counts.setdefault(c, 0)
    numbers = [[a.number for a in vote.values() if a.number is not None] for vote in q.votes]
    answered = [len(vote) for vote in q.votes]
    top = top_two(experiment) if experiment is not None and experiment.id == q.experiment else None
    right: str | None = None
    measured = spread = None
    top_group = None  # (set below for "groups")
    if q.kind in ("claim", "own"):
        right = q.answer or None
    elif q.kind == "race" and q.outcome:  # the best strategy; a tie for first decides nothing
        ranked = sorted(q.outcome.items(), key=lambda kv: kv[1], reverse=True)
        right = ranked[0][0] if len(ranked) == 1 or ranked[0][1] > ranked[1][1] else None
    elif q.kind == "demo" and "acc" in q.outcome:
        measured = 100 * q.outcome["acc"]
    elif top is not None:
        if q.kind == "winner" and top.best is not None:
            right = str(top.best)
        elif q.kind == "beyond_noise" and top.beyond is not None:
            right = "yes" if top.beyond else "no"
    if q.kind == "accuracy" and experiment is not None and experiment.id == q.experiment and q.level is not None:
        s = level_stats(experiment)[q.level]
        measured = 100 * s.mean if s.mean is not None else None
        spread = 100 * s.sd if s.sd is not None else None
    if q.kind == "groups" and experiment is not None and experiment.id == q.experiment:
        groups, rows = grad_table(experiment)
        means = {g: max((v for v in row if v is not None), default=None) for g, row in zip(groups, rows, strict=True)}
        means = {g: v for g, v in means.items() if v is not None and g in q.choices}
        if means:
            top_group = max(means, key=means.get)
            right = top_group
    return Reveal(counts, numbers, answered, top, right, measured, spread, top_group)


@dataclass(frozen=True)
class Personal:
    """One learner's answer against the outcome, for their own sentence."""

    answered: bool
    choice: str = ""
    number: float | None = None
    right: bool | None = None  # None: the data does not decide it (yet)
    rank: int | None = None  # "winner": the chosen level's place by mean (1 = best)
    behind: float | None = None  # "winner": points behind the best level's mean
    off_by: float | None = None  # "accuracy": points from the measured mean
    within_noise: bool | None = None  # "accuracy": within one seed SD of the mean


def personal(q: Question, outcome: Reveal, learner_key: str) -> Personal:
    mine = q.current().get(learner_key) or next((v[learner_key] for v in reversed(q.votes) if learner_key in v), None)
    if mine is None:
        return Personal(False)
    if q.kind in NUMBER_KINDS:
        if outcome.measured is None or mine.number is None:
            return Personal(True, number=mine.number)
        off = mine.number - outcome.measured
        within = abs(off) <= outcome.spread if outcome.spread is not None else None
        return Personal(True, number=mine.number, off_by=off, within_noise=within, right=within)
    right = None if outcome.right is None else mine.choice == outcome.right
    rank = behind = None
    if q.kind == "winner" and outcome.top is not None and mine.choice.isdigit():
        order = outcome.top.order
        level = int(mine.choice)
        if level in order:
            rank = order.index(level) + 1
            behind = 100 * (outcome.top.means[order[0]] - outcome.top.means[level])
    return Personal(True, mine.choice, None, right, rank, behind)


# ----------------------------------------------------------------------------- the exit ticket


@dataclass(frozen=True)
class TicketQuestion:
    id: str  # "noise", "frozen", "moved"
    choices: tuple[str, ...]
    right: str
    params: dict[str, Any]  # what the page's sentence needs (the run's accuracy, the level's mean, ...)


def exit_ticket(experiment: Experiment, learner_key: str) -> list[TicketQuestion]:
    """Two or three questions from this learner's latest finished run and their level's class runs,
    each with the answer the data gives. Empty when the learner has no finished run."""
    mine = [c for c in experiment.cells if c.learner == learner_key and c.result is not None]
    if not mine:
        return []
    cell = mine[-1]
    r = cell.result
    stats = level_stats(experiment)[cell.level]
    out: list[TicketQuestion] = []
    if stats.n >= 3 and stats.sd is not None and stats.mean is not None:
        diff = 100 * (r.acc - stats.mean)
        noise = abs(diff) <= 2 * 100 * stats.sd  # within two standard deviations of the level's seeds
        params = {"acc": 100 * r.acc, "mean": 100 * stats.mean, "sd": 100 * stats.sd, "n": stats.n, "diff": diff}
        out.append(TicketQuestion("noise", YES_NO, "yes" if noise else "no", params))
    if r.frozen:
        out.append(TicketQuestion("frozen", ("frozen", "small_lr", "no_data"), "frozen", {"groups": list(r.frozen)}))
    if len(r.grads) >= 2:
        top = max(r.grads, key=r.grads.get)
        out.append(TicketQuestion("moved", tuple(r.grads), top, {"top": top}))
    return out[:3]


def ticket_summary(
    tickets: dict[str, dict[str, str]], rights: dict[str, dict[str, str]]
) -> dict[str, tuple[int, int, str | None]]:
    """Per ticket question: (answered, right, the most common wrong answer). tickets: learner ->
    question id -> their answer; rights: learner -> question id -> the right answer for their run."""
    out: dict[str, tuple[int, int, str | None]] = {}
    by_q: dict[str, list[tuple[str, str]]] = {}
    for learner, answers in tickets.items():
        for qid, given in answers.items():
            by_q.setdefault(qid, []).append((given, rights.get(learner, {}).get(qid, "")))
    for qid, pairs in by_q.items():
        wrong = Counter(g for g, r in pairs if g != r)
        out[qid] = (len(pairs), sum(1 for g, r in pairs if g == r), wrong.most_common(1)[0][0] if wrong else None)
    return out
