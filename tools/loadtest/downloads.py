"""Model downloads hammered from several tabs, through Streamlit's own download machinery;
prints the process's resident memory before, at its peak and after.

    python -m tools.loadtest.downloads                      # this tree's studio/takehome.py
    python -m tools.loadtest.downloads --rev 8f67fa9~1      # the same burst on an older one

A learner's model the size of a text model's (87 MB of float32 weights) is kept on a shelf;
`--tabs` threads each click its "weights" download `--clicks` times, as a browser's click
does: Streamlit's MediaFileManager runs the button's deferred callable (studio.takehome.bundle)
and stores what it returns (MemoryMediaFileStorage, as `streamlit run` does). Then the
server's periodic clean-up runs twice (a download is marked, then dropped) and memory is read
again. Memory is this process's VmRSS, sampled every 0.05 s: the server's code path, in one
process, without a browser.
"""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def takehome_at(rev: str | None) -> types.ModuleType:
    """studio.takehome as this tree has it, or as commit `rev` had it (read with git show; before
    the file's rename it was `takeaway.py` in studio/)."""
    from studio import takehome

    if rev is None:
        return takehome
    for path in ("studio/takehome.py", "studio/takeaway.py"):
        source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True)
        if source.returncode == 0:
            break
    source.check_returncode()
    module = types.ModuleType("takehome_at_rev")
    module.__file__ = takehome.__file__
    exec(compile(source.stdout, f"{rev}:{path}", "exec"), module.__dict__)  # noqa: S102 -- our own file
    return module


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tabs", type=int, default=4, help="tabs clicking at once (default 4)")
    ap.add_argument("--clicks", type=int, default=7, help="clicks per tab (default 7: 28 in all, as measured on a server)")
    ap.add_argument("--mb", type=int, default=87, help="the model's size in MB (default 87: a text model)")
    ap.add_argument("--rev", default=None, help="take studio/takehome.py from this commit instead")
    args = ap.parse_args(argv)

    import torch
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from studio import server
    from tlcore.serve.jobs import JobQueue
    from tlcore.train.finetuned import Finetuned

    takehome = takehome_at(args.rev)
    side = int((args.mb * 2**20 / 4) ** 0.5)
    model = torch.nn.Sequential(torch.nn.Linear(side, side, bias=False))  # (side x side) float32 = args.mb MB
    queue = JobQueue.started(workers=0)
    model_id = queue.shelf.keep("learner", Finetuned(model, ("a", "b"), 32, "studio_resnet"))
    server.job_queue = lambda: queue  # the server's queue as the page asks for it (kept_model), with this shelf
    manager = MediaFileManager(MemoryMediaFileStorage("/media"))
    gc.collect()
    start = rss_mb()
    peak, stop = [start], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    failed = []

    def tab(i: int) -> None:
        for c in range(args.clicks):
            file_id = manager.add_deferred(
                lambda: takehome.bundle("learner", model_id, "weights"), "application/zip", f"tab{i}-{c}", "model.zip"
            )
            try:
                manager.execute_deferred(file_id)
            except Exception as error:  # noqa: BLE001 -- counted and said
                failed.append(repr(error))

    t0 = time.monotonic()
    tabs = [threading.Thread(target=tab, args=(i,)) for i in range(args.tabs)]
    for thread in tabs:
        thread.start()
    for thread in tabs:
        thread.join()
    burst_s = time.monotonic() - t0
    at_end = rss_mb()
    manager.clear_session_refs()
    manager.remove_orphaned_files()  # a download is marked first ...
    manager.remove_orphaned_files()  # ... and dropped at the next clean-up
    gc.collect()
    time.sleep(0.5)
    stop.set()
    sampler.join()
    after = rss_mb()
    print(
        f"{args.tabs} tabs x {args.clicks} clicks of a {args.mb} MB model's download ({args.rev or 'this tree'}): "
        f"{burst_s:.1f} s; RSS start {start:.0f} MB, peak {peak[0]:.0f} MB, at the burst's end {at_end:.0f} MB, "
        f"after clean-up {after:.0f} MB ({100 * (after - start) / start:+.0f}%); failed {len(failed)}"
    )
    for error in failed[:3]:
        print("  ", error)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
