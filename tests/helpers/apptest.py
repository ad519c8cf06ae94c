"""The app without a browser (streamlit.testing.v1.AppTest): one factory for a page with a
test queue in its session, and what the tests read back from it.

The pages use the server's one queue and class (studio.server.job_queue and class_room, from
tlcore.serve.jobs.shared_queue and tlcore.serve.classroom.shared). Importing this module patches
those two for the test process: inside an AppTest run whose session holds a queue under `QUEUE`
(or a class under `CLASSROOM`), that one is the server's for the session; anywhere else the real
one. So each AppTest may have a queue of its own, and two may share one (two learners, one server).

Not for: the app in Chromium (tests.helpers.browser).
"""

from __future__ import annotations

import functools
import json
import re
import time
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.testing.v1 import AppTest

from tests.helpers.fakes import fake_run, fake_text_run, jpeg
from tlcore.serve import classroom, jobs
from tlcore.serve.jobs import JobQueue

ROOT = Path(__file__).resolve().parents[2]  # the repository
PAGES = ["pages/1_pretraining.py", "pages/2_strategy.py", "pages/3_finetune.py", "pages/4_compare.py"]
SECRET = "correct horse battery"  # long enough (class_limits.MIN_SECRET_CHARS)
CACHED: set[str] = set()  # the text models a test pretends are on this machine
QUEUE, CLASSROOM = "test:queue", "test:classroom"  # a session's own queue and class, given by its test


def _the_sessions_own(real, key: str):
    """`real`, except inside an AppTest run whose session holds an object under `key`: that one."""

    @functools.wraps(real)
    def shared(*args, **kwargs):
        if get_script_run_ctx() is not None and key in st.session_state:
            return st.session_state[key]
        return real(*args, **kwargs)

    return shared


if not hasattr(jobs.shared_queue, "__wrapped__"):  # once per process
    jobs.shared_queue = _the_sessions_own(jobs.shared_queue, QUEUE)
    classroom.shared = _the_sessions_own(classroom.shared, CLASSROOM)


def app(
    page: str | None = None,
    *,
    lang: str = "en",
    run_fn=fake_run,
    queue: JobQueue | None = None,
    owner: str | None = None,
    use_server_queue: bool = False,
    query: dict | None = None,
    state: dict | None = None,
    timeout: float = 60,
) -> AppTest:
    """The app on `page`. Note: AppTest runs app.py (the frame) on the first run only;
    later runs execute the page alone, so frame checks look at the first run.

    queue: a queue shared with another AppTest (two learners on one server); owner: the
    session's owner id (every AppTest has the same Streamlit session id); use_server_queue:
    no test queue in the session, the page uses the server's own (`studio.server.job_queue`);
    query: more query parameters (a teacher's `settings` link); state: session values before the first run.
    """
    at = AppTest.from_file(str(ROOT / "frame.py"), default_timeout=timeout)
    at.query_params["lang"] = lang
    for key, value in (query or {}).items():
        at.query_params[key] = value
    for key, value in (state or {}).items():
        at.session_state[key] = value
    if not use_server_queue:
        at.session_state[QUEUE] = queue or JobQueue.started(run_fn)
    if owner is not None:
        at.session_state["owner"] = owner
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def page(path: str, *, queue: JobQueue | None, owner: str, query: dict | None = None, timeout: float = 60) -> AppTest:
    """The app on `path` as learner `owner`, with a test's `queue` (None: the server's own)."""
    at = AppTest.from_file(str(ROOT / "frame.py"), default_timeout=timeout)
    at.query_params["lang"] = "en"
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if queue is not None:
        at.session_state[QUEUE] = queue
    at.session_state["owner"] = owner
    at.run()
    at.switch_page(path)
    at.run()
    return at


def text_app(*, lang: str = "en", cached=()) -> AppTest:
    """The app on the Text page, training with the fake text run; `cached`: the text models it
    pretends are on this machine (with the `offline_machine` fixture of tests/test_text_page.py)."""
    CACHED.update(cached)
    at = AppTest.from_file(str(ROOT / "frame.py"), default_timeout=90)
    at.query_params["lang"] = lang
    at.session_state[QUEUE] = JobQueue.started(fake_text_run)
    at.run()
    at.switch_page("pages/5_text.py")
    at.run()
    return at


def ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def queue_of(at: AppTest) -> JobQueue:
    """The queue the session's pages use: its test's own, else the server's."""
    from studio.server import job_queue

    return at.session_state[QUEUE] if QUEUE in at.session_state else job_queue()


def job_of(at: AppTest, slot: str):
    """The view of the session's job in `slot`, asked for as the session itself."""
    return queue_of(at).get(at.session_state[f"job:{slot}"], at.session_state["owner"])


def wait_until_done(at: AppTest, slot: str, timeout: float = 20.0) -> str:
    job_id = at.session_state[f"job:{slot}"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = job_of(at, slot)
        if view.state not in ("queued", "running"):
            return view.state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {view.state} after {timeout} s")


def strings(lang: str) -> dict:
    return json.loads((ROOT / "assets" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def charts(at: AppTest) -> list:
    """The page's Plotly charts, without the frame's hidden empty one (studio.page_frame.load_charts_early)."""
    return [c for c in at.get("plotly_chart") if c.key != "charts_early"]


def buttons(at: AppTest, key: str) -> list:
    return [b for b in at.button if b.key == key]


def unlock(at: AppTest, secret: str) -> None:
    """Type the secret and submit the form in one run (a form sends its fields on submit)."""
    at.text_input(key="teacher_secret").input(secret)
    labels = {
        json.loads((ROOT / "assets" / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))["class.unlock"]
        for lang in ("en", "ko")
    }
    next(b for b in at.button if b.label in labels).click()  # not the class's Join button above it
    at.run()


def upload_page(content: bytes, name: str = "classes.zip") -> AppTest:
    at = app("pages/3_finetune.py")
    at.radio(key="w:data_source").set_value("upload").run()
    at.file_uploader(key="upload").set_value((name, content, "application/zip")).run()
    return at


def camera_page(names: str | None = None) -> AppTest:
    at = app("pages/3_finetune.py")
    at.radio(key="w:data_source").set_value("camera").run()
    if names is not None:
        at.text_input(key="cam_names").set_value(names).run()
    return at


def shoot(at: AppTest, color) -> AppTest:
    """One click on Take Photo: a photo in the camera widget on screen now."""
    cameras = at.camera_input
    assert len(cameras) == 1 and not cameras[0].disabled
    return cameras[0].set_value(("photo.jpg", jpeg(color), "image/jpeg")).run()


def counts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**thumbs")]


# --- English left on a Korean page

ENGLISH = {
    "the",
    "of",
    "and",
    "with",
    "for",
    "from",
    "this",
    "that",
    "your",
    "you",
    "are",
    "not",
    "into",
    "only",
    "than",
    "when",
    "while",
    "which",
    "will",
    "has",
    "have",
    "was",
    "were",
    "its",
    "but",
    "per",
    "each",
    "left",
    "waiting",
    "running",
    "seconds",
    "threads",
    "cores",
    "params",
    "installed",
    "ships",
    "sentences",
    "written",
    "languages",
    "layers",
    "images",
    "examples",
    "click",
    "choose",
    "upload",
    "failed",
    "error",
    "stopped",
    "finished",
    "about",
    "must",
    "between",
    "got",
    "unknown",
    "using",
    "instead",
    "available",
    "run",
    "should",
    "take",
    "machine",
    "accuracy",
    "seeds",
    "winner",
    "similarity",
    "size",
    "class",
    "probability",
}
IDENTIFIER = re.compile(r"\b[a-z]+_[a-z_]+\b")  # a raw key (val_acc_mean) where a learner should read words
WORD = re.compile(r"[A-Za-z][A-Za-z']+")
KEEP_AS_WRITTEN = [
    re.compile(r"<[^>]+>"),  # HTML tags are markup, not text a learner reads
    re.compile(r"`[^`]*`"),
    re.compile(r"```.*?```", re.S),
    re.compile(r'"[^"]*"'),
    re.compile(r"\[MASK\]"),
    re.compile(r":material/[a-z_]+:"),
]


def visible_texts(at) -> list[tuple[str, str]]:
    out = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "success", "error"):
        out += [(kind, el.value) for el in getattr(at, kind)]
    for kind in ("button", "selectbox", "slider", "select_slider", "radio", "multiselect", "pills", "text_input", "checkbox"):
        for el in getattr(at, kind):
            if getattr(el, "key", None) == "w:lang":
                continue  # "English / 한국어": each language named in its own
            out.append((kind, el.label))
            if kind in ("selectbox", "radio", "multiselect"):
                out += [(kind, str(o)) for o in el.options]
            if kind == "pills":
                out += [(kind, o.content) for o in el.proto.options]
    out += [("metric", el.label) for el in at.get("metric")]
    out += [("table", str(column)) for frame in at.dataframe for column in frame.value.columns]
    out += [("expander", el.label) for el in at.get("expander")]
    out += [("tab", el.label) for el in at.get("tab")]
    return out


def english_in(at) -> list[str]:
    found = []
    for kind, text in visible_texts(at):
        if not text:
            continue
        for pattern in KEEP_AS_WRITTEN:
            text = pattern.sub(" ", text)
        words = {w.lower() for w in WORD.findall(text)} & ENGLISH
        if kind == "table":
            words |= set(IDENTIFIER.findall(text))
        if words:
            found.append(f"{kind}: {sorted(words)} in {text[:120]!r}")
    return found
