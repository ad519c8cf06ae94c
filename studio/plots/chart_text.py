"""Every chart as words: what it shows now in one sentence and its data as table columns
(`ChartText`; WCAG 1.1.1, docs/accessibility.md), one `*_text` per chart, with their English
(`ALT_LABELS`, keys "alt.*", added to `LABELS`).

Not for: drawing the charts (one_run, comparisons), showing the words on a page
(studio.results.chart_text).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from studio.plots.one_run import grad_norm_matrix
from studio.plots.style import LABELS, Translate, _english, _pct, group_label
from tlcore.core.events import HistorySnapshot

# --- text alternatives: what each chart shows now, in one sentence, and its data as a table -----
# (WCAG 1.1.1: a learner who cannot see the chart gets the same facts; docs/accessibility.md)

ALT_LABELS: dict[str, str] = {
    "alt.waiting": "No data yet: the chart fills in as the run trains.",
    "alt.loss": "Training loss went from {first} to {last} over {steps} steps; validation loss {val} after epoch {epoch}.",
    "alt.loss_no_val": "Training loss went from {first} to {last} over {steps} steps; no validation yet.",
    "alt.acc": "Validation accuracy went from {first} to {last} in {epochs} epochs; training accuracy ended at {train}.",
    "alt.grad": "Gradient norms of {n} layer groups over {steps} steps; frozen: {frozen}; largest at the last step: {top} ({value}).",
    "alt.bars": "Latest gradient norm per layer group: {values}.",
    "alt.confusion": "{correct} of {total} validation examples right ({percent}); mixed up most often: {true} taken for {pred} ({n} times).",
    "alt.confusion_clean": "{correct} of {total} validation examples right ({percent}); nothing mixed up.",
    "alt.drift": "The weights moved most in {top} ({value}); frozen groups did not move: {frozen}.",
    "alt.race": "{metric} after the last epoch so far: {values}.",
    "alt.blocks": "{trained} of {n} layer groups train ({groups}); frozen: {frozen}.",
    "alt.depth": "{name}: highest {best} at depth {depth}, lowest {worst} at depth {worst_depth}.",
    "alt.matrix": "Measured best strategy per cell: {cells}.",
    "alt.filters": "The first layer's filters drawn as small pictures, pretrained beside random: pretrained ones look like edges and colour blobs, random ones like noise.",
    "alt.none": "none",
    "alt.col.group": "layer group",
    "alt.col.value": "value",
    "alt.col.frozen": "frozen",
    "alt.col.params": "parameters",
    "alt.col.cell": "cell",
    "alt.col.best": "best strategy and accuracy",
}
LABELS.update(ALT_LABELS)


@dataclass(frozen=True)
class ChartText:
    """A chart as words: one sentence about what it shows now, and its data as table columns."""

    summary: str
    table: dict[str, list] = field(default_factory=dict)


def _g(value: float) -> str:
    return f"{value:.3g}"


def _p(value: float) -> str:
    return f"{100 * value:.0f}%"


def _thin(items: Sequence, most: int) -> list:
    """At most `most` of `items`, evenly spread, the last always kept (a table a reader can take in)."""
    items = list(items)
    if len(items) <= most:
        return items
    picks = {round(i * (len(items) - 1) / (most - 1)) for i in range(most)}
    return [items[i] for i in sorted(picks)]


def loss_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    steps, evals = snapshot.steps, snapshot.evals
    if not steps:
        return ChartText(t("alt.waiting"))
    values = {"first": _g(steps[0].loss), "last": _g(steps[-1].loss), "steps": steps[-1].step}
    summary = (
        t("alt.loss").format(**values, val=_g(evals[-1].val_loss), epoch=evals[-1].epoch)
        if evals
        else t("alt.loss_no_val").format(**values)
    )
    val_at = {e.step: e.val_loss for e in evals}
    rows = sorted({e.step for e in _thin(steps, 15)} | set(val_at))
    train_at = {e.step: e.loss for e in steps}
    table = {
        t("plot.step"): rows,
        t("plot.train"): [_g(train_at[s]) if s in train_at else "" for s in rows],
        t("plot.val"): [_g(val_at[s]) if s in val_at else "" for s in rows],
    }
    return ChartText(summary, table)


def accuracy_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    evals = snapshot.evals
    if not evals:
        return ChartText(t("alt.waiting"))
    summary = t("alt.acc").format(
        first=_p(evals[0].val_acc), last=_p(evals[-1].val_acc), epochs=evals[-1].epoch, train=_p(evals[-1].train_acc)
    )
    table = {
        t("plot.epoch"): [e.epoch for e in evals],
        t("plot.train"): [_p(e.train_acc) for e in evals],
        t("plot.val"): [_p(e.val_acc) for e in evals],
    }
    return ChartText(summary, table)


def grad_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    groups, steps, z = grad_norm_matrix(snapshot)
    if not steps:
        return ChartText(t("alt.waiting"))
    frozen = [g for g, row in zip(groups, z, strict=False) if all(v is None for v in row)]
    last = {g: row[-1] for g, row in zip(groups, z, strict=False) if row and row[-1] is not None}
    top = max(last, key=last.get) if last else "–"
    summary = t("alt.grad").format(
        n=len(groups),
        steps=steps[-1],
        frozen=", ".join(frozen) or t("alt.none"),
        top=top,
        value=_g(10 ** last[top]) if last else "–",
    )
    picks = _thin(range(len(steps)), 8)
    table = {t("alt.col.group"): groups}
    for i in picks:
        table[f"{t('plot.step')} {steps[i]}"] = [t("plot.frozen") if row[i] is None else _g(10 ** row[i]) for row in z]
    return ChartText(summary, table)


def bars_text(snapshot: HistorySnapshot, t: Translate = _english) -> ChartText:
    groups = list(snapshot.started.groups) if snapshot.started else []
    latest = snapshot.steps[-1].grad_norms if snapshot.steps else {}
    if not latest:
        return ChartText(t("alt.waiting"))
    shown = [_g(latest[g]) if g in latest else t("plot.frozen") for g in groups]
    summary = t("alt.bars").format(values=", ".join(f"{g} {v}" for g, v in zip(groups, shown, strict=False)))
    return ChartText(summary, {t("alt.col.group"): groups, t("plot.bars.x"): shown})


def confusion_text(confusion: Sequence[Sequence[int]], classes: Sequence[str], t: Translate = _english) -> ChartText:
    # (a matrix and a class list of different lengths, as a hand-made run can give: named by place)
    size = len(confusion)
    classes = [str(classes[i]) if i < len(classes) else str(i) for i in range(size)]
    total = sum(sum(row) for row in confusion)
    correct = sum(confusion[i][i] for i in range(size) if i < len(confusion[i]))
    values = {"correct": correct, "total": total, "percent": _p(correct / total) if total else "–"}
    wrong = [(n, i, j) for i, row in enumerate(confusion) for j, n in enumerate(row) if i != j and n > 0]
    if wrong:
        n, i, j = max(wrong)
        summary = t("alt.confusion").format(**values, true=classes[i], pred=classes[j], n=n)
    else:
        summary = t("alt.confusion_clean").format(**values)
    table = {f"{t('plot.confusion.y')} \\ {t('plot.confusion.x')}": classes}
    for j, name in enumerate(classes):
        table[name] = [row[j] if j < len(row) else "" for row in confusion]
    return ChartText(summary, table)


def drift_text(drift: Mapping[str, float], frozen: Sequence[str] = (), t: Translate = _english) -> ChartText:
    groups = list(drift)
    moving = {g: v for g, v in drift.items() if g not in frozen}
    top = max(moving, key=moving.get) if moving else "–"
    summary = t("alt.drift").format(
        top=top, value=_g(moving[top]) if moving else "–", frozen=", ".join(g for g in groups if g in frozen) or t("alt.none")
    )
    return ChartText(
        summary,
        {t("alt.col.group"): groups, t("plot.drift.y"): [t("plot.frozen") if g in frozen else _g(drift[g]) for g in groups]},
    )


def race_text(runs: Mapping[str, HistorySnapshot], metric: str = "val/acc", t: Translate = _english) -> ChartText:
    acc = metric == "val/acc"
    show = _p if acc else _g
    done = {label: snap.evals for label, snap in runs.items() if snap.evals}
    if not done:
        return ChartText(t("alt.waiting"))
    value = (lambda e: e.val_acc) if acc else (lambda e: e.val_loss)
    summary = t("alt.race").format(
        metric=t("plot.race.acc.title" if acc else "plot.race.loss.title"),
        values=", ".join(f"{label} {show(value(evals[-1]))}" for label, evals in done.items()),
    )
    epochs = sorted({e.epoch for evals in done.values() for e in evals})
    table = {t("plot.epoch"): epochs}
    for label, evals in done.items():
        at = {e.epoch: show(value(e)) for e in evals}
        table[label] = [at.get(k, "") for k in epochs]
    return ChartText(summary, table)


def blocks_text(counts: Mapping[str, int], frozen: Sequence[str], t: Translate = _english) -> ChartText:
    names = list(counts)
    groups = [group_label(g, t) for g in names]
    trained = [group_label(g, t) for g in names if g not in frozen]
    frozen = [group_label(g, t) for g in frozen]
    summary = t("alt.blocks").format(
        trained=len(trained), n=len(groups), groups=", ".join(trained) or t("alt.none"), frozen=", ".join(frozen) or t("alt.none")
    )
    table = {
        t("alt.col.group"): groups,
        t("alt.col.params"): [f"{counts[g]:,}" for g in names],
        t("alt.col.frozen"): ["❄ " + t("plot.frozen") if g in frozen else "" for g in groups],
    }
    return ChartText(summary, table)


def depth_text(series: Mapping[str, tuple[Sequence[int], Sequence[float]]], t: Translate = _english) -> ChartText:
    parts, table = [], {}
    depths = sorted({d for ds, _ in series.values() for d in ds})
    for name, (ds, accs) in series.items():
        if not accs:
            continue
        best, worst = max(range(len(accs)), key=accs.__getitem__), min(range(len(accs)), key=accs.__getitem__)
        parts.append(
            t("alt.depth").format(name=name, best=_p(accs[best]), depth=ds[best], worst=_p(accs[worst]), worst_depth=ds[worst])
        )
    if not parts:
        return ChartText(t("alt.waiting"))
    table["k"] = depths
    for name, (ds, accs) in series.items():
        at = dict(zip(ds, accs, strict=False))
        table[name] = [_p(at[d]) if d in at else "" for d in depths]
    return ChartText(" ".join(parts), table)


def matrix_text(verdicts: Sequence[Mapping], t: Translate = _english) -> ChartText:
    cells, best = [], []
    for v in verdicts:
        name = t(f"strategy.{v['winner']}") + (f" k={v['winner_depth']}" if v.get("winner_depth") is not None else "")
        cells.append(f"{t('plot.' + v['size'])}, {t('plot.' + v['similarity'])}")
        best.append(f"{name}, {_pct(v['winner_acc'], v.get('winner_std'))}")
    summary = t("alt.matrix").format(cells="; ".join(f"{c}: {b}" for c, b in zip(cells, best, strict=False)))
    return ChartText(summary, {t("alt.col.cell"): cells, t("alt.col.best"): best})


def filters_text(t: Translate = _english) -> ChartText:
    return ChartText(t("alt.filters"))
