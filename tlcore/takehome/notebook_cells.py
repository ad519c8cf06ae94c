"""What both take-home notebooks share: the order of their cells, the settings both have, the
lessons' sections, the strategies' plan cells, the optimiser, the curves.

The image notebook (tlcore.takehome.notebook) and the text notebook (tlcore.takehome.notebook_text)
teach the same strategies with the same loop, so the code a learner reads for a freeze and its
learning rates, and for the curves, is written once, here, as notebook cell text; `cells` lays
out both notebooks, so each builder holds only what differs (its data, its model, its loop). Each
plan cell defines `frozen_at(epoch)` (the groups frozen during an epoch) and `LRS` (the rate of
every group that ever trains), the notebook's side of tlcore.train.strategies.

Not for: building a notebook (those two modules) or training in the studio (tlcore.train).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from string import Template

from tlcore.takehome.record import TakeHome
from tlcore.train import strategies
from tlcore.train.config import RunConfig

LESSONS = Path(__file__).resolve().parents[2] / "assets" / "lessons"
_SECTION = re.compile(r"^## (?P<title>.+?)\s*\{#(?P<key>[\w-]+)\}\s*$", re.MULTILINE)


def sections(lang: str, lesson: str = "notebook") -> dict[str, tuple[str, str]]:
    """key -> (title, body) of assets/lessons/<lang>/<lesson>.md (English for an unknown language)."""
    path = LESSONS / lang / f"{lesson}.md"
    if not path.is_file():
        path = LESSONS / "en" / f"{lesson}.md"
    text = path.read_text(encoding="utf-8")
    found = list(_SECTION.finditer(text))
    return {
        m["key"]: (m["title"], text[m.end() : found[i + 1].start() if i + 1 < len(found) else len(text)].strip())
        for i, m in enumerate(found)
    }


def frozen_names(config: RunConfig, groups) -> list[str]:
    """The groups the run's strategy freezes at its first step (the studio's own answer)."""
    return list(strategies.frozen_at_start(config.strategy, list(groups), config.freeze_depth))


def words(record: TakeHome, groups, **more) -> dict:
    """What a notebook's explanations fill in ($backbone, $val_acc, ...): the run's, in words."""
    config, val_acc = record.config, record.val_acc
    return {
        "backbone": record.backbone,
        "dataset": config.dataset,
        "strategy": config.strategy,
        "seed": config.seed,
        "val_acc": f"{val_acc:.1%}" if val_acc is not None else "–",
        "groups": ", ".join(groups),
        "frozen": ", ".join(frozen_names(config, groups)) or "–",
        **more,
    }


class Writer:
    """A notebook's cells: explanations from a lesson in the learner's language, with the run's
    words filled in, and code cells (tagged for the tests, folded where long)."""

    def __init__(self, lang: str, lesson: str, filled: dict):
        self.text, self.filled = sections(lang, lesson), filled

    def md(self, key: str):
        import nbformat.v4 as nbf  # heavy (jsonschema): only when a notebook is built

        title, body = self.text[key]
        return nbf.new_markdown_cell(f"## {title}\n\n" + Template(body).safe_substitute(self.filled))

    def code(self, source: str, tag: str = "", hidden: bool = False):
        import nbformat.v4 as nbf  # heavy (jsonschema): only when a notebook is built

        metadata: dict = {"tags": [tag]} if tag else {}
        if hidden:  # a long list (a text run's sentences): folded in Jupyter, one click shows it
            metadata["jupyter"] = {"source_hidden": True}
        return nbf.new_code_cell(textwrap.dedent(source).strip(), metadata=metadata)


def cells(
    w: Writer,
    record: TakeHome,
    *,
    imports: str,
    settings: str,
    middle: list,
    freeze: str,
    group_params: str,
    loop: str,
    run: str,
    compare: str,
) -> list:
    """Both notebooks' cells in order: what it is, imports, the settings, what differs (`middle`:
    the data and the model, each a lesson's section with its code), the freeze, the optimiser, the
    loop and the run, the curves, the comparison with the studio's run."""
    md, code = w.md, w.code
    return [
        md("intro"),
        code(imports),
        md("settings"),
        code(settings, "settings"),
        *middle,
        md("freeze"),
        code(plan(record.config.strategy) + freeze),
        md("optimizer"),
        code(optimizer(group_params)),
        md("loop"),
        code(loop),
        code(run, "run"),
        md("curves"),
        code(CURVES),
        md("compare"),
        code(compare, "result"),
    ]


def assemble(cells: list, record: TakeHome, lang: str):
    """The notebook of `cells` for a Python 3 kernel; its metadata records the run as the studio
    saw it (its settings as a take-home file shows them: no upload path on the server, `TakeHome.shareable`)."""
    import nbformat.v4 as nbf  # heavy (jsonschema): only when a notebook is built

    text = {"task": "text"} if record.task == "text" else {}  # (an image notebook's metadata never said "image")
    tlcore = text | {"backbone": record.backbone, "config": record.shareable().config.to_dict(), "lang": lang}
    notebook = nbf.new_notebook(cells=cells)
    notebook.metadata.update(
        kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
        language_info={"name": "python"},
        tlcore=tlcore,
    )
    return notebook


# ----------------------------------------------------------------------------- the cells

PLANS = {
    "scratch": """
# scratch: random weights, every group trains at one rate (the baseline transfer has to beat)
def frozen_at(epoch):
    return []


LRS = {g: LR for g in GROUPS}
""",
    "linear_probe": """
# linear probe: the whole pretrained body frozen, only the new head learns
def frozen_at(epoch):
    return BODY


LRS = {HEAD: LR * HEAD_LR_MULT}
""",
    "partial": """
# partial: the first FREEZE_DEPTH groups frozen (general features), the rest fine-tuned
def frozen_at(epoch):
    return BODY[: min(FREEZE_DEPTH, len(BODY))]


LRS = {g: LR for g in BODY[min(FREEZE_DEPTH, len(BODY)) :]} | {HEAD: LR * HEAD_LR_MULT}
""",
    "full": """
# full: every group trains, the new head faster than the pretrained body
def frozen_at(epoch):
    return []


LRS = {g: LR for g in BODY} | {HEAD: LR * HEAD_LR_MULT}
""",
    "full_llrd": """
# full with layer-wise decay: the deepest body group gets LR, each one shallower LAYER_DECAY times less
def frozen_at(epoch):
    return []


LRS = {g: LR * LAYER_DECAY ** (len(BODY) - 1 - i) for i, g in enumerate(BODY)} | {HEAD: LR * HEAD_LR_MULT}
""",
    "gradual": """
# gradual unfreezing: the head first, then one more body group per epoch, deep to shallow
def frozen_at(epoch):
    return BODY[: max(0, len(BODY) - (epoch - 1))]


LRS = {g: LR for g in BODY} | {HEAD: LR * HEAD_LR_MULT}
""",
    "lora": """
# lora (text): every pretrained weight frozen; each layer's adapters and the new head learn
def frozen_at(epoch):
    return ["pretrained"]


LRS = {g: LR for g in BODY[1:]} | {HEAD: LR * HEAD_LR_MULT}
""",
}


def plan(strategy: str) -> str:
    """The plan cell's start: the layer groups split into body and head, then the strategy's freeze and rates."""
    return "*BODY, HEAD = GROUPS\n" + PLANS[strategy]


_OPTIMIZER = """
def param_groups(groups):
    \"\"\"One optimiser group per layer group that ever trains, with its own rate; no weight decay on
    biases and normalisation scales. `groups`: each layer group's name and its parameters.\"\"\"
    out = []
    for name, params in groups.items():
        if name in LRS:
            params = list(params)
            out.append({"params": [p for p in params if p.ndim > 1], "lr": LRS[name], "weight_decay": WEIGHT_DECAY})
            out.append({"params": [p for p in params if p.ndim <= 1], "lr": LRS[name], "weight_decay": 0.0})
    return [g for g in out if g["params"]]


def lr_factor(step, total, warmup):
    \"\"\"1. linear warm-up over the first `warmup` steps; 2. cosine decay towards 0 over the rest.\"\"\"
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


if OPTIMIZER == "adamw":  # fused: one pass over all parameters per step (faster; the studio's choice)
    optimizer = torch.optim.AdamW(param_groups(GROUP_PARAMS), lr=1.0, fused=DEVICE.type in ("cpu", "cuda"))
else:
    optimizer = torch.optim.SGD(param_groups(GROUP_PARAMS), lr=1.0, momentum=0.9, nesterov=True)
base_lrs = [g["lr"] for g in optimizer.param_groups]
"""


def optimizer(group_params: str) -> str:
    """The optimiser cell, the same in every notebook; `group_params` is the notebook's expression for
    {layer group name: its parameters}."""
    return _OPTIMIZER.replace("GROUP_PARAMS", group_params)


CURVES = """
if history:
    fig, (ax_loss, ax_acc, ax_norm) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot(history["step"], history["train/loss"], label="train/loss")
    steps_per_epoch = len(history["step"]) // len(history["epoch"])
    ax_loss.plot([e * steps_per_epoch for e in history["epoch"]], history["val/loss"], "o-", label="val/loss")
    ax_loss.set_xlabel("step")
    ax_loss.legend()
    ax_acc.plot(history["epoch"], history["val/acc"], "o-", label="val/acc")
    if STUDIO_VAL_ACC is not None:
        ax_acc.axhline(STUDIO_VAL_ACC, color="grey", linestyle="--", label="the studio's run")
    ax_acc.set_xlabel("epoch")
    ax_acc.legend()
    for g in GROUPS:
        ax_norm.plot(history["step"], history[f"grad_norm/{g}"], label=g)
    ax_norm.set_yscale("log")
    ax_norm.set_xlabel("step")
    ax_norm.set_title("grad_norm per layer group")
    ax_norm.legend()
    plt.tight_layout()
    plt.show()
"""


# ----------------------------------------------------------------------------- the settings both have

SETTINGS_HEAD = "# The run's settings, as the studio saved them (its RunConfig). Change one, then Run All."
WARMUP = "WARMUP_FRAC = 0.1  # the first 10% of the steps warm the learning rate up"


def starts_pretrained(config: RunConfig) -> bool:
    """Whether the run started from pretrained weights (False: random weights, 'scratch')."""
    return config.strategy != "scratch" and config.pretrained != "no"


def strategy_lines(config: RunConfig) -> list[str]:
    """The strategy and its learning rates."""
    return [
        f"STRATEGY = {config.strategy!r}",
        f"FREEZE_DEPTH = {config.freeze_depth}  # partial: the first k layer groups frozen",
        f"LR = {config.lr!r}  # the pretrained body's learning rate",
        f"HEAD_LR_MULT = {config.head_lr_mult!r}  # the new head learns this many times faster",
        f"LAYER_DECAY = {config.layer_decay!r}  # full_llrd: each group one step shallower learns this times slower",
    ]


def schedule_lines(config: RunConfig) -> list[str]:
    """How long and with which optimiser."""
    return [
        f"EPOCHS = {config.epochs}",
        f"BATCH_SIZE = {config.batch_size}",
        f"OPTIMIZER = {config.optimizer!r}  # adamw, or sgd (momentum 0.9)",
        f"WEIGHT_DECAY = {config.weight_decay!r}",
    ]


def ending_lines(val_acc: float | None) -> list[str]:
    """What to compare with, the downloaded weights instead of training, the device."""
    return [
        "",
        f"STUDIO_VAL_ACC = {val_acc!r}  # what the studio's run reached",
        'WEIGHTS = "model.safetensors"  # the model you downloaded (the zip\'s model/ folder)',
        "USE_EXPORTED_WEIGHTS = False  # True: evaluate the downloaded model instead of training",
        'DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")',
    ]
