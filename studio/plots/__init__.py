"""Every chart the studio shows, as plotly figures built from a run's History: one package, one
area a module, and this facade that keeps the names the pages, the studio and the tests use
(`plots.loss_figure`, `plots.LABELS`, `plots.ChartText`, ...).

The studio's one package that imports plotly (tlcore never does: a contract in pyproject.toml
checks it). Each function takes plain data (a HistorySnapshot, lists, dicts) and returns a
`plotly.graph_objects.Figure` with a title and axis labels, so the pages stay thin and the charts
can be tested without a browser. Text on the charts goes through `t(key)`: pass the app's
translation function to get Korean labels; the default gives the English in `LABELS`.

- style: what every chart shares: `LABELS`, colours, `group_label`, `FONT_PX`, the layout
- one_run: one run's curves, its confusion matrix and weight drift, the backbone's blocks
- comparisons: a race, accuracy against a depth, the 2x2 matrix, first-layer filters
- live: a run's two charts while it trains, as HTML (plotly redrew every poll: the training's CPU)
- chart_text: every chart as words (`ChartText`, `*_text`, `ALT_LABELS`)

Not for: computing metrics (tlcore.train.trainer, tlcore.core.events) or any Streamlit code.
"""

from __future__ import annotations

from studio.plots.chart_text import (
    ALT_LABELS,
    ChartText,
    accuracy_text,
    bars_text,
    blocks_text,
    confusion_text,
    depth_text,
    drift_text,
    filters_text,
    grad_text,
    loss_text,
    matrix_text,
    race_text,
)
from studio.plots.comparisons import MATRIX_TEXT_PX, depth_figure, filters_figure, matrix_figure, race_figure
from studio.plots.live import CSS as LIVE_CSS
from studio.plots.live import live_heatmap, live_loss, live_race
from studio.plots.one_run import (
    LABEL_ROOM,
    accuracy_figure,
    block_diagram,
    confusion_figure,
    decades,
    drift_figure,
    grad_norm_bars,
    grad_norm_heatmap,
    grad_norm_matrix,
    loss_figure,
)
from studio.plots.style import (
    _BLUE,
    _GREY,
    _PALETTE,
    FONT_PX,
    LABELS,
    TEMPLATE,
    TOOLBAR_PX,
    Translate,
    _fonts,
    _layout,
    _waiting,
    empty_figure,
    group_label,
)

__all__ = [
    "FONT_PX", "LABELS", "TEMPLATE", "TOOLBAR_PX", "Translate", "empty_figure", "group_label",
    "LABEL_ROOM", "accuracy_figure", "block_diagram", "confusion_figure", "decades", "drift_figure", "grad_norm_bars",
    "grad_norm_heatmap", "grad_norm_matrix", "loss_figure",
    "MATRIX_TEXT_PX", "depth_figure", "filters_figure", "matrix_figure", "race_figure",
    "ALT_LABELS", "ChartText", "accuracy_text", "bars_text", "blocks_text", "confusion_text", "depth_text", "drift_text",
    "filters_text", "grad_text", "loss_text", "matrix_text", "race_text",
    "LIVE_CSS", "live_heatmap", "live_loss", "live_race",
]  # fmt: skip
# The underscored helpers that the studio's own chart code takes from here (class_view,
# text.pretraining, predictions, frozen_blocks, feature_space_panel), as before the split.
__all__ += ["_BLUE", "_GREY", "_PALETTE", "_fonts", "_layout", "_waiting"]
