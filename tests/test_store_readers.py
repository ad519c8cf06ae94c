"""Other programs beside a running store (issue 29, item 1): a teacher's `sqlite3`, a backup,
an export. None of them may cost a run; the backstop takes from the learner with the most."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys

import pytest

from tests.helpers.fakes import wait_for
from tlcore import cli
from tlcore.serve.jobs import Job
from tlcore.serve.store import RunStore, fair_keep, learner_key, pack
from tlcore.train.config import RunConfig
from tools.store_faults import read_during_class


def test_a_reader_in_another_program_never_costs_a_run_after_a_crash_or_a_stop(tmp_path):
    """Before the fix the store opened its own file with open() to read the header while its
    connections were open: closing that descriptor dropped the process's SQLite locks, and the
    reader's close then checkpointed and deleted the WAL under the server (0 of 344 runs were in
    the file after a restart, and the store called its own file damaged)."""
    for ending in ("crash", "stop"):
        path = tmp_path / ending / "runs.sqlite"
        path.parent.mkdir()
        saved, reads, after = read_during_class(path, 2.5, ending)
        assert saved > 50 and reads > 20, (saved, reads)
        assert after == saved, (ending, after, saved)


def ended(job_id: str, owner: str, at: float, tag: str = "finetune") -> Job:
    return Job(job_id, owner, [RunConfig()], ["partial"], [], state="done", submitted=at, started=at, finished=at + 1, tag=tag)


@pytest.mark.fast
def test_fair_keep_takes_one_at_a_time_from_whoever_has_the_most():
    assert fair_keep({"a": 30, "b": 5, "c": 5}, 20) == {"a": 10, "b": 5, "c": 5}
    assert fair_keep({"a": 8, "b": 6, "c": 1}, 9) == {"a": 4, "b": 4, "c": 1}
    assert fair_keep({"a": 3, "b": 2}, 10) == {"a": 3, "b": 2}  # under the limit: nothing goes
    assert sum(fair_keep({f"l{i}": 7 for i in range(9)}, 40).values()) == 40


@pytest.mark.fast
def test_the_backstop_takes_from_the_learner_with_the_most_not_the_oldest_runs(tmp_path):
    """Before: the backstop deleted everyone's oldest first, so the quiet learners who ran first
    in the morning lost their runs to one learner's afternoon of runs."""
    store = RunStore(tmp_path / "runs.sqlite", max_runs=20, runs_per_learner=1000)
    for owner in ("bob", "cat"):
        for i in range(5):
            store.save(ended(f"{owner}-{i}", owner, i), pack([], None))
    assert store.flush()
    for i in range(30):
        store.save(ended(f"amy-{i}", "amy", 100 + i), pack([], None))
    assert store.flush()
    assert (store.count("bob"), store.count("cat"), store.count("amy"), store.count()) == (5, 5, 10, 20)
    assert store.load("amy-19") is None and store.load("amy-20") is not None  # her own oldest went
    store.close()


@pytest.mark.fast
def test_runs_backup_copies_a_live_store_into_one_private_file(tmp_path, capsys):
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    for i in range(12):
        store.save(ended(f"job-{i}", f"learner-{i % 3}", i), pack([], None))
    assert store.flush()
    out = tmp_path / "copies" / "monday.sqlite"
    assert cli.main(["runs", "backup", "--db", str(path), "--out", str(out)]) == 0
    assert "copied 12 job(s)" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not (tmp_path / "copies" / "monday.sqlite-wal").exists()  # one file, journal mode DELETE
    with sqlite3.connect(out) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert copy.execute("SELECT COUNT(*) FROM jobs WHERE learner=?", (learner_key("learner-1"),)).fetchone()[0] == 4
    copy.close()
    # The server's store goes on writing, and a backup never overwrites a file.
    store.save(ended("job-12", "learner-0", 12), pack([], None))
    assert store.flush() and store.health().state == "ok" and store.count() == 13
    assert cli.main(["runs", "backup", "--db", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists" in err and "Traceback" not in err
    store.close()


@pytest.mark.fast
def test_runs_backup_of_a_file_that_is_not_a_store_says_so_in_one_line(tmp_path, capsys):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database\n" * 50)
    out = tmp_path / "copy.sqlite"
    assert cli.main(["runs", "backup", "--db", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run store" in err and not out.exists()
    assert cli.main(["runs", "backup", "--db", str(tmp_path / "none.sqlite"), "--out", str(out)]) == 1
    assert "no stored runs" in capsys.readouterr().err


@pytest.mark.fast
def test_a_store_opened_twice_in_one_process_keeps_its_wal_while_another_program_reads(tmp_path):
    """The mechanism itself: while the store is open, another program's connection closing must
    find a connection still there (SQLite's shared lock held): the WAL stays."""
    path = tmp_path / "runs.sqlite"
    store = RunStore(path)
    store.save(ended("job-0", "amy", 0), pack([], None))
    assert store.flush()
    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sqlite3; db = sqlite3.connect({str(path)!r}); db.execute('SELECT 1 FROM jobs'); db.close()",
        ],
        check=True,
    )
    assert reader.returncode == 0
    assert wait_for(lambda: (tmp_path / "runs.sqlite-wal").exists(), 1.0)
    store.save(ended("job-1", "amy", 1), pack([], None))
    assert store.flush()
    store.close()
    assert RunStore(path).count("amy") == 2
