"""The run store under faults, timed through the app (AppTest, no browser): print the figures.

    python -m tools.store_faults              # every fault below, one line each
    python -m tools.store_faults --only locked-during-class

Faults, each on a fresh `runs.sqlite` in a temporary folder:
- locked-during-class: the store opened fine, then another process (here another sqlite3
  connection) holds a write lock (BEGIN EXCLUSIVE) for `--hold` seconds. Learner A clicks
  Start on page 3 (timed), learner B then loads page 3 (timed); after the lock is released,
  was A's run saved?
- read-during-class: the store in a server process of its own finishes a run every 10 ms while
  this process, another program (a teacher's sqlite3, a backup script), opens the file, reads a
  row count and closes it 20 times a second; then the server dies (kill -9) or stops: how many
  of its runs are in the file after a restart.
- locked-at-start, damaged, not-sqlite: the file is locked / has one 4 KB page overwritten
  with random bytes / is not SQLite when the server starts; pages 3 and 6 are loaded through
  the server's own queue start (studio.server.job_queue): seconds and error boxes.

Training is a stub (tests.helpers.fakes.fake_run): what is timed is the store and the queue.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("TLS_STATE_DIR", tempfile.mkdtemp(prefix="tlstudio-faults-"))


def _page(path: str, queue=None, owner: str = "learner"):
    from tests.helpers.apptest import page

    return page(path, queue=queue, owner=owner, timeout=120)


def _errors(at) -> int:
    return len(at.exception) + len(at.error)


def _filled(path: Path) -> None:
    """A store with a few finished runs, as an earlier class left it."""
    from tests.helpers.fakes import fake_run
    from tlcore.serve.jobs import JobQueue
    from tlcore.serve.store import RunStore
    from tlcore.train.config import RunConfig

    store = RunStore(path)
    q = JobQueue.started(fake_run, store=store)
    for i in range(12):
        job = q.submit(RunConfig(), f"earlier-{i}", tag="finetune")
        while q.get(job, f"earlier-{i}").state != "done":
            time.sleep(0.01)
    if hasattr(store, "flush"):
        store.flush(10)
    store.close()


def locked_during_class(hold: float) -> str:
    from studio import learner
    from tests.helpers.fakes import fake_run
    from tlcore.serve.jobs import JobQueue
    from tlcore.serve.store import RunStore

    path = Path(tempfile.mkdtemp(prefix="tls-faults-")) / "runs.sqlite"
    store = RunStore(path)
    q = JobQueue.started(fake_run, store=store)
    a = _page("pages/3_finetune.py", q, "learner-a")  # a page open before the lock
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(hold, other.rollback)
    released.start()
    timed = {}

    def learner_b():  # another learner opens page 3 a second after A's click, while the lock is held
        time.sleep(1.0)
        t = time.monotonic()
        timed["b"] = _page("pages/3_finetune.py", q, "learner-b")
        timed["page_s"] = time.monotonic() - t

    b_thread = threading.Thread(target=learner_b)
    b_thread.start()
    t0 = time.monotonic()
    a.button(key="start").click().run()
    start_s = time.monotonic() - t0
    b_thread.join()
    b, page_s = timed["b"], timed["page_s"]
    told = _told(_page("pages/6_class.py", q, "teacher"))
    job = a.session_state["job:finetune"]
    released.join()
    deadline = time.monotonic() + hold + 40
    while time.monotonic() < deadline:
        view = q.get(job, "learner-a")
        if view is not None and view.state == "done":
            break
        time.sleep(0.05)
    if hasattr(store, "flush"):
        store.flush(30)
    time.sleep(0.5)
    check = sqlite3.connect(path)
    saved = check.execute("SELECT state FROM jobs WHERE id=?", (job,)).fetchone()
    check.close()
    learner.learners = learner.LearnerStore()
    return (
        f"locked-during-class (lock held {hold:.0f} s): Start click {start_s:.2f} s, another learner's page "
        f"{page_s:.2f} s, error boxes {_errors(a) + _errors(b)}, run saved after the lock: "
        f"{saved[0] if saved else 'no'}; while locked the Class page said: {told or '(nothing)'}"
    )


def changed_during_class(fault: str) -> str:
    """The file changes under a running class: one 4 KB page of it overwritten ("damaged-during-class"),
    or another file put in its place ("replaced-during-class"). Then a Start, another learner's page,
    the Class page: seconds, error boxes, whether the run finished and what the teacher was told."""
    from studio import learner
    from tests.helpers.fakes import fake_run
    from tlcore.serve.jobs import JobQueue
    from tlcore.serve.store import RunStore

    path = Path(tempfile.mkdtemp(prefix="tls-faults-")) / "runs.sqlite"
    _filled(path)
    q = JobQueue.started(fake_run, store=RunStore(path))
    a = _page("pages/3_finetune.py", q, "learner-a")  # a page open before the change
    if fault == "damaged-during-class":
        _damage(path)
    else:
        notes = path.with_name("notes.txt")
        notes.write_text("the teacher's notes, not a database\n" * 200)
        notes.replace(path)
    t0 = time.monotonic()
    a.button(key="start").click().run()
    start_s = time.monotonic() - t0
    t0 = time.monotonic()
    b = _page("pages/3_finetune.py", q, "learner-b")
    page_s = time.monotonic() - t0
    job = a.session_state["job:finetune"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and q.get(job, "learner-a").state != "done":
        time.sleep(0.05)
    q.store.flush(5)
    told = _told(_page("pages/6_class.py", q, "teacher"))
    learner.learners = learner.LearnerStore()
    return (
        f"{fault}: Start click {start_s:.2f} s, another learner's page {page_s:.2f} s, error boxes "
        f"{_errors(a) + _errors(b)}, the run {q.get(job, 'learner-a').state}; the Class page said: {told or '(nothing)'}"
    )


def _damage(path: Path) -> None:
    """The runs table's root page overwritten with random bytes."""
    db = sqlite3.connect(path)
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name='jobs'").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:
        f.seek(4096 * (root - 1))
        f.write(os.urandom(4096))


def at_start(fault: str) -> str:
    """The server starts on a faulty file: its own queue (studio.server.job_queue)."""
    from studio import learner, server
    from tlcore.serve import jobs

    folder = Path(tempfile.mkdtemp(prefix="tls-faults-"))
    os.environ["TLS_STATE_DIR"] = str(folder)
    path = folder / "runs.sqlite"
    other = None
    if fault == "not-sqlite":
        path.write_text("this is somebody's notes, not a database\n" * 200)
    else:
        _filled(path)
        if fault == "damaged":
            _damage(path)
        elif fault == "locked-at-start":
            other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            other.execute("BEGIN EXCLUSIVE")
    jobs._shared = None
    server._warm_up_started = False  # a new server process, as far as the queue's start goes
    warmups = []
    server._warm_up = lambda: warmups.append(1)  # counted, not run: what is timed is the store
    out = []
    errors = 0
    told = ""
    for page in ("pages/3_finetune.py", "pages/6_class.py", "pages/3_finetune.py"):
        t0 = time.monotonic()
        at = _page(page, None, "learner-c")
        out.append(f"{Path(page).stem} {time.monotonic() - t0:.2f} s")
        errors += _errors(at)
        told = told or _told(at)
        learner.learners = learner.LearnerStore()
    time.sleep(2.0)  # a write attempt waits up to tlcore.serve.store.BUSY_S for a lock before it says "locked"
    told = told or _told(_page("pages/6_class.py", None, "teacher"))
    learner.learners = learner.LearnerStore()
    if other is not None:
        other.rollback()
    jobs._shared = None
    return (
        f"{fault}: {', '.join(out)}; error boxes {errors}; warm-up threads started {len(warmups)}; "
        f"the Class page says: {told or '(nothing)'}"
    )


# The class server's store in its own process: a finished run every 10 ms for `seconds`, then
# it prints how many it saved and dies without closing anything ("crash") or closes the store.
_SERVER = textwrap.dedent(
    """
    import os, sys, time
    from tlcore.serve.jobs import Job
    from tlcore.serve.store import RunStore, pack
    from tlcore.train.config import RunConfig

    path, seconds, ending = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    store = RunStore(path, runs_per_learner=100_000)
    print("ready", flush=True)
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        job = Job(f"job-{n}", "amy", [RunConfig()], ["partial"], [], state="done", submitted=n, started=n, finished=n + 1)
        store.save(job, pack([], None))
        n += 1
        store.flush()
        time.sleep(0.01)
    print(n, flush=True)
    if ending == "crash":
        os._exit(0)
    store.close()
    """
)


def read_during_class(path: Path, seconds: float = 2.5, ending: str = "crash") -> tuple[int, int, int]:
    """The server writes runs while this process opens the file, reads one row count and closes
    it, 20 times a second (the moment a careless reader checkpointed and deleted the server's
    WAL). Returns (runs the server saved, reads made, runs in the file after a restart)."""
    from tlcore.serve.store import RunStore

    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(path), str(seconds), ending], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    if server.stdout.readline().strip() != "ready":
        raise RuntimeError("the store's server process did not start")
    reads = 0
    while server.poll() is None:
        db = sqlite3.connect(path, timeout=1.0)
        try:
            db.execute("SELECT COUNT(*) FROM jobs").fetchone()
            reads += 1
        except sqlite3.OperationalError:
            pass  # the table may not exist yet
        finally:
            db.close()
        time.sleep(0.05)
    saved = int(server.stdout.readline())
    server.wait()
    restarted = RunStore(path)
    after = restarted.count() if restarted.health().state == "ok" else 0
    restarted.close()
    return saved, reads, after


def _read_line() -> str:
    out = []
    for ending in ("crash", "stop"):
        path = Path(tempfile.mkdtemp(prefix="tls-faults-")) / "runs.sqlite"
        saved, reads, after = read_during_class(path, 2.5, ending)
        out.append(f"{ending}: {after} of {saved} runs in the file after a restart ({reads} reads)")
    return "read-during-class: " + "; ".join(out)


def _told(at) -> str:
    """What the Class page warns about the store (teacher mode is off here: the line shows)."""
    said = [w.value for w in at.warning if "not being saved" in w.value]
    return said[0][:110] + "..." if said else ""


DURING = ("locked-during-class", "damaged-during-class", "replaced-during-class")
AT_START = ("locked-at-start", "damaged", "not-sqlite")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--only",
        default="",
        help="one fault: read-during-class, " + ", ".join((*DURING, *AT_START)),
    )
    p.add_argument("--hold", type=float, default=25.0, help="seconds the other process holds its lock")
    args = p.parse_args(argv)
    import logging

    logging.disable(logging.CRITICAL)  # the store's own warnings are expected here
    faults = [args.only] if args.only else ["read-during-class", *DURING, *AT_START]
    for fault in faults:
        if fault == "read-during-class":
            line = _read_line()
        elif fault == "locked-during-class":
            line = locked_during_class(args.hold)
        else:
            line = changed_during_class(fault) if fault in DURING else at_start(fault)
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
