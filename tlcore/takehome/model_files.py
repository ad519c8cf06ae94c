"""Take the model home: a fine-tuned model as files a learner can use without the studio.

A finished run's model (kept on the server's shelf, tlcore.serve.kept_models) becomes a folder, or a zip of it:

    model.safetensors   the weights; its metadata holds the run's settings and class names,
                        so this one file is enough for `load` and `python -m tlcore predict`
    model.json          the same settings (RunConfig.to_dict), the CLI command that trains
                        it again, the class names, the input it expects: the JSON of one
                        `TakeHome` record (tlcore.takehome.record), what every file here reads
    model.onnx          the same network for onnxruntime (no torch, no studio); images in as
                        (B, 3, S, S) uint8, text in as token ids + attention mask; logits out
    tokenizer/          text models: the tokenizer's files, for the ONNX model
    README.md           two short snippets: load with tlcore, predict with onnxruntime
    MODEL_CARD.md       what was trained, on what, its metrics on the run's validation split, its limits
                        (tlcore.takehome.card)

The take-home notebook (the same run in plain PyTorch) is tlcore.takehome.notebook.

    python -m tlcore predict --model DIR_OR_FILE photo.jpg ...        (image model)
    python -m tlcore predict --model DIR_OR_FILE "a sentence" ...     (text model)

Files are written to a temporary folder and, for the app, zipped into memory; nothing stays
on disk. Models bigger than `MAX_MODEL_BYTES` of weights are refused (a class server builds
the zip in memory).

Not for: keeping models on the server (tlcore.serve.kept_models) or training (tlcore.train.recipe).
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tlcore.core.commands import Command, Flags
from tlcore.core.events import RunResult
from tlcore.core.fields import setting
from tlcore.core.messages import LearnerError
from tlcore.core.progress import ProgressPrinter
from tlcore.core.spreadsheet import safe_frame
from tlcore.models import catalog
from tlcore.models.imagenet import to_input
from tlcore.takehome.card import model_card
from tlcore.takehome.record import FORMAT, RunMetrics, TakeHome
from tlcore.text.bert import build_text_model
from tlcore.train import presets
from tlcore.train.config import RunConfig, run_flags
from tlcore.train.finetuned import model_bytes
from tlcore.train.recipe import load_run_data, run

WEIGHTS, META, ONNX, README, CARD = "model.safetensors", "model.json", "model.onnx", "README.md", "MODEL_CARD.md"
MAX_MODEL_BYTES = 128 * 2**20  # ResNet-50, ConvNeXt-Tiny and MiniLM fit; BERT-base and ViT-B/16 do not
MAX_MODEL_CLASSES = 1000  # a head this studio trains has at most the class's max_classes (100); ImageNet's 1000
MAX_CLASS_NAME = 200  # characters
OPSET = 17


@dataclass
class Loaded:
    """A model read back from its files, ready to predict."""

    model: torch.nn.Module  # eval mode, CPU
    classes: tuple[str, ...]
    task: str  # "image" or "text"
    backbone: str
    image_size: int
    config: RunConfig | None  # None: saved without settings
    tokenizer: object = None

    @property
    def max_length(self) -> int:
        """A text model's longest sentence in tokens (RunConfig's default when saved without settings)."""
        return self.config.max_length if self.config else RunConfig.max_length

    def predict(self, inputs: list, k: int = 3) -> list[list[tuple[str, float]]]:
        """Top-k (class, probability) for each image (path or (H, W, 3) array) or sentence."""
        probs = probabilities(self, inputs)
        top = probs.topk(min(k, probs.shape[1]), dim=1)
        return [
            [(self.classes[i], float(p)) for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(top.values, top.indices)
        ]


# ----------------------------------------------------------------------------- inputs


def image_batch(images: list, size: int) -> torch.Tensor:
    """Paths or (H, W, 3) arrays -> (B, 3, size, size) uint8: the studio's own preprocessing
    (centre square, resized), which the ONNX model expects too."""
    arrays = [np.asarray(Image.open(x).convert("RGB")) if isinstance(x, (str, Path)) else x for x in images]
    return torch.cat([to_input(a, size) for a in arrays])


def text_batch(tokenizer, sentences: list[str], max_length: int) -> dict[str, torch.Tensor]:
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@torch.no_grad()
def probabilities(loaded: Loaded, inputs: list) -> torch.Tensor:
    """(B, num_classes) softmax of the loaded model for a list of images or sentences."""
    if loaded.task == "text":
        batch = text_batch(loaded.tokenizer, inputs, loaded.max_length)
    else:
        batch = image_batch(inputs, loaded.image_size)
    return loaded.model(batch).float().softmax(-1)


# ----------------------------------------------------------------------------- writing


def _state(entry) -> dict[str, torch.Tensor]:
    """The weights to save: a vision GroupedModel's own; a text model's Hugging Face model's
    (its layer groups only point at those same tensors)."""
    module = entry.model.hf if entry.task == "text" else entry.model
    return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}


def check_size(entry) -> None:
    size = model_bytes(entry.model)
    if size > MAX_MODEL_BYTES:
        raise LearnerError("takehome.too_big", mb=round(size / 2**20), limit=round(MAX_MODEL_BYTES / 2**20))


PARTS = ("weights", "onnx")  # the app offers each as its own download: a text model's are 90 MB each


def save(
    entry, folder: str | Path, *, parts: tuple[str, ...] = PARTS, metrics: RunResult | RunMetrics | None = None
) -> dict[str, int]:
    """Write a fine-tuned model (tlcore.train.finetuned.Finetuned) as files; returns {file name: bytes}.

    parts: "weights" (model.safetensors) and/or "onnx" (model.onnx); model.json, README.md,
    MODEL_CARD.md and a text model's tokenizer/ come with either. metrics: the run's result
    (or its card's figures), for the card. The files carry the record `shareable`: no upload path
    of the server's."""
    from safetensors.torch import save_file  # a compiled extension: loaded when a model is saved, not with the page

    check_size(entry)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = TakeHome.of(entry, metrics).shareable()
    if "weights" in parts:
        save_file(_state(entry), str(folder / WEIGHTS), metadata={"tlcore": record.to_json()})
    if "onnx" in parts:
        export_onnx(entry, folder / ONNX)
    (folder / META).write_text(record.to_json(indent=1), encoding="utf-8")
    if entry.task == "text":
        entry.model.tokenizer.save_pretrained(str(folder / "tokenizer"))
    (folder / README).write_text(readme(record, parts), encoding="utf-8")
    (folder / CARD).write_text(model_card(record), encoding="utf-8")
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}


def export_onnx(entry, path: Path) -> None:
    """The same network as ONNX (TorchScript exporter, dynamic batch; text: dynamic length too)."""
    model = entry.model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        if entry.task == "text":
            hf = model.hf
            batch = text_batch(model.tokenizer, ["a short sentence", "and another one"], 16)
            before = _attention(hf, "eager")
            try:  # the wrapper in eval mode: the exporter restores its mode, and with it hf's, afterwards
                torch.onnx.export(
                    _TextLogits(hf).eval(),
                    (batch["input_ids"], batch["attention_mask"]),
                    str(path),
                    input_names=["input_ids", "attention_mask"],
                    output_names=["logits"],
                    dynamic_axes={
                        "input_ids": {0: "batch", 1: "tokens"},
                        "attention_mask": {0: "batch", 1: "tokens"},
                        "logits": {0: "batch"},
                    },
                    opset_version=OPSET,
                    dynamo=False,
                )
            finally:
                _attention(hf, before)
        else:
            x = torch.zeros(1, 3, entry.image_size, entry.image_size, dtype=torch.uint8)
            torch.onnx.export(
                model,
                (x,),
                str(path),
                input_names=["pixels"],
                output_names=["logits"],
                dynamic_axes={"pixels": {0: "batch"}, "logits": {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )


class _TextLogits(torch.nn.Module):
    """(input_ids, attention_mask) -> logits: the Hugging Face model with positional inputs."""

    def __init__(self, hf):
        super().__init__()
        self.hf = hf

    def forward(self, input_ids, attention_mask):
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits


def _attention(hf, implementation: str | None) -> str | None:
    """Switch the attention kernel (plain matrix products trace into ONNX; fused kernels do not
    always); returns the one before, so the shelf's model is left as it was."""
    before = getattr(hf.config, "_attn_implementation", None)
    if implementation and implementation != before:
        try:
            hf.set_attn_implementation(implementation)
        except (AttributeError, ValueError):
            pass
    return before


def write_zip(entry, target, *, parts: tuple[str, ...] = PARTS, metrics: RunResult | RunMetrics | None = None) -> None:
    """The folder `save` writes (with `metrics` for the model card), as one zip into `target` (a path
    or a binary file), copied from disk file by file: a 90 MB model is never held twice in memory
    (the temporary folder is removed)."""
    with tempfile.TemporaryDirectory(prefix="tlcore-model-") as tmp:
        save(entry, tmp, parts=parts, metrics=metrics)
        with zipfile.ZipFile(target, "w") as z:
            for p in sorted(Path(tmp).rglob("*")):
                if p.is_file():
                    binary = p.suffix in (".safetensors", ".onnx")  # floats barely compress: store them
                    z.write(
                        p, f"model/{p.relative_to(tmp)}", compress_type=zipfile.ZIP_STORED if binary else zipfile.ZIP_DEFLATED
                    )


def zip_bytes(entry, *, parts: tuple[str, ...] = PARTS, metrics: RunResult | RunMetrics | None = None) -> bytes:
    """The zip `write_zip` makes, in memory."""
    buffer = io.BytesIO()
    write_zip(entry, buffer, parts=parts, metrics=metrics)
    return buffer.getvalue()


def readme(record: TakeHome, parts: tuple[str, ...]) -> str:
    """The download's README.md: what the model is, how it was trained, and how to run it
    with the studio's engine and (when the ONNX file is in the download) without it."""
    lines = [
        f"# {record.backbone} fine-tuned by Transfer Learning Studio",
        "",
        f"Task: {record.task}. Classes, in output order: {', '.join(record.classes)}.",
        "",
    ]
    if record.cli:
        lines += ["Trained with:", "", "```bash", record.cli, "```", ""]
    image = record.task == "image"
    if "weights" in parts:
        lines += _with_engine('"photo.jpg"' if image else '"a sentence to classify"')
    if "onnx" in parts:
        lines += _onnx_image(record.image_size) if image else _onnx_text(record.config.max_length if record.config else 128)
    return "\n".join(lines)


def _with_engine(sample: str) -> list[str]:
    """Running the model with tlcore."""
    return [
        "## With the studio's engine (tlcore)",
        "",
        "```python",
        "from tlcore import takehome",
        "",
        'model = takehome.load("model.safetensors")  # or this folder',
        f"print(model.predict([{sample}]))",
        "```",
        "",
        f"or: `python -m tlcore predict --model model.safetensors {sample}`",
        "",
    ]


def _onnx_image(size: int) -> list[str]:
    """Running the ONNX image model with onnxruntime, numpy and Pillow (the studio's centre crop)."""
    return [
        "## Without the studio: onnxruntime, numpy and Pillow",
        "",
        "```python",
        "import json",
        "import numpy as np, onnxruntime as ort",
        "from PIL import Image",
        "",
        'classes = json.load(open("model.json"))["classes"]',
        'image = Image.open("photo.jpg").convert("RGB")',
        "side = min(image.size)  # the centre square, as the studio crops",
        "left, top = (image.width - side) // 2, (image.height - side) // 2",
        f"image = image.crop((left, top, left + side, top + side)).resize(({size}, {size}), Image.BILINEAR)",
        "pixels = np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)[None]  # (1, 3, S, S) uint8",
        'logits = ort.InferenceSession("model.onnx").run(None, {"pixels": pixels})[0]',
        "print(classes[int(logits.argmax())])",
        "```",
        "",
    ]


def _onnx_text(length: int) -> list[str]:
    """Running the ONNX text model with onnxruntime and the saved tokenizer."""
    return [
        "## Without the studio: onnxruntime and tokenizers",
        "",
        "```python",
        "import json",
        "import numpy as np, onnxruntime as ort",
        "from tokenizers import Tokenizer",
        "",
        'classes = json.load(open("model.json"))["classes"]',
        'tokenizer = Tokenizer.from_file("tokenizer/tokenizer.json")',
        f"tokenizer.enable_truncation({length})",
        'enc = tokenizer.encode("a sentence to classify")',
        'feed = {"input_ids": np.array([enc.ids], dtype=np.int64),',
        '        "attention_mask": np.array([enc.attention_mask], dtype=np.int64)}',
        'logits = ort.InferenceSession("model.onnx").run(None, feed)[0]',
        "print(classes[int(logits.argmax())])",
        "```",
        "",
    ]


# ----------------------------------------------------------------------------- reading


def read_meta(path: str | Path) -> tuple[Path, TakeHome]:
    """(weights file, its record) for a folder written by `save` or its model.safetensors."""
    from safetensors import safe_open  # a compiled extension: loaded when a model is read

    path = Path(path)
    weights = path / WEIGHTS if path.is_dir() else path
    if not weights.is_file():
        raise LearnerError("takehome.not_found", path=str(path))
    size = weights.stat().st_size  # before anything is read: a file of any size was read whole
    if size > MAX_MODEL_BYTES + 2**20:  # the weights and their metadata (model.json's text, a few KB)
        raise LearnerError(
            "takehome.file_too_big", path=str(weights), mb=round(size / 2**20), limit=round(MAX_MODEL_BYTES / 2**20)
        )
    with safe_open(str(weights), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("tlcore", "null") or "null")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LearnerError("takehome.not_ours", path=str(weights))
    return weights, checked_meta(meta, weights)


def checked_meta(meta: dict, weights: Path) -> TakeHome:
    """The record `meta` (a file's JSON) holds when a model can be built from it as this studio
    would, else LearnerError naming the first setting that is wrong. Whoever made the file wrote
    it: a list of ten million class names would build a head of billions of weights before the
    weights are even compared, an unknown backbone or a folder's path would load what the file
    names, not a model of ours."""

    def wrong(setting: str) -> LearnerError:
        return LearnerError("takehome.bad_meta", path=str(weights), setting=setting)

    task, backbone, classes = meta.get("task"), meta.get("backbone"), meta.get("classes")
    if task not in ("image", "text"):
        raise wrong("task")
    if not isinstance(backbone, str) or backbone not in catalog.backbone_names() or catalog.task_of(backbone) != task:
        raise wrong("backbone")
    if not isinstance(classes, list) or not 2 <= len(classes) <= MAX_MODEL_CLASSES:
        raise wrong("classes")
    if not all(isinstance(name, str) and 0 < len(name) <= MAX_CLASS_NAME for name in classes):
        raise wrong("classes")
    size = meta.get("image_size")
    if task == "image" and (type(size) is not int or not 8 <= size <= 512):  # RunConfig.image_size's range
        raise wrong("image_size")
    config = meta.get("config") or {}
    if not isinstance(config, dict):
        raise wrong("config")
    try:
        RunConfig.from_dict(config) if config else None
    except (LearnerError, TypeError, ValueError):
        raise wrong("config") from None
    groups = meta.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(name, str) for name in groups):
        raise wrong("groups")
    if not isinstance(meta.get("metrics") or {}, dict):
        raise wrong("metrics")
    return TakeHome.from_dict(meta)


def load(path: str | Path) -> Loaded:
    """A folder written by `save` (or its model.safetensors) -> the same model, ready to predict."""
    from safetensors.torch import load_file  # a compiled extension: loaded when a model is read

    weights, record = read_meta(path)
    classes, backbone, config = record.classes, record.backbone, record.config
    state = load_file(str(weights))
    if record.task == "text":
        lora_r = config.lora_r if config and config.strategy == "lora" else 0
        model = build_text_model(backbone, len(classes), pretrained=False, lora_r=lora_r)
        model.hf.load_state_dict(state, strict=True)
        return Loaded(model.eval(), classes, "text", backbone, 0, config, model.tokenizer)
    model = catalog.build_model(backbone, len(classes), pretrained=False, image_size=record.image_size)
    model.load_state_dict(state, strict=True)
    return Loaded(model.eval(), classes, "image", backbone, record.image_size, config)


def onnx_logits(path: str | Path, loaded: Loaded, inputs: list):
    """The ONNX model's logits for the same inputs, through onnxruntime (numpy (B, num_classes))."""
    import onnxruntime as ort  # heavy, and only the export check needs it

    path = Path(path)
    session = ort.InferenceSession(str(path / ONNX if path.is_dir() else path), providers=["CPUExecutionProvider"])
    if loaded.task == "text":
        batch = text_batch(loaded.tokenizer, inputs, loaded.max_length)
        feed = {k: v.numpy() for k, v in batch.items()}
    else:
        feed = {"pixels": image_batch(inputs, loaded.image_size).numpy()}
    return session.run(None, feed)[0]


# ----------------------------------------------------------------------------- the command line


def _is_image(arg: str) -> bool:
    return Path(arg).is_file()


def cmd_predict(args) -> int:
    loaded = load(args.model)
    if loaded.task == "image":
        missing = [x for x in args.inputs if not _is_image(x)]
        if missing:
            raise LearnerError("takehome.no_image", path=missing[0])
    for item, top in zip(args.inputs, loaded.predict(args.inputs, k=args.top), strict=True):
        print(printable(f"{item}: " + ", ".join(f"{name} {p:.1%}" for name, p in top)))
    return 0


def printable(text: str) -> str:
    """`text` without control characters: a class name (or a file name) is written by whoever made
    the model, and a terminal obeys escape sequences (colours, a moved cursor, a changed title)."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")


def verify_export(config, folder: str | Path) -> dict:
    """Train `config`, save its model to `folder`, and compare on its validation split: the
    reloaded model's logits with the trained one's (identical?) and the ONNX model's top class
    with PyTorch's (agreement). The figures behind assets/results/takehome.md."""
    data = load_run_data(config)
    result = run(config, ProgressPrinter(f"{config.task} {config.strategy}"), data=data)
    entry = result.model.on_cpu()
    t0 = time.perf_counter()
    sizes = save(entry, folder)
    save_s = time.perf_counter() - t0
    loaded = load(folder)
    inputs = list(data.val_texts) if config.task == "text" else [x.permute(1, 2, 0).numpy() for x in data.val_x]
    with torch.no_grad():
        if config.task == "text":
            batch = text_batch(loaded.tokenizer, inputs, config.max_length)
            mine, theirs = entry.model(batch), loaded.model(batch)
        else:
            mine, theirs = entry.model(data.val_x), loaded.model(data.val_x)
    onnx = onnx_logits(folder, loaded, inputs)
    return {
        "task": config.task,
        "backbone": entry.backbone,
        "strategy": config.strategy,
        "val_examples": len(inputs),
        "val_acc": round(result.val_acc, 3),
        "reload_identical": bool(torch.equal(mine, theirs)),
        "onnx_top1_agreement": float((onnx.argmax(1) == mine.argmax(1).numpy()).mean()),
        "onnx_max_abs_diff": float(np.abs(onnx - mine.numpy()).max()),
        "safetensors_mb": round(sizes[WEIGHTS] / 2**20, 1),
        "onnx_mb": round(sizes[ONNX] / 2**20, 1),
        "save_s": round(save_s, 1),
        "cli": config.to_cli(),
    }


def cmd_export_check(args) -> int:
    import pandas as pd  # heavy: only the export check's table

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in (presets.image(), presets.text())[: 1 if args.image_only else 2]:
            rows.append(verify_export(config.replace(device=args.device), Path(tmp) / config.task))
    table = pd.DataFrame(rows)
    print(table.drop(columns=["cli"]).to_string(index=False))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        safe_frame(table).to_csv(args.out, index=False)  # the `cli` column is text
        print(f"wrote {args.out}")
    return 0 if all(r["onnx_top1_agreement"] == 1.0 and r["reload_identical"] for r in rows) else 1


@dataclass(frozen=True)
class ExportCheckOptions:
    image_only: bool = setting(False, "skip the text model")
    out: str = setting("", "CSV file for the table, e.g. assets/results/takehome.csv")


@dataclass(frozen=True)
class PredictOptions:
    model: str = setting("", "the downloaded folder, or its model.safetensors", required=True)
    top: int = setting(3, "classes shown per input", lo=1, hi=1000)
    inputs: tuple[str, ...] = setting((), "image files (image model) or sentences (text model)", nargs="+", positional=True)


EXPORT_CHECK = Command(
    "export-check",
    "the default image and text demos: save, reload, ONNX vs PyTorch on validation",
    cmd_export_check,
    flags=(run_flags(only=("device",)), Flags(ExportCheckOptions)),
    description="Train the app's default image and text runs, write each model as the download does, "
    "and check it: reloaded logits identical, ONNX top class = PyTorch's on the validation split.",
)
PREDICT = Command(
    "predict",
    "classify images (or sentences) with a model downloaded from the studio",
    cmd_predict,
    flags=(Flags(PredictOptions),),
    description="Print the top classes of a fine-tuned model (a folder from the studio's download, "
    "or its model.safetensors) for each image file, or for each sentence of a text model.",
)
