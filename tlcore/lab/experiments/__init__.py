"""Experiments that turn the lesson's claims into measurements: one subject a module, and this
facade that keeps the names the pages, the studio, committed_results and the tests use
(`experiments.cell_verdicts`, `experiments.tile_grid`, ...).

- matrix: the similarity x size matrix reproduced by experiment: four cells, four strategies
  (partial at the rule's depth per column), several seeds; each cell read against the rule
- matrix_report: a matrix run written as CSV, JSON and Markdown; rewritten from its committed runs
- transfer_depth: accuracy against the number k of groups copied from the pretrained backbone
  (the rest re-initialised), frozen or fine-tuned: Yosinski et al. (2014) in small
- filters: the stem's first-layer filters, pretrained beside random, as tiles and as a PNG
- results: the results folder (``assets/results/``), what each file records of how it was made,
  the committed files read back (one result; what transfers where)
- cli: ``python -m tlcore matrix``, ``transfer-depth`` and ``filters``

Not for: training loops (``tlcore.train.trainer``), pretraining (``tlcore.lab.pretrain_vision``),
page 4's reading of the committed matrix (``tlcore.lab.committed_results``).
"""

from __future__ import annotations

from tlcore.lab.experiments.filters import filters_image, first_layer_filters, tile_grid
from tlcore.lab.experiments.matrix import (
    ADVICE,
    MATRIX_STRATEGIES,
    RULE,
    MatrixSettings,
    backbone_groups,
    cell_verdicts,
    partial_depths,
    rule_depth,
    run_matrix,
    summarise_matrix,
    with_depths,
)
from tlcore.lab.experiments.matrix_report import matrix_markdown, resummarise_matrix, write_matrix
from tlcore.lab.experiments.results import CONTRAST, RESULTS_DIR, provenance, read_results, transfer_contrast
from tlcore.lab.experiments.transfer_depth import (
    TransferDepthSettings,
    run_transfer_depth,
    summarise_transfer_depth,
    transfer_depth_reading,
    transfer_first_groups,
    write_transfer_depth,
)

__all__ = [
    "ADVICE", "CONTRAST", "MATRIX_STRATEGIES", "RESULTS_DIR", "RULE", "MatrixSettings", "TransferDepthSettings",
    "backbone_groups", "cell_verdicts", "filters_image", "first_layer_filters", "matrix_markdown", "partial_depths",
    "provenance", "read_results", "resummarise_matrix", "rule_depth", "run_matrix", "run_transfer_depth",
    "summarise_matrix", "summarise_transfer_depth", "tile_grid", "transfer_contrast", "transfer_depth_reading",
    "transfer_first_groups", "with_depths", "write_matrix", "write_transfer_depth",
]  # fmt: skip
