"""`python -m tlcore text-bench`: our text fine-tuning against transformers' own Trainer, in one run.

Both sides get the same pretrained model (loaded fresh), the same tokenised sentences,
batch size, epochs, learning rate and seed, and both evaluate once per epoch; the two
alternate `repeats` times and each keeps its best time. The Trainer
pads each batch with DataCollatorWithPadding in random order; ours pads each batch from
length-sorted buckets and takes no host sync per step. Reported: seconds per epoch and
training sentences per second for each, and their ratio.

Not for: accuracy comparisons (both reach similar accuracy; the point is the time).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass

import torch

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting
from tlcore.models import catalog
from tlcore.text.batches import TextSource
from tlcore.text.bert import build_text_model, load_classifier
from tlcore.train.config import run_flags
from tlcore.train.device import describe_device, pick_device
from tlcore.train.strategies import full
from tlcore.train.trainer import FitOptions, fit


def run_ours(name: str, data, *, epochs: int, batch_size: int, lr: float, device, seed: int) -> dict:
    torch.manual_seed(seed)
    model = build_text_model(name, data.num_classes, pretrained=True).to(device)
    t0 = time.perf_counter()
    source = TextSource(data, model.tokenizer, device, max_length=128)
    plan = full(model.group_names, lr=lr, head_lr_mult=1.0)  # one rate everywhere, as the Trainer does
    opts = FitOptions(epochs, batch_size, "adamw", 0.0, cache_features=False, log_every=0)
    result = fit(
        model,
        plan,
        source,
        opts,
        device=device,
        emit=lambda _e: None,
        generator=torch.Generator().manual_seed(seed),
        classes=tuple(data.classes),
    )
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "val_acc": result.val_acc}


def run_trainer(name: str, data, *, epochs: int, batch_size: int, lr: float, device, seed: int) -> dict:
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, TrainingArguments

    torch.manual_seed(seed)
    model, tokenizer = load_classifier(name, data.num_classes, pretrained=True)
    t0 = time.perf_counter()

    def rows(texts, labels):
        enc = tokenizer(texts, truncation=True, max_length=128)
        return [
            {"input_ids": i, "attention_mask": m, "labels": int(y)}
            for i, m, y in zip(enc["input_ids"], enc["attention_mask"], labels, strict=True)
        ]

    train, val = rows(data.train_texts, data.train_y), rows(data.val_texts, data.val_y)
    steps = -(-len(train) // batch_size) * epochs
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size * 2,
            num_train_epochs=epochs,
            learning_rate=lr,
            weight_decay=0.0,
            warmup_steps=max(1, int(0.1 * steps)),
            lr_scheduler_type="cosine",
            eval_strategy="epoch",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            seed=seed,
            bf16=device.type == "cuda",
            use_cpu=device.type == "cpu",
            dataloader_num_workers=0,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=train, eval_dataset=val, data_collator=DataCollatorWithPadding(tokenizer)
        )
        trainer.remove_callback(PrinterCallback)  # no metric dicts printed between our lines
        trainer.train()
        metrics = trainer.evaluate()
    _sync(device)
    return {"seconds": time.perf_counter() - t0, "val_loss": metrics.get("eval_loss")}


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(
    name: str,
    dataset: str,
    *,
    per_class: int,
    epochs: int,
    batch_size: int,
    lr: float,
    device: str = "auto",
    seed: int = 0,
    root: str = "",
    repeats: int = 2,
) -> dict:
    """Time both loops on the same model and data; returns both timings and the speed-up."""
    dev = pick_device(device)
    data = catalog.load_dataset(dataset, per_class=per_class, val_per_class=per_class, image_size=0, seed=seed, root=root)
    kw = dict(epochs=epochs, batch_size=batch_size, lr=lr, device=dev, seed=seed)
    run_trainer(name, data, **(kw | {"epochs": 1}))  # warm-up: imports, kernels, caches
    # Alternate the two and keep each one's best time: a shared machine's noise hits both alike.
    ours, reference = [], []
    for _ in range(repeats):
        ours.append(run_ours(name, data, **kw))
        reference.append(run_trainer(name, data, **kw))
    ours = min(ours, key=lambda r: r["seconds"])
    reference = min(reference, key=lambda r: r["seconds"])
    n = len(data.train_texts) * epochs
    return {
        "device": describe_device(dev),
        "model": name,
        "sentences": len(data.train_texts),
        "epochs": epochs,
        "batch_size": batch_size,
        "ours_s_per_epoch": ours["seconds"] / epochs,
        "trainer_s_per_epoch": reference["seconds"] / epochs,
        "ours_sentences_per_s": n / ours["seconds"],
        "trainer_sentences_per_s": n / reference["seconds"],
        "speedup": reference["seconds"] / ours["seconds"],
        "ours_val_acc": ours["val_acc"],
    }


def cmd_text_bench(args) -> int:
    r = bench(
        args.backbone,
        args.dataset,
        per_class=args.per_class,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        root=args.data_root,
        repeats=args.repeats,
    )
    print(f"{r['model']} on {r['device']}: {r['sentences']} sentences x {r['epochs']} epochs, batch {r['batch_size']}")
    print(f"  ours:    {r['ours_s_per_epoch']:.2f} s/epoch  {r['ours_sentences_per_s']:.0f} sentences/s")
    print(f"  Trainer: {r['trainer_s_per_epoch']:.2f} s/epoch  {r['trainer_sentences_per_s']:.0f} sentences/s")
    print(f"  speed-up (Trainer time / ours): {r['speedup']:.2f}x")
    return 0


@dataclass(frozen=True)
class TextBenchOptions:
    repeats: int = setting(2, "timed runs of each loop, alternating; the best counts", lo=1, hi=100)


TEXT_BENCH = Command(
    "text-bench",
    "time text fine-tuning against transformers' Trainer",
    cmd_text_bench,
    flags=(
        run_flags(
            only=("backbone", "dataset", "data_root", "per_class", "lr", "epochs", "batch_size", "seed", "device"),
            defaults={"backbone": "minilm_l6", "dataset": "sentiment_en", "per_class": 96, "batch_size": 32, "lr": 5e-5},
        ),
        Flags(TextBenchOptions),
    ),
    description=__doc__.split("\n\n")[0],
)
