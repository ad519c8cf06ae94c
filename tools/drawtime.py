"""How the procedural source's drawing compares with the pretraining step it feeds, on this CPU.

    python -m tools.drawtime                 # 5 rounds of a pretraining batch (128 images, 32 px, 500 classes)
    python -m tools.drawtime --rounds 10 --batch 256

`python -m tlcore pretrain` draws every batch afresh (tlcore.data.procedural) and trains studio_resnet
on it (tlcore.lab.pretrain_vision). Each round draws one batch and takes one training step on it
(forward, backward, SGD), timed apart: the figures are images drawn a second and the ratio of a
step's time to a draw's, measured in the same run (a shared machine's other work moves both; the
load average is printed). A ratio well above 1 means the drawing is not what the pretraining waits
for. Measured on 2 idle cores: about 10,000 images/s drawn (tests/test_procedural.py once asserted
400 as a floor; a speed is a figure printed here, not a test's bound).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from tlcore.data import procedural
from tlcore.models import catalog


def measure(rounds: int, batch: int, classes: int = 500, image_size: int = 32) -> dict[str, float]:
    """Median seconds to draw a batch and to train one step on it, over `rounds` (after one warm-up)."""
    spec = procedural.SourceSpec(classes)
    model = catalog.build_model("studio_resnet", classes, pretrained=False, image_size=image_size)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(0)
    draws, steps = [], []
    for i in range(rounds + 1):
        labels = torch.randint(0, classes, (batch,), generator=gen)
        t = time.perf_counter()
        x = spec.render(labels, image_size=image_size, generator=gen)
        drawn = time.perf_counter() - t
        t = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        stepped = time.perf_counter() - t
        if i:  # the first round warms both up
            draws.append(drawn)
            steps.append(stepped)
    draw_s, step_s = statistics.median(draws), statistics.median(steps)
    return {"draw_s": draw_s, "step_s": step_s, "images_per_s": batch / draw_s, "step_per_draw": step_s / draw_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds measured after one warm-up (default %(default)s)")
    ap.add_argument("--batch", type=int, default=128, help="images a batch, as pretraining draws them (default %(default)s)")
    args = ap.parse_args(argv)
    got = measure(args.rounds, args.batch)
    print(
        f"drawn: {got['images_per_s']:,.0f} images/s ({got['draw_s'] * 1000:.1f} ms a batch of {args.batch}); "
        f"a training step on it: {got['step_s'] * 1000:.1f} ms, {got['step_per_draw']:.1f}x the drawing "
        f"(load {os.getloadavg()[0]:.2f}, {torch.get_num_threads()} threads)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
