"""Every chart as words (studio.plots *_text): the sentence says what the chart shows now, with
the numbers the chart is drawn from, and the table holds those numbers; nothing crashes before
the first step. And the title sits below the chart's toolbar, wherever the chart is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio import plots
from studio.results import table_html
from tests.test_plots import GROUPS, fake_history

pytestmark = pytest.mark.fast  # every test of this module is in the fast tier (`pytest -m fast`)


def test_the_curves_sentences_give_the_first_and_last_values_and_the_tables_the_rest():
    snap = fake_history().snapshot()
    loss = plots.loss_text(snap)
    assert loss.summary == "Training loss went from 2 to 0.5 over 4 steps; validation loss 0.375 after epoch 2."
    assert loss.table["optimiser step"] == [1, 2, 3, 4] and loss.table["validation"] == ["", "0.75", "", "0.375"]
    acc = plots.accuracy_text(snap)
    assert acc.summary == "Validation accuracy went from 40% to 80% in 2 epochs; training accuracy ended at 100%."
    assert acc.table["validation"] == ["40%", "80%"]


def test_the_gradient_sentences_name_the_frozen_groups_and_the_largest():
    snap = fake_history().snapshot()
    grad = plots.grad_text(snap)
    assert "frozen: stem, stage1" in grad.summary and "largest at the last step: head (1.6)" in grad.summary
    assert grad.table["layer group"] == list(GROUPS) and grad.table["optimiser step 4"][:2] == ["frozen", "frozen"]
    bars = plots.bars_text(snap)
    assert bars.summary == "Latest gradient norm per layer group: stem frozen, stage1 frozen, stage2 1.2, head 1.6."


def test_the_confusion_sentence_counts_right_answers_and_names_the_worst_mix_up():
    text = plots.confusion_text([[5, 1, 0], [4, 3, 0], [0, 0, 7]], ["cat", "dog", "bird"])
    assert text.summary.startswith("15 of 20 validation examples right (75%)")
    assert "dog taken for cat (4 times)" in text.summary
    assert text.table["cat"] == [5, 4, 0]
    clean = plots.confusion_text([[2, 0], [0, 2]], ["a", "b"])
    assert "nothing mixed up" in clean.summary


def test_drift_race_blocks_depth_and_matrix_sentences():
    assert plots.drift_text({"stem": 0.0, "stage1": 0.02, "head": 0.3}, ("stem",)).summary == (
        "The weights moved most in head (0.3); frozen groups did not move: stem."
    )
    snap = fake_history().snapshot()
    assert (
        plots.race_text({"full": snap}, "val/acc").summary
        == "Validation accuracy by strategy after the last epoch so far: full 80%."
    )
    blocks = plots.blocks_text({"stem": 10, "stage1": 20, "head": 5}, ["stem"])
    assert blocks.summary == "2 of 3 layer groups train (stage1, head); frozen: stem."
    depth = plots.depth_text({"frozen": ([0, 1, 2], [0.5, 0.7, 0.6])})
    assert depth.summary == "frozen: highest 70% at depth 1, lowest 50% at depth 0."
    verdict = {"size": "small", "similarity": "similar", "winner": "partial", "winner_depth": 3, "winner_acc": 0.9}
    assert plots.matrix_text([verdict]).summary == "Measured best strategy per cell: small, similar: partial k=3, 90.0%."


def test_before_the_first_step_every_sentence_says_it_waits():
    from tlcore.core.events import History, Started

    history = History(config={})
    history.append(Started(4, 2, GROUPS, (), 1000, 5000, "CPU", 40, 20, ("a", "b")))
    snap = history.snapshot()
    for text in (plots.loss_text(snap), plots.accuracy_text(snap), plots.grad_text(snap), plots.bars_text(snap)):
        assert text.summary == plots.LABELS["alt.waiting"] and not text.table


def test_every_sentence_has_its_korean_and_the_table_is_html_with_header_cells():
    root = Path(__file__).resolve().parent.parent / "assets" / "i18n"
    en, ko = (json.loads((root / f"{lang}.json").read_text(encoding="utf-8")) for lang in ("en", "ko"))
    for key, english in plots.ALT_LABELS.items():
        assert en[key] == english and ko[key] and ko[key] != english, key
    html = table_html({"k": [0, 1], "acc": ["50%", "<70%>"]}, "data")
    assert '<th scope="col">acc</th>' in html and '<th scope="row">1</th>' in html and "&lt;70%&gt;" in html
    assert 'tabindex="0"' in html and 'aria-label="data"' in html


def test_chart_titles_sit_below_the_toolbar():
    snap = fake_history().snapshot()
    for fig in (plots.loss_figure(snap), plots.grad_norm_heatmap(snap), plots.block_diagram({"a": 1, "b": 2}, ["a"])):
        assert fig.layout.title.yref == "container" and fig.layout.title.pad.t >= plots.TOOLBAR_PX
        assert fig.layout.margin.t >= fig.layout.title.pad.t + 20
