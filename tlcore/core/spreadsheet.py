"""Cells a spreadsheet would run as a formula, made inert before a CSV is written (OWASP CSV injection).

For: every CSV the app or the CLI writes (the runs export, a run's history, the CLI's tables).
Text that came from a person (a nickname, a dataset, class or upload folder name, a run's label,
a layer group's name) can start with "=", "+", "-", "@", a tab or a carriage return; Excel,
LibreOffice and Sheets would evaluate such a cell (`=HYPERLINK(...)`, `=cmd|...`). `safe_cell`
prefixes such a string with a single quote, as OWASP recommends, so it shows as text.

Not for: JSON, Markdown or any other format (only a CSV opened in a spreadsheet runs cells), and
not a sanitiser of content: the text is kept, only a leading quote is added. Numbers (int, float,
bool, None) are never touched, so -0.5 stays a number; only a `str` is escaped, even "-2".
It imports nothing heavy: pandas is only duck-typed (`safe_frame`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` unchanged, unless it is a str starting with a FORMULA_PREFIXES character: then "'" + value."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_row(row: dict) -> dict:
    """A copy of `row` with its keys and values passed through `safe_cell`."""
    return {safe_cell(k): safe_cell(v) for k, v in row.items()}


def to_csv(rows: Sequence[dict], fieldnames: Sequence[str] | None = None) -> str:
    """`rows` as CSV text (a header, then one line per row), every header and cell made safe.

    fieldnames: the columns, in order; by default the first row's keys. No rows: "" (or only the
    header, when fieldnames are given)."""
    if fieldnames is None:
        if not rows:
            return ""
        fieldnames = list(rows[0])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[safe_cell(f) for f in fieldnames])
    writer.writeheader()
    for row in rows:
        writer.writerow(safe_row(row))
    return buffer.getvalue()


def safe_frame(frame):
    """A copy of a pandas DataFrame whose column names and string cells are made safe; numeric
    columns are left as they are (duck-typed: pandas is not imported here)."""
    out = frame.copy()
    out.columns = [safe_cell(c) for c in out.columns]
    for i, dtype in enumerate(out.dtypes):
        if dtype.kind in "OUS" or str(dtype).startswith(("string", "str", "category")):  # may hold text
            out.isetitem(i, out.iloc[:, i].map(safe_cell))  # the whole column: its dtype may change
    return out
