"""`python -m tlcore runs export|backup`: the run store's commands (`RUNS`, listed in tlcore.cli).
A file that cannot be read or copied is one `error:` line on stderr and exit status 1, never a
traceback; a backup never overwrites a file.

Not for: the export and the copy themselves (tlcore.serve.store.exports), the server's store
(tlcore.serve.store.run_store).
"""

from __future__ import annotations

import sqlite3
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.serve.store.exports import backup, export
from tlcore.serve.store.faults import DAMAGED, LOCKED, NOT_SQLITE, UNWRITABLE, StoreError, fault_of
from tlcore.serve.store.files import default_path

_EXPORT_FAULTS = {
    LOCKED: "it is locked by another program; try again in a moment",
    DAMAGED: "the file is damaged",
    NOT_SQLITE: "it is not a run store (not an SQLite file, or no jobs table)",
    UNWRITABLE: "it cannot be read",
}


def _cmd_export(args) -> int:
    """One line on stderr and exit status 1 for a file that cannot be read: no traceback."""
    path = Path(args.db) if args.db else default_path()
    if not path.exists():
        print(f"error: no stored runs at {path}", file=sys.stderr)
        return 1
    counted = [0]
    try:
        jobs = export(path, args.out, counted)
    except (sqlite3.Error, StoreError) as error:
        why, detail = _EXPORT_FAULTS.get(fault_of(error), "it cannot be read"), str(error)
    except (ValueError, zlib.error) as error:  # a row whose contents cannot be decoded
        why, detail = _EXPORT_FAULTS[DAMAGED], str(error)
    except OSError as error:
        why, detail = f"cannot write {args.out}", str(error)
    else:
        print(f"wrote {jobs} job(s) to {args.out}")
        return 0
    partial = f"; {counted[0]} job(s) read before it are in {args.out}" if counted[0] else ""
    print(f"error: {path}: {why} ({detail}){partial}".replace("\n", " "), file=sys.stderr)
    return 1


def _cmd_backup(args) -> int:
    """One line on stderr and exit status 1 when no copy can be made: no traceback."""
    path = Path(args.db) if args.db else default_path()
    if not path.exists():
        print(f"error: no stored runs at {path}", file=sys.stderr)
        return 1
    try:
        jobs = backup(path, args.out)
    except FileExistsError:
        print(f"error: {args.out} exists; name a new file (a backup never overwrites one)", file=sys.stderr)
        return 1
    except (sqlite3.Error, StoreError) as error:
        Path(args.out).unlink(missing_ok=True)
        why = _EXPORT_FAULTS.get(fault_of(error), "it cannot be read")
        print(f"error: {path}: {why} ({error})".replace("\n", " "), file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write {args.out} ({error})", file=sys.stderr)
        return 1
    print(f"copied {jobs} job(s) to {args.out}")
    return 0


def _db():
    return setting("", "the SQLite file (empty: $TLS_STATE_DIR/runs.sqlite)")


@dataclass(frozen=True)
class ExportOptions:
    out: str = setting("", "output file; .csv for a table, anything else for JSON lines", required=True)
    db: str = _db()


@dataclass(frozen=True)
class BackupOptions:
    out: str = setting("", "the copy: a new file (an existing one is never overwritten)", required=True)
    db: str = _db()


RUNS = Command(
    "runs",
    "the class server's stored runs (SQLite): export them, or back them up",
    None,
    description="Runs the class server finished (and those a restart interrupted) are kept in "
    "SQLite ($TLS_STATE_DIR/runs.sqlite). Learners appear as a short hash of their id.",
    actions=(
        Command(
            "export",
            "write every stored run to a .jsonl (whole jobs, events included) or .csv (one row per run) file; "
            "the store is opened read-only",
            _cmd_export,
            flags=(Flags(ExportOptions),),
        ),
        Command(
            "backup",
            "copy the store to a new SQLite file while the server runs (SQLite's online backup API: one "
            "consistent snapshot; the server's file is only read)",
            _cmd_backup,
            flags=(Flags(BackupOptions),),
        ),
    ),
)
