"""The suite's stand-ins: one fake run (the event contract of tlcore.train.recipe.run,
instantly), the text page's, files a learner would upload, a wait, and clocks a test moves
(`Clock` for a module's `time`, `VirtualTimeLoop` for asyncio).

Not for: anything a test checks the engine with (those tests run the real thing).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
import struct
import threading
import time
import zlib

import numpy as np
from PIL import Image

from tlcore.core.events import Cancelled, Done, EvalEvent, RunResult, Started, StepEvent
from tlcore.train import strategies
from tools import pace

GROUPS = ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
TEXT_GROUPS = ("embeddings", "layer0", "layer1", "head")


def fake_run(config, emit, should_stop, *, steps=4, delay=0.0, gate: threading.Event | None = None):
    """A stand-in for tlcore.train.recipe.run with the same event contract, instantly (or
    `delay` seconds a step, after `gate` opens): the one fake run of the suite."""
    if gate is not None:
        gate.wait(5)
    plan = strategies.plan_for(config, GROUPS)
    emit(Started(steps, 2, tuple(GROUPS), plan.frozen, 100, 200, "CPU (test)", 20, 10, ("cat", "dog")))
    for step in range(1, steps + 1):
        if should_stop():
            emit(Cancelled(step - 1))
            return None
        time.sleep(delay)
        norms = {g: 0.1 * (i + 1) for i, g in enumerate(GROUPS) if g not in plan.frozen}
        emit(StepEvent(step, (step + 1) // 2, 1.0 / step, config.lr, norms, plan.frozen))
        if step % 2 == 0:
            emit(EvalEvent(step // 2, step, 0.9 / step, 0.6, 0.7, 0.1 * step, 123.0))
    result = RunResult(
        val_acc=0.75,
        best_val_acc=0.75,
        val_loss=0.4,
        seconds=0.2,
        examples_per_s=123.0,
        trainable_params=100,
        total_params=200,
        classes=["cat", "dog"],
        confusion=[[4, 1], [1, 4]],
        predictions=[0, 1],
        targets=[0, 0],
        weight_drift={g: 0.0 if g in plan.frozen else 0.01 for g in GROUPS[:-1]},
        misclassified=[{"image": np.zeros((8, 8, 3), np.uint8), "true": "cat", "pred": "dog"}],
        strategy=config.strategy,
    )
    emit(Done(result))
    return result


def slow_run(config, emit, should_stop):
    return fake_run(config, emit, should_stop, steps=400, delay=0.02)


def make_run(steps=50, delay=0.01, gate: threading.Event | None = None):
    """The fake run with these settings, as the run function a JobQueue takes."""
    return functools.partial(fake_run, steps=steps, delay=delay, gate=gate)


def fake_text_run(config, emit, should_stop):
    """The text run's event contract, instantly."""
    frozen = TEXT_GROUPS[:-1] if config.strategy == "linear_probe" else ()
    emit(Started(4, 2, TEXT_GROUPS, frozen, 100, 4000, "CPU (test)", 20, 8, ("negative", "positive")))
    for step in range(1, 5):
        emit(StepEvent(step, (step + 1) // 2, 1.0 / step, config.lr, {g: 0.1 for g in TEXT_GROUPS if g not in frozen}, frozen))
        if step % 2 == 0:
            emit(EvalEvent(step // 2, step, 0.5, 0.75, 0.8, 0.1 * step, 300.0))
    result = RunResult(
        val_acc=0.75,
        best_val_acc=0.75,
        val_loss=0.5,
        seconds=0.4,
        examples_per_s=300.0,
        train_per_s=300.0,
        padding_share=0.05,
        trainable_params=100,
        total_params=4000,
        classes=["negative", "positive"],
        confusion=[[3, 1], [1, 3]],
        predictions=[0, 1],
        targets=[1, 1],
        weight_drift={},
        note="",
        misclassified=[{"text": "Not bad at all, honestly.", "true": "positive", "pred": "negative"}],
    )
    emit(Done(result))
    return result


class BusyElsewhere:
    """tlcore.serve.cores.BusyElsewhere's answer, fixed: `cores` kept busy by other programs. A test that
    counts a run's torch threads on "an idle server" sets it (`queue.elsewhere = BusyElsewhere(0.0)`):
    the suite's other worker keeps the box's cores busy too, which the real one rightly sees."""

    def __init__(self, cores: float):
        self.value = cores

    def cores(self) -> float:
        return self.value


class Clock:
    """A clock the test moves by hand, in place of a module's `time` (`monkeypatch.setattr(jobs,
    "time", Clock())`): `monotonic()` reads it, `sleep(s)` moves it on without waiting, anything else
    is the time module's. A test that asserts what a limit or a wait did counts in this clock's
    seconds, not the box's."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __getattr__(self, name):
        return getattr(time, name)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a clock of its own that jumps to the next timer whenever nothing else is
    ready (`asyncio.Runner(loop_factory=VirtualTimeLoop)`): `await asyncio.sleep(1.9)` takes no wall
    time, and what the loop's timers did in 1.9 s is counted on that clock, the same on any box."""

    def __init__(self):
        super().__init__()
        self._virtual_now = 0.0

    def time(self) -> float:
        return self._virtual_now

    def _run_once(self) -> None:  # asyncio's own step: the next timer is due when nothing is ready
        if not self._ready and self._scheduled:
            self._virtual_now = max(self._virtual_now, self._scheduled[0].when())
        super()._run_once()


def wait_for(pred, timeout=5.0):
    """Until `pred()` is true, for at most `timeout` seconds of an idle box (tools.pace: a bound
    that says "not hung" grows on a busy box)."""
    return pace.wait_for(pred, timeout)


def zip_of(files: dict[str, bytes]) -> bytes:
    """The same bytes every time (each entry dated 1980-01-01, not now): a test parametrized with
    one has the same id in every pytest-xdist worker, whichever second each collected it in."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def png(color) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(color, size=(64, 48)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "PNG")
    data = bytearray(out.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height ...
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # ... and its checksum
    return bytes(data)


# --- runs for the worker-process queue (tlcore.serve.process_jobs): module-level, so a worker
# process can import them by name ---


def where_run(config, emit, should_stop, *, steps=4, delay=0.0):
    """The fake run, its result also saying which process ran it and on how many torch threads
    (read at the last step: the server may change them while it runs) and at what nice."""
    import os
    import threading

    import torch

    def emit_where(event):
        if isinstance(event, Done):
            nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            event = Done(
                dataclasses.replace(event.result, extra={"pid": os.getpid(), "threads": torch.get_num_threads(), "nice": nice})
            )
        emit(event)

    return fake_run(config, emit_where, should_stop, steps=steps, delay=delay)


def deaf_run(config, emit, should_stop):
    """A run that never asks whether to stop (a hung native call, say)."""
    emit(Started(1, 1, tuple(GROUPS), (), 100, 200, "CPU (test)", 20, 10, ("cat", "dog")))
    time.sleep(600)


def dying_run(config, emit, should_stop):
    """A run whose process dies under it (the kernel's out-of-memory killer, a crash in native code)."""
    import os

    emit(Started(1, 1, tuple(GROUPS), (), 100, 200, "CPU (test)", 20, 10, ("cat", "dog")))
    os._exit(3)
