"""What both take-home notebooks share: the lessons' sections, the strategies' plan cells, the curves.

The image notebook (tlcore.takehome.notebook) and the text notebook (tlcore.takehome.notebook_text)
teach the same strategies with the same loop, so the code a learner reads for a freeze and its
learning rates, and for the curves, is written once, here, as notebook cell text. Each plan
cell defines `frozen_at(epoch)` (the groups frozen during an epoch) and `LRS` (the rate of every
group that ever trains), the notebook's side of tlcore.train.strategies.

Not for: building a notebook (those two modules) or training in the studio (tlcore.train).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from string import Template

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


def split_seed(config: dict) -> int:
    """The seed that drew the run's examples (RunConfig.data_seed; older runs had none apart)."""
    split = int(config.get("split_seed", -1))
    return split if split >= 0 else int(config["seed"])


def frozen_names(config: dict, groups) -> list[str]:
    """The groups the run's strategy freezes at its first step (the studio's own answer)."""
    from tlcore.train import strategies

    return list(strategies.frozen_at_start(config["strategy"], list(groups), config.get("freeze_depth", 0)))


def words(meta: dict, config: dict, groups, val_acc: float | None, **more) -> dict:
    """What a notebook's explanations fill in ($backbone, $val_acc, ...): the run's, in words."""
    return {
        "backbone": meta["backbone"],
        "dataset": config["dataset"],
        "strategy": config["strategy"],
        "seed": config["seed"],
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
        import nbformat.v4 as nbf

        title, body = self.text[key]
        return nbf.new_markdown_cell(f"## {title}\n\n" + Template(body).safe_substitute(self.filled))

    def code(self, source: str, tag: str = "", hidden: bool = False):
        import nbformat.v4 as nbf

        metadata: dict = {"tags": [tag]} if tag else {}
        if hidden:  # a long list (a text run's sentences): folded in Jupyter, one click shows it
            metadata["jupyter"] = {"source_hidden": True}
        return nbf.new_code_cell(textwrap.dedent(source).strip(), metadata=metadata)


def assemble(cells: list, tlcore: dict):
    """The notebook of `cells` for a Python 3 kernel; `tlcore`: what the studio records of the run
    (its settings as a take-home file shows them: no upload path on the server, model_files.shareable)."""
    import nbformat.v4 as nbf

    from tlcore.takehome.model_files import shareable

    tlcore = {**tlcore, "config": shareable(tlcore["config"])} if "config" in tlcore else tlcore

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
