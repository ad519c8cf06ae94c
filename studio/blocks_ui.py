"""What a strategy freezes, drawn: the trainable-parameter readout over the backbone's layer
groups as a row of blocks, frozen ones grey (page 2 beside the matrix, page 3 beside Start).

Page 3 draws it before any run, so a learner sees what Start will train; it is also the page's
first Plotly chart, so the browser has Plotly's code loaded before the live curves need it
(a fresh browser's first Start was about 1 s slower while it fetched it; docs/demo-speed.md).
"""

from __future__ import annotations

import streamlit as st

from studio import plots
from studio.i18n import current_lang, t
from studio.widgets import group_counts
from tlcore.core import metrics
from tlcore.train import strategies


def frozen_blocks(backbone: str, strategy: str, depth: int, *, key: str, compact: bool = False) -> None:
    """The readout ('trainable: N of M') and the block diagram for `strategy` at `depth`.
    compact: a caption-sized readout and no explanation (a page's side column)."""
    counts = group_counts(backbone)
    frozen = strategies.frozen_at_start(strategy, list(counts), depth)
    readout = t("trainable.readout", **metrics.Trainable.of(counts, frozen).values())
    lang = current_lang()
    fig = plots.block_diagram(counts, frozen, lambda k: t(k, lang=lang))
    if compact:
        fig.update_layout(height=200, title=None, margin=dict(t=10, b=10))
        st.caption(readout)
    else:
        st.markdown("### " + readout)
    st.plotly_chart(fig, width="stretch", key=key, config={"displaylogo": False})
    if not compact:
        st.caption(t("caption.blocks"))
