"""The experiments on the command line: ``python -m tlcore matrix``, ``transfer-depth`` and
``filters`` (``MATRIX``, ``TRANSFER_DEPTH``, ``FILTERS``, listed in tlcore.cli), each writing its results
to ``assets/results/`` with the command that made them.

Not for: the experiments themselves (matrix, matrix_report, transfer_depth, filters).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from tlcore.core import commands
from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.lab.experiments.filters import filters_image
from tlcore.lab.experiments.matrix import MatrixSettings, run_matrix, summarise_matrix
from tlcore.lab.experiments.matrix_report import matrix_markdown, resummarise_matrix, write_matrix
from tlcore.lab.experiments.results import RESULTS_DIR
from tlcore.lab.experiments.transfer_depth import TransferDepthSettings, run_transfer_depth, write_transfer_depth
from tlcore.train.config import run_flags


def _command() -> str:
    return shlex.join(["python", "-m", "tlcore", *sys.argv[1:]])


def _set_threads(threads: int) -> None:
    if threads:
        # This process only (a CLI run): on a shared CPU, fewer threads wait less on each other.
        torch.set_num_threads(threads)


def _cli_matrix(args: argparse.Namespace) -> int:
    if args.resummarise:
        payload = resummarise_matrix(args.name, args.out)
        print(matrix_markdown(pd.DataFrame(payload["table"]), payload["verdicts"], payload))
        return 0
    _set_threads(args.threads)
    settings = MatrixSettings(
        similar=args.similar,
        different=args.different,
        small=args.small,
        large=args.large,
        val_per_class=args.val_per_class,
        seeds=args.seeds,
        small_epochs=args.small_epochs,
        large_epochs=args.large_epochs,
        device=args.device,
        backbone=args.backbone,
        image_size=args.image_size,
        freeze_depth=args.freeze_depth,
    )
    start = time.perf_counter()
    runs = run_matrix(settings, cells=tuple(c.strip() for c in args.cells.split(",") if c.strip()))
    payload = write_matrix(runs, settings, Path(args.out), _command(), time.perf_counter() - start, args.name)
    print(matrix_markdown(summarise_matrix(runs), payload["verdicts"], payload))
    return 0


def _cli_transfer_depth(args: argparse.Namespace) -> int:
    _set_threads(args.threads)
    settings = TransferDepthSettings(
        dataset=args.dataset,
        per_class=args.per_class,
        seeds=args.seeds,
        epochs=args.epochs,
        device=args.device,
        backbone=args.backbone,
        image_size=args.image_size,
    )
    start = time.perf_counter()
    runs = run_transfer_depth(settings)
    write_transfer_depth(runs, settings, Path(args.out), _command(), time.perf_counter() - start, args.name)
    print((Path(args.out) / f"{args.name}.md").read_text(encoding="utf-8"))
    return 0


def _cli_filters(args: argparse.Namespace) -> int:
    print(f"wrote {filters_image(args.out, backbone=args.backbone)}")
    return 0


_M = MatrixSettings()
_T = TransferDepthSettings()


@dataclass(frozen=True)
class MatrixOptions:
    similar: str = setting(_M.similar, "target similar to the pretraining data")
    different: str = setting(_M.different, "target different from it")
    small: int = setting(_M.small, "examples per class, small cells", lo=1, hi=100_000)
    large: int = setting(_M.large, "examples per class, large cells", lo=1, hi=100_000)
    seeds: tuple[int, ...] = commands.seeds(_M.seeds)
    small_epochs: int = setting(_M.small_epochs, "epochs in small cells", lo=1, hi=500)
    large_epochs: int = setting(_M.large_epochs, "epochs in large cells", lo=1, hi=500)
    cells: str = setting("", "only these cells, e.g. different/small,similar/large (empty: all four)")
    threads: int = commands.threads(0, "1 is faster on a busy machine")
    out: str = setting(str(RESULTS_DIR), "folder for the results")
    name: str = setting("matrix", "file stem: <name>.csv/.json/.md")
    resummarise: bool = setting(False, "train nothing: rewrite <name>.csv/.json/.md from the committed <name>_runs.csv")


@dataclass(frozen=True)
class TransferDepthOptions:
    seeds: tuple[int, ...] = commands.seeds(_T.seeds)
    name: str = setting("transfer_depth", "file stem: <name>.csv/.json/.md")
    threads: int = commands.threads(0)
    out: str = setting(str(RESULTS_DIR), "folder for <name>.csv/.json/.md")


@dataclass(frozen=True)
class FiltersOptions:
    out: str = setting(str(RESULTS_DIR / "filters.png"), "PNG path")


MATRIX = Command(
    "matrix",
    "reproduce the similarity x size matrix by experiment",
    _cli_matrix,
    flags=(
        Flags(MatrixOptions),
        run_flags(
            only=("backbone", "val_per_class", "image_size", "freeze_depth", "device"),
            defaults={
                "backbone": _M.backbone,
                "val_per_class": _M.val_per_class,
                "image_size": _M.image_size,
                "freeze_depth": _M.freeze_depth,  # None: the rule's depth for each column
                "device": _M.device,
            },
        ),
    ),
    description="Race scratch, linear probe, partial and full fine-tuning in the four "
    "cells (similar/different x small/large) over several seeds. Without --freeze-depth, partial "
    "freezes the rule's depth for each column (strategies.recommend for this backbone).",
)
TRANSFER_DEPTH = Command(
    "transfer-depth",
    "accuracy against the number of groups transferred (Yosinski et al. 2014, in small)",
    _cli_transfer_depth,
    flags=(
        run_flags(
            only=("backbone", "dataset", "per_class", "image_size", "epochs", "device"),
            defaults={k: getattr(_T, k) for k in ("backbone", "dataset", "per_class", "image_size", "epochs", "device")},
        ),
        Flags(TransferDepthOptions),
    ),
    description="Copy the first k groups of the pretrained backbone and re-initialise the rest, for k = 0..all; "
    "the copied groups frozen, or fine-tuned too. (The app's freeze-depth sweep is different: "
    "every group starts pretrained and the first k are frozen.)",
)
FILTERS = Command(
    "filters",
    "first-layer filters, pretrained vs random, as a PNG",
    _cli_filters,
    flags=(Flags(FiltersOptions), run_flags(only=("backbone",), defaults={"backbone": "studio_resnet"})),
    description="Draw the first-layer filters of --backbone's stem, pretrained and randomly initialised, as one PNG.",
)
