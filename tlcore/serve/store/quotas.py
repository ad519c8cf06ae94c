"""Which finished jobs the run store keeps: each learner's quota, and the backstop for everyone's.

- Bounded per learner: each learner keeps their latest `runs_per_learner` finished jobs and
  at most `mb_per_learner` MB of them (the class's quotas, tlcore.serve.class_limits); past either, the
  learner's own oldest go, never another learner's (their newest of each page always stays,
  whatever its size). One cookie posting 2,000 tiny runs keeps 50 and flushes no one else's.
- Bounded in all, as a backstop: at most `max_runs` finished jobs of everyone are kept
  (`$TLS_MAX_STORED_RUNS`, 2000), taken from the learner with the most (`fair_keep`), never
  first-in-first-out across learners.

Both run in the writer's transaction (tlcore.serve.store.run_store), after a finished job's row.
Not for: the table itself (tlcore.serve.store.schema).
"""

from __future__ import annotations

import heapq
import sqlite3

from tlcore.serve.store.schema import UNFINISHED

# A learner's finished jobs past their quota, newest first: the row count, then the bytes so
# far (histories, settings and labels; length() of a blob reads no page of it). `running` only
# grows, so what goes is always the oldest. Their newest of each page (tag) always stays: it is
# the run that page shows them again after a restart (JobQueue.latest).
PRUNE_LEARNER = (
    "DELETE FROM jobs WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER newest AS n,"
    " SUM(COALESCE(length(histories), 0) + length(configs) + length(labels)) OVER newest AS running,"
    " ROW_NUMBER() OVER (PARTITION BY tag ORDER BY finished_at DESC, submitted_at DESC) AS of_tag"
    " FROM jobs WHERE learner=? AND state NOT IN (?, ?)"
    " WINDOW newest AS (ORDER BY finished_at DESC, submitted_at DESC ROWS UNBOUNDED PRECEDING))"
    " WHERE of_tag > 1 AND (n > ? OR running > ?))"
)
ANY_SIZE = 2**62  # PRUNE_LEARNER's byte bound when only the count matters


def prune_learner(db: sqlite3.Connection, learner: str, runs: int, size: int) -> None:
    """This learner's finished jobs past `runs` jobs or `size` bytes, their own oldest first."""
    db.execute(PRUNE_LEARNER, (learner, *UNFINISHED, runs, size))


def fair_keep(counts: dict[str, int], limit: int) -> dict[str, int]:
    """How many finished jobs each learner keeps so that at most `limit` stay in all, taking one
    at a time from whoever has the most (a class's quiet learners keep theirs while one who posts
    thousands loses their own oldest). `counts`: learner -> finished jobs."""
    keep = dict(counts)
    most = [(-n, learner) for learner, n in counts.items()]
    heapq.heapify(most)
    for _ in range(max(0, sum(counts.values()) - limit)):
        n, learner = heapq.heappop(most)
        keep[learner] = -n - 1
        heapq.heappush(most, (n + 1, learner))
    return keep


def backstop(db: sqlite3.Connection, max_runs: int) -> None:
    """Everyone's finished jobs past `max_runs` (the backstop under the quotas per learner): each
    learner's share by `fair_keep`, their own oldest going first; then, only if every learner's
    newest of each page (always kept by the share) is still too many, the oldest of everyone."""
    counts = dict(db.execute("SELECT learner, COUNT(*) FROM jobs WHERE state NOT IN (?, ?) GROUP BY learner", UNFINISHED))
    if sum(counts.values()) <= max_runs:
        return
    for learner, keep in fair_keep(counts, max_runs).items():
        if keep < counts[learner]:
            prune_learner(db, learner, keep, ANY_SIZE)
    db.execute(
        "DELETE FROM jobs WHERE state NOT IN (?, ?) AND id NOT IN (SELECT id FROM jobs WHERE state NOT IN"
        " (?, ?) ORDER BY finished_at DESC LIMIT ?)",
        (*UNFINISHED, *UNFINISHED, max_runs),
    )
