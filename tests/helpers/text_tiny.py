"""Tiny randomly initialised BERT and DistilBERT models, saved like real ones.

A test helper (it ships with the tests, not the engine): tests use them to run the real loading code: a folder
holding config.json, the weights and a WordPiece vocabulary is loaded through exactly the
path a hub id takes once it is cached. Their predictions mean nothing; their plumbing
(layer groups, freezing, LoRA, batching) is the same as bert-base's.

Not for: teaching results (use a pretrained model; see tlcore.text.specs for the registry).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_vocab(texts: list[str], size: int = 600) -> list[str]:
    """A small WordPiece vocabulary: special tokens, every character (alone and as a ##piece),
    then the most frequent lower-cased words of `texts`."""
    words: dict[str, int] = {}
    chars: set[str] = set()
    for text in texts:
        for w in re.findall(r"\w+|[^\w\s]", text.lower()):
            words[w] = words.get(w, 0) + 1
            chars.update(w)
    pieces = sorted(chars) + ["##" + c for c in sorted(chars)]
    frequent = [w for w, _ in sorted(words.items(), key=lambda kv: -kv[1]) if w not in chars]
    return SPECIAL + pieces + frequent[: max(0, size - len(SPECIAL) - len(pieces))]


def save_tiny_model(
    folder: str | Path,
    *,
    family: str = "bert",
    texts: list[str] | None = None,
    hidden: int = 32,
    layers: int = 2,
    seed: int = 0,
    init_range: float = 0.02,
) -> Path:
    """Save a random tiny masked LM (config, safetensors weights, tokenizer) into `folder`."""
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer, DistilBertConfig, DistilBertForMaskedLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if texts is None:
        from tlcore.text.sentences import SAMPLES, read_text_csv

        texts = read_text_csv(SAMPLES["en"]).texts
    vocab = build_vocab(texts)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary itself (token -> id), not a vocab_file argument
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(seed)
    if family == "bert":
        config = BertConfig(
            vocab_size=len(vocab),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            intermediate_size=hidden * 2,
            max_position_embeddings=128,
            initializer_range=init_range,
        )
        model = BertForMaskedLM(config)
    elif family == "distilbert":
        config = DistilBertConfig(
            vocab_size=len(vocab),
            dim=hidden,
            n_layers=layers,
            n_heads=2,
            hidden_dim=hidden * 2,
            max_position_embeddings=128,
            initializer_range=init_range,
        )
        model = DistilBertForMaskedLM(config)
    else:
        raise ValueError(f"family must be 'bert' or 'distilbert', got {family!r}")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
