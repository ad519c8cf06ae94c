"""TextSource: batches of tokenised sentences for tlcore.train.trainer.fit.

Sentences are tokenised once (no padding). Each batch is padded only to its own longest
sentence (dynamic padding), and batches are cut from length-sorted buckets, so a batch
of short sentences does not pay for the longest one in the data set:

    shuffle all indices -> chunks of `batch_size * BUCKET_BATCHES` -> sort each chunk by
    length -> cut into batches -> shuffle the batch order

The order inside an epoch stays random (each chunk is a random sample) while the padding
per batch is close to none. Implements the batch-source contract of tlcore.train.trainer:
n_train, n_val, val_y, prepare, train_batches, eval_batches, forward.

Not for: reading files (tlcore.text.sentences) or models (tlcore.text.bert).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from typing_extensions import override

from tlcore.data import feature_cache
from tlcore.data.sources import BatchSource, cache_depth
from tlcore.text.sentences import TextData

BUCKET_BATCHES = 16  # batches per length-sorted bucket: bigger = less padding, less randomness


class TextSource(BatchSource):
    """Tokenised sentences of a TextData on one device, served as padded batches (see above)."""

    def __init__(self, data: TextData, tokenizer, device: torch.device, max_length: int = 128):
        self.device = device
        self.pad_id = tokenizer.pad_token_id or 0
        encode = lambda texts: tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]  # noqa: E731
        self.train_ids: list[list[int]] = encode(data.train_texts) if data.train_texts else []
        self.train_y = data.train_y.to(device)
        # Validation is evaluated in length order (no randomness needed there); val_y and
        # val_order follow that order so predictions line up with targets.
        val_ids = encode(data.val_texts) if data.val_texts else []
        self.val_order = sorted(range(len(val_ids)), key=lambda i: len(val_ids[i]))
        self.val_ids = [val_ids[i] for i in self.val_order]
        self.val_y = data.val_y[self.val_order].to(device)
        self.cached = False  # True once prepare() has stored the [CLS] features
        self.padded_tokens = 0  # tokens actually sent to the model, padding included
        self.real_tokens = 0

    @property
    def n_train(self) -> int:
        return len(self.train_ids)

    @property
    def n_val(self) -> int:
        return len(self.val_ids)

    @torch.no_grad()
    def prepare(self, model, depth: int, batch_size: int, autocast) -> int:
        """Feature extraction once: with every group but the head frozen, run the encoder
        over all sentences a single time and keep each one's [CLS] vector, (N, D).
        Returns the depth cached (0: not cached, every batch runs the whole model)."""
        body, cls_features = len(model.groups) - 1, getattr(model, "can_cache_features", lambda: False)()
        if cache_depth("text", depth, len(model.groups), cls_features=cls_features) == 0:
            return 0
        was_training = model.training
        model.eval()  # no dropout: the cached features are the encoder's clean output

        def features(ids):
            outs = []
            for i in range(0, len(ids), batch_size * 2):
                with autocast():
                    outs.append(model.encode_cls(self.collate(ids[i : i + batch_size * 2])).float())
            return torch.cat(outs)

        # the same encoder on the same sentences: computed once per process (tlcore.data.feature_cache)
        key = feature_cache.digest(
            "text",
            feature_cache.prefix_digest(model, body),
            str(self.device),
            feature_cache.autocast_digest(autocast),
            self.train_ids,
            self.val_ids,
        )
        found = feature_cache.shared.get(key)
        if found is None:
            # Sorted by length, so the one pass over the data pads as little as possible.
            order = sorted(range(self.n_train), key=lambda i: len(self.train_ids[i]))
            feats = features([self.train_ids[i] for i in order])
            train_feats = torch.empty_like(feats)
            train_feats[torch.tensor(order, device=feats.device)] = feats
            found = (train_feats, features(self.val_ids))
            feature_cache.shared.put(key, found)
        self.train_feats, self.val_feats = found
        model.train(was_training)
        self.cached = True
        return body

    def features_to_float(self) -> None:
        """Cached features from a bf16 no-grad pass, for a head that trains in fp32."""
        if self.cached:
            self.train_feats, self.val_feats = self.train_feats.float(), self.val_feats.float()

    def collate(self, seqs: list[list[int]]) -> dict[str, torch.Tensor]:
        """Pad to the longest sequence of this batch: -> input_ids, attention_mask (B, T_max)."""
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.tensor(s)
            mask[row, : len(s)] = 1
        self.padded_tokens += ids.numel()
        self.real_tokens += sum(len(s) for s in seqs)
        return {"input_ids": ids.to(self.device, non_blocking=True), "attention_mask": mask.to(self.device, non_blocking=True)}

    def length_bucketed(self, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """The batches of one epoch as index tensors (see the module docstring)."""
        order = torch.randperm(self.n_train, generator=generator)
        chunk = batch_size * BUCKET_BATCHES
        batches = []
        for start in range(0, self.n_train, chunk):
            part = order[start : start + chunk]
            lengths = torch.tensor([len(self.train_ids[i]) for i in part])
            part = part[torch.argsort(lengths, stable=True)]
            batches += list(part.split(batch_size))
        shuffle = torch.randperm(len(batches), generator=generator)
        return [batches[i] for i in shuffle]

    @override
    def train_batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterator:
        if self.cached:  # (B, D) feature rows: no padding, plain shuffled slices
            order = torch.randperm(self.n_train, generator=generator).to(self.device)
            for i in range(0, self.n_train, batch_size):
                idx = order[i : i + batch_size]
                yield self.train_feats[idx], self.train_y[idx]
            return
        for idx in self.length_bucketed(batch_size, generator):
            yield self.collate([self.train_ids[i] for i in idx.tolist()]), self.train_y[idx.to(self.device)]

    def eval_batches(self, batch_size: int) -> Iterator:
        step = batch_size * 2
        for i in range(0, self.n_val, step):
            inputs = self.val_feats[i : i + step] if self.cached else self.collate(self.val_ids[i : i + step])
            yield inputs, self.val_y[i : i + step]

    def forward(self, model, inputs):
        return model.head_from_cls(inputs) if self.cached else model(inputs)

    @property
    def padding_share(self) -> float:
        """Fraction of the tokens sent to the model that were padding (lower is better)."""
        return 1.0 - self.real_tokens / max(self.padded_tokens, 1)
