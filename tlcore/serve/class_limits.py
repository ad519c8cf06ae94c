"""The class's limits, set by the teacher in one file, enforced by the engine.

A class server is shared: one learner's run must not take the machine for an hour, nor its
memory. The teacher writes the limits (and the teacher-mode secret) in a TOML file: the
path in `$TLS_CLASS_CONFIG`, else `class.toml` beside app.py (see class.example.toml).
Without a file the defaults below hold. `JobQueue` checks every run against them when it is
submitted and stops a run that passes `max_seconds`; the pages read them for their widgets'
ranges and say them. `load()` reads the file when used: an edit holds from the next page drawn,
except what the server sizes when it starts (its workers and threads, the store's and the
shelf's quotas, the class's size), which waits for a restart.

    [limits]
    max_seconds = 300        # one job (a race counts as one), then it is stopped
    max_epochs = 20
    max_per_class = 500      # training examples per class
    max_image_size = 224     # pixels
    max_text_length = 128    # tokens per sentence
    max_classes = 100        # labels a dataset may have (an upload, a CSV)
    one_run_per_address = false  # true: per client address, not per cookie: one waiting or running job,
                                 # one waiting feature view, one session's uploads (upload_mb_per_session)
    stored_runs_per_learner = 50 # quotas per learner: see below
    stored_mb_per_learner = 32
    upload_mb_per_session = 300
    upload_mb_total = 2048
    kept_models_per_learner = 2  # fine-tuned models kept in memory for Try it / download (tlcore.serve.kept_models)
    kept_mb_per_learner = 200
    kept_mb_total = 512
    cpu_workers = 0          # CPU server: runs at a time (0: from the core count, tlcore.serve.cores)
    threads_per_job = 0      # ... and torch threads each (0: from the core count)

    [teacher]
    secret = "..."           # or $TLS_TEACHER_SECRET, or a file named by $TLS_TEACHER_SECRET_FILE; none: no teacher mode

Quotas per learner (what one cookie or one browser session may keep on the server) come
from the class file's [limits], else from the environment (the deployment's default), else
from the values here:

    stored_runs_per_learner  $TLS_STORED_RUNS_PER_LEARNER  finished jobs kept in the run store
    stored_mb_per_learner    $TLS_STORED_MB_PER_LEARNER    ... and their bytes; the learner's own oldest go
    upload_mb_per_session    $TLS_UPLOAD_MB_PER_SESSION    files a session keeps for its runs (zip, CSV, camera)
    upload_mb_total          $TLS_UPLOAD_MB_TOTAL          the same, all sessions together
    upload_mb_per_address    $TLS_UPLOAD_MB_PER_ADDRESS    ... and one client address's (0: none; a class behind one NAT)
    kept_models_per_learner  $TLS_KEPT_MODELS_PER_LEARNER  fine-tuned models on the shelf (tlcore.serve.kept_models)
    kept_mb_per_learner      $TLS_KEPT_MB_PER_LEARNER      ... and their megabytes; the learner's own oldest go
    kept_mb_total            $TLS_KEPT_MB_TOTAL            every learner's together; then the keeper's own, then who holds most

The store's server-wide row cap ($TLS_MAX_STORED_RUNS, tlcore.serve.store) stays as a backstop.

The secret must be at least MIN_SECRET_CHARS characters: a shorter one is refused (teacher
mode stays off, the log and the Class page say why). It is never part of a repr or a log line.
"""

from __future__ import annotations

import functools
import logging
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from tlcore.core import settings
from tlcore.core.messages import LearnerError

if TYPE_CHECKING:
    from tlcore.serve.kept_models import KeptModels

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "class.toml"
MIN_SECRET_CHARS = 12  # shorter secrets are refused: guessed or shoulder-surfed too easily

# Quotas per learner. One cookie posting 2,000 tiny runs must not flush everyone else's stored
# runs (the store's own cap counts rows, server-wide), and a sweep's row can be 5.5 MB: so each
# learner's finished runs are bounded by rows and by bytes, the learner's own oldest going first.
STORED_RUNS_PER_LEARNER = 50  # a class of 40 stays under the store's server-wide 2,000 rows
STORED_MB_PER_LEARNER = 32.0  # a default fine-tune is about 60 KB, a sweep up to 5.5 MB
# Upload folders (tlcore.serve.upload_folders.UploadFolders): a 4 MB zip kept about 190 MB per session.
UPLOAD_MB_PER_SESSION = 300.0  # one browser session's zip images, CSV and camera shots together
UPLOAD_MB_TOTAL = 2048.0  # every session's together: a class of 30 cannot fill the server's disk
UPLOAD_MB_PER_ADDRESS = 1024.0  # one address's (many cookies, many tabs): half the total; 0 where a class shares one NAT
# Where no class file sets them, these environment variables do (a deployment's default).
ENVIRONMENT = {
    "stored_runs_per_learner": "TLS_STORED_RUNS_PER_LEARNER",
    "stored_mb_per_learner": "TLS_STORED_MB_PER_LEARNER",
    "upload_mb_per_session": "TLS_UPLOAD_MB_PER_SESSION",
    "upload_mb_total": "TLS_UPLOAD_MB_TOTAL",
    "upload_mb_per_address": "TLS_UPLOAD_MB_PER_ADDRESS",
    "kept_models_per_learner": "TLS_KEPT_MODELS_PER_LEARNER",
    "kept_mb_per_learner": "TLS_KEPT_MB_PER_LEARNER",
    "kept_mb_total": "TLS_KEPT_MB_TOTAL",
    "cpu_workers": "TLS_CPU_WORKERS",
    "threads_per_job": "TLS_THREADS_PER_JOB",
}
READS = (*ENVIRONMENT.values(), "TLS_TEACHER_SECRET", "TLS_TEACHER_SECRET_FILE")  # every variable load() reads


@dataclass(frozen=True)
class ClassLimits:
    """The class's limits on a run and on what each learner keeps, and the teacher's secret:
    what `load()` reads from class.toml (each field's meaning in the module's docstring)."""

    max_seconds: float = 600.0
    max_epochs: int = 20
    max_per_class: int = 500
    max_image_size: int = 224
    max_text_length: int = 128
    max_classes: int = 100  # labels a dataset may have (uploads, CSVs): a results page grows with their square
    # One queue place per client address (a learner cannot hold three places with three cookies).
    # Off by default: a class behind one NAT or proxy shares one address and would get one run.
    one_run_per_address: bool = False
    stored_runs_per_learner: int = STORED_RUNS_PER_LEARNER
    stored_mb_per_learner: float = STORED_MB_PER_LEARNER
    upload_mb_per_session: float = UPLOAD_MB_PER_SESSION
    upload_mb_total: float = UPLOAD_MB_TOTAL
    upload_mb_per_address: float = UPLOAD_MB_PER_ADDRESS
    # The shelf of fine-tuned models (tlcore.serve.kept_models): a learner's own runs, for Try it and the download.
    kept_models_per_learner: int = 2
    kept_mb_per_learner: float = 200.0
    kept_mb_total: float = 512.0
    # A CPU server's runs at a time and torch threads per run; 0: chosen from the core count (tlcore.serve.cores).
    cpu_workers: int = 0
    threads_per_job: int = 0
    class_size: int = 60  # learners who may join the teacher's class by its code (tlcore.serve.classroom)
    teacher_secret: str = field(default="", repr=False)  # empty: no teacher mode; never shown
    problems: tuple[str, ...] = field(default=(), compare=False)  # "secret_short", "secret_misplaced", "secret_file"

    def check_within_limits(self, config) -> None:
        """Refuse a RunConfig that passes a limit, saying which and what to choose instead."""
        for name, value, cap in (
            ("epochs", config.epochs, self.max_epochs),
            ("per_class", config.per_class, self.max_per_class),
            ("image_size", config.image_size if config.task == "image" else 0, self.max_image_size),
            ("max_length", config.max_length if config.task == "text" else 0, self.max_text_length),
        ):
            if value > cap:
                raise LearnerError("caps.over", setting=name, value=value, cap=cap)
        if config.dataset == "folder" and config.data_root and Path(config.data_root).is_dir():
            from tlcore.data.datasets import check_class_count  # here: datasets imports torch

            check_class_count(
                sum(1 for d in Path(config.data_root).iterdir() if d.is_dir()), self.max_classes, Path(config.data_root).name
            )

    @property
    def address_upload_mb(self) -> float:
        """What one client address's uploads may hold (0: no bound): `upload_mb_per_address`, and
        where each device has an address of its own (`one_run_per_address`), no more than one
        session may (`upload_mb_per_session`): one device, one person's worth, however many cookies."""
        if not self.one_run_per_address:
            return self.upload_mb_per_address
        bounds = [mb for mb in (self.upload_mb_per_address, self.upload_mb_per_session) if mb > 0]
        return min(bounds) if bounds else 0.0

    def kept_models(self) -> KeptModels:
        """A shelf of fine-tuned models within these limits (tlcore.serve.kept_models)."""
        from tlcore.serve.kept_models import KeptModels  # here: it imports torch, which the pages' limits never need

        return KeptModels(self.kept_models_per_learner, self.kept_mb_per_learner, self.kept_mb_total)

    @property
    def teacher_mode(self) -> bool:
        """Is teacher mode on? Only with a secret long enough to keep."""
        return len(self.teacher_secret) >= MIN_SECRET_CHARS


log = logging.getLogger(__name__)


def path() -> Path:
    return Path(settings.get("TLS_CLASS_CONFIG") or DEFAULT_FILE)


def load(file: str | None = None) -> ClassLimits:
    """The limits in force now: the class file's, over the environment's quotas (ENVIRONMENT), over
    the defaults; the secret from the environment wins over the file's. A broken file (or a
    quota in the environment that is no number) is an error the teacher sees.

    Read when used: a call looks at the file's identity (inode, size, modification time) and at
    the variables it reads (a few microseconds) and parses again only when one changed, so a
    teacher's edit holds from the next page drawn, without a restart (a page reads the limits
    several times a run: parsing each time cost about 1.3 ms)."""
    where = Path(file) if file else path()
    environment = tuple(settings.raw(var) for var in READS)
    secret_file = settings.raw("TLS_TEACHER_SECRET_FILE")
    return _parsed(where, _identity(where), environment, _identity(Path(secret_file)) if secret_file else None)


def _identity(file: Path) -> tuple[int, int, int] | None:
    """What changes when a file is written or replaced: inode, size, modification time (None: no file)."""
    try:
        stat = file.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _parsed(where: Path, _file_id: tuple | None, _environment: tuple, _secret_id: tuple | None) -> ClassLimits:
    """The limits from `where` and the environment; the other arguments are the cache's key only."""
    values: dict = {k: _typed(k, settings.raw(var)) for k, var in ENVIRONMENT.items() if settings.raw(var)}
    problems: list[str] = []
    if where.exists():
        with open(where, "rb") as fh:
            data = tomllib.load(fh)
        known = {f.name for f in fields(ClassLimits)} - {"teacher_secret", "problems"}
        limits = dict(data.get("limits", {}))
        misplaced = limits.pop("teacher_secret", None) or limits.pop("secret", None)
        unknown = sorted(set(limits) - known)
        if unknown:
            raise ValueError(f"{where}: unknown limits {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values.update({k: _typed(k, v) for k, v in limits.items()})
        values["teacher_secret"] = str(data.get("teacher", {}).get("secret", ""))
        if misplaced is not None:  # used (the teacher meant it), and said where it belongs
            problems.append("secret_misplaced")
            log.warning('%s: the teacher\'s secret is under [limits]; it belongs under [teacher] as secret = "..."', where)
            values["teacher_secret"] = values["teacher_secret"] or str(misplaced)
    if settings.raw("TLS_TEACHER_SECRET"):
        values["teacher_secret"] = settings.raw("TLS_TEACHER_SECRET")
    elif settings.raw("TLS_TEACHER_SECRET_FILE"):  # a mounted secret (compose.yaml, Docker secrets)
        values["teacher_secret"] = _secret_file(settings.raw("TLS_TEACHER_SECRET_FILE"), problems)
    secret = values.get("teacher_secret", "")
    if secret and len(secret) < MIN_SECRET_CHARS:
        problems.append("secret_short")
        log.error(
            "the teacher's secret has %d characters; at least %d are needed: teacher mode is OFF until a "
            "longer one is set (class.toml [teacher] secret, or TLS_TEACHER_SECRET)",
            len(secret),
            MIN_SECRET_CHARS,
        )
    return ClassLimits(**values, problems=tuple(problems))


def _secret_file(name: str, problems: list[str]) -> str:
    """The secret in a file (its first line; a trailing newline is not part of it). A file that
    cannot be read leaves teacher mode off and says so, never the file's contents."""
    try:
        lines = Path(name).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        problems.append("secret_file")
        log.error("TLS_TEACHER_SECRET_FILE: cannot read %s (%s): teacher mode is OFF", name, type(error).__name__)
        return ""
    return lines[0].strip() if lines else ""


def _typed(name: str, value):
    """A limit's value as its field's type ("25" from the environment, 25 for a float field)."""
    kind = type(getattr(ClassLimits, name))
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"limit {name} is true or false, not {value!r}")
    return kind(value)
