"""What a strategy freezes, drawn: the trainable-parameter readout over the backbone's layer
groups as a row of blocks, frozen ones grey (page 2 beside the matrix, page 3 beside Start).

Page 2 draws it as a Plotly chart (hover: exact counts). Page 3 draws the same row in plain
HTML: it is on screen before any run, and a first Plotly chart there cost a fresh visitor's
page about 0.9 s of the browser loading Plotly (2.7 s against 1.8 s to interactive, idle
2-core server; docs/demo-speed.md), on the page a whole class opens at once.
"""

from __future__ import annotations

import html

import streamlit as st

from studio import plots
from studio.i18n import current_lang, t
from studio.results import chart
from studio.widgets import group_counts
from tlcore.core import metrics
from tlcore.core.metrics import human
from tlcore.train import strategies

_BLOCK = (
    '<div style="flex:1;min-width:0;background:{bg};color:{fg};border:1px solid #334155;border-radius:4px;'
    'padding:10px 2px;text-align:center;font-size:0.78rem;line-height:1.3;overflow:hidden">'
    "<b>{name}</b><br>{count}{frozen}</div>"
)


def blocks_html(counts: dict[str, int], frozen: list[str]) -> str:
    """The groups shallow -> deep as equal blocks (grey: frozen, blue: trained), each with its
    parameter count; what page 3 shows (see the module docstring)."""
    blocks = "".join(
        _BLOCK.format(
            bg=plots._GREY if g in frozen else plots._BLUE,
            fg="#0f172a" if g in frozen else "#ffffff",
            name=html.escape(plots.group_label(g, t)),
            count=human(n),
            frozen=f"<br>❄ {html.escape(t('plot.frozen'))}" if g in frozen else "",
        )
        for g, n in counts.items()
    )
    axis = f'<div style="text-align:center;font-size:0.75rem;color:#64748b">{html.escape(t("plot.blocks.x"))}</div>'
    return f'<div class="tls-blocks" style="display:flex;gap:4px;margin:4px 0">{blocks}</div>{axis}'


def frozen_blocks(backbone: str, strategy: str, depth: int, *, key: str, compact: bool = False) -> None:
    """The readout ('trainable: N of M') and the groups as blocks for `strategy` at `depth`.
    compact: a caption-sized readout and the HTML row (page 3's side column)."""
    counts = group_counts(backbone)
    frozen = strategies.frozen_at_start(strategy, list(counts), depth)
    readout = t("trainable.readout", **metrics.Trainable.of(counts, frozen).values())
    if compact:
        st.caption(readout)
        with st.container(key=key):
            st.markdown(blocks_html(counts, frozen), unsafe_allow_html=True)
        return
    st.markdown("### " + readout)
    lang = current_lang()
    fig = plots.block_diagram(counts, frozen, lambda k: t(k, lang=lang))
    chart(fig, "caption.blocks", key, plots.blocks_text(counts, frozen, lambda k: t(k, lang=lang)))
