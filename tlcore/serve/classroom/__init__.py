"""The class, server side: one package, one subject a module, and this facade that keeps the names
the pages, the CLI and the tests use (`classroom.Classroom`, `classroom.FACTORS`, ...).

- codes: join codes, nicknames and members (what a learner types, what the class calls them)
- design: the experiment's factor, levels, seeds, rounds and cells, and their assignment
- stats: a level's mean and spread (scipy's Student's t), the class-wide gradient-norm map
- class_file: the class as kept on disk, read back strictly (a damaged file moves aside)
- questions: predict, run, reveal (a question's answers beside the runs) and the exit ticket
- state: the Classroom (one lock): joining, the roster and seats, leading, the cells' runs
- asking: the Classroom's questions and exit tickets (a mixin: the same lock and class file)
- alone: the class experiment without a class (`python -m tlcore class-experiment`)

Not for: drawing (studio.class_panels, studio.class_view), running jobs (tlcore.serve.jobs).
"""

from __future__ import annotations

import threading

from tlcore.core import offline
from tlcore.serve.classroom.alone import run_alone
from tlcore.serve.classroom.class_file import ClassFileError, write_private
from tlcore.serve.classroom.codes import (
    ALPHABET,
    CODE_LENGTH,
    MAX_RENAMES,
    NICKNAME_MAX,
    Member,
    clean_nickname,
    given_nickname,
    new_code,
    normal_code,
)
from tlcore.serve.classroom.design import (
    FACTORS,
    MAX_ROUNDS,
    MAX_SEEDS,
    SEED_BASE,
    TAG,
    Cell,
    CellResult,
    Experiment,
    Factor,
    assign,
    cell_config,
    make_cells,
    predicted,
    same_run,
    summarize,
)
from tlcore.serve.classroom.questions import (
    Answer,
    Personal,
    Question,
    QuestionRefused,
    Reveal,
    TicketQuestion,
    exit_ticket,
    personal,
    reveal,
)
from tlcore.serve.classroom.state import (
    JOINS_PER_ADDRESS,
    PRESENT_S,
    WRONG_CODES,
    Assignment,
    Classroom,
    ClassView,
    JoinRefused,
    Push,
    RosterRow,
    cell_state,
)
from tlcore.serve.classroom.stats import LevelStats, TopTwo, grad_table, level_stats, t95, top_two
from tlcore.serve.store import learner_key

__all__ = [
    "Answer", "Personal", "Question", "QuestionRefused", "Reveal", "TicketQuestion", "TopTwo", "exit_ticket",
    "personal", "reveal", "top_two",
    "ALPHABET", "CODE_LENGTH", "FACTORS", "JOINS_PER_ADDRESS", "MAX_RENAMES", "MAX_ROUNDS", "MAX_SEEDS", "NICKNAME_MAX",
    "PRESENT_S", "SEED_BASE", "TAG", "WRONG_CODES", "Assignment", "Cell", "CellResult", "ClassFileError",
    "ClassView", "Classroom", "Experiment", "Factor", "JoinRefused", "LevelStats", "Member", "Push", "RosterRow",
    "assign", "cell_config", "cell_state", "clean_nickname", "given_nickname", "grad_table", "learner_key",
    "level_stats", "make_cells", "new_code", "normal_code", "predicted", "run_alone", "same_run", "shared",
    "summarize", "t95", "write_private",
]  # fmt: skip

_shared: Classroom | None = None
_shared_lock = threading.Lock()


def shared(size: int = 60) -> Classroom:
    """The server's one class, kept in `state_dir()/class.json`."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Classroom(offline.state_dir() / "class.json", size=size)
        return _shared
