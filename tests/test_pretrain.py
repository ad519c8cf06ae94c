"""Contracts of the offline pretrained backbone: the shipped file, its card, and the command."""

import shlex

import pytest
import torch

from tlcore.cli import build_parser
from tlcore.lab import pretrain_vision as pretrain
from tlcore.models import backbones, catalog

SHIPPED = backbones.STUDIO_CHECKPOINT
needs_checkpoint = pytest.mark.skipif(not SHIPPED.exists(), reason="checkpoint not pretrained yet")


@pytest.mark.fast
@needs_checkpoint
def test_shipped_checkpoint_loads_into_its_registered_architecture():
    from safetensors.torch import load_file

    card = pretrain.read_card()
    model = catalog.build_model("studio_resnet", 7, pretrained=True)
    assert model.group_names == card["architecture"]["groups"]
    stored = load_file(str(SHIPPED))
    state = model.state_dict()
    body = [k for k in stored if not k.startswith("groups.head.")]
    assert body and all(k in state for k in body)
    for key in body:  # every body tensor came from the file (fp16 -> fp32)
        assert torch.equal(state[key].to(stored[key].dtype), stored[key]), key
    # The new head has this task's classes, not the source's.
    assert model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, 7)


@pytest.mark.fast
@needs_checkpoint
def test_card_matches_the_file():
    from safetensors.torch import load_file

    card = pretrain.read_card()
    assert card["file"]["sha256"] == pretrain.sha256_of(SHIPPED)
    assert card["file"]["bytes"] == SHIPPED.stat().st_size <= 5_000_000
    stored = load_file(str(SHIPPED))
    assert card["file"]["tensors"] == len(stored)
    counts = catalog.build_model("studio_resnet", card["source"]["classes"], pretrained=False).param_counts()
    assert card["architecture"]["params_per_group"] == counts
    assert card["architecture"]["params_total"] == sum(counts.values())
    head = stored["groups.head.2.weight"]
    assert head.shape[0] == card["source"]["classes"]
    assert card["training"]["images_seen"] == card["training"]["steps"] * card["training"]["batch_size"]
    assert 1 / card["source"]["classes"] < card["source_accuracy"]["top1"] <= 1


@pytest.mark.fast
@needs_checkpoint
def test_card_says_plainly_it_is_not_imagenet():
    card = pretrain.read_card()
    assert card["pretrained_on"] == "synthetic"
    assert "not on ImageNet" in card["statement_en"] and "ImageNet" in card["statement_ko"]
    md = pretrain.card_paths(SHIPPED)[1].read_text(encoding="utf-8")
    assert card["statement_en"] in md and card["command"] in md


@pytest.mark.fast
@needs_checkpoint
def test_card_command_parses_back_to_the_recorded_settings():
    card = pretrain.read_card()
    argv = shlex.split(card["command"])
    assert argv[:4] == ["python", "-m", "tlcore", "pretrain"]
    args = build_parser().parse_args(argv[3:])
    for key in ("classes", "steps", "batch_size", "image_size", "lr", "seed"):
        assert getattr(args, key) == card["training"][key], key


def test_pretraining_runs_through_fit_with_its_warm_up_and_cosine_schedule(monkeypatch):
    """The same loop as every fine-tune: the learning rates it logs warm up over cfg.warmup
    steps to cfg.lr, then decay towards zero."""
    from tlcore.train import trainer

    seen = []
    real_fit = trainer.fit

    def watching_fit(*args, emit, **kwargs):
        return real_fit(*args, emit=lambda e: (seen.append(e), emit(e)), **kwargs)

    monkeypatch.setattr(trainer, "fit", watching_fit)
    cfg = pretrain.PretrainConfig(classes=4, steps=20, batch_size=8, warmup=5, lr=0.2, eval_every=10, eval_images=8)
    pretrain.pretrain(cfg, log=lambda _: None, progress=False)
    lrs = [e.lrs["stem"] for e in seen if hasattr(e, "lrs")]
    assert len(lrs) == 2  # logged once per "epoch" of eval_every steps
    from tlcore.core.events import Started

    started = next(e for e in seen if isinstance(e, Started))
    assert started.total_steps == 20
    factors = [trainer.lr_factor(s, 20, 5) for s in range(20)]
    assert factors[4] == pytest.approx(1.0) and factors[0] == pytest.approx(0.2) and factors[-1] < 0.02
    assert lrs == pytest.approx([0.2 * factors[9], 0.2 * factors[19]])


@pytest.mark.fast
def test_config_is_validated():
    with pytest.raises(ValueError, match="classes"):
        pretrain.PretrainConfig(classes=1)
    with pytest.raises(ValueError, match="multiple of eval_every"):
        pretrain.PretrainConfig(steps=100, warmup=10, eval_every=30)


def test_a_tiny_pretraining_run_writes_a_loadable_checkpoint_and_card(tmp_path):
    cfg = pretrain.PretrainConfig(classes=6, steps=4, batch_size=16, warmup=1, eval_every=2, eval_images=24)
    model, card = pretrain.pretrain(cfg, log=lambda _: None, progress=False)
    out = tmp_path / "tiny.safetensors"
    card = pretrain.save_checkpoint(model, card, out)
    json_path, md_path = pretrain.card_paths(out)
    assert json_path.exists() and md_path.exists()
    assert pretrain.read_card(json_path) == card
    assert [p["step"] for p in card["source_accuracy"]["curve"]] == [2, 4]
    assert card["training"]["images_seen"] == 64
    assert "--classes 6" in card["command"] and "--steps 4" in card["command"]

    fresh = catalog.build_model("studio_resnet", 3, pretrained=False)
    backbones.load_studio_checkpoint(fresh, out)
    for name, p in fresh.groups["stem"].state_dict().items():
        assert torch.allclose(p.float(), model.groups["stem"].state_dict()[name].float(), atol=1e-2, rtol=1e-2)


def test_same_seed_same_weights():
    cfg = pretrain.PretrainConfig(classes=4, steps=2, batch_size=8, warmup=1, eval_every=2, eval_images=8)
    a, _ = pretrain.pretrain(cfg, log=lambda _: None, progress=False)
    b, _ = pretrain.pretrain(cfg, log=lambda _: None, progress=False)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
