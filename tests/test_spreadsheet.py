"""Every CSV the app or the CLI writes shows a cell a spreadsheet would run as a formula as text
(OWASP CSV injection): such a string gains a leading single quote; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from tests.helpers.fakes import make_run, wait_for
from tlcore import cli
from tlcore.core.events import EvalEvent, HistorySnapshot, Started, StepEvent
from tlcore.core.spreadsheet import FORMULA_PREFIXES, safe_cell, safe_frame, safe_row, to_csv
from tlcore.serve.jobs import JobQueue
from tlcore.serve.store import RunStore
from tlcore.train.config import RunConfig

LINK = '=HYPERLINK("http://x","y")'
FORMULAS = [LINK, "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tTAB", "\r=1+1"]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def risky(value: str) -> bool:
    """A cell a spreadsheet would run: a formula prefix on anything but a plain number (-0.5)."""
    try:
        float(value)
        return value != value.strip()  # "\t1" is a number to float() but a tab to a spreadsheet
    except ValueError:
        return value.startswith(FORMULA_PREFIXES)


@pytest.mark.parametrize("formula", FORMULAS)
def test_formula_prefixes_are_escaped_in_a_csv(formula):
    assert safe_cell(formula) == "'" + formula
    header, row = cells(to_csv([{formula: formula, "name": "alice"}]))
    assert header == ["'" + formula, "name"] and row == ["'" + formula, "alice"]


def test_formula_free_names_and_numbers_are_left_as_they_are():
    for value in ("alice", "cats and dogs", "", "a=b", -0.5, -2, 0, 1.5, None, True):
        assert safe_cell(value) is value
    row = {"name": "alice", "val_acc": -0.5, "steps": -3, "=x": "-1"}
    assert safe_row(row) == {"name": "alice", "val_acc": -0.5, "steps": -3, "'=x": "'-1"}
    header, line = cells(to_csv([{"name": "alice", "delta": -0.5}]))
    assert header == ["name", "delta"] and line == ["alice", "-0.5"] and float(line[1]) == -0.5


def test_formula_safe_csv_of_no_rows_is_empty_or_only_its_header():
    assert to_csv([]) == ""
    assert cells(to_csv([], fieldnames=["name", "=bad"])) == [["name", "'=bad"]]


def test_formula_cells_and_column_names_of_a_frame_are_escaped_and_numbers_kept():
    frame = pd.DataFrame({"name": [LINK, "alice", None], "=col": ["@x", "b", "c"], "acc": [-0.5, 0.25, 1.0]})
    safe = safe_frame(frame)
    assert list(safe.columns) == ["name", "'=col", "acc"]
    assert safe["name"].tolist()[:2] == ["'" + LINK, "alice"] and safe["name"].isna().tolist()[2]
    assert safe["'=col"].tolist() == ["'@x", "b", "c"]
    assert safe["acc"].dtype == frame["acc"].dtype and safe["acc"].tolist() == [-0.5, 0.25, 1.0]
    assert frame["name"].tolist()[0] == LINK and list(frame.columns)[1] == "=col"  # the original is untouched
    assert safe_frame(frame.astype({"name": "category"}))["name"].tolist()[0] == "'" + LINK


def test_formula_in_a_run_name_or_tag_is_escaped_in_the_runs_export(tmp_path):
    path = tmp_path / "runs.sqlite"
    q = JobQueue.started(make_run(steps=1, delay=0), store=RunStore(path))
    job = q.submit(RunConfig(), "alice-secret", labels=[LINK], tag="@SUM(1+1)")
    assert wait_for(lambda: q.get(job, "alice-secret").state == "done")

    assert cli.main(["runs", "export", "--db", str(path), "--out", str(tmp_path / "runs.csv")]) == 0
    text = (tmp_path / "runs.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 1 and rows[0]["label"] == "'" + LINK and rows[0]["tag"] == "'@SUM(1+1)"
    assert float(rows[0]["val_acc"]) >= 0 and rows[0]["outcome"] == "Done"
    assert not any(risky(cell) for line in cells(text) for cell in line)


def history(group: str) -> HistorySnapshot:
    groups = (group, "head")
    return HistorySnapshot(
        (
            Started(2, 1, groups, (), 10, 20, "cpu", 4, 2, ("=cat", "dog")),
            StepEvent(1, 1, 0.7, 0.01, {group: 0.5, "head": 0.4}, (), lrs={group: -0.01, "head": 0.01}),
            EvalEvent(1, 1, 0.6, 0.5, 0.5, 0.1, 300.0),
        )
    )


def test_formula_in_a_layer_group_name_never_starts_a_cell_of_the_history_csv(tmp_path):
    snap = history("=HYPERLINK(1)")
    text = snap.to_csv(tmp_path / "history.csv")
    assert (tmp_path / "history.csv").read_text(encoding="utf-8") == text
    header, *rows = cells(text)
    assert "lr/=HYPERLINK(1)" in header and "grad_norm/=HYPERLINK(1)" in header
    assert not any(risky(cell) for line in [header, *rows] for cell in line)
    assert float(rows[0][header.index("lr/=HYPERLINK(1)")]) == -0.01  # a number stays a number


def test_formula_in_an_error_message_is_escaped_in_the_compare_table(tmp_path, monkeypatch):
    row = {"strategy": "linear_probe", "val_acc": -0.5, "best_val_acc": None, "seconds": None, "trainable_params": None}
    monkeypatch.setattr(cli, "compare", lambda base, names, quiet=False: [{**row, "error": LINK}])
    out = tmp_path / "compare.csv"
    assert cli.main(["compare", "--strategies", "linear_probe", "--out", str(out)]) == 1
    written = list(csv.DictReader(open(out, encoding="utf-8", newline="")))
    assert written[0]["error"] == "'" + LINK and written[0]["strategy"] == "linear_probe"
    assert float(written[0]["val_acc"]) == -0.5


def test_formula_in_any_column_or_text_cell_of_a_history_is_escaped_by_its_csv_writer(monkeypatch):
    """Today every group name sits behind "lr/" or "grad_norm/"; the writer escapes whatever the frame holds."""
    frame = pd.DataFrame({"=HYPERLINK(1)": [0.5], "group": ["@SUM(1+1)"], "lr": [-0.01]})
    monkeypatch.setattr(HistorySnapshot, "to_dataframe", lambda self: frame)
    header, row = cells(history("head0").to_csv())
    assert header == ["'=HYPERLINK(1)", "group", "lr"] and row == ["0.5", "'@SUM(1+1)", "-0.01"]
