"""Lesson 2: choose a strategy from the similarity x size matrix, see what it freezes."""

from __future__ import annotations

import streamlit as st

from studio.frozen_blocks import frozen_blocks
from studio.i18n import current_lang, lesson, lesson_text, t, translated
from studio.page_frame import ensure_frame
from studio.widgets import (
    apply_recommendation,
    backbone_title,
    backbone_ui,
    group_counts,
    group_names,
    lr_ui,
    reason,
    strategy_ui,
)
from tlcore.models import catalog
from tlcore.train import strategies

ensure_frame()
st.title(t("page2.title"))
st.caption(t("page2.subtitle"))

# --- the matrix (seed 004's: similarity first, then size) and the learning-rate advice ---
matrix_col, advice_col = st.columns([3, 2], gap="large")
with matrix_col:
    lesson("strategy", "matrix")
    chosen = st.session_state.get("cell")
    header = st.columns([1, 2, 2])
    header[1].markdown(f"**{t('matrix.col.similar')}**")
    header[2].markdown(f"**{t('matrix.col.different')}**")
    for size in ("large", "small"):
        row = st.columns([1, 2, 2])
        row[0].markdown(f"**{t(f'matrix.row.{size}')}**")
        for col, similarity in zip(row[1:], ("similar", "different"), strict=False):
            # The label names the cell's row and column too: on a phone the grid stacks into one
            # column, and a screen reader reads a button alone (the headers are not read with it).
            col.button(
                t(
                    "matrix.cell_label",
                    size=t(f"matrix.row.{size}"),
                    similarity=t(f"matrix.col.{similarity}"),
                    action=t(f"matrix.cell.{size}_{similarity}"),
                ),
                key=f"cell:{size}:{similarity}",
                type="primary" if chosen == (similarity, size) else "secondary",
                on_click=apply_recommendation,
                args=(similarity, size),
                width="stretch",
                help=t("help.matrix_cell"),
            )
    st.caption(t("matrix.rule"))
with advice_col:
    lesson("strategy", "learning_rate")

if chosen:
    similarity, size = chosen
    groups_now = group_names(st.session_state["backbone"])
    rec = strategies.recommend(similarity, size, num_groups=len(groups_now))
    title, body = lesson_text("strategy", f"{size}_{similarity}")
    st.success(
        f"**{title}** → {t(f'strategy.{rec.strategy}')}, {t('freeze.label')} = {rec.freeze_depth}, "
        f"lr = {rec.lr:g}\n\n{reason(rec)}"
    )
    # What the cell runs on, and whether that pair really is what the cell is about (page 3 says the same).
    backbone_now = st.session_state["backbone"]
    data_now = "folder" if st.session_state["data_source"] in catalog.OWN_PHOTOS else st.session_state["dataset"]
    spec, source = catalog.dataset(data_now), catalog.backbone(backbone_now).pretrained_on
    pair = dict(
        backbone=backbone_title(backbone_now),
        dataset=translated(f"dataset.{data_now}", spec.title),
        similarity=t(f"matrix.{catalog.similarity_of(data_now, backbone_now)}"),
        source=translated(f"source.{source}", source),
    )
    if catalog.similarity_of(data_now, backbone_now) == similarity:
        st.info(
            t("matrix.pair", **pair, reason=spec.reason_ko if current_lang() == "ko" else spec.reason_en)
            + ("\n\n" + t("matrix.pair.synthetic") if similarity == "similar" and source == "synthetic" else "")
        )
    else:
        st.warning(t("matrix.pair.mismatch", **pair, wanted=t(f"matrix.{similarity}")))
else:
    st.info(t("page2.pick_cell"))

st.divider()

# --- the backbone as layer groups, and what the chosen strategy freezes ---
lesson("strategy", "groups", level=2)
settings, diagram = st.columns([1, 2], gap="large")
with settings:
    backbone = backbone_ui()
    counts = group_counts(backbone)
    groups = list(counts)
    strategy, depth = strategy_ui(groups)
with diagram:  # the PEFT-style readout: parameters in groups that receive updates / all parameters
    frozen_blocks(backbone, strategy, depth, key="blocks")

st.divider()
st.subheader(t("page2.lr_title"))
rates_col, table_col = st.columns([1, 1], gap="large")
with rates_col:
    rates = lr_ui()
with table_col:
    plan = strategies.make_plan(strategy, groups, freeze_depth=depth, **rates)
    st.dataframe(
        {
            t("lr.col.group"): groups,
            t("lr.col.rate"): [f"{plan.lrs[g]:.2g}" if g in plan.lrs else t("plot.frozen") for g in groups],
        },
        hide_index=True,
        width="stretch",
    )
    st.caption(t("caption.lr_table"))

# A link, not `if st.button(...): st.switch_page(...)`: that click was lost in Chromium (the
# script run it caused saw the button unpressed, studio.text.widgets._guess); the settings live in
# session state, so page 3 opens with them either way.
st.page_link("pages/3_finetune.py", label=t("page2.to_finetune"), help=t("help.to_finetune"))
