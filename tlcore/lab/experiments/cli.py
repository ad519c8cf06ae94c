"""The experiments on the command line: ``python -m tlcore matrix``, ``transfer-depth`` and
``filters`` (``register_cli``, listed in tlcore.cli.COMMAND_MODULES), each writing its results
to ``assets/results/`` with the command that made them.

Not for: the experiments themselves (matrix, matrix_report, transfer_depth, filters).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from tlcore.lab.experiments.filters import filters_image
from tlcore.lab.experiments.matrix import MatrixSettings, run_matrix, summarise_matrix
from tlcore.lab.experiments.matrix_report import matrix_markdown, resummarise_matrix, write_matrix
from tlcore.lab.experiments.results import RESULTS_DIR
from tlcore.lab.experiments.transfer_depth import TransferDepthSettings, run_transfer_depth, write_transfer_depth
from tlcore.train.config import add_config_args


def _seeds(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s.strip())


def register_cli(subparsers) -> None:
    """The lab's experiments on the command line: matrix, transfer-depth, filters."""
    _register_matrix(subparsers)
    _register_transfer_depth(subparsers)
    p = subparsers.add_parser(
        "filters",
        help="first-layer filters, pretrained vs random, as a PNG",
        description="Draw the first-layer filters of --backbone's stem, pretrained and randomly initialised, as one PNG.",
    )
    p.add_argument("--out", default=str(RESULTS_DIR / "filters.png"), help="PNG path (default %(default)s)")
    add_config_args(p, only=("backbone",), defaults={"backbone": "studio_resnet"})
    p.set_defaults(func=lambda args: print(f"wrote {filters_image(args.out, backbone=args.backbone)}") or 0)


def _register_matrix(subparsers) -> None:
    d = MatrixSettings()
    p = subparsers.add_parser(
        "matrix",
        help="reproduce the similarity x size matrix by experiment",
        description="Race scratch, linear probe, partial and full fine-tuning in the four "
        "cells (similar/different x small/large) over several seeds. Without --freeze-depth, partial "
        "freezes the rule's depth for each column (strategies.recommend for this backbone).",
    )
    p.add_argument("--similar", default=d.similar, help="target similar to the pretraining data (default %(default)s)")
    p.add_argument("--different", default=d.different, help="target different from it (default %(default)s)")
    p.add_argument("--small", type=int, default=d.small, help="examples per class, small cells (default %(default)s)")
    p.add_argument("--large", type=int, default=d.large, help="examples per class, large cells (default %(default)s)")
    p.add_argument("--seeds", default="0,1,2", help="which seeds, a comma-separated list (default %(default)s)")
    p.add_argument("--small-epochs", type=int, default=d.small_epochs, help="epochs in small cells")
    p.add_argument("--large-epochs", type=int, default=d.large_epochs, help="epochs in large cells")
    p.add_argument("--cells", default="", help="only these cells, e.g. different/small,similar/large (default: all four)")
    add_config_args(
        p,
        only=("backbone", "val_per_class", "image_size", "freeze_depth", "device"),
        defaults={
            "backbone": d.backbone,
            "val_per_class": d.val_per_class,
            "image_size": d.image_size,
            "freeze_depth": d.freeze_depth,  # None: the rule's depth for each column
            "device": d.device,
        },
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch, 0 = torch's default (default: %(default)s; 1 is faster on a busy machine)",
    )
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder for the results (default %(default)s)")
    p.add_argument("--name", default="matrix", help="file stem: <name>.csv/.json/.md (default %(default)s)")
    p.add_argument(
        "--resummarise",
        action="store_true",
        help="train nothing: rewrite <name>.csv/.json/.md from the committed <name>_runs.csv",
    )
    p.set_defaults(func=_cli_matrix)


def _register_transfer_depth(subparsers) -> None:
    s = TransferDepthSettings()
    p = subparsers.add_parser(
        "transfer-depth",
        help="accuracy against the number of groups transferred (Yosinski et al. 2014, in small)",
        description="Copy the first k groups of the pretrained backbone and re-initialise the rest, for k = 0..all; "
        "the copied groups frozen, or fine-tuned too. (The app's freeze-depth sweep is different: "
        "every group starts pretrained and the first k are frozen.)",
    )
    add_config_args(
        p,
        only=("backbone", "dataset", "per_class", "image_size", "epochs", "device"),
        defaults={
            "backbone": s.backbone,
            "dataset": s.dataset,
            "per_class": s.per_class,
            "image_size": s.image_size,
            "epochs": s.epochs,
            "device": s.device,
        },
    )
    p.add_argument("--seeds", default="0,1,2", help="which seeds, a comma-separated list (default %(default)s)")
    p.add_argument("--name", default="transfer_depth", help="file stem: <name>.csv/.json/.md (default %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch, 0 = torch's default (default: %(default)s)")
    p.add_argument("--out", default=str(RESULTS_DIR), help="folder for <name>.csv/.json/.md")
    p.set_defaults(func=_cli_transfer_depth)


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
        seeds=_seeds(args.seeds),
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
        seeds=_seeds(args.seeds),
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
