"""Widget groups about single images: see the data first, try a model on a new image,
and build a dataset of your own classes with the camera (Teachable-Machine style).

Everything computed here comes from tlcore (datasets.preview, imagenet, finetuned, shelf, gradcam);
this module only draws and keeps the learner's shots in session state.
"""

from __future__ import annotations

import errno
import hashlib
import html
import os
from pathlib import Path

import numpy as np
import streamlit as st

from studio.feedback import error as show_error
from studio.i18n import class_title, current_lang, explain_error, imagenet_title, t, t_count, translated
from studio.learner import owner
from studio.plots import group_label
from studio.server import job_queue, kept_model
from studio.state import callback, job_id
from studio.upload_slots import check_upload_room, drop_upload_slot, new_upload_slot
from tlcore.data import datasets
from tlcore.data.image_zip import UploadError
from tlcore.models import catalog, imagenet
from tlcore.train import finetuned

PREVIEW_PER_CLASS = 4
PREVIEW_SIZE = 64
MAX_IMAGE_BYTES = 20 * 1024 * 1024  # one photo to try: bigger than any phone picture
MIN_SHOTS = 2  # per own class: one to train, one to test
# Camera shots stay in the server's memory for the session, as the camera's JPEGs (about 20-60
# KB at 640x480). A demo needs five to ten a class; these caps bound a session to a few MB and
# a class of thirty to about 150 MB, and keep a run on them to seconds.
MAX_SHOTS_PER_CLASS = 25
MAX_SHOTS = 100  # per learner, all classes together
DARK_MEAN = 8  # mean brightness (0..255) below which a shot is black: a camera's first frame before it has light


# --- see the data first -----------------------------------------------------------------


def encoded(image: np.ndarray, fmt: str = "PNG") -> bytes:
    """An (H, W[, 3]) uint8 image as PNG or JPEG bytes, for `st.image(..., output_format=fmt)`.

    Streamlit encodes an array on every script run (and re-encodes it when its own choice of
    format differs); bytes already in the format asked for are sent as they are. The pictures
    that every page run shows are encoded once and kept (a class pressing Start together
    reruns page 3 thirty times at once)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(image).save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def pictures(items: list[tuple[bytes, str, str]], *, fmt: str = "PNG", column: str = "6.5rem", most: str = "") -> None:
    """Images with a text alternative: each (encoded bytes, alt text, visible caption), in a grid
    whose columns are at least `column` wide (as many as fit: one or two on a phone), each image
    at most `most` wide.

    Drawn as HTML, not `st.image`: Streamlit's image has no alt text (a screen reader said
    nothing for a picture) and puts an unseen "Fullscreen" button before each one, a tab stop a
    keyboard learner cannot see (10 of the 43 stops before Start on page 3)."""
    import base64

    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    style = f' style="max-width:{most}"' if most else ""
    cells = "".join(
        f'<figure{style}><img src="data:{mime};base64,{base64.b64encode(data).decode()}" alt="{html.escape(alt)}">'
        + (f"<figcaption>{html.escape(caption)}</figcaption>" if caption else "")
        + "</figure>"
        for data, alt, caption in items
    )
    st.html(f'<div class="tls-figures" style="grid-template-columns:repeat(auto-fill,minmax({column},1fr))">{cells}</div>')


@st.cache_data(show_spinner=False, max_entries=16)
def _preview(dataset: str, root: str) -> list[tuple[str, bytes]]:
    """Thumbnail strips per class, as PNG bytes."""
    data = catalog.load_dataset(dataset, per_class=PREVIEW_PER_CLASS, val_per_class=1, image_size=PREVIEW_SIZE, seed=0, root=root)
    return [(name, encoded(strip)) for name, strip in datasets.preview(data, PREVIEW_PER_CLASS)]


def data_preview(dataset: str, root: str = "", *, ready: bool = True) -> None:
    """A few thumbnails per class, with the class names, before anything trains."""
    if not ready or not dataset:
        return
    with st.expander(t("preview.title"), expanded=True):
        try:
            strips = _preview(dataset, root)
        except Exception as error:  # noqa: BLE001 -- e.g. a download set while offline: say why, keep the page
            st.info(t("preview.unavailable", reason=str(error)))
            return
        pictures(
            [
                (strip, t("alt.preview", n=PREVIEW_PER_CLASS, cls=class_title(dataset, name)), class_title(dataset, name))
                for name, strip in strips
            ],
            column="10rem",
        )


# --- try it on a new image ---------------------------------------------------------------


def _decode(data: bytes) -> np.ndarray | None:
    """An uploaded or camera image -> (H, W, 3) uint8, or None with a message on screen."""
    image, problem = _read_picture(data)
    if problem:
        show_error(problem)
    return image


def _read_picture(data: bytes) -> tuple[np.ndarray | None, str]:
    """An image's bytes -> ((H, W, 3) uint8, "") or (None, why not, in the learner's words)."""
    from tlcore.data.images import ImageRefused, open_image, to_rgb

    if len(data) > MAX_IMAGE_BYTES:
        return None, t("try.too_big", mb=MAX_IMAGE_BYTES // 2**20)
    try:
        with open_image(data) as img:  # allowed formats only, pixels capped before decoding
            return to_rgb(img, 1024), ""  # JPEGs decode reduced; 16-bit pictures scaled, not white
    except ImageRefused as refused:
        return None, t("try.too_many_pixels") if refused.kind == "pixels" else t("try.unreadable")
    except (OSError, ValueError):
        return None, t("try.unreadable")


@st.cache_resource(show_spinner=False)
def _sample_photo(name: str) -> np.ndarray:
    """A bundled photo, decoded once per server (read-only: every session shares it)."""
    image = imagenet.sample_photo(name)
    image.setflags(write=False)
    return image


@st.cache_resource(show_spinner=False)
def _shown(name: str) -> bytes:
    """A bundled photo as JPEG bytes, encoded once per server."""
    return encoded(_sample_photo(name), "JPEG")


def _image_input(key: str) -> tuple[np.ndarray | None, str, bytes | None, str | None]:
    """A sample photo (one click), an uploaded file or the camera: (image, caption, the
    picture's JPEG bytes when they are kept ready, else None, the sample photo's name or None)."""
    sources = ["sample", "upload", "camera"]
    source = (
        st.segmented_control(
            t("try.source"), sources, key=f"{key}:source", default="sample", format_func=lambda s: t(f"try.source.{s}")
        )
        or "sample"
    )
    if source == "sample":
        names = [p.name for p in imagenet.SAMPLE_PHOTOS]
        titles = {p.name: (p.title_ko if current_lang() == "ko" else p.title_en) for p in imagenet.SAMPLE_PHOTOS}
        name = (
            st.pills(
                t("try.samples"), names, key=f"{key}:sample", default=names[0], format_func=titles.get, help=t("help.try_samples")
            )
            or names[0]
        )
        return _sample_photo(name), titles[name], _shown(name), name
    if source == "upload":
        file = st.file_uploader(t("try.upload"), type=["png", "jpg", "jpeg", "webp", "bmp", "gif"], key=f"{key}:upload")
    else:
        file = st.camera_input(t("try.camera"), key=f"{key}:camera")
    if file is None:
        return None, "", None, None
    return _decode(file.getvalue()), file.name, None, None


def _ranked(rows: list[tuple[str, float]]) -> None:
    """Classes and their probabilities, each a bar from zero to one. (Bars, not a table: a
    table would make every fresh visitor's browser load and run the data grid's 1.2 MB of
    scripts for five rows; measured, page 3 is interactive 10-18% sooner without it.)"""
    for name, p in rows:
        st.progress(min(max(p, 0.0), 1.0), text=f"{name}: {p:.1%}")


def try_image_panel(key: str, *, finetune_slots: tuple[str, ...] = ("finetune",), waiting: str = "try.no_finetune") -> None:
    """Before fine-tuning: the pretrained model's top-5 ImageNet classes ("what it already
    knows"); after a fine-tune in this session: the fine-tuned model's task classes, from
    the first of `finetune_slots` with a finished image run (until then, `waiting` says
    which Start fills the column). Under both, what each model looks at (Grad-CAM) for its
    top class, side by side."""
    st.subheader(t("try.title"))
    st.caption(t("try.intro"))
    image, caption, ready, sample = _image_input(key)  # the picker across the page: every photo's name in view at 1280 px
    picture_col, before_col, after_col = st.columns([2, 3, 3], gap="medium")
    with picture_col:
        if image is not None:
            shown = ready if ready is not None else encoded(image, "JPEG")
            pictures([(shown, t("alt.photo", name=caption), caption)], fmt="JPEG", column="8rem")
    if image is None:
        return
    name = catalog.offline_default()
    pretrained = catalog.backbone(name).pretrained_on == "imagenet"
    found = next(filter(None, map(_finetuned_model, finetune_slots)), None)
    with before_col:
        st.markdown(f"**{t('try.before')}**")
        if not pretrained:
            st.info(t("try.no_imagenet"))
        else:
            with st.spinner(t("try.thinking")):
                top = imagenet.sample_top_ids(name, sample) if sample else _imagenet_top(name, image)
            _ranked([(imagenet_title(i), p) for i, p in top])
            st.caption(t("try.before_caption", model=translated(f"backbone.title.{name}", catalog.backbone(name).title)))
    with after_col:
        st.markdown(f"**{t('try.after')}**")
        if found is None:
            st.caption(t(waiting))
        else:
            entry, dataset, _ = found
            _ranked([(class_title(dataset, name), p) for name, p in finetuned.class_probabilities(entry, image)])
            st.caption(
                t(
                    "try.after_caption",
                    n=len(entry.classes),
                    backbone=translated(f"backbone.title.{entry.backbone}", catalog.backbone(entry.backbone).title),
                )
            )
    if pretrained or found is not None:
        _class_maps(image, name if pretrained else "", found)


# --- what it looks at: class activation maps (tlcore.explain.gradcam) ----------------------------

MAP_WIDTH = 240  # px: both maps and the bars above them fit a 1280 x 720 screen


def _class_maps(image: np.ndarray, imagenet_name: str, found: tuple[finetuned.Finetuned, str, str] | None) -> None:
    """Grad-CAM over the picture for the pretrained model's top ImageNet class and, after a
    fine-tune, for the fine-tuned model's predicted class, in a row under the two columns."""
    digest = hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()
    intro_col, before_col, after_col = st.columns([2, 3, 3], gap="medium")
    intro_col.caption(t("try.map_intro"))
    maps = []  # (column, the cached map, its class's name, caption key)
    if imagenet_name:
        maps.append(
            (
                before_col,
                lambda: _imagenet_map(imagenet_name, digest, image),
                imagenet_title,
                "try.map_before",
            )
        )
    if found is not None:
        entry, dataset, model_id = found
        maps.append(
            (
                after_col,
                lambda: _finetuned_map(model_id, digest, entry, image),
                lambda target: class_title(dataset, entry.classes[target]),
                "try.map_after",
            )
        )
    for col, compute, class_name, caption in maps:
        with col:
            try:
                with st.spinner(t("try.map_thinking")):
                    overlay, target, p, group, (h, w), flat = compute()
            except ImportError:  # the grad-cam package (requirements.txt) is missing on this server
                st.info(t("try.map_unavailable"))
                continue
            except Exception as error:  # noqa: BLE001 -- a model the map cannot be taken of: say why, keep the page
                st.info(t("try.map_failed", reason=str(error)))
                continue
            text = t(caption, cls=class_name(target), p=p, group=group_label(group, t), h=h, w=w)
            # A flat map (Grad-CAM keeps positive evidence only): say so, or a blue square looks like a fault
            alt = t("alt.map", cls=class_name(target))
            pictures(
                [(overlay, alt, f"{text}. {t('try.map_flat')}" if flat else text)],
                fmt="JPEG",
                column="8rem",
                most=f"{MAP_WIDTH}px",
            )


def _map_shown(cam) -> tuple[bytes, int, float, str, tuple[int, int], bool]:
    """A ClassMap as what the page keeps: the overlay's JPEG bytes, the class, its probability,
    the layer group, its grid, and whether the map is flat (no part stands out)."""
    return encoded(cam.overlay, "JPEG"), cam.target, cam.probability, cam.group, cam.grid, bool(cam.heat.max() <= 0)


@st.cache_data(show_spinner=False, max_entries=32)
def _imagenet_map(name: str, digest: str, _image: np.ndarray) -> tuple[bytes, int, float, str, tuple[int, int], bool]:
    """The pretrained model's Grad-CAM for its top class, computed once per picture (keyed by the
    picture's hash, not on every page run: a map is a forward and a backward pass)."""
    from tlcore.explain import gradcam

    return _map_shown(gradcam.class_map(_imagenet_model(name), _image, size=224))


@st.cache_data(show_spinner=False, max_entries=32)
def _finetuned_map(
    model_id: str, digest: str, _entry: finetuned.Finetuned, _image: np.ndarray
) -> tuple[bytes, int, float, str, tuple[int, int], bool]:
    """The fine-tuned model's Grad-CAM for its predicted class, once per model and picture."""
    from tlcore.explain import gradcam

    return _map_shown(gradcam.class_map(_entry.model, _image, size=_entry.image_size))


@st.cache_resource(show_spinner=False)
def _imagenet_model(name: str):
    return imagenet.imagenet_model(name)


@st.cache_data(show_spinner=False, max_entries=32)
def _imagenet_top(name: str, image: np.ndarray) -> list[tuple[int, float]]:
    """The pretrained model's top 5 for a picture, computed once per picture: the page reruns
    on every click of every learner, and most look at the same sample photos; 30 learners
    pressing Start at once were 30 forward passes of the ImageNet model (tools/loadtest)."""
    return imagenet.top_k_ids(_imagenet_model(name), image, k=5)


def _finetuned_model(slot: str) -> tuple[finetuned.Finetuned, str, str] | None:
    """The model of the slot's last run, when it finished (only this session's own: the id is
    in its result), with its dataset's name (the classes are named in the learner's
    language) and the model's id; of a race, its last run (page 1: fine-tuned from the
    pretrained weights)."""
    current = job_id(slot)
    view = job_queue().get(current, owner(), heartbeat=False) if current else None
    if view is None or not view.runs:
        return None
    model_id = view.runs[-1].result.model_id if view.runs[-1].result else None
    entry = kept_model(model_id)
    return (entry, view.configs[-1].dataset, model_id) if entry is not None else None


# --- your own classes from the camera ----------------------------------------------------


def _shots() -> dict[str, list[bytes]]:
    return st.session_state.setdefault("cam_shots", {})


def class_names(text: str) -> list[str]:
    """The learner's class names: comma-separated, blanks and repeats dropped, at most ten."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return list(dict.fromkeys(names))[:10]


def folder_clash(names: list[str]) -> tuple[list[str], str] | None:
    """Two or more names that would share one folder on disk (and so one class): ("a!", "a?")
    both become "a". Returns (those names, the folder), or None when every name has its own."""
    by_folder: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        by_folder.setdefault(_safe_dirname(name, i).casefold(), []).append(name)  # casefold: "A" and "a" on macOS
    for same in by_folder.values():
        if len(same) > 1:
            return same, _safe_dirname(same[0], names.index(same[0]))
    return None


@callback
def _clear_shots() -> None:
    """In the button's callback: a plain button's click could be lost in Chromium (see studio.text.widgets._guess)."""
    st.session_state["cam_shots"] = {}
    st.session_state["cam_seen"] = set()


def camera_classes_ui() -> tuple[str, int]:
    """Name a few classes, take shots for each; returns (folder for the run, images in the
    smallest class), or ("", 0) while there is not enough to train on yet.

    One click, one picture: once a shot is handled (kept, or refused with a reason) the next
    camera widget is a fresh one (its key counts the shots), ready for the next Take Photo."""
    st.caption(t("cam.intro"))
    st.text_input(
        t("cam.classes"),
        key="cam_names",
        value=st.session_state.get("cam_names", t("cam.default_names")),
        help=t("cam.classes_help"),
    )
    names = class_names(st.session_state["cam_names"])
    if len(names) < 2:
        st.warning(t("cam.need_two"))
        return "", 0
    clash = folder_clash(names)
    if clash:
        same, folder = clash
        st.warning(t("cam.names_clash", names=", ".join(same), folder=folder))
        return "", 0
    target = st.radio(t("cam.target"), names, key="cam_target", horizontal=True)
    shots = _shots()
    full = _full_note(shots, target)
    key = f"cam_input:{st.session_state.setdefault('cam_round', 0)}"
    st.camera_input(t("cam.take"), key=key, on_change=_shot_taken, args=(key,), disabled=bool(full))
    note = full or st.session_state.pop("cam_note", "")
    if note:
        st.info(note)
    cols = st.columns(min(len(names), 5))
    for i, name in enumerate(names):
        with cols[i % len(cols)]:
            own = shots.get(name, [])
            st.markdown(f"**{name}**: {t_count('cam.count', len(own))}")
            if own:
                start = len(own) - len(own[-4:])
                pictures(
                    [(encoded(_thumb(b)), t("alt.shot", i=start + j + 1, cls=name), "") for j, b in enumerate(own[-4:])],
                    column="3.5rem",
                    most="56px",
                )
    st.button(t("cam.clear"), key="cam_clear", icon=":material/delete:", on_click=_clear_shots)
    counts = [len(shots.get(n, [])) for n in names]
    if min(counts) < MIN_SHOTS:
        st.info(t("cam.need_shots", n=MIN_SHOTS))
        return "", 0
    return _write_folder({n: shots[n] for n in names}), min(counts)


def _full_note(shots: dict[str, list[bytes]], target: str) -> str:
    """Why no more shots can be taken for `target` now, or ""."""
    if sum(len(v) for v in shots.values()) >= MAX_SHOTS:
        return t("cam.all_full", n=MAX_SHOTS)
    if len(shots.get(target, [])) >= MAX_SHOTS_PER_CLASS:
        return t("cam.class_full", name=target, n=MAX_SHOTS_PER_CLASS)
    return ""


@callback
def _shot_taken(key: str) -> None:
    """A new shot: keep it for the chosen class, or say why not; then a fresh camera widget."""
    shot = st.session_state.get(key)
    if shot is None:  # the learner cleared the photo by hand
        return
    st.session_state["cam_round"] = st.session_state.get("cam_round", 0) + 1
    target, shots = st.session_state.get("cam_target"), _shots()
    if target not in class_names(st.session_state.get("cam_names", "")):
        return
    st.session_state["cam_note"] = _full_note(shots, target) or _keep_shot(shot.getvalue(), shots.setdefault(target, []))


def _keep_shot(data: bytes, own: list[bytes]) -> str:
    """Add a shot to its class's list; or, when it is no picture to learn from, say why."""
    image, problem = _read_picture(data)
    if problem:
        return problem
    if image.mean() < DARK_MEAN:  # a black frame would teach "black" as part of the class
        return t("cam.dark")
    seen = st.session_state.setdefault("cam_seen", set())
    digest = hashlib.sha256(data).hexdigest()
    if digest in seen:  # each photo is added once, to the class chosen
        return t("cam.same")
    try:
        check_upload_room(len(data))  # on disk it counts with the session's uploads (tlcore.serve.class_limits)
    except UploadError as error:
        return explain_error(error)
    seen.add(digest)
    own.append(data)
    return ""


@st.cache_data(show_spinner=False, max_entries=256)
def _thumb(data: bytes) -> np.ndarray:
    from tlcore.data.images import decode

    return decode(data, 56).permute(1, 2, 0).numpy()


def _write_folder(shots: dict[str, list[bytes]]) -> str:
    """The shots as one sub-folder per class in this session's private folder (0700), for the
    run to read like any image folder. A new set of shots gets a new folder (a queued run keeps
    training on the one it was started with, and loaded data is cached by folder), but only
    the new pictures are written: those already on disk are hard-linked from the last folder,
    no byte copied. (Rewriting every shot on every new one, 30 shots of 2.8 MB wrote 1.36 GB.)"""
    digest = hashlib.sha256(
        repr(sorted((k, [hashlib.sha256(b).hexdigest() for b in v]) for k, v in shots.items())).encode()
    ).hexdigest()[:16]
    if st.session_state.get("cam_folder_digest") == digest and Path(st.session_state.get("cam_folder", "")).is_dir():
        return st.session_state["cam_folder"]
    filled: list[bool] = []

    def fill(folder: Path, previous: Path | None) -> None:
        for i, (name, images) in enumerate(shots.items()):
            # The folder name is the class name; a safe name on disk, the learner's name in the data.
            class_dir = folder / _safe_dirname(name, i)
            class_dir.mkdir()
            for j, data in enumerate(images):
                # Named by place and content: the same shot has the same name in every folder.
                file = class_dir / f"{j:03d}-{hashlib.sha256(data).hexdigest()[:12]}.jpg"
                if previous is None or not _link(previous / class_dir.name / file.name, file):
                    file.write_bytes(data)
        filled.append(True)

    try:
        folder = new_upload_slot("camera", digest, reuse=fill)
        if not filled:  # the first folder (nothing to link from)
            fill(folder, None)
    except OSError as error:  # a full disk: said in words, never with the server's path
        drop_upload_slot("camera")
        show_error(t("cam.cannot_store", error=errno.errorcode.get(error.errno or 0, type(error).__name__)))
        return ""
    st.session_state.update(cam_folder=str(folder), cam_folder_digest=digest)
    return str(folder)


def _link(source: Path, target: Path) -> bool:
    """Hard-link a picture already on disk; False when there is none (or linking fails)."""
    try:
        os.link(source, target)
        return True
    except OSError:
        return False


def _safe_dirname(name: str, index: int) -> str:
    cleaned = "".join(c for c in name if c.isalnum() or c in " -_").strip()[:60]
    return cleaned or f"class {index + 1}"
