"""Transfer strategies: which layer groups train, and how fast.

Each strategy is one short function from the layer-group names (shallow -> deep, the last
one is the new head) to a Plan. A little repetition between them is on purpose: a learner
should be able to read any one of them alone.

`recommend` turns the matrix (similarity to the pretraining data x dataset size) into a
strategy, a freeze depth and learning rates, with the reason in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class Plan:
    name: str
    pretrained: bool  # start from pretrained weights (False only for scratch)
    frozen: tuple[str, ...]  # groups frozen at the start
    lrs: dict[str, float]  # learning rate of every group that ever trains
    # gradual unfreezing: (epoch from which it holds, groups frozen) in epoch order
    schedule: tuple[tuple[int, tuple[str, ...]], ...] = field(default=())
    lr: float = 0.0  # the rate the learner set (the body's); `lrs` derive from it

    def frozen_at(self, epoch: int) -> tuple[str, ...]:
        """Groups frozen during `epoch` (1-based)."""
        frozen = self.frozen
        for start, groups in self.schedule:
            if epoch >= start:
                frozen = groups
        return frozen

    @property
    def always_frozen(self) -> tuple[str, ...]:
        """Groups that stay frozen for the whole run (their features can be cached)."""
        sets = [set(self.frozen)] + [set(g) for _, g in self.schedule]
        return tuple(g for g in self.frozen if all(g in s for s in sets))


def scratch(groups: list[str], *, lr: float, **_) -> Plan:
    """Random init, everything trains at one rate: the baseline transfer has to beat."""
    return Plan("scratch", False, (), {g: lr for g in groups}, lr=lr)


def linear_probe(groups: list[str], *, lr: float, head_lr_mult: float, **_) -> Plan:
    """Feature extraction: the pretrained body is frozen, only the new head learns."""
    *body, head = groups
    return Plan("linear_probe", True, tuple(body), {head: lr * head_lr_mult}, lr=lr)


def partial(groups: list[str], *, lr: float, head_lr_mult: float, freeze_depth: int, **_) -> Plan:
    """Freeze the first k groups (general features), fine-tune the rest (specific ones)."""
    *body, head = groups
    k = min(freeze_depth, len(body))
    lrs = {g: lr for g in body[k:]} | {head: lr * head_lr_mult}
    return Plan("partial", True, tuple(body[:k]), lrs, lr=lr)


def full(groups: list[str], *, lr: float, head_lr_mult: float, **_) -> Plan:
    """Everything trains; the new head faster than the pretrained body."""
    *body, head = groups
    return Plan("full", True, (), {g: lr for g in body} | {head: lr * head_lr_mult}, lr=lr)


def full_llrd(groups: list[str], *, lr: float, head_lr_mult: float, layer_decay: float, **_) -> Plan:
    """Layer-wise learning-rate decay: each group one step shallower learns `layer_decay` times slower."""
    *body, head = groups
    n = len(body)
    lrs = {g: lr * layer_decay ** (n - 1 - i) for i, g in enumerate(body)}  # deepest body group gets lr
    return Plan("full_llrd", True, (), lrs | {head: lr * head_lr_mult}, lr=lr)


def gradual(groups: list[str], *, lr: float, head_lr_mult: float, **_) -> Plan:
    """Gradual unfreezing (ULMFiT): the head first, then one more group per epoch, deep to shallow."""
    *body, head = groups
    schedule = tuple((epoch, tuple(body[: len(body) - (epoch - 1)])) for epoch in range(2, len(body) + 2))
    return Plan("gradual", True, tuple(body), {g: lr for g in body} | {head: lr * head_lr_mult}, schedule, lr=lr)


def lora(groups: list[str], *, lr: float, head_lr_mult: float, **_) -> Plan:
    """Adapters (text models): the pretrained weights stay frozen; each layer's small LoRA
    matrices and the head learn. Needs a model built with adapters, whose groups are
    "pretrained", then one group of adapters per layer, then the head."""
    if groups[0] != "pretrained":
        raise ValueError("lora needs a model built with adapters (text models, lora_r > 0)")
    frozen, *adapters, head = groups
    return Plan("lora", True, (frozen,), {g: lr for g in adapters} | {head: lr * head_lr_mult}, lr=lr)


# Every strategy, in the order the pages list them. RunConfig, the pickers, the race and
# the CLI read this one list.
STRATEGIES = {f.__name__: f for f in (scratch, linear_probe, partial, full, full_llrd, gradual, lora)}
IMAGE_STRATEGIES = tuple(n for n in STRATEGIES if n != "lora")  # lora needs adapter groups (text)


def depth_for(strategy: str, depth: int, body: int) -> int:
    """The freeze depth a strategy means on a body of `body` groups (the groups before the head):
    a linear probe freezes the whole body, partial the chosen depth kept within 0..body, and
    every other strategy none by depth. The one rule the widgets write the depth with."""
    if strategy == "linear_probe":
        return body
    return max(0, min(depth, body)) if strategy == "partial" else 0


def partial_depth(depth: int, body: int) -> int:
    """A depth that really is partial (part of the body frozen, part trained): `depth` when it
    is, else half the body. What 'partial' starts at, and runs at in a race."""
    return depth if 0 < depth < body else max(1, body // 2)


def frozen_at_start(strategy: str, groups: list[str], freeze_depth: int = 0) -> tuple[str, ...]:
    """What a strategy freezes at its first step: the plan's own answer, so a page's diagram
    and the run can never disagree (rates do not change what is frozen)."""
    return make_plan(strategy, groups, lr=1.0, head_lr_mult=1.0, freeze_depth=freeze_depth, layer_decay=1.0).frozen


def plan_for(config, groups: list[str]) -> Plan:
    """The plan a run's settings (a tlcore.train.config.RunConfig) ask for on these groups."""
    return make_plan(
        config.strategy,
        groups,
        lr=config.lr,
        head_lr_mult=config.head_lr_mult,
        freeze_depth=config.freeze_depth,
        layer_decay=config.layer_decay,
    )


def make_plan(name: str, groups: list[str], **settings) -> Plan:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} for this model; choose one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[name](groups, **settings)


# ----------------------------------------------------------------------------- applying a plan


def set_frozen(model: nn.Module, frozen: tuple[str, ...], *, bn_frozen_eval: bool = True) -> None:
    """requires_grad off for frozen groups, on for the rest; frozen BatchNorm to eval mode.

    Call after model.train(): BatchNorm in train mode updates its running statistics on
    every forward pass, so a "frozen" group whose BN stayed in train mode still changes
    (the trap the bn_frozen_eval switch demonstrates).
    """
    for name, module in model.groups.items():
        is_frozen = name in frozen
        for p in module.parameters():
            p.requires_grad_(not is_frozen)
        if is_frozen and bn_frozen_eval:
            for m in module.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()


def param_groups(model: nn.Module, plan: Plan, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups, one per layer group that ever trains, each with its own lr."""
    out = []
    for name, module in model.groups.items():
        if name not in plan.lrs:
            continue
        params = [p for p in module.parameters()]
        decay = [p for p in params if p.ndim > 1]  # no weight decay on biases and norm scales
        rest = [p for p in params if p.ndim <= 1]
        out += [
            {"params": decay, "lr": plan.lrs[name], "weight_decay": weight_decay, "group": name},
            {"params": rest, "lr": plan.lrs[name], "weight_decay": 0.0, "group": name},
        ]
    return [g for g in out if g["params"]]


# ----------------------------------------------------------------------------- the matrix

SMALL_LIMIT = 50  # examples per class below which a dataset counts as small


@dataclass(frozen=True)
class Recommendation:
    similarity: str  # "similar" | "different"
    size: str  # "small" | "large"
    strategy: str
    freeze_depth: int  # leading groups frozen (for linear_probe: all but the head)
    lr: float
    head_lr_mult: float
    reason_en: str
    reason_ko: str


def size_of(per_class: int) -> str:
    return "small" if per_class < SMALL_LIMIT else "large"


def recommend(similarity: str, size: str, num_groups: int = 6) -> Recommendation:
    """The matrix: similarity first, then size; the more similar and the smaller, the more is frozen.

    num_groups counts all layer groups including the head (6 for the ResNets: stem,
    stage1..4, head), so the body has num_groups - 1 groups.
    """
    if similarity not in ("similar", "different") or size not in ("small", "large"):
        raise ValueError("similarity must be 'similar' or 'different' and size 'small' or 'large'")
    body = num_groups - 1
    table = {
        ("similar", "small"): (
            "linear_probe",
            body,
            1e-3,
            10.0,
            "The pretrained features already fit and a few examples would overfit anything more: freeze the whole body, train only the new head.",
            "사전 학습된 특징이 이미 잘 맞고 예시가 적어 더 학습하면 과적합되므로, 본체 전체를 고정하고 새 헤드만 학습합니다.",
        ),
        ("similar", "large"): (
            "partial",
            max(body - 1, 0),
            3e-4,
            10.0,
            "The features fit and there is enough data to adjust the most specific ones: freeze most of the body, fine-tune the last stage and the head with a small rate.",
            "특징이 잘 맞고 데이터도 넉넉해 가장 구체적인 특징을 다듬을 수 있으므로, 본체 대부분을 고정하고 마지막 단계와 헤드를 작은 학습률로 미세 조정합니다.",
        ),
        ("different", "small"): (
            "partial",
            max(body // 2, 1),
            3e-4,
            10.0,
            "Only the shallow, general features (edges, textures) carry over and data is scarce: freeze the early groups, retrain the deeper ones.",
            "얕고 일반적인 특징(경계, 질감)만 옮겨 오고 데이터는 부족하므로, 앞쪽 그룹은 고정하고 깊은 그룹을 다시 학습합니다.",
        ),
        ("different", "large"): (
            "full",
            0,
            1e-3,
            10.0,
            "The data differs and there is plenty of it: train the whole model, starting from the pretrained weights.",
            "데이터가 다르고 충분히 많으므로, 사전 학습된 가중치에서 출발해 모델 전체를 학습합니다.",
        ),
    }
    strategy, k, lr, mult, en, ko = table[(similarity, size)]
    return Recommendation(similarity, size, strategy, k, lr, mult, en, ko)
