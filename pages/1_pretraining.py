"""Lesson 1: pretraining vs fine-tuning, and a live run from scratch vs from pretrained."""

from __future__ import annotations

import streamlit as st

from studio.i18n import lesson, t
from studio.jobs_ui import active_elsewhere, draw_race_results, job_panel, submit
from studio.state import DEFAULTS
from tlcore.config import RunConfig

st.title(t("page1.title"))
st.caption(t("page1.subtitle"))

left, right = st.columns(2)
with left:
    lesson("pretraining", "why")
    lesson("pretraining", "cost")
with right:
    lesson("pretraining", "phases")

lesson("pretraining", "features")


def first_layer_filters() -> None:
    """Pretrained vs random first-layer filters, from the pretraining module when it exists."""
    try:
        from tlcore import experiments
    except ImportError:
        experiments = None
    draw = getattr(experiments, "first_layer_filters_figure", None)
    if draw is None:
        st.info(t("page1.filters_pending"))
        return
    try:
        st.plotly_chart(draw(), width="stretch", key="filters")
        st.caption(t("caption.filters"))
    except Exception as error:  # noqa: BLE001 -- missing weights etc.: explain, keep the lesson going
        st.info(t("page1.filters_unavailable", reason=str(error)))


first_layer_filters()

left, right = st.columns(2)
with left:
    lesson("pretraining", "techniques")
with right:
    lesson("pretraining", "selfsupervised")

st.divider()
lesson("pretraining", "experiment", level=2)

# The two runs differ only in where the weights start: both train every layer.
EXPERIMENT = dict(backbone=DEFAULTS["backbone"], dataset="synthetic_novel", per_class=10, val_per_class=20,
                  image_size=32, epochs=4, lr=1e-3)
labels = [t("page1.exp.scratch"), t("page1.exp.pretrained")]
st.caption(t("page1.exp.setup", per_class=EXPERIMENT["per_class"], epochs=EXPERIMENT["epochs"]))

if active_elsewhere("experiment"):
    st.info(t("job.busy_elsewhere"))
elif st.button(t("page1.exp.start"), type="primary", help=t("help.exp_start"), key="exp_start"):
    configs = [RunConfig(strategy="scratch", **EXPERIMENT), RunConfig(strategy="full", **EXPERIMENT)]
    submit("experiment", configs, labels)

job_panel("experiment", results=draw_race_results)
