"""TextSource: batches of tokenised sentences for tlcore.train.trainer.fit.

Sentences are tokenised once (no padding). Each batch is padded only to its own longest
sentence (dynamic padding), and batches are cut from length-sorted buckets, so a batch
of short sentences does not pay for the longest one in the data set:

    shuffle all indices -> chunks of `batch_size * BUCKET_BATCHES` -> sort each chunk by
    length -> cut into batches -> shuffle the batch order

The order inside an epoch stays random (each chunk is a random sample) while the padding
per batch is close to none. A linear probe's cached [CLS] vectors are served in the same batches,
and computed in them during the first epoch (`prepare`), so its curves move from the first batch.
Implements the batch-source contract of tlcore.train.trainer:
n_train, n_val, val_y, prepare, train_batches, eval_batches, forward.

Not for: reading files (tlcore.text.sentences) or models (tlcore.text.bert).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from typing_extensions import override

from tlcore.data import feature_cache
from tlcore.data.sources import BatchSource, cache_depth
from tlcore.text.sentences import TextData

BUCKET_BATCHES = 16  # batches per length-sorted bucket: bigger = less padding, less randomness
CHARS_PER_TOKEN = 12  # a text cut at a space after this many characters per token still fills max_length (20 Newsgroups: 4-5)


def token_ids(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Each text's token ids, truncated to `max_length` (special tokens included), as the tokenizer
    gives them for the whole text, without tokenising all of a long one (a 20 Newsgroups post runs
    to 46,000 characters, 1,560 on average, of which 64 tokens are kept: the default run's 680 posts
    took 2.2-3.4 s whole and 1.3-1.9 s cut on the shared 2-core box at a load average of 9-10).

    Exact for BERT's pre-tokenizer, which splits at whitespace before anything else: a text cut at
    a whitespace keeps every word before the cut whole, so its pieces are the whole text's; the
    few cut texts that then fall short of `max_length` are tokenised again whole. Any other
    tokenizer gets the whole texts."""
    encode = lambda batch: tokenizer(batch, truncation=True, max_length=max_length)["input_ids"]  # noqa: E731
    pre = getattr(getattr(tokenizer, "backend_tokenizer", None), "pre_tokenizer", None)
    if type(pre).__name__ != "BertPreTokenizer":
        return encode(texts)
    cut = [_cut_at_space(t, max_length * CHARS_PER_TOKEN) for t in texts]
    ids = encode(cut)
    short = [i for i, (c, t) in enumerate(zip(cut, texts, strict=True)) if c is not t and len(ids[i]) < max_length]
    for i, whole in zip(short, encode([texts[i] for i in short]) if short else [], strict=True):
        ids[i] = whole
    return ids


def _cut_at_space(text: str, most: int) -> str:
    """`text` up to its last whitespace within `most` characters (the text itself when shorter, or with none)."""
    if len(text) <= most:
        return text
    at = max(text.rfind(c, 0, most) for c in " \n\t")
    return text[:at] if at > 0 else text


class TextSource(BatchSource):
    """Tokenised sentences of a TextData on one device, served as padded batches (see above)."""

    def __init__(self, data: TextData, tokenizer, device: torch.device, max_length: int = 128):
        self.device = device
        self.pad_id = tokenizer.pad_token_id or 0
        encode = lambda texts: token_ids(tokenizer, list(texts), max_length)  # noqa: E731
        self.train_ids: list[list[int]] = encode(data.train_texts) if data.train_texts else []
        self.train_y = data.train_y.to(device)
        # Validation is evaluated in length order (no randomness needed there); val_y and
        # val_order follow that order so predictions line up with targets.
        val_ids = encode(data.val_texts) if data.val_texts else []
        self.val_order = sorted(range(len(val_ids)), key=lambda i: len(val_ids[i]))
        self.val_ids = [val_ids[i] for i in self.val_order]
        self.val_y = data.val_y[self.val_order].to(device)
        self.cached = False  # True once prepare() has found the [CLS] features, or will compute them
        self.encode_s = 0.0  # seconds the encoder ran for the cached features (0: found in the cache)
        self._feats: tuple[torch.Tensor, torch.Tensor] | None = None  # (n_train, D), (n_val, D in val_order)
        self._encoder: _Encoder | None = None  # while the features are still to compute
        self.padded_tokens = 0  # tokens actually sent to the model, padding included
        self.real_tokens = 0

    @property
    def n_train(self) -> int:
        return len(self.train_ids)

    @property
    def n_val(self) -> int:
        return len(self.val_ids)

    def prepare(self, model, depth: int, batch_size: int, autocast) -> int:
        """Feature extraction, once: with every group but the head frozen, each sentence's [CLS]
        vector of the last layer, (N, D), is all the head ever reads. Returns the depth cached
        (0: not cached, every batch runs the whole model).

        The vectors are found in the process's cache (tlcore.data.feature_cache) or computed
        during the first epoch, batch by batch, as that epoch trains (`train_batches`): the head
        takes its first step after one batch of the encoder, not after all of them, so a run's
        curves grow while the encoder reads. The cost is the same: one pass over every sentence.
        """
        body, cls_features = len(model.groups) - 1, getattr(model, "can_cache_features", lambda: False)()
        if cache_depth("text", depth, len(model.groups), cls_features=cls_features) == 0:
            return 0
        # the same encoder on the same sentences: computed once per process (tlcore.data.feature_cache)
        self._cache_key = feature_cache.digest(
            "text",
            feature_cache.prefix_digest(model, body),
            str(self.device),
            feature_cache.autocast_digest(autocast),
            self.train_ids,
            self.val_ids,
        )
        self._feats = feature_cache.shared.get(self._cache_key)
        self._encoder = None if self._feats is not None else _Encoder(model, autocast, self.collate, batch_size * 2)
        self.cached = True
        return body

    @property
    def train_feats(self) -> torch.Tensor:
        """(n_train, D) the [CLS] vector of every training sentence (computed now if still to do)."""
        return self._features()[0]

    @property
    def val_feats(self) -> torch.Tensor:
        """(n_val, D) the same for the validation sentences, in `val_order`."""
        return self._features()[1]

    def _features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The features, from one pass over all sentences when no first epoch computed them."""
        if self._feats is None:
            order = sorted(range(self.n_train), key=lambda i: len(self.train_ids[i]))  # little padding
            feats = self._encoder.chunked([self.train_ids[i] for i in order])
            train = torch.empty_like(feats)
            train[torch.tensor(order, device=feats.device)] = feats
            self._keep(train, self._encoder.chunked(self.val_ids))
        return self._feats

    def _keep(self, train: torch.Tensor, val: torch.Tensor) -> None:
        self._feats, self.encode_s, self._encoder = (train, val), self._encoder.seconds, None
        feature_cache.shared.put(self._cache_key, self._feats)

    def features_to_float(self) -> None:
        """Cached features from a bf16 no-grad pass, for a head that trains in fp32 (the encoder's
        output is kept in fp32 already: see _Encoder)."""
        if self._feats is not None:
            self._feats = (self._feats[0].float(), self._feats[1].float())

    def _encoding_epoch(self, batch_size: int, generator: torch.Generator) -> Iterator:
        """The first epoch while the features are still to compute: length-bucketed batches (little
        padding for the encoder), each encoded, kept and yielded as (B, D) rows. A matching share of
        the validation sentences is encoded after each batch's step, so the first evaluation finds
        its features ready: no pass over the whole validation split stalls the curves after the
        epoch, and none delays the first step."""
        batches = self.length_bucketed(batch_size, generator)
        val_parts = torch.arange(self.n_val).tensor_split(max(1, len(batches)))
        train, val = [], []
        for idx, part in zip(batches, val_parts, strict=True):
            train.append(self._encoder([self.train_ids[i] for i in idx.tolist()]))
            yield train[-1], self.train_y[idx.to(self.device)]
            if len(part):  # after the step: the curve moves first
                val.append(self._encoder(self.val_ids[int(part[0]) : int(part[-1]) + 1]))
        # every sentence read: the rows put back in the data's order, for later epochs and runs
        rows = torch.cat(train)
        feats = torch.empty_like(rows)
        feats[torch.cat(batches).to(rows.device)] = rows
        self._keep(feats, torch.cat(val) if val else rows[:0])

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
        if self.cached and self._feats is None and self.n_train:  # the first epoch computes them (see prepare)
            yield from self._encoding_epoch(batch_size, generator)
            return
        # The same batches with features cached or not, computed now or found: a run's result
        # does not depend on what ran before it in the process.
        for idx in self.length_bucketed(batch_size, generator):
            targets = self.train_y[idx.to(self.device)]
            if self.cached:  # (B, D) feature rows
                yield self.train_feats[idx.to(self.device)], targets
            else:
                yield self.collate([self.train_ids[i] for i in idx.tolist()]), targets

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


class _Encoder:
    """The frozen encoder's [CLS] vectors for a list of token-id lists, (B, D) in fp32, computed as
    a cached pass must be: in eval mode (no dropout), without gradients, under the no-grad pass's
    autocast, whatever mode the training loop has the model in (each module's is put back after)."""

    def __init__(self, model, autocast, collate, chunk: int):
        self.model, self.autocast, self.collate, self.chunk = model, autocast, collate, chunk
        self.seconds = 0.0  # time spent encoding, all calls

    @torch.no_grad()
    def __call__(self, seqs: list[list[int]]) -> torch.Tensor:
        t0 = time.perf_counter()
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            with self.autocast():
                out = self.model.encode_cls(self.collate(seqs)).float()
        finally:
            for m, training in modes:
                m.training = training
        self.seconds += time.perf_counter() - t0
        return out

    def chunked(self, seqs: list[list[int]]) -> torch.Tensor:
        """All of `seqs` in chunks, (len(seqs), D)."""
        return torch.cat([self(seqs[i : i + self.chunk]) for i in range(0, len(seqs), self.chunk)])
