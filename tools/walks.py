"""Two real call paths, traced: which of the project's modules they enter and how often they climb back.

    python -m tools.walks            # both walks: modules in order, modules crossed, climbs back

- "download": what the Fine-tune page's downloads call for a finished small run (a real run of a few
  seconds, its model kept on a queue's shelf as the page's run keeps it): the record the page builds
  (`studio.takehome.model_download`), the notebook's button (`notebook.supported`, `notebook.to_bytes`),
  and both zips' buttons (`studio.takehome.bundle_or_note`, weights and ONNX: built on disk as on a click).
- "run": a run's freeze depth from the page's settings to the trainer: `studio.widgets.config_from_state`
  (the Fine-tune page's RunConfig from its session state, here filled as the page's widgets fill it),
  then the queue (`JobQueue.submit`, what `studio.job_panel.submit` calls: that function itself needs a
  browser session's cookie, class and teacher), its worker thread, the recipe and the trainer, up to the
  trainer's first freeze (`tlcore.train.strategies.set_frozen`), where the walk ends.

How it is measured (the exact definition):
- Every Python frame of every thread (sys.setprofile, threading.setprofile) is followed; a frame belongs to
  a project module when its module's name is `tlcore`, `studio` or under them. Other frames (the standard
  library, torch, this tool) are transparent: a project frame's caller is the nearest project frame below it
  on its thread's stack.
- The modules a walk enters: each project module in the order it is first entered. "Modules crossed" is how
  many.
- A step is a call from project module A into another project module B (B's frame is pushed and A is the
  nearest project frame under it). Returns are never counted: a return undoes its call.
- A climb back is a step that goes against the layers of pyproject.toml's import-linter contract (studio >
  tlcore.__main__ > tlcore.cli > lab | serve | takehome | explain > train > models > data > core):
  1. a call from a module of a lower layer into a module of a higher layer (a callback into a caller's
     layer: the engine calling up into the studio, train calling into takehome), or
  2. a call into a module that already has a frame on the same thread's stack below A (a return to a
     module already left, by calling back into it: A was entered from it, directly or through others),
     within one package as across packages.
- "run" stops recording at the trainer's first `set_frozen`; "download" when its last button's bytes are
  built. A thread's first project frame (the queue's worker) is an entry, not a step.

Not for: timing (tools/racetime.py, tools/demotime.py) or the import graph (lint-imports checks that).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

# The layers, lowest first (pyproject.toml's contract, top to bottom, reversed).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("tlcore.core",),
    ("tlcore.data",),
    ("tlcore.models",),
    ("tlcore.train",),
    ("tlcore.lab", "tlcore.serve", "tlcore.takehome", "tlcore.explain"),
    ("tlcore.cli",),
    ("tlcore.__main__",),
    ("studio",),
)
LIMITS = {"modules": 8, "climbs": 2}  # issue 55's: at most 8 modules crossed, at most 2 climbs back


def layer(module: str) -> int:
    """The module's layer, 0 (tlcore.core) to 7 (studio); the package `tlcore` itself counts as core."""
    for level, packages in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return level
    return 0


def is_project(module: str) -> bool:
    return module in ("tlcore", "studio") or module.startswith(("tlcore.", "studio."))


@dataclass
class Walk:
    """What one walk entered and where it climbed back."""

    name: str
    modules: list[str] = field(default_factory=list)  # project modules, in the order first entered
    climbs: list[tuple[str, str, str]] = field(default_factory=list)  # (from, into, why)

    def summary(self) -> str:
        lines = [f"walk {self.name}: {len(self.modules)} modules crossed, {len(self.climbs)} climbs back"]
        lines += [f"  {i + 1:>2}. {m}" for i, m in enumerate(self.modules)]
        lines += [f"  climb: {a} -> {b} ({why})" for a, b, why in self.climbs]
        return "\n".join(lines)


class Tracer:
    """sys.setprofile's callback for every thread: each thread's stack of module names, the steps
    between project modules while `recording`, and an optional module.function that ends the walk."""

    def __init__(self, walk: Walk, until: tuple[str, str] | None = None):
        self.walk, self.until = walk, until
        self.recording = False
        self._local = threading.local()
        self._lock = threading.Lock()

    def __enter__(self) -> Tracer:
        threading.setprofile(self.profile)
        sys.setprofile(self.profile)
        return self

    def __exit__(self, *exc) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
        self.recording = False

    def profile(self, frame, event, _arg) -> None:
        if event not in ("call", "return"):
            return
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        if event == "return":
            if stack:
                stack.pop()
            return
        module = frame.f_globals.get("__name__", "")
        if self.recording and is_project(module):
            self._enter(stack, module, frame.f_code.co_name)
        stack.append(module)

    def _enter(self, stack: list[str], module: str, function: str) -> None:
        if self.until == (module, function):
            self.recording = False
            return
        caller = next((m for m in reversed(stack) if is_project(m)), None)
        with self._lock:
            if module not in self.walk.modules:
                self.walk.modules.append(module)
            if caller is None or caller == module:
                return
            if layer(module) > layer(caller):
                self._climb(caller, module, "a lower layer calls a higher one")
            elif module in stack:
                self._climb(caller, module, "back into a module already left")

    def _climb(self, caller: str, module: str, why: str) -> None:
        if all((a, b) != (caller, module) for a, b, _ in self.walk.climbs):  # each climb once, however often taken
            self.walk.climbs.append((caller, module, why))


# ----------------------------------------------------------------------------- the walks

SMALL = dict(  # the Fine-tune page's widgets for the smallest real run (Lite0, digits, 32 px, 1 epoch)
    backbone="efficientnet_lite0",
    strategy="partial",
    freeze_depth=2,
    lr=1e-3,
    head_lr_mult=10.0,
    layer_decay=0.7,
    per_class=4,
    image_size=32,
    epochs=1,
)


def finished_run():
    """A finished small run kept on a queue's shelf, as the Fine-tune page's run is: (queue, learner, result)."""
    from tlcore.serve.jobs import JobQueue
    from tlcore.train.config import RunConfig
    from tlcore.train.recipe import load_run_data, run

    config = RunConfig(dataset="digits", val_per_class=6, batch_size=20, **SMALL)
    result = run(config, lambda _event: None, data=load_run_data(config))
    queue = JobQueue()  # (not started: it only keeps the model)
    learner = "walker"
    model_id = queue.shelf.keep(learner, result.model.on_cpu())
    return queue, learner, replace(result, model_id=model_id)


def download_walk() -> Walk:
    """The Fine-tune page's downloads for a finished run: the record, the notebook, both zips."""
    from studio import server, takehome
    from tlcore.takehome import notebook
    from tlcore.takehome.record import RunMetrics, TakeHome

    queue, learner, result = finished_run()
    server_queue, server.job_queue = server.job_queue, lambda: queue  # the server's queue: the one that ran it
    walk = Walk("download")
    try:
        with tempfile.TemporaryDirectory() as tmp, Tracer(walk) as tracer:
            takehome._folder = Path(tmp)  # this walk's own folder of built zips
            tracer.recording = True
            entry = takehome.kept_model(result.model_id, learner)  # what model_download asks first
            card = RunMetrics.of(result)
            record = TakeHome.of(entry, card)
            if notebook.supported(record):
                notebook.to_bytes(record, lang="en")
            for part in ("weights", "onnx"):
                takehome.bundle_or_note(learner, result.model_id, part, card)
    finally:
        server.job_queue, takehome._folder = server_queue, None
    return walk


def run_walk() -> Walk:
    """A run's freeze depth from the page's settings to the trainer's first freeze."""
    import streamlit as st

    from studio import widgets
    from tlcore.serve.jobs import JobQueue

    for key, value in SMALL.items():
        st.session_state[key] = value
    walk = Walk("run")
    with Tracer(walk, until=("tlcore.train.strategies", "set_frozen")) as tracer:
        queue = JobQueue.started(workers=1)  # its worker thread starts under the tracer
        tracer.recording = True
        config = widgets.config_from_state(widgets.DataChoice("digits"))
        job = queue.submit(config, "walker", tag="finetune", keep_model=True)
        queue.wait_until_ended(job, "walker", timeout=600)
    return walk


WALKS: dict[str, Callable[[], Walk]] = {"download": download_walk, "run": run_walk}

# Streamlit's notices that it runs without a browser session: bare mode, as these walks intend
BARE_MODE_NOTICES = ("streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.state.session_state_proxy")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("walks", nargs="*", help=f"which walks: {', '.join(WALKS)} (default: both)")
    args = ap.parse_args(argv)
    for name in BARE_MODE_NOTICES:  # a filter, not a level: Streamlit sets its loggers' levels again when its config is read
        logging.getLogger(name).addFilter(lambda _record: False)
    over = False
    for name in args.walks or list(WALKS):
        walk = WALKS[name]()
        print(walk.summary(), flush=True)
        over |= len(walk.modules) > LIMITS["modules"] or len(walk.climbs) > LIMITS["climbs"]
    print(f"limits: at most {LIMITS['modules']} modules and {LIMITS['climbs']} climbs back per walk")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
