"""Where a session's uploads live on the server, and how many bytes they may keep.

Each browser session gets a private folder (`UploadFolder`: mode 0700, a random name, marked with
the server that made it); `UploadFolders` keeps them for the process, bounds them in bytes per
session, learner, client address and in all (the class's limits, tlcore.serve.class_limits), and deletes
a folder once its session has ended and no run of its learner still reads it; `sweep_stale`
deletes what a crashed server left behind.

Not for: reading what was uploaded (a zip: tlcore.data.image_zip; an image: tlcore.data.images).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from tlcore.data.image_zip import UploadError
from tlcore.serve.class_limits import UPLOAD_MB_PER_ADDRESS, UPLOAD_MB_PER_SESSION, UPLOAD_MB_TOTAL

# --- where uploads live on disk --------------------------------------------------------

UPLOAD_PREFIX = "tlstudio-up-"
SERVER_ID = secrets.token_hex(8)  # this server process, whatever its pid (a restarted container reuses pids)
MARKER_GRACE_S = 600.0  # a folder with no marker yet may be one another server is making right now


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def process_identity(pid: int) -> str | None:
    """Who runs as `pid` now: the boot and the process's start time (Linux's /proc), a pair no
    later process with the same pid has; None where the system does not say."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        start_ticks = stat_line.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command's name
    except (OSError, IndexError):
        return None
    return f"{_boot_id()}:{start_ticks}"


def _process_start(pid: int) -> float | None:
    """The wall-clock time the process `pid` started (Linux), or None."""
    identity = process_identity(pid)
    try:
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        return boot + int(identity.rsplit(":", 1)[1]) / os.sysconf("SC_CLK_TCK") if identity else None
    except (OSError, StopIteration, ValueError):
        return None


class UploadFolder:
    """One session's private folder for what it uploads (images kept for a run, a CSV, camera
    shots): 0700 with a random name (`tempfile.mkdtemp`), so no other local user can read or
    pre-create it, and marked with the server that made it: `.server` holds its random id, pid
    and the process's identity (boot and start time), `.owner` the pid alone (what older
    versions read: they then keep a live server's folders too).

    Deleted by `close()` (the app's `UploadFolders` closes a session's folder once the session
    has ended), when the object is garbage-collected or the server exits, and by `sweep_stale()`
    at the next server start when the server that made it is gone (a crash, a kill). `slot(name)` gives a fresh, empty sub-folder,
    deleting what the slot held before (a replaced or refused upload leaves nothing).
    """

    def __init__(self, base: str | Path | None = None):
        self.path = Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=base))
        (self.path / ".owner").write_text(str(os.getpid()), encoding="ascii")
        (self.path / ".server").write_text(
            json.dumps({"server": SERVER_ID, "pid": os.getpid(), "process": process_identity(os.getpid())}), encoding="ascii"
        )
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)
        self._measured: tuple[float, int] | None = None  # (when, bytes): see size()

    def __copy__(self) -> UploadFolder:
        return self  # one folder, one owner: a copy must not delete it when the copy is dropped

    def __deepcopy__(self, memo) -> UploadFolder:
        return self

    def slot(self, name: str) -> Path:
        folder = self.path / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700, parents=True)
        return folder

    def drop(self, name: str) -> None:
        shutil.rmtree(self.path / name, ignore_errors=True)

    def size(self, max_age_s: float = 0.0) -> int:
        """Bytes of the files in the folder (a file hard-linked twice counts once), measured
        again when the last measure is older than `max_age_s` seconds."""
        now = time.monotonic()
        if self._measured is None or now - self._measured[0] > max_age_s:
            self._measured = (now, tree_bytes(self.path))
        return self._measured[1]

    def close(self) -> None:
        self._finalizer()


def _mb(mb: float) -> str:
    return f"{mb:.2g}" if mb < 10 else f"{mb:,.0f}"


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path`, each file (inode) once; 0 if it is gone."""
    seen: set[tuple[int, int]] = set()
    total, stack = 0, [str(path)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
            except OSError:
                continue  # deleted meanwhile
    return total


class UploadFolders:
    """The server's upload folders, one per browser session, kept by the process (not in the
    session's state): deleted once the session has ended, not when the garbage collector
    happens to run.

    Bounded in bytes (`check_room`): a session keeps at most `session_mb` (its zip's images,
    its CSV, its camera pictures together), and so does a learner across all their tabs; one
    client address at most `address_mb` (0: no bound, for a class behind one NAT), all sessions
    together `total_mb`, whose last RESERVE share only a learner with nothing uploaded yet may
    use (a classmate's first small upload still gets in); a new upload that would pass any is
    refused with what to do. Measured: without a bound a 4 MB zip kept about 190 MB per session,
    and six sessions held 1.1 GB; bounded per session only, one person with many tabs filled the
    2 GB in 18 s and a classmate was refused.

    Streamlit keeps a closed tab's session for `server.disconnectedSessionTTL` seconds (a
    network blip may resume it) and then drops it without a hook; its session state, which
    sits in reference cycles, is only freed by a full garbage collection. Measured with the
    real server: a closed tab's folder was still there minutes later, until a `gc.collect()`.
    So `reap()` asks instead: a folder goes when its session has not been connected for
    `grace_s` seconds and its learner has no run waiting or running (a queued run may still
    read the upload).

    is_connected(session) and is_busy(owner) are the app's answers (Streamlit's runtime and
    the job queue); tlcore knows neither.
    """

    OTHERS_MAX_AGE_S = 10.0  # other sessions' folders are measured again at most this often
    RESERVE = 0.1  # the share of `total_mb` kept for learners with no upload yet

    def __init__(
        self,
        *,
        is_connected: Callable[[str], bool],
        is_busy: Callable[[str], bool] = lambda _owner: False,
        grace_s: float = 120.0,
        base: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        session_mb: float = UPLOAD_MB_PER_SESSION,
        total_mb: float = UPLOAD_MB_TOTAL,
        address_mb: float = UPLOAD_MB_PER_ADDRESS,
    ):
        self.is_connected, self.is_busy, self.grace_s, self.base, self.clock = is_connected, is_busy, grace_s, base, clock
        # the byte budgets (tlcore.serve.class_limits, class.toml [limits])
        self.session_mb, self.total_mb, self.address_mb = session_mb, total_mb, address_mb
        self._folders: dict[str, tuple[UploadFolder, str, str]] = {}  # session -> (folder, owner, client address)
        self._gone_since: dict[str, float] = {}  # session -> when it was first seen disconnected
        self._lock = threading.Lock()

    def get(self, session: str, owner: str = "", address: str = "") -> UploadFolder:
        """The session's folder, made on first use (`address`: the client's, "" when unknown)."""
        with self._lock:
            if session not in self._folders:
                self._folders[session] = (UploadFolder(self.base), owner, address)
            elif address and not self._folders[session][2]:
                self._folders[session] = (*self._folders[session][:2], address)
            self._gone_since.pop(session, None)
            return self._folders[session][0]

    def __len__(self) -> int:
        return len(self._folders)

    def check_room(
        self,
        session: str,
        incoming: int,
        *,
        session_mb: float | None = None,
        total_mb: float | None = None,
        address_mb: float | None = None,
    ) -> None:
        """Raise UploadError when `incoming` more bytes in this session's folder would pass its
        budget, its learner's (all their sessions), its address's or the server's (`incoming` 0:
        is what it holds now over one?). The session's own folder is measured now, the others'
        at most OTHERS_MAX_AGE_S old."""
        session_mb = self.session_mb if session_mb is None else session_mb
        total_mb = self.total_mb if total_mb is None else total_mb
        address_mb = self.address_mb if address_mb is None else address_mb
        with self._lock:
            mine, owner, address = self._folders.get(session, (None, "", ""))
            others = [(folder, o, a) for s, (folder, o, a) in self._folders.items() if s != session]
        own = mine.size() if mine is not None else 0
        sizes = [(folder.size(self.OTHERS_MAX_AGE_S), o, a) for folder, o, a in others]
        learner = own + sum(size for size, o, _ in sizes if owner and o == owner)
        for held in (own, learner):  # this tab's, then all the learner's tabs together
            if held + incoming > session_mb * 2**20:
                raise UploadError("upload.session_full", mb=_mb((held + incoming) / 2**20), limit=_mb(session_mb))
        if address and address_mb > 0:
            at_address = own + sum(size for size, _, a in sizes if a == address)
            if at_address + incoming > address_mb * 2**20:
                raise UploadError("upload.address_full", limit=_mb(address_mb))
        everyone = own + sum(size for size, _, _ in sizes)
        first = learner < 2**16  # nothing uploaded yet (a folder holds only its small marker file)
        room = total_mb * 2**20 * (1 if first else 1 - self.RESERVE)  # the reserve: for a first upload only
        if everyone + incoming > room:
            raise UploadError("upload.server_full", limit=_mb(total_mb))

    def reap(self) -> int:
        """Delete the folders of sessions that have ended; returns how many were deleted."""
        now = self.clock()
        with self._lock:
            items = list(self._folders.items())
        # The app's answers are asked without the lock (they take the runtime's and the queue's
        # own locks); what they change here is written under it.
        connected = {session: self.is_connected(session) for session, _ in items}
        with self._lock:
            for session, is_connected in connected.items():
                if is_connected:
                    self._gone_since.pop(session, None)
                else:
                    self._gone_since.setdefault(session, now)
            over = [
                (s, owner)
                for s, (_, owner, _) in items
                if not connected[s] and now - self._gone_since.get(s, now) >= self.grace_s
            ]
        ended = [session for session, owner in over if not self.is_busy(owner)]
        with self._lock:
            closing = [self._folders.pop(s)[0] for s in ended if s in self._folders]
            for session in ended:
                self._gone_since.pop(session, None)
        for folder in closing:
            folder.close()
        return len(closing)

    def close_all(self) -> None:
        with self._lock:
            folders, self._folders = [f for f, _, _ in self._folders.values()], {}
        for folder in folders:
            folder.close()


def sweep_stale(base: str | Path | None = None, *, grace_s: float = MARKER_GRACE_S) -> int:
    """Delete upload folders of servers that are no longer running (a crash, a kill), and the
    old shared `tlstudio-uploads` folder; only this user's. Returns how many were deleted.

    A server is known by its marker, not by a pid alone: a container restarted after a kill
    runs its new server under the same pid as the old one, so "the pid is alive" says nothing.
    A folder is kept when it is this server's (its random id), or when the process that made it
    still runs (same pid and same identity: boot and start time); a folder an older version
    marked with a pid only is kept when that pid's process started before the folder was made
    (by folder age: a process cannot make a folder before it starts). A folder with no marker is
    kept for `grace_s` (another server may be making it now), then deleted."""
    base = Path(base or tempfile.gettempdir())
    removed = 0
    for folder in [*base.glob(UPLOAD_PREFIX + "*"), base / "tlstudio-uploads"]:
        try:
            if not folder.is_dir() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            if folder.name != "tlstudio-uploads" and not _stale(folder, grace_s):
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def _stale(folder: Path, grace_s: float) -> bool:
    server, owner = folder / ".server", folder / ".owner"
    if server.exists():
        try:
            mark = json.loads(server.read_text(encoding="ascii"))
            made_by, pid, identity = str(mark.get("server", "")), int(mark.get("pid", 0)), mark.get("process")
        except (ValueError, TypeError, AttributeError):
            return True  # a marker nobody wrote this way: not a server's
        if made_by == SERVER_ID:
            return False  # this server's own, live sessions
        if not pid or not _alive(pid):
            return True
        now = process_identity(pid)
        if identity and now:
            return identity != now  # the pid runs another process now (a restart reused it)
        return pid == os.getpid()  # no /proc to ask: our pid with another server's id is a dead one's
    if owner.exists():  # an older version's marker: the pid alone
        try:
            pid = int(owner.read_text(encoding="ascii"))
        except ValueError:
            return True
        if not pid or pid == os.getpid() or not _alive(pid):
            return True  # this server writes .server: a pid-only folder with its pid is a dead one's
        started = _process_start(pid)
        return started is not None and started > owner.stat().st_mtime + 2.0
    return time.time() - folder.stat().st_mtime > grace_s


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
