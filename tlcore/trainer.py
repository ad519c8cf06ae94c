"""The instrumented training loop: one readable loop, events out, nothing else.

`fit` knows nothing about the model or the data beyond two small contracts:
- the model has ordered layer `groups` (nn.ModuleDict) and `param_counts()`;
- the batch source yields (inputs, targets) and knows how to call the model on them.
It emits events (tlcore.events) and checks `should_stop()` before every step, so a Stop
button takes effect within one step.

Speed, because a demo that stalls loses the class:
- image data lives on the device as uint8; batches are index slices; augmentation runs on
  the device (TensorSource);
- a frozen prefix is run once over the data and only the trainable suffix trains;
- channels_last layout; on CUDA bf16 autocast and one host transfer per logged step; on
  CPUs with native bf16 instructions, bf16 autocast too (see use_bf16).

`run(config)` turns a RunConfig into a whole run: data, model, plan, fit. The app, the CLI,
the benchmark and the experiments all call it.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tlcore import backbones, catalog, datasets, finetuned, strategies
from tlcore.config import RunConfig
from tlcore.device import describe_device, pick_device
from tlcore.events import Cancelled, Done, EvalEvent, Failed, Started, StepEvent
from tlcore.messages import LearnerError, Message

Emit = Callable[[object], None]
CACHE_BUDGET_BYTES = 2 * 1024**3  # cached features larger than this are not kept
SHORT_RUN_STEPS = 300  # runs this short estimate BatchNorm statistics as a plain average


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier at optimiser step `step` (0-based):
    1. linear warm-up from 1/warmup to 1 over the first `warmup` steps;
    2. cosine decay from 1 towards 0 over the remaining steps.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- image batches

class TensorSource:
    """A small image dataset kept whole on the device; batches are index slices.

    train_x: (N, 3, S, S) uint8. With a frozen prefix of depth k, `prepare` replaces the
    images by the prefix's features (computed once, in eval mode, without gradients); with
    flip augmentation the features of the flipped images are cached too, and each batch
    picks one of the two per example.
    """

    def __init__(self, data: datasets.ImageData, device: torch.device, augment: str = "flip",
                 channels_last: bool = False):
        self.device, self.augment, self.channels_last = device, augment, channels_last
        self.train_x = data.train_x.to(device)
        self.train_y = data.train_y.to(device)
        self.val_x = data.val_x.to(device)
        self.val_y = data.val_y.to(device)
        self.depth = 0  # groups already applied to the stored tensors
        self.train_flipped = None  # cached features of flipped training images

    @property
    def n_train(self) -> int:
        return len(self.train_y)

    @property
    def n_val(self) -> int:
        return len(self.val_y)

    def can_cache(self) -> bool:
        return self.augment in ("none", "flip")

    @torch.no_grad()
    def prepare(self, model, depth: int, batch_size: int, autocast) -> int:
        """Run the frozen prefix once over all images; returns the depth actually cached."""
        if depth == 0 or not self.can_cache() or not hasattr(model, "forward_to"):
            return 0
        was_training = model.training
        model.eval()

        def features(x):
            outs = []
            for i in range(0, len(x), batch_size * 4):
                with autocast():
                    outs.append(model.forward_to(self._layout(x[i:i + batch_size * 4]), depth))
            return torch.cat(outs)

        probe = features(self.train_x[:1])
        copies = 2 if self.augment == "flip" else 1
        need = probe.element_size() * probe[0].numel() * (self.n_train * copies + self.n_val)
        if need > CACHE_BUDGET_BYTES:
            model.train(was_training)
            return 0
        train, val = features(self.train_x), features(self.val_x)
        flipped = features(self.train_x.flip(-1)) if self.augment == "flip" else None
        self.train_x, self.val_x, self.train_flipped, self.depth = train, val, flipped, depth
        model.train(was_training)
        return depth

    def features_to_float(self) -> None:
        self.train_x, self.val_x = self.train_x.float(), self.val_x.float()
        if self.train_flipped is not None:
            self.train_flipped = self.train_flipped.float()

    def _layout(self, x):
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def _augment(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self.train_x[idx]
        if self.augment == "none":
            return x
        flip = torch.rand(len(idx), generator=generator) < 0.5
        flip = flip.to(self.device)
        if self.depth > 0:  # cached features: choose the stored flipped copy per example
            return torch.where(flip.view(-1, *[1] * (x.ndim - 1)), self.train_flipped[idx], x)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if self.augment == "crop_flip":
            x = random_resized_crop(x, generator)
        return x

    def train_batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterator:
        order = torch.randperm(self.n_train, generator=generator).to(self.device)
        for i in range(0, self.n_train, batch_size):
            idx = order[i:i + batch_size]
            yield self._layout(self._augment(idx, generator)), self.train_y[idx]

    def eval_batches(self, batch_size: int) -> Iterator:
        for i in range(0, self.n_val, batch_size * 4):
            yield self._layout(self.val_x[i:i + batch_size * 4]), self.val_y[i:i + batch_size * 4]

    def forward(self, model, inputs):
        return model.forward_from(inputs, self.depth) if self.depth else model(inputs)


def random_resized_crop(x: torch.Tensor, generator: torch.Generator, scale=(0.7, 1.0)) -> torch.Tensor:
    """Per-example random zoom and shift on the device in one grid_sample: (B,3,S,S) uint8 -> same."""
    b = x.shape[0]
    s = torch.empty(b).uniform_(math.sqrt(scale[0]), math.sqrt(scale[1]), generator=generator)
    tx = (torch.rand(b, generator=generator) * 2 - 1) * (1 - s)
    ty = (torch.rand(b, generator=generator) * 2 - 1) * (1 - s)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = s, s, tx, ty
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


# ----------------------------------------------------------------------------- the loop

@dataclass
class FitOptions:
    epochs: int
    batch_size: int
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    bn_frozen_eval: bool = True
    cache_features: bool = True
    log_every: int = 0
    warmup_frac: float = 0.1
    precision: str = "auto"  # auto | fp32 | bf16 (see use_bf16)


def use_bf16(device: torch.device, precision: str = "auto", train_model=None) -> bool:
    """auto: bf16 autocast on CUDA GPUs that support it, and on CPUs with native bf16
    instructions (AVX512-BF16 or AMX); fp32 elsewhere.

    Weights, optimiser state and the loss stay fp32. Measured on a 2-core AMD EPYC with
    AVX512-BF16 (digits, studio_resnet, 3 seeds): the same accuracy as fp32 (full fine-tune
    89.3% vs 89.2%) in a third of the time. Without native bf16 it would be emulated and slow.
    One exception on CPUs: training steps (`train_model` given) of a network with depthwise
    convolutions stay fp32, since oneDNN's bf16 depthwise backward is slower than fp32
    (EfficientNet-Lite0 at 96 px, one thread: 26 img/s in bf16 vs 55 in fp32; its
    no-grad forward still gains from bf16: 370 vs 250 img/s).
    """
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if train_model is not None and has_depthwise_conv(train_model):
        return False
    return device.type == "cpu" and cpu_has_native_bf16()


def has_depthwise_conv(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) and m.groups > 1 for m in model.modules())


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def prefers_channels_last(device: torch.device) -> bool:
    """NHWC memory layout: faster convolutions with cuDNN and oneDNN (measured here on CPU:
    +6% full fine-tune, +8% frozen feature pass for ResNet-18 at 64 px, and bf16 max-pooling
    stops being a hot spot)."""
    return device.type in ("cuda", "cpu")


def autocast_for(device: torch.device, precision: str = "auto", train_model=None):
    """A factory of autocast contexts: weights stay fp32, activations run in bf16 where it pays
    (pass `train_model` for the contexts of training steps; see use_bf16)."""
    enabled = use_bf16(device, precision, train_model)
    kind = device.type if device.type in ("cuda", "cpu") else "cpu"
    return lambda: torch.autocast(kind, dtype=torch.bfloat16, enabled=enabled and device.type in ("cuda", "cpu"))


def fit(model, plan: strategies.Plan, source, opts: FitOptions, *, device: torch.device,
        emit: Emit, should_stop: Callable[[], bool] = lambda: False, generator: torch.Generator | None = None,
        classes: tuple[str, ...] = (), started_extra: dict | None = None) -> dict | None:
    """Train `model` by `plan` on `source`; returns the result dict, or None if cancelled."""
    generator = generator or torch.Generator().manual_seed(0)
    autocast = autocast_for(device, opts.precision)  # no-grad passes: cached features, evaluation
    train_autocast = autocast_for(device, opts.precision, train_model=model)
    t0 = time.perf_counter()
    groups = list(model.groups.keys())
    initial = {n: p.detach().clone() for n, p in model.named_parameters()} if plan.pretrained else None

    # A prefix frozen for the whole run (with BN in eval mode) gives the same features every
    # epoch: compute them once and train only the suffix.
    prefix = 0
    if opts.cache_features and opts.bn_frozen_eval:
        while prefix < len(groups) - 1 and groups[prefix] in plan.always_frozen:
            prefix += 1
    t_cache = time.perf_counter()
    cached = source.prepare(model, prefix, opts.batch_size, autocast)
    timing = {"cache_s": time.perf_counter() - t_cache, "train_s": [], "eval_s": []}
    if cached and not use_bf16(device, opts.precision, train_model=model):
        source.features_to_float()  # bf16 features from the no-grad pass, trained in fp32

    optimizer_cls = torch.optim.AdamW if opts.optimizer == "adamw" else torch.optim.SGD
    extra = {"momentum": 0.9, "nesterov": True} if opts.optimizer == "sgd" else {}
    param_groups = strategies.param_groups(model, plan, opts.weight_decay)
    optimizer = optimizer_cls(param_groups, lr=1.0, **extra)
    base_lrs = [g["lr"] for g in optimizer.param_groups]

    steps_per_epoch = math.ceil(source.n_train / opts.batch_size)
    total = steps_per_epoch * opts.epochs
    warmup = max(1, int(total * opts.warmup_frac))
    log_every = opts.log_every or max(1, total // 200)
    frozen0 = plan.frozen_at(1)
    if total <= SHORT_RUN_STEPS:
        average_batchnorm(model, [g for g in groups if g not in plan.always_frozen])
    trainable, total_params = strategies.count_trainable(model, frozen0)
    emit(Started(total, opts.epochs, tuple(groups), tuple(frozen0), trainable, total_params, describe_device(device),
                 source.n_train, source.n_val, tuple(classes), cached, **(started_extra or {})))

    step, last_preds, best_acc, epoch_rates = 0, None, 0.0, []
    for epoch in range(1, opts.epochs + 1):
        frozen = plan.frozen_at(epoch)
        model.train()
        strategies.set_frozen(model, frozen, bn_frozen_eval=opts.bn_frozen_eval)
        live = [g for g in groups if g not in frozen]
        loss_sum = torch.zeros((), device=device)
        logged_steps, correct = 0, torch.zeros((), device=device, dtype=torch.long)
        t_epoch = time.perf_counter()
        for inputs, targets in source.train_batches(epoch, opts.batch_size, generator):
            if should_stop():
                emit(Cancelled(step))
                return None
            factor = lr_factor(step, total, warmup)
            for g, base in zip(optimizer.param_groups, base_lrs):
                g["lr"] = base * factor
            with train_autocast():
                logits = source.forward(model, inputs)  # (B, num_classes)
                loss = F.cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms = strategies.grad_norms_by_group(model, live)  # (len(live),), stays on the device
            optimizer.step()
            step += 1
            loss_sum += loss.detach()
            logged_steps += 1
            correct += (logits.detach().argmax(1) == targets).sum()
            if step % log_every == 0 or step == total:
                values = torch.cat([(loss_sum / logged_steps).view(1), norms.float()]).tolist()  # one transfer
                rates = {g["group"]: g["lr"] for g in optimizer.param_groups if g["group"] in live}
                emit(StepEvent(step, epoch, values[0], plan.lr * factor, dict(zip(live, values[1:])),
                               tuple(frozen), rates))
                loss_sum.zero_()
                logged_steps = 0
        train_acc = correct.item() / source.n_train
        timing["train_s"].append(time.perf_counter() - t_epoch)
        epoch_rates.append(source.n_train / timing["train_s"][-1])
        t_eval = time.perf_counter()
        val_loss, val_acc, last_preds = evaluate(model, source, opts.batch_size, autocast)
        timing["eval_s"].append(time.perf_counter() - t_eval)
        timing["last_eval_at"] = time.perf_counter()
        best_acc = max(best_acc, val_acc)
        emit(EvalEvent(epoch, step, val_loss, val_acc, train_acc, time.perf_counter() - t0, epoch_rates[-1]))

    seconds = time.perf_counter() - t0
    result = {
        "val_acc": val_acc, "best_val_acc": best_acc, "val_loss": val_loss, "seconds": seconds,
        "images_per_s": source.n_train * opts.epochs / seconds, "trainable_params": trainable,
        # training throughput of the part that trains (a cached prefix is not re-run), the
        # median epoch: comparable between strategies where whole-run seconds are not
        "train_per_s": float(np.median(epoch_rates)),
        "total_params": total_params, "cached_depth": cached, "steps": step,
        "predictions": last_preds.tolist(), "targets": source.val_y.tolist(),
        "weight_drift": weight_drift(model, initial) if initial else {}, "timing": timing,
    }
    result["confusion"] = confusion_matrix(result["targets"], result["predictions"], len(classes) or None)
    return result


def average_batchnorm(model, groups: list[str]) -> None:
    """Make the BatchNorm layers of `groups` keep a plain average of this run's batch statistics.

    With the default momentum (0.1) the running statistics need a few hundred steps to
    forget their start; a 20-step classroom run would then be evaluated with statistics
    that never matched its data. momentum=None averages all batches of this run equally.
    """
    for name in groups:
        for m in model.groups[name].modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                m.momentum = None
                m.reset_running_stats()


@torch.no_grad()
def evaluate(model, source, batch_size: int, autocast) -> tuple[float, float, torch.Tensor]:
    """Mean validation loss, accuracy, and the predicted class of every validation example."""
    model.eval()
    loss_sum = torch.zeros((), device=source.val_y.device)
    preds = []
    for inputs, targets in source.eval_batches(batch_size):
        with autocast():
            logits = source.forward(model, inputs)
        loss_sum += F.cross_entropy(logits.float(), targets, reduction="sum")
        preds.append(logits.argmax(1))
    preds = torch.cat(preds)
    acc = (preds == source.val_y).float().mean()
    loss, acc = torch.stack([loss_sum / source.n_val, acc]).tolist()
    return loss, acc, preds.cpu()


def weight_drift(model, initial: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer group: ||w - w0|| / ||w0|| over its pretrained weights (the head is new: left out)."""
    out = {}
    for group, module in list(model.groups.items())[:-1]:
        diff, base = 0.0, 0.0
        for name, p in module.named_parameters(prefix=f"groups.{group}"):
            if name in initial:
                diff += (p.detach().float() - initial[name].float()).pow(2).sum().item()
                base += initial[name].float().pow(2).sum().item()
        if base > 0:
            out[group] = math.sqrt(diff / base)
    return out


def confusion_matrix(targets: list[int], preds: list[int], n: int | None = None) -> list[list[int]]:
    """(true class, predicted class) counts."""
    n = n or (max(targets + preds) + 1)
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (np.asarray(targets), np.asarray(preds)), 1)
    return m.tolist()


# ----------------------------------------------------------------------------- a whole run

def run(config: RunConfig, emit: Emit, should_stop: Callable[[], bool] = lambda: False,
        data: datasets.ImageData | None = None) -> dict | None:
    """Data, model, plan, fit: one RunConfig to a result. Errors become a Failed event.

    Returns the result dict (also sent as Done), or None when cancelled or failed.
    """
    t_run, started_at = time.perf_counter(), []

    def timed_emit(event) -> None:
        if isinstance(event, Started):
            started_at.append(time.perf_counter())
        emit(event)

    try:
        if config.task == "text":
            from tlcore import text

            result = text.run_text(config, timed_emit, should_stop)
        else:
            result = _run_image(config, timed_emit, should_stop, data)
        if result is not None and started_at and "timing" in result:
            # set-up: data and model, before the cache and the first step (measured for estimates)
            timing = result["timing"]
            timing["setup_s"] = max(0.0, started_at[0] - t_run - timing["cache_s"])
            # finishing: confusion matrix, weight drift, mistakes, keeping the model
            timing["finish_s"] = time.perf_counter() - timing.pop("last_eval_at", time.perf_counter())
    except (backbones.WeightsUnavailable, datasets.DatasetUnavailable, ValueError) as e:
        emit(Failed.of(e))
        return None
    except torch.OutOfMemoryError:
        emit(Failed.of(LearnerError("run.out_of_memory", batch_size=config.batch_size, image_size=config.image_size)))
        return None
    except Exception as e:  # the app must never show a raw traceback; the message still names the error
        emit(Failed.of(LearnerError("run.unexpected", error=f"{type(e).__name__}: {e}")))
        return None
    if result is not None:
        emit(Done(result))
    return result


def load_run_data(config: RunConfig):
    """The dataset a config names, split per class with the config's seed (images or text)."""
    return catalog.load_dataset(config.dataset, per_class=config.per_class, image_size=config.image_size,
                                 seed=config.seed, val_per_class=config.val_per_class, root=config.data_root)


def pretrained_choice(config: RunConfig) -> str:
    """What to ask the registry for: scratch always starts from random weights."""
    return "no" if config.strategy == "scratch" else config.pretrained


def fit_options(config: RunConfig) -> FitOptions:
    return FitOptions(config.epochs, config.batch_size, config.optimizer, config.weight_decay, config.bn_frozen_eval,
                      config.cache_features, config.log_every, precision=config.precision)


def _run_image(config: RunConfig, emit: Emit, should_stop, data) -> dict | None:
    device = pick_device(config.device)
    generator = seed_everything(config.seed)
    data = data if data is not None else load_run_data(config)
    if should_stop():
        emit(Cancelled(0))
        return None
    name, pretrained, note = catalog.resolve_pretrained(config.backbone, pretrained_choice(config))
    torch.manual_seed(config.seed)  # the same head init for every strategy of a race
    model = catalog.build_model(name, data.num_classes, pretrained=pretrained, image_size=config.image_size)
    groups = model.group_names
    if config.strategy == "partial" and config.freeze_depth > len(groups) - 1:
        raise LearnerError("run.freeze_depth", backbone=name, body=len(groups) - 1)
    plan = strategies.make_plan(config.strategy, groups, lr=config.lr, head_lr_mult=config.head_lr_mult,
                                freeze_depth=config.freeze_depth, layer_decay=config.layer_decay)
    channels_last = prefers_channels_last(device)
    model = model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    source = TensorSource(data, device, config.augment, channels_last)
    result = fit(model, plan, source, fit_options(config), device=device, emit=emit, should_stop=should_stop,
                 generator=generator, classes=tuple(data.classes),
                 started_extra={"pretrained": model.pretrained_from + (f" ({note})" if note else "")})
    if result is not None:
        result.update(backbone=name, strategy=config.strategy, classes=list(data.classes), note=str(note or ""),
                      note_message={"key": note.key, "values": note.values} if isinstance(note, Message) else None,
                      pretrained=model.pretrained_from, misclassified=misclassified(data, result),
                      model_id=finetuned.keep(model, data.classes, config.image_size, name))
    return result


def misclassified(data: datasets.ImageData, result: dict, limit: int = 12) -> list[dict]:
    """Up to `limit` wrong validation predictions with their images (H, W, 3) uint8."""
    out = []
    for i, (t, p) in enumerate(zip(result["targets"], result["predictions"])):
        if t != p:
            out.append({"image": data.val_x[i].permute(1, 2, 0).numpy(), "true": data.classes[t], "pred": data.classes[p]})
            if len(out) == limit:
                break
    return out
