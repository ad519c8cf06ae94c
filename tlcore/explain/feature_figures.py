"""`python -m tlcore feature-space`: a feature view's figures (both bodies' probes, their gap, and its
times against one plain forward pass in the same process), for the README and the notes.

Not for: the view itself (tlcore.explain.feature_space).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from tlcore.core import commands
from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.explain.feature_space import METHODS, FeatureSpaces, Request, feature_view, load_data
from tlcore.models import catalog
from tlcore.train.config import run_flags


def cmd_feature_space(args) -> int:
    """The figures of a feature view, for the README and the note.

    Per seed: both probes for both bodies, and the time of a cold view (wall and CPU seconds: what
    one thread needs on an idle core), of the view again with its features kept, and of a view the
    worker kept; against one plain forward pass over the same images, in the same process."""
    if args.task not in VIEW_TASKS:
        raise ValueError(f"a feature view is of task {' or '.join(VIEW_TASKS)}; got {args.task!r}")
    torch.set_num_threads(args.threads)
    from tlcore.train import presets

    preset = presets.image() if args.task == "image" else presets.text()
    backbone, dataset = args.backbone or preset.backbone, args.dataset or preset.dataset
    size = args.image_size if args.task == "image" else 0
    for seed in args.seeds:
        request = Request(args.task, backbone, dataset, args.per_class, args.val_per_class, size, seed, method=args.method)
        view, timing = _timed_view(request)
        _print_view(view, timing, backbone=backbone, dataset=dataset, seed=seed, method=args.method)
    return 0


VIEW_TASKS = ("image", "text")


@dataclass(frozen=True)
class FeatureSpaceOptions:
    seeds: tuple[int, ...] = commands.seeds((0,))
    method: str = setting("pca", "2-D projection", METHODS)
    threads: int = commands.threads(1, "1: what the app's server gives work beside pages on a 2-core CPU")


FEATURE_SPACE = Command(
    "feature-space",
    "a feature view's figures: probes of the pretrained and the random body, and its times",
    cmd_feature_space,
    flags=(
        run_flags(
            only=("task", "backbone", "dataset", "per_class", "val_per_class", "image_size"),
            defaults={"backbone": None, "dataset": None, "per_class": 30, "val_per_class": 20},
        ),
        Flags(FeatureSpaceOptions),
    ),
    description=" ".join(cmd_feature_space.__doc__.split()) + " Without --backbone, --dataset: the task's app defaults.",
)


def _timed_view(request: Request):
    """The view and its times: cold (wall, CPU), with features kept, kept whole; the baseline."""
    spaces = FeatureSpaces(nice=0)
    t0, cpu0 = time.perf_counter(), time.process_time()
    spaces.start(request)
    status = spaces.wait(request, timeout=3600)
    cold, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    if status.state != "done":
        raise SystemExit(f"failed: {status.error}")
    view = status.view
    t1 = time.perf_counter()
    feature_view(request)  # the features are kept: projection and probes again
    warm = time.perf_counter() - t1
    t2 = time.perf_counter()
    spaces.status(request)
    kept = time.perf_counter() - t2
    baseline = _forward_baseline(request) if request.task == "image" else float("nan")
    return view, (cold, cpu, warm, kept, baseline)


def _print_view(view, timing, *, backbone: str, dataset: str, seed: int, method: str) -> None:
    """Both bodies' probes, their gap, and the times, as main prints them."""
    cold, cpu, warm, kept, baseline = timing
    pre, rand = view.spaces.get("pretrained"), view.spaces["random"]
    print(f"seed {seed}: {backbone} on {dataset}, {len(view.labels)} train / {view.n_val} val, {method}")
    for space in filter(None, (pre, rand)):
        print(
            f"  {space.kind:10s} linear probe {space.probe_acc:.3f}  nearest class mean {space.ncm_acc:.3f}  "
            f"({space.dim} features, embedded in {space.embed_s:.2f} s)"
        )
    if pre is not None:
        print(
            f"  gap (pretrained - random): linear probe {100 * (pre.probe_acc - rand.probe_acc):+.1f} points, "
            f"nearest class mean {100 * (pre.ncm_acc - rand.ncm_acc):+.1f} points"
        )
    print(
        f"  cold view {cold:.2f} s, {cpu:.2f} s of CPU ({', '.join(f'{k} {v:.2f}' for k, v in view.timings.items())}); "
        f"features kept {warm:.2f} s; view kept {1000 * kept:.3f} ms; "
        f"baseline forward pass {baseline:.2f} s (cold / baseline {cold / baseline:.1f}x)"
    )


def _forward_baseline(request: Request) -> float:
    """Seconds of one plain forward pass of the pretrained model over the view's train + val images."""
    data = load_data(request)
    name, pretrained, _ = catalog.resolve_pretrained(request.backbone, "auto")
    model = catalog.build_model(name, data.num_classes, pretrained=pretrained, image_size=request.image_size).eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for x in (data.train_x, data.val_x):
            for i in range(0, len(x), 256):
                model(x[i : i + 256])
    return time.perf_counter() - t0


if __name__ == "__main__":  # the same command as `python -m tlcore feature-space`
    raise SystemExit(commands.main(commands.parser_alone(FEATURE_SPACE, prog="python -m tlcore.explain.feature_figures")))
