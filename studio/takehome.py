"""The model to take home, on the Fine-tune and Text pages: `model_download(snap, config, key=...)`
offers the run's model as a zip of safetensors + settings, or of ONNX, built when the learner
first clicks (tlcore.takehome.model_files), once per run, into a file on disk (a bounded folder)
that every later click reads: nothing kept in memory; and the take-home notebook
(tlcore.takehome.notebook).

Not for: building any of it (tlcore.takehome) or forgetting (studio.forgetting_panel).
"""

from __future__ import annotations

import atexit
import hashlib
import io
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

import streamlit as st

from studio import download_hold
from studio.i18n import current_lang, explain_error, t
from studio.learner import owner
from studio.server import kept_model
from tlcore.core import settings
from tlcore.core.events import HistorySnapshot
from tlcore.core.messages import LearnerError
from tlcore.takehome import model_files, notebook
from tlcore.takehome.record import RunMetrics, TakeHome
from tlcore.train import finetuned
from tlcore.train.config import RunConfig

# Built zips kept on disk ($TLS_DOWNLOAD_BYTES, 2 GiB); the oldest go past it
_folder: Path | None = None  # this server's built zips (a temporary folder, removed at exit)
# One build at a time, server-wide: the ONNX exporter traces with process-wide state (two
# simultaneous ONNX downloads: one failed, 3 of 3), and a build holds a model's copy in memory.
_build = threading.Lock()


def _downloads() -> Path:
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="tls-downloads-"))
        atexit.register(shutil.rmtree, _folder, True)
    return _folder


def bundle_file(learner: str, model_id: str, part: str, metrics: RunMetrics | None = None) -> Path | None:
    """The zip for one of the learner's shelf models and one part ("weights" or "onnx"), built
    once per run and part, on disk; None when the shelf has no such model of theirs. The id is
    the run's own, unguessable one, and the shelf gives a model to its owner only: asked on
    every call, so a zip outlives neither its owner's right to it nor its model on the shelf."""
    entry = kept_model(model_id, learner)
    if entry is None:
        return None
    path = _downloads() / f"{hashlib.sha256(model_id.encode()).hexdigest()[:32]}-{part}.zip"
    with _build:
        if not path.exists():
            partial = path.with_suffix(".part")
            try:
                model_files.write_zip(entry, partial, parts=(part,), metrics=metrics)  # metrics: for the model card
            except BaseException:
                partial.unlink(missing_ok=True)  # a half-written zip is never served
                raise
            partial.replace(path)
            _trim(keep=path)
    return path


def _trim(keep: Path) -> None:
    """Remove the oldest built zips until those left fit $TLS_DOWNLOAD_BYTES (`keep`, just built, stays)."""
    files = sorted((p for p in _downloads().glob("*.zip") if p != keep), key=lambda p: p.stat().st_mtime)
    total = keep.stat().st_size + sum(p.stat().st_size for p in files)
    for old in files:
        if total <= settings.get("TLS_DOWNLOAD_BYTES"):
            break
        total -= old.stat().st_size
        old.unlink(missing_ok=True)


def bundle_or_note(learner: str, model_id: str, part: str, metrics: RunMetrics | None = None) -> Path | bytes:
    """The download: the zip built once (bundle_file), on disk; or a small zip saying why there is
    none. `learner` is taken when the button is drawn: the file is asked for later, outside the page's run."""
    try:
        path = bundle_file(learner, model_id, part, metrics)
    except LearnerError as error:
        return _note_zip(str(error))
    return path if path is not None else _note_zip(str(LearnerError("takehome.gone")))


def bundle(learner: str, model_id: str, part: str, metrics: RunMetrics | None = None) -> bytes:
    """The download's bytes, where they must go through memory (download_hold.FromDisk streams
    the file from disk instead). Built once: Streamlit keeps a download's bytes under a hash of
    them, and a zip built again per click (a new timestamp inside) was a new 87 MB copy each time
    (28 clicks: 2.7 -> 6.1 GB)."""
    return download_hold.FromDisk(lambda: bundle_or_note(learner, model_id, part, metrics))()


def _note_zip(text: str) -> bytes:
    """A zip holding only why there is no model (a download that has started must deliver a file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("model/NOTE.txt", text + "\n")
    return buffer.getvalue()


def model_download(snap: HistorySnapshot, config: RunConfig, *, key: str) -> None:
    """Two download buttons (weights + settings, ONNX), a tlcore snippet, and how it was checked."""
    result = snap.result
    model_id = result.model_id if result else None
    if not model_id:
        return
    st.markdown(f"**{t('takehome.title')}**")
    learner = owner()
    entry = kept_model(model_id, learner)
    if entry is None:
        st.caption(explain_error(LearnerError("takehome.gone")))
        return
    try:
        model_files.check_size(entry)
    except LearnerError as error:
        st.caption(explain_error(error))
        return
    mb = max(1, round(finetuned.model_bytes(entry.model) / 2**20))
    name = f"{entry.backbone}-{config.strategy}"
    card = RunMetrics.of(result)  # small: what the card reports, kept by the buttons' callbacks
    # (part, its label and help, the key's prefix, the file's suffix): the two zips side by side
    parts = (
        ("weights", "takehome.weights", "help.takehome_weights", "model", ""),
        ("onnx", "takehome.onnx", "help.takehome_onnx", "onnx", "-onnx"),
    )
    for col, (part, label, help_key, prefix, suffix) in zip(st.columns(2), parts, strict=True):
        col.download_button(
            t(label, mb=mb),
            data=download_hold.FromDisk(lambda part=part: bundle_or_note(learner, model_id, part, card)),
            file_name=f"{name}{suffix}.zip",
            mime="application/zip",
            key=f"{prefix}:{key}",
            on_click="ignore",
            help=t(help_key),
            icon=":material/download:",
        )
    record, lang = TakeHome.of(entry, card), current_lang()
    if notebook.supported(record):  # the same run in plain PyTorch, built on click (milliseconds)
        st.download_button(
            t("takehome.notebook"),
            data=lambda: notebook.to_bytes(record, lang=lang),
            file_name=f"{name}.ipynb",
            mime="application/x-ipynb+json",
            key=f"notebook:{key}",
            on_click="ignore",
            help=t("help.takehome_notebook"),
            icon=":material/download:",
        )
    st.caption(t("takehome.caption_text" if entry.task == "text" else "takehome.caption"))
    sample = '"a sentence to classify"' if entry.task == "text" else '"photo.jpg"'
    st.code(
        "from tlcore import takehome\n\n"
        'model = takehome.load("model/model.safetensors")\n'
        f"print(model.predict([{sample}]))\n\n"
        f"# python -m tlcore predict --model model/ {sample}",
        language="python",
    )
