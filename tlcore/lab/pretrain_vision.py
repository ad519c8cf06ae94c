"""Pretraining the studio's own backbone offline, and the files that ship with it.

`python -m tlcore pretrain` trains ``studio_resnet`` from random init to classify images
of the procedural source (``tlcore.data.procedural``: hundreds of classes of fractals, glyphs
and textures, drawn on the fly), then writes the checkpoint (safetensors, fp16, a few MB)
and its card (JSON + Markdown) into ``assets/backbones/``. The same command with the same
seed reproduces the shipped file; the card records the command.

This is the costly half of transfer learning, made small: the learner sees what
pretraining takes (images, minutes, a device) and, in the matrix, what it buys.

Not for: fine-tuning (``tlcore.train.trainer``) or loading the weights into a model
(``tlcore.models.backbones.load_studio_checkpoint`` does that; this module only writes them and
reads the card).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting, values
from tlcore.data import procedural
from tlcore.models import catalog
from tlcore.models.backbones import STUDIO_CARD, STUDIO_CHECKPOINT, STUDIO_WIDTHS, GroupedModel
from tlcore.train.device import describe_device, pick_device

STATEMENT_EN = (
    "Pretrained by this project on synthetic, procedurally generated images "
    "(fractals, stroke glyphs, textures), not on ImageNet or any photo dataset."
)
STATEMENT_KO = (
    "이 프로젝트가 프로그램으로 그려 낸 합성 이미지(프랙털, 획 글리프, 텍스처)로 직접 "
    "사전학습한 모델입니다. ImageNet이나 실제 사진 데이터는 쓰지 않았습니다."
)


@dataclass(frozen=True)
class PretrainConfig:
    classes: int = setting(500, "number of procedural source classes (parameter sets of the generators), at least 2")
    steps: int = setting(5000, "optimiser steps; images seen = steps x batch size")
    batch_size: int = setting(128, "images per step, all freshly drawn")
    image_size: int = setting(32, "image size in pixels; the studio's targets use the same size")
    lr: float = setting(0.2, "peak learning rate of SGD with Nesterov momentum 0.9")
    warmup: int = setting(300, "steps of linear warm-up before the cosine decay")
    weight_decay: float = setting(5e-4, "weight decay on conv/linear weights only, not on BatchNorm or biases")
    label_smoothing: float = setting(0.1, "label smoothing: softer targets, as many source classes look alike")
    eval_every: int = setting(250, "steps between source-accuracy checks (steps is a multiple of it)")
    eval_images: int = setting(4000, "fixed held-out images of the source classes, for the source accuracy")
    seed: int = setting(0, "seed of the data stream and init; the class universe is procedural.UNIVERSE_SEED")
    device: str = setting("auto", "auto picks cuda > mps > cpu", ("auto", "cpu", "cuda", "mps"))
    threads: int = setting(0, "CPU threads for torch, 0 = torch's default (1 is faster on a busy machine)")

    def __post_init__(self) -> None:
        if self.classes < 2:
            raise ValueError(f"classes must be at least 2, got {self.classes}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {self.image_size}")
        if not 0 <= self.warmup < max(self.steps, 1) + 1:
            raise ValueError("warmup must be between 0 and steps")
        if self.eval_every < 1 or self.steps % self.eval_every:
            raise ValueError(
                f"steps ({self.steps}) must be a multiple of eval_every ({self.eval_every}): "
                "training is measured after every eval_every steps"
            )


# --------------------------------------------------------------------------- training


def pretrain(
    cfg: PretrainConfig,
    *,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> tuple[GroupedModel, dict]:
    """Train studio_resnet on the procedural source. Returns the model and its card (a dict).

    Through the same `fit` as every fine-tune: the "from scratch" plan (every group at
    cfg.lr), SGD with Nesterov momentum, cfg.warmup steps of warm-up then cosine decay,
    weight decay on conv/linear weights only, label smoothing. An "epoch" is cfg.eval_every
    steps of freshly drawn images; after each, accuracy on fixed held-out images of the
    source classes.
    """
    from tqdm import tqdm

    from tlcore.train import strategies
    from tlcore.train.trainer import FitOptions, fit

    device = pick_device(cfg.device)
    if cfg.threads:
        # On a shared CPU, threads that wait for each other cost more than they give:
        # measured here, 1 thread ran 7x faster than 2 while other jobs were busy.
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the head and body init
    spec = procedural.SourceSpec(cfg.classes, procedural.UNIVERSE_SEED)
    model = catalog.build_model("studio_resnet", cfg.classes, pretrained=False, image_size=cfg.image_size)
    # channels_last is faster for convolutions on both CPU and CUDA.
    model = model.to(device, memory_format=torch.channels_last)

    source = _stream_source(cfg, spec, device)
    plan = strategies.scratch(model.group_names, lr=cfg.lr)
    opts = FitOptions(
        epochs=cfg.steps // cfg.eval_every,
        batch_size=cfg.batch_size,
        optimizer="sgd",
        weight_decay=cfg.weight_decay,
        log_every=cfg.eval_every,
        warmup_steps=cfg.warmup,
        label_smoothing=cfg.label_smoothing,
        average_bn_short_runs=False,
        precision="auto" if device.type == "cuda" else "fp32",
    )  # bf16 on GPUs only, as always

    bar = tqdm(total=cfg.steps, desc="pretrain", disable=not progress, file=sys.stderr, mininterval=2)
    emit, curve = _curve_recorder(cfg, bar, log)
    start = time.perf_counter()
    fit(model, plan, source, opts, device=device, emit=emit)
    bar.close()
    seconds = time.perf_counter() - start
    model = model.to("cpu", memory_format=torch.contiguous_format)
    card = _card(cfg, model, curve, seconds, describe_device(device), device.type)
    return model, card


def _stream_source(cfg: PretrainConfig, spec: procedural.SourceSpec, device: torch.device):
    """Freshly drawn images to train on, and held-out *images* of the source classes to
    measure on, drawn once from a stream of their own."""
    from tlcore.train.image_batches import StreamSource

    eval_gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)
    eval_y = torch.arange(cfg.eval_images) % cfg.classes
    eval_x = spec.render(eval_y, image_size=cfg.image_size, generator=eval_gen)
    stream = procedural.source_batches(
        spec,
        batch_size=cfg.batch_size,
        image_size=cfg.image_size,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return StreamSource(stream, cfg.eval_every, cfg.batch_size, eval_x, eval_y, device, channels_last=True)


def _curve_recorder(cfg: PretrainConfig, bar, log: Callable[[str], None]):
    """(emit, curve): an emit that moves the progress bar and appends a point to `curve`
    after each evaluation (step, images seen, training loss, source accuracy, seconds)."""
    from tlcore.core.events import EvalEvent, Started, StepEvent

    curve: list[dict] = []
    losses: dict[int, float] = {}

    def emit(event) -> None:
        if isinstance(event, StepEvent):
            losses[event.step] = event.loss  # mean over the steps since the last evaluation
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.loss:.3f}", lr=f"{event.lr:.3f}")
        elif isinstance(event, EvalEvent):
            point = {
                "step": event.step,
                "images_seen": event.step * cfg.batch_size,
                "train/loss": round(losses.get(event.step, float("nan")), 4),
                "source_acc": round(event.val_acc, 4),
                "seconds": round(event.seconds, 1),
            }
            curve.append(point)
            log(
                f"step {point['step']:>6}  images {point['images_seen']:>8}  loss {point['train/loss']:.3f}  "
                f"source acc {point['source_acc']:.3f}  ({point['seconds']:.0f} s)"
            )
        elif isinstance(event, Started):
            bar.reset(total=event.total_steps)

    return emit, curve


# --------------------------------------------------------------------------- card and files


def _card(cfg: PretrainConfig, model: GroupedModel, curve: list[dict], seconds: float, device: str, device_type: str) -> dict:
    counts = model.param_counts()
    final = curve[-1] if curve else {}
    return {
        "name": "studio_resnet",
        "pretrained_on": "synthetic",
        "statement_en": STATEMENT_EN,
        "statement_ko": STATEMENT_KO,
        "architecture": {
            "description": (
                "small ResNet: 3x3 stride-2 conv stem, four stages of one BasicBlock each "
                f"(widths {', '.join(map(str, STUDIO_WIDTHS))}; stages 2-4 halve the resolution), "
                "global average pool, linear head"
            ),
            "groups": model.group_names,
            "params_per_group": counts,
            "params_total": sum(counts.values()),
            "params_body": sum(v for k, v in counts.items() if k != "head"),
            "input": f"{cfg.image_size}x{cfg.image_size} RGB, normalised with mean 0.5 and std 0.25",
        },
        "source": {
            "generator": "tlcore.data.procedural (drawn on the fly, nothing stored)",
            "families": list(procedural.FAMILIES),
            "classes": cfg.classes,
            "class_ids": f"0..{cfg.classes - 1} of universe {procedural.UNIVERSE_SEED}",
            "heldout_class_ids_from": procedural.HELDOUT_FIRST,
            "image_size": cfg.image_size,
        },
        "training": {
            **asdict(cfg),
            "optimizer": "SGD, Nesterov momentum 0.9, warm-up then cosine learning rate",
            "images_seen": cfg.steps * cfg.batch_size,
            "seconds": round(seconds, 1),
            "device_name": device,  # what actually ran it, in words ("device" is the setting)
            "device_type": device_type,
            "note": (
                f"pretrained on a {os.cpu_count()}-core CPU: no GPU was available to this run"
                if device_type == "cpu"
                else "pretrained on a GPU"
            ),
        },
        "source_accuracy": {
            "top1": final.get("source_acc"),
            "chance": round(1 / cfg.classes, 4),
            "measured_on": f"{cfg.eval_images} fixed held-out images of the source classes",
            "curve": curve,
        },
        "command": command_for(cfg),
        "torch_version": torch.__version__,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def command_for(cfg: PretrainConfig, out: Path | str = STUDIO_CHECKPOINT) -> str:
    """The exact command that reproduces this checkpoint."""
    default = PretrainConfig()
    parts = ["python", "-m", "tlcore", "pretrain"]
    for key, value in asdict(cfg).items():
        if value != getattr(default, key) or key in ("classes", "steps", "image_size", "seed", "device"):
            parts += [f"--{key.replace('_', '-')}", str(value)]
    parts += ["--out", _relative(Path(out))]
    return shlex.join(parts)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def sha256_of(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def card_paths(checkpoint: Path | str) -> tuple[Path, Path]:
    """Where a checkpoint's card lives: same name, .json and .md."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_suffix(".json"), checkpoint.with_suffix(".md")


def save_checkpoint(model: GroupedModel, card: dict, path: Path | str = STUDIO_CHECKPOINT) -> dict:
    """Write the weights (fp16 safetensors, head included) and the card (JSON + Markdown).

    fp16 halves the file (the limit is 5 MB); the loader casts back to float32, and the
    rounding is far below what fine-tuning changes.
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"name": "studio_resnet", "pretrained_on": "synthetic"})
    card = dict(card)
    card["file"] = {
        "path": path.name,
        "bytes": path.stat().st_size,
        "sha256": sha256_of(path),
        "dtype": "float16",
        "tensors": len(state),
        "params_in_file": sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running" not in k),
    }
    card["command"] = command_for(PretrainConfig(**{k: card["training"][k] for k in asdict(PretrainConfig())}), path)
    json_path, md_path = card_paths(path)
    json_path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(card_markdown(card), encoding="utf-8")
    return card


def read_card(path: Path | str = STUDIO_CARD) -> dict | None:
    """The card of the shipped backbone, or None when it is missing (e.g. not pretrained yet)."""
    path = Path(path)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# The card's words in Korean (the app shows the card in the learner's language; the numbers
# come from the card itself).
CARD_KO = {
    "title": "# studio_resnet: 스튜디오의 오프라인 사전 학습 백본",
    "architecture": "구조",
    "groups": "층 그룹",
    "parameters": "매개변수",
    "input": "입력",
    "source data": "사전 학습 데이터",
    "images seen": "본 이미지 수",
    "source accuracy": "원래 과제 정확도",
    "time and device": "시간과 장치",
    "file": "파일",
    "reproduce": "다시 만드는 명령:",
    "curve": "사전 학습 중 원래 과제 정확도 (원래 클래스의 따로 떼어 둔 이미지):",
    "curve header": "| 스텝 | 본 이미지 | 학습 손실 | 원래 과제 정확도 | 초 |",
    "description": "작은 ResNet: 3x3 보폭 2 합성곱 줄기, BasicBlock 하나씩인 단계 네 개(폭 32, 64, 128, 256; "
    "2~4단계는 해상도를 절반으로), 전역 평균 풀링, 선형 헤드",
    "params": "{total:,}개 ({classes}개 클래스 헤드를 빼면 {body:,}개)",
    "input value": "{size}x{size} RGB, 평균 0.5와 표준편차 0.25로 정규화",
    "source value": "프로그램으로 그때그때 그려 낸 {classes}개 클래스 ({families})",
    "seen value": "{seen:,}장 ({steps:,} 스텝 x {batch})",
    "accuracy value": "원래 클래스의 고정된 검증 이미지 {n}장에서 top-1 {top1:.1%} (무작위 추측 {chance:.1%})",
    "not measured": "측정하지 않음",
    "time value": "{device}에서 {minutes:.1f}분; GPU 없이 공유된 2코어 CPU에서 사전 학습",
}


def _card_values_ko(card: dict, ko: dict) -> dict[str, str]:
    """The card's table values in Korean (CARD_KO's templates)."""
    arch, src, tr, acc = card["architecture"], card["source"], card["training"], card["source_accuracy"]
    top1 = acc["top1"]
    n_heldout = int(str(acc["measured_on"]).split()[0]) if str(acc["measured_on"]).split()[0].isdigit() else 0
    return {
        "architecture": ko["description"],
        "parameters": ko["params"].format(total=arch["params_total"], classes=src["classes"], body=arch["params_body"]),
        "input": ko["input value"].format(size=src["image_size"]),
        "source data": ko["source value"].format(classes=src["classes"], families=", ".join(src["families"])),
        "images seen": ko["seen value"].format(seen=tr["images_seen"], steps=tr["steps"], batch=tr["batch_size"]),
        "source accuracy": ko["accuracy value"].format(n=n_heldout, top1=top1, chance=acc["chance"])
        if top1 is not None
        else ko["not measured"],
        "time and device": ko["time value"].format(
            minutes=tr["seconds"] / 60,
            device=re.sub(r"CPU \((\d+) threads? of (\d+) cores?\)", r"CPU (코어 \2개 중 스레드 \1개)", tr["device_name"]),
        ),
    }


def _card_values_en(card: dict) -> dict[str, str]:
    """The card's table values in English."""
    arch, src, tr, acc = card["architecture"], card["source"], card["training"], card["source_accuracy"]
    top1 = acc["top1"]
    return {
        "architecture": arch["description"],
        "parameters": f"{arch['params_total']:,} ({arch['params_body']:,} without the {src['classes']}-class head)",
        "input": arch["input"],
        "source data": f"{src['classes']} procedural classes ({', '.join(src['families'])}), drawn on the fly",
        "images seen": f"{tr['images_seen']:,} ({tr['steps']:,} steps of {tr['batch_size']})",
        "source accuracy": f"{top1:.1%} top-1 on {acc['measured_on']} (chance {acc['chance']:.1%})"
        if top1 is not None
        else "not measured",
        "time and device": f"{tr['seconds'] / 60:.1f} min on {tr['device_name']}; {tr['note']}",
    }


def card_markdown(card: dict, lang: str = "en") -> str:
    """The card as markdown, in English or Korean (lang="ko")."""
    arch, acc = card["architecture"], card["source_accuracy"]
    ko = CARD_KO if lang == "ko" else None
    label = (lambda key: ko[key]) if ko else (lambda key: "layer groups" if key == "groups" else key)
    values = _card_values_ko(card, ko) if ko else _card_values_en(card)
    lines = [
        ko["title"] if ko else "# studio_resnet: the studio's offline pretrained backbone",
        "",
        f"**{card['statement_ko'] if ko else card['statement_en']}**",
        "",
    ]
    if not ko:
        lines += [f"**{card['statement_ko']}**", ""]
    lines += ["| | |", "|---|---|"]
    for key in (
        "architecture",
        "groups",
        "parameters",
        "input",
        "source data",
        "images seen",
        "source accuracy",
        "time and device",
    ):
        value = ", ".join(arch["groups"]) if key == "groups" else values[key]
        lines.append(f"| {label(key)} | {value} |")
    lines.append(f"| torch | {card['torch_version']} |")
    if "file" in card:
        f = card["file"]
        lines.append(
            f"| {label('file')} | {f['path']}, {f['bytes'] / 1e6:.2f} MB, {f['dtype']}, sha256 `{f['sha256'][:16]}...` |"
        )
    lines += [
        "",
        ko["reproduce"] if ko else "Reproduce it:",
        "",
        "```",
        card["command"],
        "```",
        "",
        ko["curve"] if ko else "Source accuracy during pretraining (held-out images of the source classes):",
        "",
        ko["curve header"] if ko else "| step | images seen | train loss | source acc | seconds |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {p['step']} | {p['images_seen']:,} | {p['train/loss']:.3f} | {p['source_acc']:.3f} | {p['seconds']:.0f} |"
        for p in acc["curve"]
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- CLI


def _cli_pretrain(args: argparse.Namespace) -> int:
    cfg = PretrainConfig(**values(args, PretrainConfig))
    model, card = pretrain(cfg, progress=args.progress)
    card = save_checkpoint(model, card, args.out)
    print(f"wrote {args.out} ({card['file']['bytes'] / 1e6:.2f} MB) and its card; source acc {card['source_accuracy']['top1']}")
    return 0


@dataclass(frozen=True)
class PretrainOptions:
    out: str = setting(str(STUDIO_CHECKPOINT), "checkpoint path; the card is written beside it")
    progress: bool = setting(True, "a progress bar while it trains")


PRETRAIN = Command(
    "pretrain",
    "pretrain studio_resnet on procedural images (offline) and write checkpoint + card",
    _cli_pretrain,
    flags=(Flags(PretrainConfig, "pretraining settings (PretrainConfig)"), Flags(PretrainOptions)),
    description=__doc__.split("\n\n")[0],
)
