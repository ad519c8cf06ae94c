"""A running run's two charts as HTML (studio.plots.live): what they draw from the run's history.

The SVG inside each chart is read back from its data URI, so the tests check the drawn lines and
cells themselves, not only the text around them.
"""

from __future__ import annotations

import base64
import re

import pytest

from studio import plots
from studio.plots import live
from tests.test_plots import GROUPS, fake_history
from tlcore.core.events import History, Started, StepEvent

pytestmark = pytest.mark.fast


def svg_of(drawn: str) -> str:
    """The SVG drawing inside a live chart (its one image)."""
    (data,) = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', drawn)
    return base64.b64decode(data).decode()


def points(svg: str) -> list[list[tuple[float, float]]]:
    """Each polyline's points, in the drawing's units (0..1000 across and down)."""
    return [[tuple(map(float, p.split(","))) for p in line.split()] for line in re.findall(r'<polyline points="([^"]*)"', svg)]


def test_the_loss_chart_draws_each_logged_step_and_each_epoch_on_a_fixed_step_axis():
    snap = fake_history().snapshot()  # 4 logged steps (loss 2/step), 2 epochs (val 1.5/step at steps 2 and 4)
    drawn = plots.live_loss(snap)
    assert 'data-chart="loss"' in drawn and 'data-points="4"' in drawn
    train, val = points(svg_of(drawn))
    assert len(train) == 4 and len(val) == 2
    x_max = 4 * 1.02  # the run's total steps, from 0, as plotly's live axis
    assert train[0][0] == pytest.approx(1000 * 1 / x_max, abs=0.1)
    assert val[-1][0] == pytest.approx(1000 * 4 / x_max, abs=0.1)
    # the loss axis starts at 0 (the bottom, 1000) and the largest loss (2.0) is just under its top
    assert train[0][1] == pytest.approx(1000 * (1 - 2.0 / (2.0 * 1.05)), abs=0.1)
    assert all(y1 < y2 for (_, y1), (_, y2) in zip(train, train[1:]))  # the loss falls: the line goes down the page
    assert drawn.count('class="tls-live-dot"') == 2  # a dot per epoch, as plotly's markers
    assert drawn.count('class="tls-live-dot tls-live-head"') == 1  # and the curve's newest point (one step is seen)
    assert ">0<" in drawn and ">2<" in drawn  # tick labels of the loss axis
    assert "waiting for the first step" not in drawn


def test_an_empty_run_says_what_it_waits_for_and_draws_no_line():
    history = History(config={})
    history.append(Started(12, 3, GROUPS, ("stem",), 1000, 5000, "CPU", 40, 20, ("a", "b")))
    snap = history.snapshot()
    for drawn in (plots.live_loss(snap), plots.live_heatmap(snap)):
        assert 'data-points="0"' in drawn and "waiting for the first step" in drawn
        assert "<polyline" not in svg_of(drawn) and "<rect" not in svg_of(drawn)


def test_the_heatmap_colours_trained_groups_and_greys_and_names_frozen_ones():
    snap = fake_history(frozen=("stem", "stage1")).snapshot()
    drawn = plots.live_heatmap(snap)
    svg = svg_of(drawn)
    cells = re.findall(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="1" fill="([^"]+)"/>', svg)
    assert len(cells) == len(GROUPS) * 4  # a cell per group and logged step
    rows = {int(y): set() for _, y, _, _ in cells}
    for _, y, _, fill in cells:
        rows[int(y)].add(fill)
    grey = plots._GREY
    # the shallowest group at the bottom (row 3 of 4), as plotly's heatmap
    assert rows[3] == {grey} and rows[2] == {grey}
    assert grey not in rows[1] | rows[0] and len(rows[0]) > 1  # trained groups: colours that change with the norm
    assert drawn.count('class="tls-live-frozen"') == 2 and drawn.count(">frozen<") == 2
    assert [x for x, y, _, _ in cells if y == "0"] == ["0", "1", "2", "3"]  # each step's cell starts where the last ended
    assert 'viewBox="0 0 4 4"' in svg  # the run's steps across, its groups down


def test_labels_follow_the_language_and_are_escaped():
    snap = fake_history().snapshot()
    korean = {"plot.frozen": "고정", "group.stage": "{a}단계", "plot.loss.title": "손실 <b>"}.get
    drawn = plots.live_heatmap(snap, lambda key: korean(key) or plots.LABELS.get(key, key))
    assert "1단계" in drawn and ">고정<" in drawn
    loss = plots.live_loss(snap, lambda key: korean(key) or plots.LABELS.get(key, key))
    assert "손실 &lt;b&gt;" in loss and "<b>" not in loss


def test_every_text_of_the_live_charts_is_at_least_the_charts_smallest_size():
    sizes = [int(px) for px in re.findall(r"font-size: (\d+)px", live.CSS)]
    assert sizes and min(sizes) >= plots.FONT_PX
    assert "rem" not in "".join(re.findall(r"font-size: [^;]+;", live.CSS))  # none smaller in another unit


@pytest.mark.parametrize(
    "low, high, expected",
    [(0, 12, [0, 5, 10]), (0, 2.1, [0, 0.5, 1, 1.5, 2]), (0, 0.037, [0, 0.01, 0.02, 0.03]), (3, 3, [3])],
)
def test_ticks_are_round_numbers(low, high, expected):
    assert live.nice_ticks(low, high) == pytest.approx(expected)


def test_a_huge_loss_stays_inside_the_chart():
    history = History(config={})
    history.append(Started(4, 1, GROUPS, (), 1000, 5000, "CPU", 40, 20, ("a", "b")))
    for step, loss in enumerate([2.0, float("nan"), 1e6, 1.0], start=1):
        history.append(StepEvent(step, 1, loss, 1e-3, dict.fromkeys(GROUPS, 0.5), ()))
    (train,) = points(svg_of(plots.live_loss(history.snapshot())))
    assert len(train) == 3  # the NaN step is left out, not drawn at an edge
    assert all(0 <= y <= 1000 for _, y in train)


def test_a_race_draws_a_curve_per_run_with_dots_per_epoch_and_the_chance_line():
    full, partial = fake_history().snapshot(), fake_history(frozen=("stem",)).snapshot()
    drawn = plots.live_race({"full": full, "partial": partial}, "val/acc")
    assert 'data-chart="race_acc"' in drawn and 'data-points="4"' in drawn  # 2 epochs each
    lines = points(svg_of(drawn))
    assert [len(line) for line in lines] == [2, 2]
    end = 2 + 0.25  # epochs 0 .. the last, as plotly's epoch axis
    assert lines[0][1][0] == pytest.approx(1000 * 2 / end, abs=0.1)
    assert lines[0][1][1] == pytest.approx(1000 * (1 - 0.8 / 1.02), abs=0.1)  # 80% on an axis to 102%
    assert drawn.count('class="tls-live-dot"') == 4 and ">100%<" in drawn and ">full<" in drawn
    assert "chance (50%)" in drawn and 'stroke-dasharray="6 4"' in svg_of(drawn)  # two classes
    loss = plots.live_race({"full": full}, "val/loss")
    assert 'data-chart="race_loss"' in loss and "chance" not in loss
    waiting = plots.live_race({}, "val/acc")
    assert 'data-points="0"' in waiting and "waiting for the first epoch" in waiting
