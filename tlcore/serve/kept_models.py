"""The class server's shelf of fine-tuned models: each learner's own last runs, bounded by bytes.

A learner's Fine-tune run (and the Text page's single run) leaves its model here, for "Try it"
and the download (tlcore.takehome.model_files). The job queue decides what goes on the shelf (tlcore.serve.jobs:
a job submitted with `keep_model`); training only returns the model (tlcore.train.finetuned). Races,
sweeps and experiments keep nothing, so another learner's three sweeps cannot push a model off.

Each learner keeps their newest `per_learner` models within `learner_bytes` (their own oldest
go first; the newest always stays), and all learners together stay within `total_bytes`: past
that, the keeper's own older models go first, then the oldest of whoever holds the most bytes
(never the one just kept): two from-scratch ViT runs from two cookies once pushed a classmate's
model off. A model is found by
its owner and its id (random, in the run's result); anyone else asking gets nothing.

    EfficientNet-Lite0 (the default image run)  about 13 MB of weights
    MiniLM-L6 (the offline text model)          about 87 MB

Not for: persisting runs (tlcore.serve.store): the shelf lives in the server's memory only.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from tlcore.train.finetuned import Finetuned, model_bytes

PER_LEARNER = 2  # models a learner keeps: their image run and their text run, say
LEARNER_MB = 200.0  # ... within this: two MiniLMs (87 MB each) or many Lite0s
TOTAL_MB = 512.0  # every learner's together: a class of 30's Lite0s (390 MB); one MiniLM each would be 3 GB


@dataclass(frozen=True)
class _Kept:
    owner: str
    entry: Finetuned
    nbytes: int


class KeptModels:
    """Each learner's own fine-tuned models, in memory: the newest `per_learner` within
    `learner_mb`, everyone's within `total_mb` (the module's docstring says who goes first)."""

    def __init__(self, per_learner: int = PER_LEARNER, learner_mb: float = LEARNER_MB, total_mb: float = TOTAL_MB):
        self.per_learner = max(1, int(per_learner))
        self.learner_bytes = int(learner_mb * 2**20)
        self.total_bytes = int(total_mb * 2**20)
        self._kept: OrderedDict[str, _Kept] = OrderedDict()  # model id -> kept, oldest first
        self._lock = threading.Lock()

    def keep(self, owner: str, entry: Finetuned) -> str:
        """Put a learner's model on the shelf (moved to the CPU); returns its id."""
        if not owner:
            raise ValueError("a model on the shelf belongs to a learner")
        entry = entry.on_cpu()
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._kept[key] = _Kept(owner, entry, model_bytes(entry.model))
            self._bound(owner, key)
        return key

    def get(self, owner: str, model_id: str | None) -> Finetuned | None:
        """The owner's model, or None: unknown, gone, or someone else's (compared in constant time)."""
        if not owner or not model_id:
            return None
        with self._lock:
            kept = self._kept.get(model_id)
        if kept is None or not secrets.compare_digest(kept.owner, owner):
            return None
        return kept.entry

    def usage(self) -> dict[str, int]:
        """Models and bytes kept, and by how many learners (the teacher's view, the load test)."""
        with self._lock:
            rows = list(self._kept.values())
        return {"models": len(rows), "bytes": sum(r.nbytes for r in rows), "learners": len({r.owner for r in rows})}

    def _bound(self, owner: str, newest: str) -> None:  # caller holds the lock
        mine = [k for k, v in self._kept.items() if v.owner == owner]  # oldest first
        while len(mine) > 1 and (len(mine) > self.per_learner or sum(self._kept[k].nbytes for k in mine) > self.learner_bytes):
            del self._kept[mine.pop(0)]
        while len(self._kept) > 1 and sum(v.nbytes for v in self._kept.values()) > self.total_bytes:
            del self._kept[self._to_drop(owner, newest)]

    def _to_drop(self, owner: str, newest: str) -> str:  # caller holds the lock
        """Past the total: the newest model's owner's own older ones first, then the oldest of the
        learner who holds the most bytes (two big runs from two cookies push each other off, not a
        classmate's small model); never the one just kept."""
        mine = [k for k, v in self._kept.items() if v.owner == owner and k != newest]
        if mine:
            return mine[0]
        held: dict[str, int] = {}
        for k, v in self._kept.items():
            if k != newest:
                held[v.owner] = held.get(v.owner, 0) + v.nbytes
        most = max(held, key=held.__getitem__)
        return next(k for k, v in self._kept.items() if v.owner == most and k != newest)
