"""`python -m tlcore upload-bench`: what hostile or heavy uploads cost the server.

Each case runs in a fresh process (peak memory is a per-process high-water mark) and
prints its CPU seconds, wall seconds and peak resident memory above the process's start:

- many tiny images: 4,998 4x4 PNGs (a 1 MB zip) checked as the app checks an upload
  (32 px), then loaded for a run at 224 px (the page's largest size);
- huge PNGs: 200 PNGs of 8000x5000 (40 MP each; a 0.2 MB zip);
- phone photos: 24 JPEGs of 4000x3000 (12 MP).
"""

from __future__ import annotations

import gc
import io
import multiprocessing
import resource
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass

import numpy as np

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting


def _zip(files: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _image(array: np.ndarray, fmt: str, **kw) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kw)
    return buf.getvalue()


def _tiny() -> bytes:
    rng = np.random.default_rng(0)
    return _zip({f"{'ab'[i % 2]}/{i}.png": _image(rng.integers(0, 255, (4, 4, 3), dtype=np.uint8), "PNG") for i in range(4998)})


def _huge() -> bytes:
    one = _image(np.full((5000, 8000, 3), (120, 30, 200), np.uint8), "PNG")
    return _zip({f"{'ab'[i % 2]}/{i}.png": one for i in range(200)})


def _phone() -> bytes:
    one = _image(np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8), "JPEG", quality=70)
    return _zip({f"{'ab'[i % 2]}/{i}.jpg": one for i in range(24)}, zipfile.ZIP_STORED)


def _case(name: str, out) -> None:
    from tlcore.data import datasets
    from tlcore.data.image_zip import UploadError, read_zip

    data = {"tiny": _tiny, "huge": _huge, "phone": _phone}[name]()
    gc.collect()
    base, peak = _rss_mb(), [0.0]
    done = threading.Event()

    def sample() -> None:  # resident memory every 10 ms: the case's own high-water mark
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb() - base)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu, wall = time.process_time(), time.perf_counter()
    folder = tempfile.mkdtemp()
    try:
        result = read_zip(data, image_size=32, val_per_class=1, keep_files_in=folder)
        verdict = f"accepted {len(result.train_y) + len(result.val_y)} images"
        if name == "tiny":
            loaded = datasets.load_folder(per_class=2500, val_per_class=20, image_size=224, seed=0, root=folder)
            verdict += f", loaded at 224 px ({(loaded.train_x.numel() + loaded.val_x.numel()) / 1e6:.0f} MB of images)"
    except UploadError as error:
        verdict = f"refused: {error}"
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done.set()
    sampler.join()
    out.put(f"{name:6s} zip {len(data) / 1e6:5.1f} MB  cpu {cpu:5.1f} s  wall {wall:5.1f} s  peak +{peak[0]:6.0f} MB  {verdict}")


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1024**2


def _cmd(args) -> int:
    ctx = multiprocessing.get_context("spawn")
    for name in args.cases.split(","):
        out = ctx.Queue()
        proc = ctx.Process(target=_case, args=(name, out))
        proc.start()
        proc.join()
        print(out.get() if not out.empty() else f"{name}: the case failed (exit {proc.exitcode})")
    return 0


@dataclass(frozen=True)
class UploadBenchOptions:
    cases: str = setting("tiny,huge,phone", "comma-separated: tiny, huge, phone")


UPLOAD_BENCH = Command(
    "upload-bench",
    "CPU, time and memory of heavy and hostile uploads",
    _cmd,
    flags=(Flags(UploadBenchOptions),),
    description=__doc__,
)
