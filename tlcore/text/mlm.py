"""Masked-word pretraining (BERT's masked language modelling), small enough for a CPU.

The pieces, in the order a run uses them:

1. `train_wordpiece` + `hf_tokenizer`: a WordPiece vocabulary trained on the corpus,
2. `make_blocks`: the corpus as blocks of `seq_len` word pieces ([CLS] ... [SEP]),
3. `mask_blocks`: 15% of the pieces of each block are chosen, 80% of those replaced by [MASK],
   10% by a random piece, 10% kept; the loss is the cross-entropy at the chosen places only,
4. `train_mlm`: AdamW, linear warm-up then cosine (`lr_at`), and every `eval_every` steps
   masked-token accuracy on held-out blocks (`evaluate`) and a sentence's top-5 (`guesses`).

Used by the full pretraining of studio_bert (tlcore.text.pretrain, a command) and by the
live pretraining the text page runs through the job queue (tlcore.text.mlm_live).

Not for: fine-tuning (tlcore.train.trainer) or the fill-mask demo (tlcore.text.fill_mask).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tlcore.core.fields import setting
from tlcore.train.config import SEED_SENTENCE
from tlcore.train.precision import use_bf16

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# The held-out test masks BERT's 15% whatever share training masks, so accuracies of models
# trained with different shares are comparable (more masks = less context = a harder test).
EVAL_MASK_PROB = 0.15


@dataclass(frozen=True)
class MlmConfig:
    """One masked-word pretraining. The defaults are studio_bert's recipe: short blocks, a high
    peak rate and no dropout move a small BERT off the "always guess 'the'" plateau early."""

    vocab_size: int = setting(8192, "WordPiece vocabulary trained on the corpus")
    hidden: int = setting(256, "width of every layer")
    layers: int = setting(4, "transformer blocks")
    heads: int = setting(4, "attention heads (hidden must be a multiple)")
    intermediate: int = setting(1024, "feed-forward width, 4 x hidden as in BERT")
    seq_len: int = setting(64, "word pieces per block, [CLS] and [SEP] included (8..512)")
    batch_size: int = setting(64, "blocks per step")
    steps: int = setting(3000, "optimiser steps")
    lr: float = setting(2e-3, "AdamW peak learning rate; linear warm-up, then cosine to zero")
    warmup: int = setting(200, "steps of linear warm-up from 0 to lr")
    weight_decay: float = setting(0.01, "weight decay on matrices only (not biases, not LayerNorm)")
    mask_prob: float = setting(0.4, "share of pieces chosen for guessing in training (BERT: 0.15; 0.4 learned faster here)")
    dropout: float = setting(0.0, "hidden and attention dropout; 0 for a small model trained briefly")
    eval_every: int = setting(250, "steps between held-out checks (and checkpoints)")
    eval_blocks: int = setting(256, "held-out blocks for masked-token accuracy")
    seed: int = setting(0, "seed of model init, masking and batch order")
    threads: int = setting(0, "CPU threads for torch, 0 = torch's default")
    precision: str = setting(
        "auto",
        "bf16: matrix products in bfloat16 (autocast; weights stay float32), 2x faster on a CPU with native bf16 "
        "(AVX512-BF16 or AMX) and about 15x slower on one without; fp32; auto: bf16 where native (tlcore.train.precision)",
        ("auto", "fp32", "bf16"),
    )

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.steps < 1 or self.batch_size < 1 or self.seq_len < 8:
            raise ValueError("steps and batch_size must be positive and seq_len at least 8")
        if self.eval_every < 1:
            raise ValueError("eval_every must be positive")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")


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


def split_documents(docs: list[tuple[str, list[str]]], every: int = 50) -> tuple[list[str], list[str], dict]:
    """(train documents, held-out documents, counts per file): 1 document in `every` is held out."""
    train, held, counts = [], [], {}
    for name, texts in docs:
        for i, t in enumerate(texts):
            (held if i % every == every - 1 else train).append(t)
        counts[name] = {"documents": len(texts), "words": sum(len(t.split()) for t in texts)}
    return train, held, counts


# ----------------------------------------------------------------------------- model and checks


def new_model(cfg: MlmConfig, vocab_size: int):
    """A BertForMaskedLM from random weights (seeded by cfg.seed)."""
    from transformers import BertConfig, BertForMaskedLM

    from tlcore.text.bert import building

    torch.manual_seed(cfg.seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        intermediate_size=cfg.intermediate,
        max_position_embeddings=max(cfg.seq_len, 128),
        type_vocab_size=2,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
    )
    with building():  # see tlcore.text.bert.building
        return BertForMaskedLM(config)


def masked_logits(model, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits at the chosen places (K, vocab), their targets (K,)): the vocabulary layer runs only
    where a guess is scored, 15% of the places, which saves about a third of a step."""
    hidden = model.bert(input_ids=inputs, attention_mask=torch.ones_like(inputs)).last_hidden_state  # (B, T, H)
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
    from tlcore.text.fill_mask import fill_mask

    was = model.training
    model.eval()
    out = [(g.token, round(g.score, 4)) for g in fill_mask(model, tokenizer, sentence, k)[0]]
    model.train(was)
    return out


def lr_at(step: int, cfg: MlmConfig) -> float:
    """The rate at 0-based `step`: 1. linear warm-up to cfg.lr over cfg.warmup steps,
    2. cosine from cfg.lr down to zero at cfg.steps."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


# ----------------------------------------------------------------------------- the loop


def adamw(model, cfg: MlmConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (BERT's betas and eps for short runs)."""
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )


def batches(blocks: torch.Tensor, size: int, generator: torch.Generator):
    """Endless (size, seq_len) batches of `blocks`, reshuffled at every pass."""
    size = min(size, len(blocks))
    if size < 1:
        raise ValueError("no blocks to train on: the corpus is shorter than one block")
    while True:
        order = torch.randperm(len(blocks), generator=generator)
        for i in range(0, len(order) - size + 1, size):
            yield blocks[order[i : i + size]]


def train_step(model, opt, cfg: MlmConfig, step: int, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """One optimiser step on a masked batch; returns its loss."""
    for group in opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16(torch.device("cpu"), cfg.precision)):
        logits, y = masked_logits(model, inputs, targets)
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def check(model, tokenizer, eval_inputs, eval_targets, sentence: str, step: int, seconds: float, losses: list[float]) -> dict:
    """One point of the curve: {step, seconds, train_loss (mean since the last), top1, top5, loss, guesses}."""
    p = {
        "step": step,
        "seconds": round(seconds, 1),
        "train_loss": round(sum(losses) / len(losses), 4) if losses else None,
    }
    p.update({k: round(v, 4) for k, v in evaluate(model, eval_inputs, eval_targets).items() if k != "tokens"})
    p["guesses"] = guesses(model, tokenizer, sentence)
    return p


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
    """The masked-word training loop. Returns the curve: one `check` per eval (step 0 included:
    the random model, and the step it stopped at when `should_stop` said so)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = adamw(model, cfg)
    model.train()
    start = time.perf_counter()
    curve: list[dict] = []
    losses: list[float] = []

    def point(step: int) -> None:
        curve.append(check(model, tokenizer, eval_inputs, eval_targets, sentence, step, time.perf_counter() - start, losses))
        losses.clear()
        if on_eval:
            on_eval(curve[-1])

    point(0)
    step = 0
    for step, batch in zip(range(1, cfg.steps + 1), batches(train_blocks, cfg.batch_size, gen)):
        if should_stop():
            step -= 1
            break
        inputs, targets = mask_blocks(batch, tokenizer, cfg.mask_prob, gen)
        losses.append(train_step(model, opt, cfg, step - 1, inputs, targets))
        if on_step:
            on_step(step, losses[-1])
        if step % cfg.eval_every == 0 or step == cfg.steps:
            point(step)
    if curve[-1]["step"] != step:
        point(step)
    return curve
