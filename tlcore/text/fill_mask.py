"""The masked-word demo: hide a word, let a masked language model guess it.

This is BERT's pretraining task (masked language modelling): "The cat is on the [MASK]."
-> mat, floor, bed, ... The model never saw labels, only text with words hidden, and that
is how it learned the language that fine-tuning later reuses.

Not for: classification (tlcore.text.bert).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tlcore.core.messages import LearnerError

MASK = "[MASK]"  # what the learner types; swapped for the model's own mask token (e.g. <mask>)


@dataclass(frozen=True)
class Guess:
    token: str  # the predicted word piece, e.g. "mat" or "##s"
    score: float  # probability under the model, 0..1
    sentence: str  # the sentence with this guess in place of the mask


MAX_CHARS = 500  # a sentence or two
MAX_MASKS = 5


def fill_mask(model, tokenizer, sentence: str, top_k: int = 5) -> list[list[Guess]]:
    """Top-k guesses for every [MASK] in `sentence`, one list per mask, best first.

    Each mask is guessed on its own (the other masks stay hidden), as BERT was trained.
    """
    if len(sentence) > MAX_CHARS:  # each mask is one forward pass: a long box must not hold the server
        raise LearnerError("mask.too_long", chars=len(sentence), limit=MAX_CHARS)
    if sentence.count(MASK) > MAX_MASKS:
        raise LearnerError("mask.too_many", masks=sentence.count(MASK), limit=MAX_MASKS)
    if MASK not in sentence:
        raise ValueError(f"put {MASK} where the hidden word goes, e.g. 'The cat is on the {MASK}.'")
    if tokenizer.mask_token is None:
        raise ValueError("this tokenizer has no mask token: the model was not trained with masked words")
    text = sentence.replace(MASK, tokenizer.mask_token)
    batch = tokenizer(text, return_tensors="pt", truncation=True, max_length=512)
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(**{k: v.to(device) for k, v in batch.items()}).logits[0]  # (T, vocab)
    positions = (batch["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
    out = []
    for i, pos in enumerate(positions):
        probs = logits[pos].float().softmax(-1)
        top = probs.topk(min(top_k, probs.numel()))
        guesses = []
        for score, token_id in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            token = tokenizer.convert_ids_to_tokens(token_id)
            word = tokenizer.convert_tokens_to_string([token]).strip()
            guesses.append(Guess(token, score, _replace_nth(sentence, MASK, word, i)))
        out.append(guesses)
    return out


def _replace_nth(text: str, old: str, new: str, n: int) -> str:
    """Replace only the n-th (0-based) occurrence of `old`: the other masks stay visible."""
    parts = text.split(old)  # k masks -> k + 1 parts
    return old.join(parts[: n + 1]) + new + old.join(parts[n + 1 :])
