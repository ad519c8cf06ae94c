"""Widget groups shared by the pages; each draws its widgets and returns the choice.

The values live in session state under the keys of `studio.state.DEFAULTS` (the settings;
each widget is drawn from its setting by `studio.bound_widgets.bound`), so the strategy picked on
"Choose a strategy" is the one "Fine-tune" starts with.
`config_from_state()` turns them into a validated RunConfig.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from studio.bound_widgets import bound
from studio.choices import Steps, register_choices, register_ranges
from studio.feedback import error as show_error
from studio.feedback import say
from studio.i18n import current_lang, explain_error, t, t_count, translated
from studio.state import callback
from studio.upload_slots import check_upload_room, drop_upload_slot, kept_note, kept_uploader, new_upload_slot
from tlcore.data import datasets
from tlcore.data.image_zip import UploadError, UploadLimits, declared_bytes, read_zip
from tlcore.models import catalog
from tlcore.serve import class_limits
from tlcore.train import strategies
from tlcore.train.config import RunConfig
from tlcore.train.presets import VAL_PER_CLASS

STRATEGY_CHOICES = strategies.IMAGE_STRATEGIES
LR_CHOICES = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
HEAD_MULT_CHOICES = (1.0, 3.0, 10.0, 30.0, 100.0)
IMAGE_SIZES = (32, 48, 64, 96, 128, 224)
DATA_SOURCES = ("offline", "download", "upload", "camera")
RACE_CHOICES = tuple(s for s in strategies.IMAGE_STRATEGIES if s != "gradual")  # gradual needs an epoch per group
# The sliders' ranges: the widgets draw from these, and a teacher's link and a restored
# setting are checked against them (studio.choices.RANGES), so no value reaches a slider
# that cannot hold it.
LAYER_DECAY = Steps(0.3, 1.0, 0.05)  # 1.0: every group the same rate; at 0.3 the stem of a 6-group model gets 0.3^5 = 0.2%
EPOCHS_MOST = 20  # the image pages' epochs slider; the class's max_epochs may lower it
SIZE_UNKNOWN = 200  # examples per class offered when a sample dataset does not say how many it has
register_choices(
    {
        "backbone": lambda: catalog.backbone_names("vision"),
        "strategy": lambda: STRATEGY_CHOICES,
        "data_source": lambda: DATA_SOURCES,
        "dataset": lambda: catalog.dataset_names(task="image"),
        "lr": lambda: LR_CHOICES,
        "head_lr_mult": lambda: HEAD_MULT_CHOICES,
        "image_size": lambda: image_sizes(),
        "race_strategies": lambda: RACE_CHOICES,
    }
)


def kept_tabs(key: str, labels: list[str]):
    """`st.tabs` that stay on the learner's tab. Plain tabs went back to the first whenever the page
    above them changed: a Start inside the second tab puts the run's live panel above the tabs, and
    the learner landed on the first tab while their sweep's result was drawn in the hidden second.
    Kept by label in `st.session_state[key]`, and by place in `key + ":index"`, so a language switch
    (new labels) and a visit to another page keep it too. Every tab's content is drawn, except
    while a run goes (`tab_drawn`).

    The tab shown is set through the session state, never through `default`: that is part of the
    tabs' identity in Streamlit, and a new identity is a new element, so the browser drew the tabs
    and everything in them anew at every tab click (every chart redrawn, every expander shut: one
    opened just after the click snapped shut when the click's run came back). Written back on every
    run: a run that gives the page another identity (the first through st.navigation after a deep
    link, studio.page_frame) makes the tabs new ones, and they start from it."""
    place = f"{key}:index"
    chosen = st.session_state.get(key)
    if chosen in labels:
        st.session_state[place] = labels.index(chosen)
    st.session_state[key] = labels[min(st.session_state.get(place, 0), len(labels) - 1)]
    return st.tabs(labels, key=key, on_change="rerun")


def tab_drawn(tab, running: bool) -> bool:
    """Whether a kept tab's content is drawn this run: every tab's while nothing runs (a tab click
    shows what is already there at once), only the open tab's while a run goes. A closed tab's
    content is computed, sent and laid out by the browser on every run, on the cores the run
    trains on (the folds of page 3 for the same reason: `folded`); a click on another tab during
    the run reruns the page (kept tabs rerun on a click anyway) and draws that tab then."""
    return not running or bool(tab.open)


def folded(label: str, key: str, **expander):
    """A closed expander whose content is drawn only once it is opened (`.open`; opening it reruns the
    page). For what a page folds away while a run goes: Streamlit computes and sends a plain
    expander's content on every run even while it is shut, and the browser lays it out on the
    same cores as the run (page 3's settings, reading guide and Try it took a third of a core
    beside the default demo: docs/demo-speed.md, session 44). The open state is the learner's
    until the page stops drawing the expander (the run's end)."""
    return st.expander(label, expanded=False, key=key, on_change="rerun", **expander)


def epochs_steps(most: int = EPOCHS_MOST) -> Steps:
    """1..most epochs, or fewer where the class's limit is lower (tlcore.serve.class_limits)."""
    return Steps(1, max(1, min(most, class_limits.load().max_epochs)))


def per_class_steps(limit: int) -> Steps:
    """1..limit examples per class (what the data has), or fewer where the class's limit is lower."""
    return Steps(1, max(1, min(limit, class_limits.load().max_per_class)))


def depth_steps(backbone: str) -> Steps:
    """0..(groups before the head) frozen."""
    return Steps(0, len(group_names(backbone)) - 1)


def data_limit(settings) -> int:
    """Examples per class the chosen sample dataset offers; an upload's own count is known
    only once it is read (size_ui clamps to it), so here the class's limit stands for it."""
    if settings.get("data_source", "offline") != "offline":
        return class_limits.load().max_per_class
    spec = catalog.dataset(settings.get("dataset", ""))
    return (spec.max_per_class if spec is not None else 0) or SIZE_UNKNOWN


register_ranges(
    {
        "layer_decay": lambda _s: LAYER_DECAY,
        "epochs": lambda _s: epochs_steps(),
        "per_class": lambda s: per_class_steps(data_limit(s)),
        "freeze_depth": lambda s: depth_steps(s["backbone"]),
    }
)


# --- the backbone and its layer groups ------------------------------------------------


def group_counts(backbone: str) -> dict[str, int]:
    """Parameters per layer group (with a 10-class head); counted once per process
    (tlcore.models.catalog.group_param_counts; the server's warm-up counts the default's)."""
    return dict(catalog.group_param_counts(backbone))


def group_names(backbone: str) -> list[str]:
    return list(group_counts(backbone))


def backbone_ui() -> str:
    """Pick a vision backbone; the label says where its weights come from."""
    names = catalog.backbone_names("vision")
    online = st.session_state.get("online", False)

    def label(name: str) -> str:
        spec = catalog.backbone(name)
        where = (
            t("backbone.offline")
            if spec.pretrained_on == "synthetic"
            else t("backbone.offline_imagenet")
            if spec.extra.get("offline")
            else t("backbone.imagenet")
            if online or catalog.weights_cached(name)
            else t("backbone.not_here")
        )
        return f"{backbone_title(name)} · {where}"

    st.selectbox(t("backbone.label"), names, format_func=label, help=t("help.backbone"), **bound("backbone", clamp_depth))
    chosen = st.session_state["backbone"]
    fallback = weights_fallback(chosen, st.session_state["strategy"])
    if fallback:
        st.warning(
            t("backbone.fallback", chosen=backbone_title(chosen), fallback=backbone_title(fallback), name=chosen),
            icon=":material/cloud_off:",
        )
    return chosen


def backbone_title(name: str) -> str:
    return translated(f"backbone.title.{name}", catalog.backbone(name).title)


def weights_fallback(backbone: str, strategy: str) -> str | None:
    """The backbone that will really run when `backbone`'s pretrained weights cannot be had
    (not on this machine, no internet): the offline one. None when the choice runs as is."""
    if strategy == "scratch" or catalog.backbone(backbone).family != "vision":
        return None
    # the run's own rule ("auto" never raises), with the network state the sidebar probed once
    runs, _, _ = catalog.resolve_pretrained(backbone, "auto", online=st.session_state.get("online", False))
    return runs if runs != backbone else None


@callback
def clamp_depth(prefix: str = "", groups_of: Callable[[str], list[str]] | None = None) -> None:
    """Another backbone was picked: the freeze depth becomes what the strategy means on its body
    (the image pages' groups, or the text page's with prefix "text_" and its own `groups_of`)."""
    s = st.session_state
    body = len((groups_of or group_names)(s[prefix + "backbone"])) - 1
    s[prefix + "freeze_depth"] = strategies.depth_for(s[prefix + "strategy"], s[prefix + "freeze_depth"], body)


# --- strategy, freeze depth, learning rates -------------------------------------------


# The widget groups below serve the image pages and the text page alike: `prefix` names the
# page's settings ("" for the image pages' shared settings, "text_" for the text page's).


@callback
def _strategy_changed(prefix: str, body: int) -> None:
    s = st.session_state
    s.pop(prefix + "cell", None)  # the settings no longer are a matrix cell's
    strategy, depth = s[prefix + "strategy"], prefix + "freeze_depth"
    # partial starts at a depth that is partial; the others at the depth they mean
    s[depth] = (
        strategies.partial_depth(s[depth], body) if strategy == "partial" else strategies.depth_for(strategy, s[depth], body)
    )


@callback
def _depth_changed(prefix: str, body: int) -> None:
    # Moving the slider names the strategy it amounts to: all body frozen = linear probe.
    s = st.session_state
    s.pop(prefix + "cell", None)
    depth, strategy = s[prefix + "freeze_depth"], prefix + "strategy"
    if depth == body:
        s[strategy] = "linear_probe"
    elif depth > 0:
        s[strategy] = "partial"
    elif s[strategy] in ("partial", "linear_probe"):
        s[strategy] = "full"


def strategy_ui(groups: list[str], *, prefix: str = "", choices: tuple[str, ...] = STRATEGY_CHOICES) -> tuple[str, int]:
    """The strategy and the freeze depth (groups frozen from the input side), kept consistent
    with each other: a strategy sets the depth it means, a depth names its strategy."""
    body = len(groups) - 1
    s = st.session_state
    strategy, depth = s[prefix + "strategy"], prefix + "freeze_depth"
    # The slider shows what the strategy freezes, whatever set it (a preset, a matrix cell, a link).
    s[depth] = strategies.depth_for(strategy, s[depth], body)
    st.selectbox(
        t("strategy.label"),
        choices,
        format_func=lambda v: t(f"strategy.{v}"),
        help=t("help.strategy"),
        **bound(prefix + "strategy", _strategy_changed, (prefix, body)),
    )
    st.slider(
        t("freeze.label"), 0, body, help=t("help.freeze_depth"), **bound(prefix + "freeze_depth", _depth_changed, (prefix, body))
    )
    return s[prefix + "strategy"], s[prefix + "freeze_depth"]


@callback
def _rates_changed(prefix: str = "") -> None:
    st.session_state.pop(prefix + "cell", None)  # the banner no longer describes these rates


def lr_ui(*, prefix: str = "") -> dict[str, float]:
    """Base rate, head multiplier and layer-wise decay, each with its one-line meaning."""
    keys = {name: prefix + name for name in ("lr", "head_lr_mult", "layer_decay")}
    st.select_slider(
        t("lr.label"),
        LR_CHOICES,
        format_func=lambda v: f"{v:g}",
        help=t("help.lr"),
        **bound(keys["lr"], _rates_changed, (prefix,)),
    )
    st.caption(t("lr.explain"))
    st.select_slider(
        t("head_mult.label"),
        HEAD_MULT_CHOICES,
        format_func=lambda v: f"×{v:g}",
        help=t("help.head_lr_mult"),
        **bound(keys["head_lr_mult"], _rates_changed, (prefix,)),
    )
    st.caption(t("head_mult.explain"))
    st.slider(
        t("decay.label"),
        LAYER_DECAY.lo,
        LAYER_DECAY.hi,
        step=LAYER_DECAY.step,
        help=t("help.layer_decay"),
        **bound(keys["layer_decay"], _rates_changed, (prefix,)),
    )
    st.caption(t("decay.explain"))
    return {name: st.session_state[key] for name, key in keys.items()}


@callback
def apply_recommendation(similarity: str, size: str) -> strategies.Recommendation:
    """A matrix cell was clicked: set a backbone and data that really are `similarity`
    (tlcore.models.catalog.pair_for_cell: offline, "similar" to ImageNet only the learner's own
    photos are, so it may switch to the synthetic-pretrained backbone), then strategy,
    depth and rates for that backbone, and a small or large number of examples.

    Layer-wise decay is the learner's own setting: no cell recommends full_llrd, so a click
    leaves it as it was (it once set it to 1.0, and "full + layer-wise decay" then trained
    exactly like "full").
    """
    pair = catalog.pair_for_cell(
        similarity,
        backbone=st.session_state["backbone"],
        dataset=st.session_state["dataset"],
        data_source=st.session_state["data_source"],
        online=st.session_state.get("online", False),
    )
    if pair.switched:  # the backbone's own input size (the synthetic one was pretrained at 32 px)
        st.session_state["backbone"] = pair.backbone
        size_now = catalog.backbone(pair.backbone).default_size
        if size_now in image_sizes():
            st.session_state["image_size"] = size_now
    if pair.dataset != "folder":
        st.session_state["dataset"] = pair.dataset
    st.session_state["data_source"] = pair.data_source
    groups = group_names(st.session_state["backbone"])
    rec = strategies.recommend(similarity, size, num_groups=len(groups))
    st.session_state["strategy"] = rec.strategy
    st.session_state["freeze_depth"] = rec.freeze_depth
    st.session_state["lr"] = rec.lr
    st.session_state["head_lr_mult"] = rec.head_lr_mult
    st.session_state["cell"] = (similarity, size)
    st.session_state["per_class"] = 10 if size == "small" else strategies.SMALL_LIMIT + 10
    return rec


def reason(rec: strategies.Recommendation) -> str:
    return rec.reason_ko if current_lang() == "ko" else rec.reason_en


# --- data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataChoice:
    dataset: str  # a registry name ("folder" for an upload)
    data_root: str = ""
    max_per_class: int = 0  # 0 = unknown / no limit
    ready: bool = True  # False: nothing usable chosen yet (e.g. no upload)


def dataset_ui(online: bool) -> DataChoice:
    """Offline samples, downloadable sets (online only), or an uploaded zip."""
    st.radio(
        t("data.source"),
        DATA_SOURCES,
        **bound("data_source"),
        horizontal=True,
        format_func=lambda s: t(f"data.source.{s}"),
        help=t("help.data_source"),
    )
    source = st.session_state["data_source"]
    if source == "upload":
        return _upload_ui()
    if source == "camera":
        from studio.image_panels import camera_classes_ui

        folder, smallest = camera_classes_ui()
        return DataChoice("folder", folder, max_per_class=max(1, smallest - 1), ready=bool(folder))
    kind = "offline" if source == "offline" else "torchvision"
    names = catalog.dataset_names(task="image", kind=kind)
    if source == "download" and not online:
        st.warning(t("data.offline_warning"))
    if not names:
        st.info(t("data.none"))
        return DataChoice("", ready=False)
    if st.session_state.get("dataset") not in names:
        st.session_state["dataset"] = names[0]
    st.selectbox(
        t("data.label"),
        names,
        **bound("dataset"),
        help=t("help.dataset"),
        format_func=lambda n: translated(f"dataset.{n}", catalog.dataset(n).title),
    )
    spec = catalog.dataset(st.session_state["dataset"])
    pretrained_on = catalog.backbone(st.session_state["backbone"]).pretrained_on
    sim = catalog.similarity(spec.name, pretrained_on)
    why = spec.reason_ko if current_lang() == "ko" else spec.reason_en
    st.caption(
        t(
            "data.similarity",
            similarity=t(f"matrix.{sim}"),
            source=translated(f"source.{pretrained_on}", pretrained_on),
            reason=why,
        )
    )
    if spec.name == "fashion_mnist" and not datasets.fashion_available():
        st.warning(t("data.fashion_missing"))
        return DataChoice(spec.name, "", spec.max_per_class, ready=False)
    return DataChoice(spec.name, "", spec.max_per_class)


UPLOAD = "upload_summary"  # the session value that keeps the learner's last checked zip


def _upload_ui() -> DataChoice:
    uploaded = st.file_uploader(
        t("upload.label"), type=["zip"], help=t("help.upload"), **kept_uploader("upload", "images", UPLOAD)
    )
    known = st.session_state.get(UPLOAD)  # (digest, folder, summary, file name) of the last upload checked
    if known and not Path(known[1]).is_dir():
        known = None
    if uploaded is None and known is None:
        st.caption(t("upload.hint"))
        return DataChoice("folder", ready=False)
    if uploaded is None:  # not drawn for a while (a fold, a tab, another page): the last upload goes on
        folder, summary = known[1], known[2]
        kept_note("images", known[3], UPLOAD)
    else:
        checked = _checked_upload(uploaded, known)
        if checked is None:
            return DataChoice("folder", ready=False)
        folder, summary = checked
    classes, counts, skipped = summary
    st.success(t("upload.ok", classes=len(classes), images=sum(counts)))
    st.dataframe({t("upload.class"): classes, t("upload.count"): counts}, hide_index=True)
    if skipped:
        with st.expander(t_count("upload.skipped", len(skipped))):
            st.dataframe(
                {t("upload.file"): [p for p, _ in skipped], t("upload.reason"): [explain_error(r) for _, r in skipped]},
                hide_index=True,
            )
    return DataChoice("folder", folder, max_per_class=max(1, min(counts) - 1))


def _checked_upload(uploaded, known: tuple | None) -> tuple[str, tuple] | None:
    """The folder and summary of the zip in the uploader: checked once, kept as the learner's
    upload (`UPLOAD`); None, said why, when it is refused."""
    data = uploaded.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    if known and known[0] == digest:
        return known[1], known[2]  # checked on an earlier run: not again on every click
    folder = str(new_upload_slot("images", digest))  # a new upload replaces the last one's files
    try:
        check_upload_room(declared_bytes(data))  # before anything is written ...
        summary = _read_upload(data, folder)
        check_upload_room(0)  # ... and what was written (a zip can understate its sizes)
    except UploadError as error:
        drop_upload_slot("images")  # a refused upload leaves nothing on disk
        st.session_state.pop(UPLOAD, None)
        show_error(t("upload.refused", reason=explain_error(error)))
        return None
    st.session_state[UPLOAD] = (digest, folder, summary, uploaded.name)
    return folder, summary


def _read_upload(data: bytes, folder: str) -> tuple[list[str], list[int], list[tuple[str, str]]]:
    """Check the zip; keep its usable images as a folder for the run."""
    images = read_zip(
        data,
        image_size=32,
        val_per_class=1,
        keep_files_in=folder,
        limits=UploadLimits(max_classes=class_limits.load().max_classes),
    )
    counts = [int((images.train_y == i).sum() + (images.val_y == i).sum()) for i in range(len(images.classes))]
    return images.classes, counts, images.skipped


def training_ui(choice: DataChoice) -> None:
    """Examples per class, image size, epochs."""
    size_ui(choice.max_per_class or SIZE_UNKNOWN)
    sizes = image_sizes()
    st.session_state["image_size"] = min(st.session_state["image_size"], sizes[-1])
    st.select_slider(t("train.image_size"), sizes, **bound("image_size"), help=t("help.image_size"))
    epochs_ui()


def image_sizes() -> tuple[int, ...]:
    """The image sizes this class allows (tlcore.serve.class_limits: the teacher's limit)."""
    cap = class_limits.load().max_image_size
    return tuple(s for s in IMAGE_SIZES if s <= cap) or IMAGE_SIZES[:1]


def epochs_ui(*, prefix: str = "", most: int = EPOCHS_MOST) -> None:
    """Epochs, up to the class's limit."""
    top = int(epochs_steps(most).hi)
    st.session_state[prefix + "epochs"] = min(st.session_state[prefix + "epochs"], top)
    st.slider(t("train.epochs"), 1, top, **bound(prefix + "epochs"), help=t("help.epochs"))


def size_ui(limit: int, *, prefix: str = "") -> None:
    """Examples per class (at most `limit`), and which side of the matrix's size axis that is."""
    key = prefix + "per_class"
    limit = int(per_class_steps(limit).hi)  # the class's limit, when lower than the data's
    if limit < 2:  # a tiny upload or camera set: nothing to choose (a 1..1 slider is an error)
        st.session_state[key] = max(1, limit)
        st.caption(t("train.per_class_fixed", n=limit))
    else:
        st.session_state[key] = max(1, min(st.session_state[key], limit))
        st.slider(t("train.per_class"), 1, limit, **bound(key), help=t("help.per_class"))
    size_of = strategies.size_of(st.session_state[key])
    st.caption(t("train.size_is", size=t(f"train.size.{size_of}"), limit=strategies.SMALL_LIMIT))  # ko: 적은 편, not 적음 편


def config_from_state(choice: DataChoice, **overrides) -> RunConfig | None:
    """The run described by the widgets, validated; None (with a message) if invalid."""
    s = st.session_state
    values = dict(
        backbone=s["backbone"],
        strategy=s["strategy"],
        freeze_depth=s["freeze_depth"],
        lr=s["lr"],
        head_lr_mult=s["head_lr_mult"],
        layer_decay=s["layer_decay"],
        dataset=choice.dataset,
        data_root=choice.data_root,
        per_class=min(s["per_class"], choice.max_per_class or s["per_class"]),
        image_size=s["image_size"],
        epochs=s["epochs"],
    )
    # An upload must keep images for training: at most a third of the smallest class.
    values["val_per_class"] = VAL_PER_CLASS
    if choice.max_per_class:
        values["val_per_class"] = max(1, min(VAL_PER_CLASS, choice.max_per_class // 3))
    values.update(overrides)
    fallback = weights_fallback(values["backbone"], values["strategy"])
    if fallback:  # what runs is what the config, the CLI line and the downloads say
        values["backbone"] = fallback
        values["freeze_depth"] = strategies.depth_for(values["strategy"], values["freeze_depth"], len(group_names(fallback)) - 1)
    return validated_config(values)


def validated_config(values: dict) -> RunConfig | None:
    """A RunConfig from widget values, or None with the reason on screen (nothing is lost)."""
    try:
        return RunConfig(**values)
    except ValueError as error:
        say("error", t("config.invalid", reason=explain_error(error)))
        return None
