"""The charts (studio.plots) show the numbers they are given, label everything, and mark
frozen layer groups as frozen instead of plotting them as zeros."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from studio import plots
from tlcore.core import metrics
from tlcore.core.events import Done, EvalEvent, History, Started, StepEvent

GROUPS = ("stem", "stage1", "stage2", "head")


def fake_history(frozen=("stem", "stage1")) -> History:
    """A hand-written run: 4 logged steps, 2 epochs, the first two groups frozen."""
    history = History(config={"strategy": "partial"})
    history.append(Started(4, 2, GROUPS, frozen, 1000, 5000, "CPU", 40, 20, ("a", "b")))
    for step in range(1, 5):
        norms = {g: 0.1 * step * (i + 1) for i, g in enumerate(GROUPS) if g not in frozen}
        history.append(StepEvent(step, (step + 1) // 2, 2.0 / step, 1e-3, norms, frozen))
        if step % 2 == 0:
            history.append(EvalEvent(step // 2, step, 1.5 / step, 0.4 * step / 2, 0.5 * step / 2, step, 100.0))
    history.append(Done({"val_acc": 0.8}))
    return history


def notes(fig) -> list[str]:
    """A chart's notes, less the chance line's label (tested on its own)."""
    return [a.text for a in fig.layout.annotations if not a.text.startswith("chance")]


def all_titled(fig) -> bool:
    return bool(fig.layout.title.text)


@pytest.mark.fast
def test_loss_figure_plots_train_steps_and_val_epochs():
    snap = fake_history().snapshot()
    fig = plots.loss_figure(snap)
    train, val = fig.data
    assert list(train.x) == [1, 2, 3, 4] and list(train.y) == pytest.approx([2.0, 1.0, 2 / 3, 0.5])
    assert list(val.x) == [2, 4] and list(val.y) == pytest.approx([0.75, 0.375])
    assert all_titled(fig) and fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


@pytest.mark.fast
def test_accuracy_figure_per_epoch():
    fig = plots.accuracy_figure(fake_history().snapshot())
    assert list(fig.data[1].y) == pytest.approx([0.4, 0.8])
    assert fig.layout.yaxis.title.text == plots.LABELS["plot.acc.y"]


@pytest.mark.fast
def test_grad_norm_heatmap_marks_frozen_groups_instead_of_zero():
    snap = fake_history().snapshot()
    groups, steps, z = plots.grad_norm_matrix(snap)
    assert groups == list(GROUPS) and steps == [1, 2, 3, 4]
    assert z[0] == [None] * 4 and z[1] == [None] * 4  # frozen: no value, not 0
    assert z[3][0] == pytest.approx(math.log10(0.4))  # head at step 1: 0.1 * 1 * 4
    fig = plots.grad_norm_heatmap(snap)
    frozen_layer, values = fig.data
    assert list(frozen_layer.z[0]) == [1] * 4 and list(frozen_layer.z[3]) == [None] * 4
    texts = [a.text for a in fig.layout.annotations]
    assert texts.count("frozen") == 2
    assert all_titled(fig) and fig.layout.yaxis.title.text


@pytest.mark.fast
def test_grad_norm_heatmap_of_an_empty_run_does_not_crash():
    history = History()
    history.append(Started(4, 2, GROUPS, (), 1, 1, "CPU", 1, 1, ("a", "b")))
    fig = plots.grad_norm_heatmap(history.snapshot())
    assert all_titled(fig)


@pytest.mark.fast
def test_latest_gradient_norms_are_dots_on_a_log_axis_with_frozen_named():
    """Bars on a log axis lie (their length depends on where the axis starts): dots instead,
    every value written, frozen groups named at the axis."""
    fig = plots.grad_norm_bars(fake_history().snapshot())
    assert all(trace.type != "bar" for trace in fig.data)
    dots = fig.data[0]
    assert dots.mode == "markers+text" and fig.layout.xaxis.type == "log"
    assert dots.x[list(dots.y).index(GROUPS[3])] == pytest.approx(1.6)
    assert GROUPS[0] not in list(dots.y)  # frozen: no dot ...
    assert any(a.text == "frozen" and a.y == GROUPS[0] for a in fig.layout.annotations)  # ... but named


@pytest.mark.fast
def test_every_bar_chart_starts_at_zero():
    """A bar's length is its value only when the axis starts at zero: no bar chart of values
    may use a log axis or a range that starts elsewhere."""
    fig = plots.drift_figure({"stem": 0.0, "stage1": 0.2, "stage2": 0.05}, frozen=("stem",))
    bars = [trace for trace in fig.data if trace.type == "bar"]
    assert bars
    for trace in bars:
        assert trace.base is None  # every bar grows from zero ...
        axis = fig.layout.xaxis if trace.orientation == "h" else fig.layout.yaxis
        assert axis.type != "log"  # ... on a linear axis ...
        assert axis.rangemode == "tozero" and (axis.range is None or axis.range[0] == 0)  # ... that shows zero


@pytest.mark.fast
def test_block_diagram_heights_encode_nothing():
    """The block diagram is a drawing with no value axis: its blocks are all the same size
    (log-scaled heights made a group 10,000x bigger look under twice as tall); the counts
    are written inside."""
    counts = {"stem": 928, "stage1": 70_000, "stage4": 11_200_000, "head": 2_570}
    fig = plots.block_diagram(counts, frozen=("stem",))
    blocks = fig.data[0]
    assert len(set(blocks.y)) == 1 and len(set(blocks.base)) == 1
    assert fig.layout.yaxis.visible is False
    assert "11.2M" in blocks.text[2] and "928" in blocks.text[0]


@pytest.mark.fast
def test_confusion_figure_counts_and_labels():
    fig = plots.confusion_figure([[3, 1], [0, 4]], ["cat", "dog"])
    assert [list(r) for r in fig.data[0].z] == [[3, 1], [0, 4]] and list(fig.data[0].x) == ["cat", "dog"]
    assert fig.layout.xaxis.title.text == "predicted class"


@pytest.mark.fast
def test_drift_figure_greys_frozen_groups():
    fig = plots.drift_figure({"stem": 0.0, "stage1": 0.2}, frozen=("stem",))
    assert fig.data[0].text == ("frozen", "0.200")


@pytest.mark.fast
def test_block_diagram_greys_frozen_groups():
    counts = {"stem": 900, "stage1": 70_000, "head": 2_570}
    fig = plots.block_diagram(counts, frozen=("stem",))
    colours = fig.data[0].marker.color
    assert colours[0] != colours[1] and colours[1] == colours[2]
    assert "70K" in fig.data[0].text[1]


@pytest.mark.fast
def test_human_counts_keep_three_digits():
    assert [metrics.human(n) for n in (928, 70_000, 1_228_970, 11_200_000)] == ["928", "70K", "1.23M", "11.2M"]


@pytest.mark.fast
def test_race_and_sweep_figures():
    runs = {"full": fake_history().snapshot(), "linear_probe": fake_history(GROUPS[:3]).snapshot()}
    fig = plots.race_figure(runs)
    assert [d.name for d in fig.data] == ["full", "linear_probe"]
    loss = plots.race_figure(runs, metric="val/loss")
    assert loss.layout.title.text == plots.LABELS["plot.race.loss.title"]
    sweep = plots.depth_figure({"frozen": ([0, 1, 2], [0.5, 0.6, 0.55]), "scratch": ([0, 1, 2], [0.3] * 3)})
    assert list(sweep.data[0].y) == [0.5, 0.6, 0.55] and [d.name for d in sweep.data] == ["frozen", "scratch"]
    assert sweep.layout.yaxis.range[0] == pytest.approx(0.2)  # zoomed to just under the lowest point
    high = plots.depth_figure({"frozen": ([0, 1], [0.92, 0.97])})
    assert high.layout.yaxis.range[0] == pytest.approx(0.8)


@pytest.mark.fast
def test_matrix_figure_places_each_verdict_in_its_cell():
    verdicts = [
        {"similarity": "similar", "size": "small", "winner": "linear_probe", "winner_acc": 0.9, "agrees": True},
        {
            "similarity": "different",
            "size": "large",
            "winner": "partial",
            "winner_acc": 0.84,
            "agrees": False,
            "expected": "full",
            "expected_acc": 0.81,
        },
    ]
    heat = plots.matrix_figure(verdicts).data[0]
    assert list(heat.x) == ["similar", "different"] and list(heat.y) == ["large", "small"]
    assert heat.z[1][0] == 0.9 and heat.z[0][1] == 0.84 and heat.z[0][0] is None
    assert "linear probe" in heat.text[1][0] and "✓" in heat.text[1][0]
    assert "✗" in heat.text[0][1] and "rule: full, 81.0%" in heat.text[0][1]  # the rule's number beside the verdict


@pytest.mark.fast
def test_matrix_figure_shows_the_spread_behind_a_tie():
    """A tie is claimed from the spread over seeds, so the chart shows that spread: the
    winner's and the rule's accuracy, each ± its standard deviation, and the tie named."""
    tie = {
        "similarity": "similar",
        "size": "large",
        "winner": "linear_probe",
        "winner_acc": 0.949,
        "winner_std": 0.014,
        "expected": "partial",
        "expected_acc": 0.940,
        "expected_std": 0.007,
        "agrees": True,
        "tie": True,
    }
    text = plots.matrix_figure([tie]).data[0].text[0][0]
    assert "linear probe<br>94.9 ± 1.4% ✓ (tie)" in text and "rule: partial, 94.0 ± 0.7%" in text


@pytest.mark.fast
def test_matrix_figure_is_readable_on_a_projector_and_names_depths():
    """Cell text and labels >= 14 px; partial names its depth; a rule not measured at its
    depth shows as such, neither a tick nor a cross."""
    verdicts = [
        {
            "similarity": "similar",
            "size": "large",
            "winner": "partial",
            "winner_depth": 3,
            "winner_acc": 0.95,
            "expected": "partial",
            "expected_depth": 4,
            "measured": False,
            "agrees": False,
            "expected_acc": None,
        },
        {
            "similarity": "different",
            "size": "small",
            "winner": "partial",
            "winner_depth": 2,
            "winner_acc": 0.9,
            "expected": "partial",
            "expected_depth": 2,
            "measured": True,
            "agrees": True,
            "expected_acc": 0.9,
        },
    ]
    fig = plots.matrix_figure(verdicts)
    assert fig.data[0].textfont.size >= 14 and fig.layout.font.size >= 14
    not_measured, agrees = fig.data[0].text[0][0], fig.data[0].text[1][1]
    assert "partial k=3" in not_measured and "rule: partial k=4, not measured" in not_measured
    assert "✓" not in not_measured and "✗" not in not_measured
    assert agrees.startswith("partial k=2<br>90.0%") and "✓" in agrees


@pytest.mark.fast
def test_filters_figure_tiles_every_filter():
    rng = np.random.default_rng(0)
    pretrained, random = rng.random((32, 3, 3, 3)), rng.random((32, 3, 3, 3))
    fig = plots.filters_figure(pretrained, random, zoom=4)
    assert len(fig.data) == 2
    picture = np.asarray(fig.data[0].z)
    assert picture.shape == (4 * (3 * 4 + 2) + 2, 8 * (3 * 4 + 2) + 2, 3)  # 32 tiles in 4 rows of 8
    # The first tile is the first filter, enlarged: its top-left pixel is filter 0's.
    assert np.array_equal(picture[2, 2], (pretrained[0, 0, 0] * 255).round().astype(np.uint8))
    assert len(plots.filters_figure(None, random).data) == 1  # no weights: random only


@pytest.mark.fast
def test_translation_function_is_used():
    fig = plots.loss_figure(fake_history().snapshot(), t=lambda key: "KO:" + key)
    assert fig.layout.title.text == "KO:plot.loss.title"


@pytest.mark.fast
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_every_chart_label_is_translated_in_the_app(lang):
    path = Path(__file__).resolve().parent.parent / "assets" / "i18n" / f"{lang}.json"
    strings = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in plots.LABELS if k not in strings]
    assert not missing, f"{path.name} lacks chart labels: {missing}"


def test_every_chart_has_a_title_and_axis_labels():
    snap = fake_history().snapshot()
    verdicts = [{"similarity": "similar", "size": "small", "winner": "full", "winner_acc": 0.9, "agrees": True}]
    figures = [
        plots.loss_figure(snap),
        plots.accuracy_figure(snap),
        plots.grad_norm_heatmap(snap),
        plots.grad_norm_bars(snap),
        plots.confusion_figure([[1, 0], [0, 1]], ["a", "b"]),
        plots.drift_figure({"stem": 0.1}),
        plots.race_figure({"a": snap}),
        plots.depth_figure({"a": ([0], [0.5])}),
        plots.matrix_figure(verdicts),
    ]
    for fig in figures:
        assert fig.layout.title.text, fig
        assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text, fig.layout.title.text
    blocks = plots.block_diagram({"stem": 10, "head": 20}, ())  # a diagram: no y axis to label
    assert blocks.layout.title.text and blocks.layout.xaxis.title.text


@pytest.mark.fast
def test_matrix_figure_reads_the_experiments_verdicts():
    """Guards the format the committed results use (tlcore.lab.experiments)."""
    import pandas as pd

    from tlcore.lab import experiments

    rows = []
    for sim in ("similar", "different"):
        for size in ("small", "large"):
            for strategy, acc in (
                ("scratch", 0.3),
                ("linear_probe", 0.8 if sim == "similar" else 0.4),
                ("partial", 0.6),
                ("full", 0.7),
            ):
                rows.append(
                    {
                        "similarity": sim,
                        "size": size,
                        "dataset": "d",
                        "per_class": 5,
                        "strategy": strategy,
                        "freeze_depth": experiments.rule_depth(strategy, sim, 6),
                        "seed": 0,
                        "val_acc": acc,
                        "seconds": 1.0,
                    }
                )
    verdicts = experiments.cell_verdicts(experiments.summarise_matrix(pd.DataFrame(rows)), num_groups=6)
    heat = plots.matrix_figure(verdicts).data[0]
    assert "linear probe" in heat.text[1][0]  # similar + small (row small, column similar)
    assert "full" in heat.text[0][1]  # different + large
    assert all(v is not None for row in heat.z for v in row)


def all_figures(snap) -> list:
    """One of every chart the studio draws, from `snap` where it takes a run."""
    verdicts = [{"similarity": "similar", "size": "small", "winner": "full", "winner_acc": 0.9, "agrees": True}]
    tiles = np.random.default_rng(0).random((4, 3, 3, 3))
    return [
        plots.loss_figure(snap),
        plots.accuracy_figure(snap),
        plots.grad_norm_heatmap(snap),
        plots.grad_norm_bars(snap),
        plots.confusion_figure([[1, 0], [0, 1]], ["a", "b"]),
        plots.drift_figure({"stem": 0.1}),
        plots.block_diagram({"stem": 10, "head": 20}, ("stem",)),
        plots.race_figure({"a": snap}),
        plots.race_figure({"a": snap}, metric="val/loss"),
        plots.depth_figure({"a": ([0], [0.5])}),
        plots.matrix_figure(verdicts),
        plots.filters_figure(tiles, tiles),
    ]


def empty_run():
    """A run that has started (4 steps, 2 epochs planned) and logged nothing yet."""
    history = History()
    history.append(Started(4, 2, GROUPS, ("stem",), 1, 1, "CPU", 1, 1, ("a", "b")))
    return history.snapshot()


@pytest.mark.parametrize("snap", [fake_history().snapshot(), empty_run()], ids=["run", "empty"])
def test_every_chart_text_is_projector_sized(snap):
    """At least FONT_PX (14 px) everywhere, written into each figure's own layout and traces:
    Streamlit's chart theme overrides the template's fonts (12 px tick labels)."""
    least = 14
    assert plots.FONT_PX >= least
    for fig in all_figures(snap):
        name = fig.layout.title.text
        layout = fig.layout
        assert layout.font.size >= least and layout.legend.font.size >= least, name
        assert layout.title.font.size >= least and layout.hoverlabel.font.size >= least, name
        assert layout.uniformtext.minsize >= least, name  # text inside bars is not shrunk below it
        axes = [layout[k] for k in layout if k.startswith(("xaxis", "yaxis"))]
        assert axes, name
        for axis in axes:
            assert axis.tickfont.size >= least and axis.title.font.size >= least, (name, axis.plotly_name)
        for note in layout.annotations:
            assert note.font.size is None or note.font.size >= least, (name, note.text)
        for trace in fig.data:
            if "textfont" in trace:
                assert trace.textfont.size >= least, (name, trace.type)
            if trace.type == "heatmap" and trace.showscale is not False:
                assert trace.colorbar.tickfont.size >= least, name


@pytest.mark.fast
def test_gradient_norm_axis_has_one_gridline_per_decade_and_room_for_the_values():
    """The caption says "each gridline x10": ticks only at powers of ten (plotly's own log
    ticks put 4, 6, 8, 10, 12 inside one decade), the axis from one power of ten to another,
    and the written values not clipped."""
    fig = plots.grad_norm_bars(fake_history().snapshot())
    axis, dots = fig.layout.xaxis, fig.data[0]
    assert axis.type == "log" and axis.tickmode == "array"
    lo, hi = axis.range
    assert lo == int(lo) and hi == int(hi) and hi > lo
    assert list(axis.tickvals) == pytest.approx([10.0**k for k in range(int(lo), int(hi) + 1)])
    assert list(axis.ticktext)[-2:] == ["1", "10"]  # plain numbers ("1", "10"), not "10²" or "10µ"
    assert 10**lo <= min(dots.x) and max(dots.x) < 10**hi
    assert dots.cliponaxis is False  # a value written beside a dot near the edge is not cut off
    assert hi - math.log10(max(dots.x)) >= plots.LABEL_ROOM * (hi - lo)


@pytest.mark.fast
@pytest.mark.parametrize("values", [[1.6], [0.4, 0.8, 1.2], [1e-5, 3.0], [0.05, 0.09], [10.0], [9.9, 0.011]])
def test_decades_cover_the_values_in_whole_powers_of_ten(values):
    lo, hi = plots.decades(values)
    assert isinstance(lo, int) and isinstance(hi, int) and hi > lo
    assert 10**lo <= min(values) and max(values) < 10**hi
    assert hi - math.log10(max(values)) >= plots.LABEL_ROOM * (hi - lo) - 1e-9
    assert plots.decades([]) == plots.decades([0.0])  # nothing yet: a default axis, no crash


def test_empty_charts_start_at_zero_and_say_what_they_wait_for():
    """Before the first step or epoch: axes from 0 (plotly's empty default runs from -1), the
    planned length of the run, and a note instead of a bare axis; no group called frozen
    for want of a value."""
    snap = empty_run()
    for fig in (plots.accuracy_figure(snap), plots.race_figure({"a": snap}), plots.race_figure({"a": snap}, "val/loss")):
        assert fig.layout.xaxis.range[0] == 0 and fig.layout.xaxis.range[1] >= 2, fig.layout.title.text
        assert fig.layout.xaxis.dtick == 1
        assert notes(fig) == [plots.LABELS["plot.waiting_epoch"]]
    for fig in (plots.loss_figure(snap), plots.grad_norm_heatmap(snap)):
        assert fig.layout.xaxis.range[0] == 0 and fig.layout.xaxis.range[1] >= 4, fig.layout.title.text
        assert plots.LABELS["plot.waiting_step"] in [a.text for a in fig.layout.annotations]
    assert plots.loss_figure(snap).layout.yaxis.range[0] == 0  # not plotly's empty -1 .. 4
    assert plots.loss_figure(History().snapshot()).layout.xaxis.range[0] == 0  # before Started, too
    bars = plots.grad_norm_bars(snap)
    assert [a.text for a in bars.layout.annotations] == [plots.LABELS["plot.waiting_step"]]


@pytest.mark.fast
def test_charts_with_data_keep_the_whole_run_on_the_axis_from_zero():
    snap = fake_history().snapshot()  # 4 steps, 2 epochs
    acc = plots.accuracy_figure(snap)
    assert acc.layout.xaxis.range[0] == 0 and acc.layout.xaxis.range[1] >= 2 and not notes(acc)
    loss = plots.loss_figure(snap)
    assert loss.layout.xaxis.range[0] == 0 and loss.layout.xaxis.range[1] >= 4 and not loss.layout.annotations


@pytest.mark.parametrize(
    ("seconds", "en", "ko"), [(0.0, "< 1 s", "1초 미만"), (0.3, "< 1 s", "1초 미만"), (0.6, "1 s", "1초"), (45, "45 s", "45초")]
)
def test_durations_never_say_zero_seconds(seconds, en, ko, monkeypatch):
    from studio import i18n

    for lang, said in (("en", en), ("ko", ko)):
        monkeypatch.setattr(i18n, "current_lang", lambda lang=lang: lang)
        assert i18n.duration(seconds) == said


@pytest.mark.fast
def test_accuracy_charts_draw_the_line_of_guessing():
    snap = fake_history().snapshot()  # two classes: chance is 50%
    for fig in (plots.accuracy_figure(snap), plots.race_figure({"Linear probe": snap}, "val/acc")):
        lines = [s for s in fig.layout.shapes if s.type == "line"]
        assert len(lines) == 1 and lines[0].y0 == lines[0].y1 == 0.5
        assert any("50%" in a.text for a in fig.layout.annotations)
    assert not plots.race_figure({"a": snap}, "val/loss").layout.shapes  # no chance on a loss chart
    empty = History(config={})
    assert not plots.accuracy_figure(empty.snapshot()).layout.shapes  # classes unknown yet: no line


def test_a_layer_group_is_named_in_the_charts_language():
    from studio.i18n import strings

    def korean(key: str) -> str:
        return strings("ko").get(key, key)

    assert [plots.group_label(g) for g in ("stem", "stage2", "blocks3-5", "layer11", "head")] == [
        "stem", "stage2", "blocks3-5", "layer11", "head"
    ]  # fmt: skip
    assert [plots.group_label(g, korean) for g in ("stem", "stage2", "blocks3-5", "layer11", "head")] == [
        "입력부", "2단계", "블록 3-5", "11층", "출력 헤드"
    ]  # fmt: skip
    assert plots.group_label("lora_extra", korean) == "lora_extra"  # a name the labels do not know stays as it is
