"""What a text model's vocabulary makes of a dataset: the first thing to check before transfer.

A model can only transfer what it can read. BERT-family models cut text into the word pieces of
the vocabulary they were pretrained with; text in another language or script falls apart into
single characters or the unknown token `[UNK]`, and what the model learnt about words is then
of no use. Measured on the studio's Korean samples with the English MiniLM: "최악의 영화였다"
becomes `[UNK] [UNK]`, and the model scores below chance.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Coverage:
    """How much of some text a tokenizer's vocabulary covers."""

    unknown_share: float  # words that are (or contain) the unknown token, 0..1
    pieces_per_word: float  # word pieces per whitespace-separated word (about 1-1.5 for a known language)
    example: str  # one sentence
    example_pieces: tuple[str, ...]  # that sentence as the model sees it (no [CLS]/[SEP])

    @property
    def readable(self) -> bool:
        """Can the model read this text? (Few unknown words and words not shattered into characters.)"""
        return self.unknown_share < 0.1 and self.pieces_per_word < 2.5


def coverage(tokenizer, texts: list[str], most: int = 200, words_each: int = 60) -> Coverage:
    """Tokenize up to `most` texts word by word (their first `words_each` words: a post of 20
    Newsgroups has hundreds) and count what the vocabulary does not know."""
    texts = [t for t in texts if t.strip()][:most]
    if not texts:
        return Coverage(0.0, 1.0, "", ())
    unknown = tokenizer.unk_token
    words = pieces = lost = 0
    for text in texts:
        for word in text.split()[:words_each]:
            parts = tokenizer.tokenize(word)
            words += 1
            pieces += len(parts)
            lost += unknown in parts
    example = min(texts[:20], key=len)
    return Coverage(lost / max(words, 1), pieces / max(words, 1), example, tuple(tokenizer.tokenize(example)))
