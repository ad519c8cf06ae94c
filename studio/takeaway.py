"""What a finished run leaves the learner: forgetting, measured, and the model to take home.

- `forgetting_panel(result)`: how many offline ImageNet photos the network recognised before
  the fine-tune and how many its fine-tuned body still recognises through the old ImageNet
  head (measured in the worker, tlcore.train.forgetting; stored with the run).
- `forgetting_cell(result)`: the same as one race-table cell.
- `model_download(snap, config, key=...)`: the run's model as a zip of safetensors + settings,
  or of ONNX, built only when the learner clicks (tlcore.serve.takehome); the last few bundles are
  kept in memory, a bounded number of bytes, so a second click does not build again.

Not for: computing any of it (tlcore.train.forgetting, tlcore.serve.takehome).
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections import OrderedDict

import streamlit as st

from studio.i18n import current_lang, explain_error, t
from studio.learner import owner
from studio.server import kept_model
from tlcore.core.events import HistorySnapshot
from tlcore.core.messages import LearnerError
from tlcore.serve import notebook, takehome
from tlcore.train import finetuned
from tlcore.train.config import RunConfig

# --- forgetting ---------------------------------------------------------------------------

CHANGED_SHOWN = 8  # photos listed whose answer changed


def forgetting_cell(result: dict | None) -> str:
    """'17 / 24' ImageNet photos recognised after the run, '0 / 24 (20)' with the number recognised
    with ImageNet's BatchNorm statistics put back where that differs; '–' where it does not apply."""
    f = (result or {}).get("forgetting")
    if not f:
        return "–"
    bn = f.get("after_bn")
    return f"{f['after']} / {f['total']}" + (f" ({bn})" if bn is not None and bn != f["after"] else "")


def race_caption(results: list[dict | None]) -> None:
    """What the race table's ImageNet column means, with the pretrained network's own score."""
    first = next((r["forgetting"] for r in results if r and r.get("forgetting")), None)
    if first:
        st.caption(t("caption.race_imagenet", column=t("race.col.imagenet"), before=f"{first['before']} / {first['total']}"))


def forgetting_panel(result: dict) -> None:
    """The line (before, after) and a small table of the photos whose answer changed."""
    f = result.get("forgetting")
    if not f:
        return
    st.markdown(f"**{t('forget.title')}**")
    st.markdown(t("forget.line", before=f["before"], total=f["total"], after=f["after"]))
    bn = f.get("after_bn")
    if bn is not None and bn > f["after"]:  # putting ImageNet's statistics back brings photos back
        lost = f["before"] - f["after"]
        if bn >= f["before"]:
            st.markdown(t("forget.bn_all", after_bn=bn))
        else:
            st.markdown(t("forget.bn_part", after_bn=bn, lost=lost, back=bn - f["after"], rest=f["before"] - bn))
    changed = [p for p in f["photos"] if p["right_before"] != p["right_after"] or p["before"] != p["after"]]
    if changed:
        mark = {True: "✓", False: "✗"}
        st.dataframe(
            {
                t("forget.col.answer"): [p["answer"] for p in changed[:CHANGED_SHOWN]],
                t("forget.col.before"): [f"{mark[p['right_before']]} {p['before']}" for p in changed[:CHANGED_SHOWN]],
                t("forget.col.after"): [f"{mark[p['right_after']]} {p['after']}" for p in changed[:CHANGED_SHOWN]],
            },
            hide_index=True,
            width="stretch",
        )
        st.caption(t("forget.caption", changed=len(changed), total=f["total"]))
    else:
        st.caption(t("forget.unchanged", total=f["total"]))


# --- the model to take home ---------------------------------------------------------------

CACHE_BYTES = 64 * 2**20  # bundles kept for a second click; a bigger one is built again each time
_bundles: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
_lock = threading.Lock()


def bundle(learner: str, model_id: str, part: str, metrics: dict | None = None) -> bytes:
    """The zip for one of the learner's shelf models and one part ("weights" or "onnx"), built
    on the first click and kept (bounded) for the next. The id is the run's own, unguessable
    one, and the shelf gives a model to its owner only. `learner` is taken when the button is
    drawn: the file is asked for later, outside the page's run."""
    key = (learner, model_id, part)
    with _lock:
        if key in _bundles:
            _bundles.move_to_end(key)
            return _bundles[key]
    entry = kept_model(model_id, learner)
    if entry is None:
        return _note_zip(str(LearnerError("takehome.gone")))
    try:
        data = takehome.zip_bytes(entry, parts=(part,), metrics=metrics)  # metrics: for the model card
    except LearnerError as error:
        return _note_zip(str(error))
    with _lock:
        if len(data) <= CACHE_BYTES:
            _bundles[key] = data
        while sum(len(b) for b in _bundles.values()) > CACHE_BYTES:
            _bundles.popitem(last=False)
    return data


def _note_zip(text: str) -> bytes:
    """A zip holding only why there is no model (a download that has started must deliver a file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("model/NOTE.txt", text + "\n")
    return buffer.getvalue()


def model_download(snap: HistorySnapshot, config: RunConfig, *, key: str) -> None:
    """Two download buttons (weights + settings, ONNX), a tlcore snippet, and how it was checked."""
    result = snap.result or {}
    model_id = result.get("model_id")
    if not model_id:
        return
    st.markdown(f"**{t('takehome.title')}**")
    learner = owner()
    entry = kept_model(model_id, learner)
    if entry is None:
        st.caption(explain_error(LearnerError("takehome.gone")))
        return
    try:
        takehome.check_size(entry)
    except LearnerError as error:
        st.caption(explain_error(error))
        return
    mb = max(1, round(finetuned.model_bytes(entry.model) / 2**20))
    name = f"{entry.backbone}-{config.strategy}"
    card = takehome.card_metrics(result)
    cols = st.columns(2)
    cols[0].download_button(
        t("takehome.weights", mb=mb),
        data=lambda: bundle(learner, model_id, "weights", card),
        file_name=f"{name}.zip",
        mime="application/zip",
        key=f"model:{key}",
        on_click="ignore",
        help=t("help.takehome_weights"),
        icon=":material/download:",
    )
    cols[1].download_button(
        t("takehome.onnx", mb=mb),
        data=lambda: bundle(learner, model_id, "onnx", card),
        file_name=f"{name}-onnx.zip",
        mime="application/zip",
        key=f"onnx:{key}",
        on_click="ignore",
        help=t("help.takehome_onnx"),
        icon=":material/download:",
    )
    meta, lang = takehome.describe(entry, card), current_lang()
    if notebook.supported(meta):  # the same run in plain PyTorch, built on click (milliseconds)
        st.download_button(
            t("takehome.notebook"),
            data=lambda: notebook.to_bytes(meta, lang=lang, metrics=card),
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
