"""Lesson 1: pretraining vs fine-tuning, and a live run from scratch vs from pretrained."""

from __future__ import annotations

import streamlit as st

from studio import class_panels, plots
from studio.feature_space_panel import feature_space_panel
from studio.i18n import current_lang, lesson, t
from studio.image_panels import try_image_panel
from studio.job_panel import active_elsewhere, is_running, job_panel, start_button
from studio.page_frame import ensure_frame
from studio.results import chart, draw_race_results, translator
from studio.state import DEFAULTS
from studio.time_notes import estimate_note
from studio.widgets import translated
from tlcore.explain import feature_space
from tlcore.train import presets
from tlcore.train.config import RunConfig

ensure_frame()
st.title(t("page1.title"))
st.caption(t("page1.subtitle"))
class_panels.join_box("start")  # while the teacher's class is open: its code and a nickname

left, right = st.columns(2)
with left:
    lesson("pretraining", "why")
    lesson("pretraining", "cost")
with right:
    lesson("pretraining", "phases")

lesson("pretraining", "features")


@st.cache_data(show_spinner=False)
def filter_tiles() -> tuple[object, object, str]:
    """(pretrained tiles or None, random tiles, why pretrained is missing)."""
    from tlcore.lab import experiments

    backbone = DEFAULTS["backbone"]
    random = experiments.first_layer_filters(pretrained=False, backbone=backbone)
    try:
        return experiments.first_layer_filters(pretrained=True, backbone=backbone), random, ""
    except Exception as error:  # noqa: BLE001 -- e.g. the offline weights are not installed
        return None, random, str(error)


def first_layer_filters() -> None:
    """The pretrained stem's filters beside random ones: shallow layers learn general features."""
    try:
        pretrained, random, missing = filter_tiles()
    except Exception as error:  # noqa: BLE001 -- keep the lesson going without the picture
        st.info(t("page1.filters_unavailable", reason=str(error)))
        return
    chart(plots.filters_figure(pretrained, random, translator()), "caption.filters", "filters", plots.filters_text(translator()))
    if missing:
        st.info(t("page1.filters_unavailable", reason=missing))


first_layer_filters()
# The default data through the pretrained and a random body; after the experiment below, its
# fine-tuned body too (same data, validation split and size: val_per_class as EXPERIMENT's).
feature_space_panel(
    "pretraining",
    lambda: presets.image().replace(per_class=feature_space.FIRST_PER_CLASS),
    finetune_slots=("experiment",),
    expander=False,
    prefetch=True,
)


def transfer_contrast() -> None:
    """What synthetic and ImageNet pretraining each transfer to, from committed measurements."""
    from tlcore.lab.experiments import transfer_contrast as measured

    rows = measured()
    if not rows:
        return
    st.markdown(f"**{t('page1.synthetic_title')}**")
    # A markdown table wraps its long cells: all seven columns readable at 1280 px (a
    # dataframe kept each cell on one line and showed two columns, the rest scrolled away).
    keys = ("backbone", "dataset", "per_class", "scratch", "best", "best_acc", "gain")
    lines = [
        "| " + " | ".join(t(f"page1.contrast.{k}") for k in keys) + " |",
        "|" + "|".join("---" if k in ("backbone", "dataset", "best") else "---:" for k in keys) + "|",
    ]
    for r in rows:
        cells = (
            translated(f"backbone.title.{r['backbone']}", r["backbone"]),
            translated(f"dataset.{r['dataset']}", r["dataset"]),
            str(r["per_class"]),
            f"{100 * r['scratch']:.1f}%",
            t(f"strategy.{r['best']}"),
            f"{100 * r['best_acc']:.1f}%",
            f"{r['gain_points']:+.1f}",
        )
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    st.markdown("\n".join(lines))
    st.caption(t("page1.contrast.caption", seeds=min(r["seeds"] for r in rows)))


transfer_contrast()
# "After fine-tuning" shows the model this page's experiment fine-tuned from the pretrained
# weights (its second run), or the learner's own from the Fine-tune page.
try_image_panel("try:pretraining", finetune_slots=("experiment", "finetune"), waiting="try.no_experiment")


@st.cache_data(show_spinner=False)
def backbone_card(lang: str) -> str:
    from tlcore.lab.pretrain_vision import card_markdown, read_card

    card = read_card()
    return card_markdown(card, lang) if card else ""


with st.expander(t("page1.card_title")):
    card = backbone_card(current_lang())
    st.markdown(card or t("page1.no_card"))

left, right = st.columns(2)
with left:
    lesson("pretraining", "techniques")
with right:
    lesson("pretraining", "selfsupervised")

st.divider()
lesson("pretraining", "experiment", level=2)

# The two runs differ only in where the weights start: both train every layer.
EXPERIMENT = dict(
    backbone=DEFAULTS["backbone"],
    dataset=DEFAULTS["dataset"],
    per_class=10,
    val_per_class=20,
    image_size=DEFAULTS["image_size"],
    epochs=4,
    lr=1e-3,
)
labels = [t("page1.exp.scratch"), t("page1.exp.pretrained")]
st.caption(t("page1.exp.setup", per_class=EXPERIMENT["per_class"], epochs=EXPERIMENT["epochs"]))

if not active_elsewhere("experiment") and not is_running("experiment"):
    estimate_note(lambda: [RunConfig(strategy="scratch", **EXPERIMENT), RunConfig(strategy="full", **EXPERIMENT)])
if active_elsewhere("experiment"):
    st.info(t("job.busy_elsewhere"))
else:
    start_button(
        "experiment",
        t("page1.exp.start"),
        lambda: [RunConfig(strategy="scratch", **EXPERIMENT), RunConfig(strategy="full", **EXPERIMENT)],
        labels,
        type="primary",
        help=t("help.exp_start"),
        key="exp_start",
    )

job_panel("experiment", results=draw_race_results)
