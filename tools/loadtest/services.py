"""What each request-time service costs the server's memory, one at a time, in one process:
the peak above its start and what stays after (C heap given back, as the server's janitor does).

    python -m tools.loadtest.services                 # image: feature space, Grad-CAM, ONNX, the zip
    python -m tools.loadtest.services --parts         # the feature space's steps: data, each body, its features
    python -m tools.loadtest.services --text          # the text model's ONNX export, zips, feature space
    python -m tools.loadtest.services --learners 3    # what 3 learners' feature views leave behind
    python -m tools.loadtest.services --first-views   # pages 1 and 3's first feature views: cold, first panel, kept rows
    python -m tools.loadtest.services --session       # the server's memory after a text run, the
                                                      # masked-word demo and a freeze-depth sweep

No server and no browser (tools.loadtest.hammer drives those): this says which service holds
what, so a change to one can be measured against its own figure. RSS is sampled every 5 ms.
Issue 29, item 2; figures in docs/class-load.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import threading
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(name: str, fn) -> None:
    """Run fn() once; print the peak RSS above the start and what stays after."""
    from tlcore.serve.machine import return_freed_memory

    gc.collect()
    return_freed_memory()
    start, stop = rss_mb(), threading.Event()
    peak = [start]

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            stop.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    stop.set()
    sampler.join()
    del out
    gc.collect()
    return_freed_memory()
    print(
        f"{name:30s} start {start:6.0f} MB  peak +{peak[0] - start:5.0f} MB  after +{rss_mb() - start:5.0f} MB  {seconds:5.1f} s",
        flush=True,
    )


def image_services(parts: bool) -> None:
    from skimage import data as photos

    from tlcore.explain import feature_space, gradcam
    from tlcore.models import catalog
    from tlcore.takehome import model_files
    from tlcore.train import presets
    from tlcore.train.finetuned import Finetuned

    config = presets.image()
    model = catalog.build_model(config.backbone, 10, pretrained=True, image_size=config.image_size).eval()
    entry = Finetuned(model, tuple(str(i) for i in range(10)), config.image_size, config.backbone, config.to_dict())
    request = feature_space.Request(
        "image", config.backbone, config.dataset, config.per_class, config.val_per_class, config.image_size, 0
    )
    if parts:
        data = feature_space.load_data(request)
        for kind, _name, build in feature_space._bodies(request, data.num_classes):
            body = build()
            measure(f"features, {kind} body", lambda body=body: feature_space.image_features(body, data))
        return
    measure("feature space (PCA)", lambda: feature_space.feature_view(request))
    measure(
        "feature space (t-SNE)", lambda: feature_space.feature_view(feature_space.Request(**{**vars(request), "method": "tsne"}))
    )
    measure(
        "feature space + fine-tuned",
        lambda: feature_space.feature_view(feature_space.Request(**{**vars(request), "finetuned_id": "x"}), finetuned=entry),
    )
    photo = photos.astronaut()
    measure("Grad-CAM (the run's size)", lambda: gradcam.class_map(model, photo, size=config.image_size))
    measure("Grad-CAM (224 px)", lambda: gradcam.class_map(model, photo, size=224))
    folder = Path(tempfile.mkdtemp())
    measure("ONNX export", lambda: model_files.export_onnx(entry, folder / "model.onnx"))
    measure("zip: weights and ONNX", lambda: model_files.zip_bytes(entry))


def text_services() -> None:
    from tlcore.explain import feature_space
    from tlcore.takehome import model_files
    from tlcore.text.bert import build_text_model
    from tlcore.train import presets
    from tlcore.train.finetuned import Finetuned

    config = presets.text()
    model = build_text_model(config.backbone, 2, pretrained=True)
    entry = Finetuned(model, ("a", "b"), 0, config.backbone, config.to_dict(), task="text")
    folder = Path(tempfile.mkdtemp())
    measure("text ONNX export", lambda: model_files.export_onnx(entry, folder / "model.onnx"))
    measure("text zip: weights", lambda: model_files.zip_bytes(entry, parts=("weights",)))
    measure("text zip: ONNX", lambda: model_files.zip_bytes(entry, parts=("onnx",)))
    request = feature_space.Request("text", config.backbone, config.dataset, config.per_class, config.val_per_class, 0, 0)
    measure("text feature space", lambda: feature_space.feature_view(request))


def learners_views(learners: int) -> None:
    """What a burst of feature views leaves behind: `learners` default fine-tunes (the hammer's
    set-up), then each learner's PCA and t-SNE views with their own fine-tuned body; the resident
    memory after each, the C heap given back (as the server's janitor does)."""
    import dataclasses

    from tlcore.explain import feature_space
    from tlcore.serve.machine import return_freed_memory
    from tlcore.train import presets
    from tlcore.train.recipe import run

    def settle(label: str) -> float:
        gc.collect()
        return_freed_memory()
        print(f"{label:44s} {rss_mb():6.0f} MB", flush=True)
        return rss_mb()

    feature_space.load_libraries()  # as the server's warm-up does
    config = presets.image()
    models = [run(config.replace(seed=seed), lambda _event: None).model for seed in range(learners)]
    start = settle(f"after {learners} default fine-tunes (the start)")
    request = feature_space.Request(
        "image", config.backbone, config.dataset, config.per_class, config.val_per_class, config.image_size, config.data_seed
    )
    for i, model in enumerate(models):
        for method in ("pca", "tsne"):
            feature_space.feature_view(dataclasses.replace(request, finetuned_id=f"m{i}", method=method), finetuned=model)
        after = settle(f"learner {i + 1}'s PCA and t-SNE views")
    print(f"left behind by {learners} learners' views: {after - start:+.0f} MB")


def heap() -> dict[str, float]:
    """glibc's own count of its heap over every arena (mallinfo2), MB: in use by the program, and in
    free chunks (resident until `return_freed_memory` gives their whole pages back); {} where it is not glibc."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"
        )]  # fmt: skip

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):
        return {}
    info = libc.mallinfo2()
    # free chunks: after a trim their whole pages are given back, so this is not all resident
    return {"in use": (info.uordblks + info.hblkhd) / 2**20, "free chunks": info.fordblks / 2**20}


def resident() -> dict[str, float]:
    """Resident memory by kind, MB (/proc/self/smaps_rollup): the program's own pages (anonymous)
    and the mapped files (torch's and the other libraries' code, shared with other processes)."""
    fields = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0]) / 1024
    return {
        "rss": fields.get("Rss", 0.0),
        "anonymous": fields.get("Anonymous", 0.0),
        "files": fields.get("Rss", 0.0) - fields.get("Anonymous", 0.0),
    }


def kept() -> dict[str, float]:
    """What the engine's bounded stores hold now, MB (tlcore.core.bounded): the loaded datasets, the
    runs' frozen-prefix features, the pretrained templates, the feature space's rows."""
    from tlcore.core.bounded import tensor_bytes
    from tlcore.data import datasets, feature_cache
    from tlcore.explain import feature_space
    from tlcore.models import backbones

    mb = {
        "datasets": sum(tensor_bytes(v) for _k, v in datasets._data_cache.items()),
        "prefix features": feature_cache.shared.total,
        "feature-space rows": feature_space._rows.total,
    }
    mb["pretrained templates"] = sum(tensor_bytes(list(m.state_dict().values())) for _k, m in backbones._TEMPLATES.items())
    return {k: v / 2**20 for k, v in mb.items()}


def session(warm: bool) -> None:
    """A text run, the masked-word demo and the freeze-depth sweep, one after the other, each
    submitted to the server's queue as its page does (`tlcore.serve.server_queue`, one learner);
    after each, the resident memory with the C heap given back as the server's janitor does, its
    change from the server at rest, and what holds it. The sweep's runs: where their time went."""
    from tlcore.models import catalog
    from tlcore.serve import server_queue
    from tlcore.serve.machine import return_freed_memory
    from tlcore.text.mlm_live import live_config
    from tlcore.train import presets, recipe

    def settle(label: str, seconds: float | None = None) -> float:
        gc.collect()
        before_trim = rss_mb()
        return_freed_memory()
        now = resident()
        extra = "" if seconds is None else f"  {seconds:6.1f} s"
        print(
            f"{label:34s} RSS {now['rss']:6.0f} MB ({now['rss'] - start:+6.0f} MB from rest; {before_trim:.0f} MB before the trim)"
            f"  anonymous {now['anonymous']:5.0f}  files {now['files']:4.0f}{extra}",
            flush=True,
        )
        print(
            "    heap: "
            + ", ".join(f"{k} {v:.0f}" for k, v in heap().items())
            + "  kept: "
            + ", ".join(f"{k} {v:.0f}" for k, v in kept().items()),
            flush=True,
        )
        return now["rss"]

    start = 0.0
    queue = server_queue()
    if warm:  # as the server's warm-up does (studio.server._warm_up), before the class comes
        for config in presets.warm_ups():
            recipe.warm_up(config)
    start = settle("at rest" + (" (warmed up)" if warm else ""))

    def job(label: str, configs, **options):
        t0 = time.perf_counter()
        job_id = queue.submit(configs, "session-learner", labels=[label] * len(configs), **options)
        deadline = time.monotonic() + 3600
        # the page's poll: each look is the job's heartbeat (a job nobody looks at for 300 s is stopped)
        while not queue.wait_until_ended(job_id, "session-learner", timeout=5):
            queue.get(job_id, "session-learner")
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: not done in an hour")
        seconds = time.perf_counter() - t0
        view = queue.get(job_id, "session-learner", heartbeat=False)
        if view.state != "done":
            raise SystemExit(f"{label}: {view.state}")
        settle(f"after {label}", seconds)
        return view

    job("a text run", [presets.text()], keep_model=True)  # the Text page keeps the learner's model
    job("the masked-word demo", [live_config()])
    image = presets.image()
    depths = range(len(catalog.group_param_counts(image.backbone)))  # page 4: 0 .. every body group
    sweep = job("a freeze-depth sweep", [image.replace(strategy="partial", freeze_depth=d) for d in depths])
    print("the sweep's runs (seconds in each part; train and eval added over the epochs):")
    for config, snap in zip(sweep.configs, sweep.runs, strict=True):
        timing = snap.result.timing
        parts = {k: sum(v) if isinstance(v, list) else v for k, v in timing.items()}
        print(
            f"    k={config.freeze_depth}  val_acc {snap.result.val_acc:.3f}  {snap.result.seconds:5.1f} s: "
            + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()),
            flush=True,
        )


def first_views(rounds: int) -> None:
    """Pages 1 and 3's first feature views (the default data: 30 and 20 per class, the same 20 per
    class for validation), in one process, each `rounds` times:
    - page 1 cold: wall and CPU seconds to the whole view and to its first (pretrained) panel;
    - page 3 cold (no rows kept: what every first view of page 3 cost before) and page 3 after
      page 1 (its rows kept), alternating, so a busy machine slows both alike."""
    import numpy as np

    from tlcore.data import feature_cache
    from tlcore.explain import feature_space

    feature_space.load_libraries()  # as the server's warm-up does
    page1, page3 = feature_space.first_views()
    feature_space.load_data(page1), feature_space.load_data(page3)  # the data, as the warm-up's runs leave it

    def timed(request) -> tuple[float, float, float, feature_space.FeatureView]:
        first = []
        t0, cpu0 = time.perf_counter(), time.process_time()
        view = feature_space.feature_view(request, on_space=lambda _v: first.append(time.perf_counter() - t0))
        return time.perf_counter() - t0, time.process_time() - cpu0, first[0] if first else float("nan"), view

    def forget() -> None:  # nothing computed kept: the views' rows, nor the runs' prefix features
        feature_space._rows.clear()
        feature_cache.shared.clear()

    for i in range(rounds):
        forget()
        cold3, cpu3, _f, view3 = timed(page3)
        forget()
        cold1, cpu1, first1, _view = timed(page1)
        kept3, kcpu3, _f, again3 = timed(page3)
        same = all(
            np.allclose(view3.spaces[k].coords, again3.spaces[k].coords, atol=1e-4)
            and view3.spaces[k].probe_acc == again3.spaces[k].probe_acc
            for k in view3.spaces
        )
        print(
            f"round {i + 1}: page 1 cold {cold1:5.2f} s ({cpu1:5.2f} s CPU), its pretrained panel at {first1:5.2f} s; "
            f"page 3 cold {cold3:5.2f} s ({cpu3:5.2f} s CPU), page 3 after page 1 {kept3:5.2f} s ({kcpu3:5.2f} s CPU, "
            f"{'the same view' if same else 'A DIFFERENT VIEW'})",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", action="store_true", help="the feature space's steps one by one")
    ap.add_argument("--text", action="store_true", help="the text model's services")
    ap.add_argument("--learners", type=int, default=0, help="instead: what N learners' feature views leave behind")
    ap.add_argument("--first-views", action="store_true", help="instead: pages 1 and 3's first feature views")
    ap.add_argument("--rounds", type=int, default=2, help="--first-views: how many times")
    ap.add_argument("--session", action="store_true", help="instead: a text run, the masked-word demo and a sweep")
    ap.add_argument("--cold", action="store_true", help="--session without the server's warm-up first")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a busy server's share)")
    args = ap.parse_args(argv)
    import torch

    if args.first_views:
        torch.set_num_threads(args.threads)
        first_views(args.rounds)
        return 0
    if args.session:  # the queue sets each run's threads, as on the server
        session(warm=not args.cold)
        return 0
    torch.set_num_threads(args.threads)
    if args.learners:
        learners_views(args.learners)
    elif args.text:
        text_services()
    else:
        image_services(args.parts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
