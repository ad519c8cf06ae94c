"""The event stream in a terminal: a tqdm progress bar and one line per epoch.

Every command that trains (`python -m tlcore finetune`, `compare`, `forgetting`, `takehome`, ...)
passes a ProgressPrinter as the run's `emit`.

Not for: the app's live charts (studio.plots) or the History the app reads (tlcore.core.events).
"""

from __future__ import annotations

import sys

from tlcore.core.events import Cancelled, Done, EvalEvent, Failed, Started, StepEvent


class ProgressPrinter:
    """An `emit` that draws a tqdm progress bar from the event stream."""

    def __init__(self, label: str = "", quiet: bool = False):
        self.label, self.quiet, self.bar, self.history = label, quiet, None, []

    def __call__(self, event) -> None:
        from tqdm import tqdm

        self.history.append(event)
        if self.quiet:
            return
        if isinstance(event, Started):
            self.bar = tqdm(
                total=event.total_steps, desc=self.label or "train", unit="step", leave=True, dynamic_ncols=True, file=sys.stderr
            )
            from tlcore.core.metrics import Trainable  # here: metrics imports torch

            tqdm.write(
                f"{self.label} on {event.device}: {event.train_size} train / {event.val_size} val, "
                f"{Trainable(event.trainable_params, event.total_params)}, "
                f"frozen: {', '.join(event.frozen) or 'none'}"
                + (f", features cached through {event.cached_depth} group(s)" if event.cached_depth else ""),
                file=sys.stderr,
            )
        elif isinstance(event, StepEvent) and self.bar is not None:
            self.bar.update(event.step - self.bar.n)
            self.bar.set_postfix(loss=f"{event.loss:.3f}")
        elif isinstance(event, EvalEvent):
            tqdm.write(
                f"  epoch {event.epoch}: val/loss {event.val_loss:.3f}  val/acc {event.val_acc:.3f}  "
                f"train/acc {event.train_acc:.3f}  examples_per_s {event.examples_per_s:.0f}",
                file=sys.stderr,
            )
        elif isinstance(event, (Done, Failed, Cancelled)) and self.bar is not None:
            self.bar.close()
        if isinstance(event, Failed):
            print(f"error: {event.message}", file=sys.stderr)
