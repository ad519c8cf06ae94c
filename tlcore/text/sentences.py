"""Text datasets: the shipped sentiment samples, the user's CSV files, SST-2 and NSMC.

Every text dataset loads into one shape, TextData: a list of sentences and an int64 label
tensor for a train and a validation split, drawn per class with a seed, so that
"20 sentences per class" means the same thing for every source (as ImageData does for
images). Tokenising and batching happen later, in tlcore.text.batches, because they depend
on the model's tokenizer.

Not for: images (tlcore.data.datasets), tokenisation (tlcore.text.batches).
"""

from __future__ import annotations

import csv
import io
import os
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tlcore.core import offline
from tlcore.data.datasets import DatasetUnavailable

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "text"
SAMPLES = {"en": ASSETS / "sentiment_en.csv", "ko": ASSETS / "sentiment_ko.csv"}
CACHE_DIR = offline.DATA_CACHE / "text"
DOWNLOAD_TIMEOUT_S = 20.0

# Header names accepted for each column, so common public files load without renaming
# (SST-2 calls its text "sentence", NSMC "document").
TEXT_COLUMNS = ("text", "sentence", "document", "review", "content")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "target")
TRAIN_SPLITS = {"train", "training"}
VAL_SPLITS = {"val", "valid", "validation", "dev", "test"}
ENCODINGS = ("utf-8-sig", "cp949")  # utf-8-sig also reads plain UTF-8; cp949 is Excel's Korean default


class TextDataUnavailable(DatasetUnavailable):
    """A downloadable text set is not cached and cannot be fetched; the message says what to do."""


@dataclass
class TextData:
    classes: list[str]
    train_texts: list[str]
    train_y: torch.Tensor  # (N,) int64
    val_texts: list[str]
    val_y: torch.Tensor  # (M,) int64
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (row, why) left out

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class TextTable:
    """The rows of a text CSV that can be used, before any sampling."""

    texts: list[str]
    labels: list[str]
    splits: list[str] | None  # "train" / "val" per row when the file has a split column
    skipped: list[tuple[str, str]]


# ----------------------------------------------------------------------------- reading CSV files


def decode(raw: bytes, name: str = "file") -> str:
    """Bytes -> text, trying UTF-8 (with or without a BOM), then cp949 (Korean Excel)."""
    for enc in ENCODINGS:
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{name}: cannot read the text encoding; save the file as UTF-8 (CSV UTF-8 in Excel)")


def _pick_column(header: list[str], wanted: str | None, aliases: tuple[str, ...], what: str, name: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for candidate in [wanted.lower()] if wanted else list(aliases):
        if candidate in lowered:
            return lowered.index(candidate)
    expected = repr(wanted) if wanted else " or ".join(repr(a) for a in aliases[:3])
    raise ValueError(
        f"{name}: no {what} column (expected {expected}); the columns found are: "
        f"{', '.join(repr(h) for h in header) or 'none'}. The file needs a text column and a label column."
    )


def parse_text_csv(
    content: str | bytes,
    *,
    name: str = "file",
    text_column: str | None = None,
    label_column: str | None = None,
    max_classes: int | None = None,
) -> TextTable:
    """Parse a CSV (or TSV) of labelled sentences; bad rows are skipped and listed, bad files refused.

    Refused with a ValueError saying what to change: no text or label column, no usable row,
    fewer than two labels; more than `max_classes` labels (a LearnerError). Skipped (listed in `skipped`): rows with an empty text or label.
    An optional `split` column with train / val values keeps a fixed held-out split.
    """
    rows = _csv_rows(content, name)
    if not rows:
        raise ValueError(f"{name}: the file is empty; it needs a header row with text and label columns")
    header, body = rows[0], rows[1:]
    ti = _pick_column(header, text_column, TEXT_COLUMNS, "text", name)
    li = _pick_column(header, label_column, LABEL_COLUMNS, "label", name)
    lowered = [h.strip().lower() for h in header]
    si = lowered.index("split") if "split" in lowered else None

    texts, labels, splits, skipped = _labelled_rows(body, ti, li, si)
    if not texts:
        raise ValueError(f"{name}: no row has both a text and a label")
    distinct = sorted(set(labels))
    if max_classes is not None:
        from tlcore.data.datasets import check_class_count

        check_class_count(len(distinct), max_classes, name)
    if len(distinct) < 2:
        raise ValueError(f"{name}: only one label ({distinct[0]!r}) in the label column; a classifier needs at least two")
    return TextTable(texts, labels, splits if si is not None else None, skipped)


def _csv_rows(content: str | bytes, name: str) -> list[list[str]]:
    """The file's rows: comma- or tab-separated, whichever the header uses more."""
    text = decode(content, name) if isinstance(content, bytes) else content.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    # Tab-separated files (SST-2, NSMC) do not quote: a quote mark in a review is just a character.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting))
    except csv.Error as error:  # e.g. "field larger than field limit (131072)"
        from tlcore.core.messages import LearnerError

        if "field larger" in str(error):
            raise LearnerError("csv.field_too_large", name=name, kb=csv.field_size_limit() // 1024) from None
        raise LearnerError("csv.unreadable", name=name, error=str(error)) from None


def _labelled_rows(body: list[list[str]], ti: int, li: int, si: int | None):
    """(texts, labels, splits, skipped): the rows that have a text, a label and a known split."""
    texts, labels, splits, skipped = [], [], [], []
    for n, row in enumerate(body, start=2):  # row 1 is the header, as a spreadsheet counts
        if not any(cell.strip() for cell in row):
            continue  # a blank line is not worth reporting
        sentence, label = _cell(row, ti), _cell(row, li)
        if not sentence:
            skipped.append((f"row {n}", "empty text"))
            continue
        if not label:
            skipped.append((f"row {n}", "empty label"))
            continue
        split = _cell(row, si).lower() if si is not None else "train"
        if split not in TRAIN_SPLITS | VAL_SPLITS:
            skipped.append((f"row {n}", f"unknown split {split!r} (use train or val)"))
            continue
        texts.append(sentence)
        labels.append(label)
        splits.append("train" if split in TRAIN_SPLITS else "val")
    return texts, labels, splits, skipped


def _cell(row: list[str], i: int) -> str:
    return row[i].strip() if i < len(row) else ""  # short rows: missing cells are empty


def read_text_csv(path: str | os.PathLike, **kwargs) -> TextTable:
    """parse_text_csv on a file on disk (the name in messages is the file's name)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"text file {str(path)!r} does not exist; give a CSV file with text and label columns")
    return parse_text_csv(path.read_bytes(), name=path.name, **kwargs)


# ----------------------------------------------------------------------------- sampling


def sample_table(
    table: TextTable,
    *,
    per_class: int,
    val_per_class: int,
    seed: int,
    name: str = "dataset",
    label_names: dict[str, str] | None = None,
) -> TextData:
    """Seeded per-class sample: up to per_class training and val_per_class validation sentences.

    With a split column the held-out rows come from it; otherwise validation is drawn first
    from each class (so changing the training size never changes the test), keeping at
    least one sentence per class for training.
    """
    label_names = label_names or {}
    raw_classes = sorted(set(table.labels))
    if all(c.lstrip("-").isdigit() for c in raw_classes):
        raw_classes.sort(key=int)  # 0, 1, 2, ..., 10 rather than 0, 1, 10, 2
    index = {c: i for i, c in enumerate(raw_classes)}
    y = np.array([index[lab] for lab in table.labels])
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c, cls in enumerate(raw_classes):
        rows = np.flatnonzero(y == c)
        if table.splits is not None:
            tr = rng.permutation([i for i in rows if table.splits[i] == "train"])
            va = rng.permutation([i for i in rows if table.splits[i] == "val"])
        else:
            if len(rows) < 2:
                raise ValueError(
                    f"{name}: label {cls!r} has only {len(rows)} row; each label needs at least 2 "
                    "(one to train on, one to check the model)"
                )
            rows = rng.permutation(rows)
            k = min(val_per_class, len(rows) - 1)
            va, tr = rows[:k], rows[k:]
        if len(tr) == 0:
            raise ValueError(f"{name}: label {cls!r} has no row with split=train; mark some of its rows as train")
        if len(va) == 0:
            raise ValueError(f"{name}: label {cls!r} has no row with split=val; mark some of its rows as val")
        train.extend(tr[:per_class])
        val.extend(va[:val_per_class])
    pick = lambda idx: ([table.texts[i] for i in idx], torch.as_tensor(y[idx], dtype=torch.int64))  # noqa: E731
    (tx, ty), (vx, vy) = pick(np.array(train, dtype=int)), pick(np.array(val, dtype=int))
    classes = [label_names.get(c, c) for c in raw_classes]
    return TextData(classes, tx, ty, vx, vy, list(table.skipped))


# ----------------------------------------------------------------------------- registry loaders


def load_sample(lang: str):
    """Loader for the shipped sentiment sample in `lang` (assets/text/sentiment_<lang>.csv)."""

    def load(*, per_class, val_per_class, seed=0, **_) -> TextData:
        return sample_table(
            read_text_csv(SAMPLES[lang]), per_class=per_class, val_per_class=val_per_class, seed=seed, name=f"sentiment_{lang}"
        )

    return load


def load_csv(*, per_class, val_per_class, seed=0, root="", **_) -> TextData:
    """The user's own CSV file (RunConfig.data_root): text and label columns, optional split."""
    if not root:
        raise ValueError("dataset text_csv needs a CSV file: set data_root (--data-root) to its path")
    return sample_table(read_text_csv(root), per_class=per_class, val_per_class=val_per_class, seed=seed, name=Path(root).name)


# Downloadable sets: plain files fetched once into CACHE_DIR (no `datasets` package needed).
DOWNLOADS = {
    "sst2": {
        "url": "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
        "files": {"train": "SST-2/train.tsv", "val": "SST-2/dev.tsv"},
        "labels": {"0": "negative", "1": "positive"},
    },
    "nsmc": {
        "url": "https://raw.githubusercontent.com/e9t/nsmc/master/",
        "files": {"train": "ratings_train.txt", "val": "ratings_test.txt"},
        "labels": {"0": "negative", "1": "positive"},
    },
}


def download_text_set(name: str) -> Path:
    """Fetch SST-2 or NSMC into CACHE_DIR/<name> (once) and return that folder."""
    info, folder = DOWNLOADS[name], CACHE_DIR / name
    wanted = [folder / Path(f).name for f in info["files"].values()]
    if all(p.is_file() for p in wanted):
        return folder
    if not offline.reachable(info["url"]):
        raise TextDataUnavailable(
            f"{name} is not downloaded and this machine is offline: run `python -m tlcore prefetch --datasets {name}` "
            "when online, or pick an offline sample (sentiment_en, sentiment_ko) or your own CSV (text_csv)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if info["url"].endswith(".zip"):
            raw = urllib.request.urlopen(info["url"], timeout=DOWNLOAD_TIMEOUT_S).read()
            with zipfile.ZipFile(io.BytesIO(raw)) as z:
                for member in info["files"].values():
                    (folder / Path(member).name).write_bytes(z.read(member))
        else:
            for member in info["files"].values():
                raw = urllib.request.urlopen(info["url"] + member, timeout=DOWNLOAD_TIMEOUT_S).read()
                (folder / member).write_bytes(raw)
    except OSError as e:
        raise TextDataUnavailable(
            f"downloading {name} failed ({e}); try `python -m tlcore prefetch --datasets {name}` again"
        ) from e
    return folder


def load_download(name: str):
    """Loader for a downloadable set: its own train and test files become our train / val split."""

    def load(*, per_class, val_per_class, seed=0, root="", **_) -> TextData:
        info = DOWNLOADS[name]
        folder = Path(root) if root else download_text_set(name)
        texts, labels, splits, skipped = [], [], [], []
        for split, member in info["files"].items():
            part = read_text_csv(folder / Path(member).name)
            texts += part.texts
            labels += part.labels
            splits += [split] * len(part.texts)
            skipped += part.skipped
        return sample_table(
            TextTable(texts, labels, splits, skipped),
            per_class=per_class,
            val_per_class=val_per_class,
            seed=seed,
            name=name,
            label_names=info["labels"],
        )

    return load
