"""The engine's speed-ups change how fast a run goes, never what it computes (docs/demo-speed.md)."""

from __future__ import annotations

import copy
import resource
import time

import pytest
import torch
from timm.layers import Conv2dSame

from tlcore.data import datasets
from tlcore.models import catalog
from tlcore.serve import machine
from tlcore.train import forgetting, image_batches, precision, strategies, trainer
from tlcore.train.config import RunConfig
from tlcore.train.precision import autocast_for


def lite0(pretrained: bool = False, size: int = 32):
    return catalog.build_model("efficientnet_lite0", 5, pretrained=pretrained, image_size=size)


def images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_evaluation_in_training_batches_gives_the_answers_of_one_pass():
    torch.manual_seed(0)
    model = lite0().eval()
    x, y = images(20), torch.arange(20) % 5
    data = datasets.ImageData([f"c{i}" for i in range(5)], x, y, x, y)
    source = image_batches.TensorSource(data, torch.device("cpu"), "none")
    assert [len(b) for b, _ in source.eval_batches(8)] == [8, 8, 4]
    autocast = autocast_for(torch.device("cpu"), "fp32")
    loss, acc, preds = trainer.evaluate(model, source, 8, autocast)
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(preds, logits.argmax(1))
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_lite0_activations_out_of_place_give_the_same_gradients():
    torch.manual_seed(0)
    model = lite0().train()
    acts = [m for m in model.modules() if isinstance(m, torch.nn.ReLU6)]
    assert acts and not any(m.inplace for m in acts)  # no copy of every activation's input for autograd
    in_place = copy.deepcopy(model)
    for m in in_place.modules():
        if isinstance(m, torch.nn.ReLU6):
            m.inplace = True
    x = images(4)
    for net in (model, in_place):
        torch.manual_seed(1)  # the head's dropout draws the same mask for both
        net(x).square().sum().backward()
    for (name, a), b in zip(model.named_parameters(), in_place.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-6), name


def test_adamw_is_fused_on_the_cpu_and_moves_the_weights_as_the_loop_does():
    torch.manual_seed(0)
    model = lite0()
    plan = strategies.plan_for(RunConfig(strategy="full", backbone="efficientnet_lite0"), model.group_names)
    steps = trainer.Steps.start(model, plan, trainer.FitOptions(epochs=1, batch_size=8), steps_per_epoch=3)
    assert steps.optimizer.defaults["fused"] is True
    looped = copy.deepcopy(model)
    groups = strategies.param_groups(looped, plan, 1e-4)
    loop = torch.optim.AdamW(groups, lr=1.0)
    assert not loop.defaults["fused"]
    for step in range(3):
        for a, b in zip(model.parameters(), looped.parameters()):
            a.grad = torch.randn(a.shape, generator=torch.Generator().manual_seed(step)) * 1e-2
            b.grad = a.grad.clone()
        steps.optimizer.step()
        loop.step()
    for (name, a), b in zip(model.named_parameters(), looped.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name


def test_forgetting_scores_photos_in_small_batches_with_the_answers_of_one_pass(monkeypatch):
    model = copy.deepcopy(forgetting._pretrained("efficientnet_lite0", "cpu"))
    head = model.groups["head"]
    chunked = forgetting.top1(model, head)
    monkeypatch.setattr(forgetting, "PHOTOS_AT_ONCE", 1000)
    assert forgetting.top1(model, head) == chunked


def test_the_photos_pretrained_features_are_computed_a_few_at_a_time_with_the_features_of_one_pass(monkeypatch):
    forgetting._pretrained_features.cache_clear()
    at_once = forgetting.PHOTOS_AT_ONCE
    chunked = forgetting._pretrained_features("efficientnet_lite0", "cpu", 2)
    forgetting._pretrained_features.cache_clear()
    monkeypatch.setattr(forgetting, "PHOTOS_AT_ONCE", 1000)
    whole = forgetting._pretrained_features("efficientnet_lite0", "cpu", 2)
    forgetting._pretrained_features.cache_clear()
    assert chunked.shape == whole.shape and chunked.shape[0] > at_once  # more photos than one chunk
    assert torch.allclose(chunked, whole, rtol=1e-5, atol=1e-5)


@pytest.mark.fast
def test_freed_tensor_memory_is_reused_without_faulting_pages_in_again():
    if not machine.keep_freed_memory():
        pytest.skip("not glibc: nothing to set")
    pages, faults = 48 * 2**20 // resource.getpagesize(), []
    for _ in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = torch.ones(48 * 2**20 // 4)  # 48 MB: glibc would map it fresh every time (over 32 MB)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        del block
    # the first time faults its pages in, later ones mostly reuse them (another allocation may
    # land in the freed block; the queue's worker threads keep part of this, see keep_freed_memory)
    assert sorted(faults[1:])[2] < pages // 10, (faults, pages)


@pytest.mark.fast
@pytest.mark.parametrize(("channels", "size", "stride"), [(16, 12, 1), (16, 12, 2), (32, 3, 1)])
def test_the_5x5_depthwise_weight_gradient_is_pytorchs_to_float_tolerance(channels, size, stride):
    from tlcore.models import depthwise

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, channels, size, size, generator=g).contiguous(memory_format=torch.channels_last)
    padding = 2 if stride == 1 else 0
    weight = torch.randn(channels, 1, 5, 5, generator=g)
    out = torch.nn.functional.conv2d(x, weight, None, stride, padding, 1, channels)
    grad_out = torch.randn(out.shape, generator=g).contiguous(memory_format=torch.channels_last)
    args = (grad_out, x, weight, None, [stride] * 2, [padding] * 2, [1, 1], False, [0, 0], channels, [False, True, False])
    expected = torch.ops.aten.convolution_backward(*args)[1]
    assert torch.allclose(depthwise.weight_grad(x, grad_out, 5, stride, padding), expected, rtol=1e-5, atol=1e-5)


def test_lite0_trains_its_5x5_depthwise_layers_with_the_same_gradients_and_answers_as_before():
    from tlcore.models import depthwise

    torch.manual_seed(0)
    model = lite0(size=64).train()
    fast = [m for m in model.modules() if isinstance(m, (depthwise.FastConv2d, depthwise.FastConv2dSame))]
    assert len(fast) == 9  # Lite0's 5x5 depthwise layers: stage 3 (2), stage 5 (3), stage 6 (4)
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if isinstance(m, depthwise.Fp32Conv2d):  # PyTorch's and timm's own classes again
            m.__class__ = Conv2dSame if isinstance(m, Conv2dSame) else torch.nn.Conv2d
    x = images(4, size=64)
    outs = []
    for net in (model, plain):
        torch.manual_seed(1)  # the head's dropout draws the same mask for both
        outs.append(net(x))
        outs[-1].square().sum().backward()
    assert torch.equal(outs[0], outs[1])  # the forward pass is PyTorch's own
    for (name, a), b in zip(model.named_parameters(), plain.parameters()):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-5), name
    assert list(model.state_dict()) == list(plain.state_dict())  # the same names: checkpoints load as before


def test_lite0_trains_in_bf16_around_fp32_depthwise_layers_and_other_depthwise_nets_stay_fp32(monkeypatch):
    from tlcore.models import depthwise

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    model = lite0(size=64).train()
    grouped = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(grouped) == 16 and all(isinstance(m, depthwise.Fp32Conv2d) for m in grouped)  # every depthwise layer
    assert precision.use_bf16(cpu, "auto", train_model=model)
    mobilenet = catalog.build_model("mobilenet_v3_large", 5, pretrained=False, image_size=64)
    assert precision.has_depthwise_conv(mobilenet) and not precision.use_bf16(cpu, "auto", train_model=mobilenet)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert not precision.use_bf16(cpu, "auto", train_model=model)  # no bf16 instructions: fp32 throughout

    seen: dict[str, list[torch.dtype]] = {"depthwise": [], "pointwise": []}

    def record(m, _inputs, out):
        seen["depthwise" if m.groups > 1 else "pointwise"].append(out.dtype)

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(record)
    x = images(8, size=64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x).float().square().sum().backward()
    assert set(seen["depthwise"]) == {torch.float32} and set(seen["pointwise"]) == {torch.bfloat16}
    # each kind of depthwise layer in a bf16 step computes what fp32 PyTorch computes on its input cast up
    for layer in {type(m): m for m in grouped}.values():
        plain = copy.deepcopy(layer)
        plain.__class__ = Conv2dSame if isinstance(layer, Conv2dSame) else torch.nn.Conv2d
        h = torch.randn(4, layer.in_channels, 12, 12, generator=torch.Generator().manual_seed(2)).bfloat16()
        layer.weight.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = layer(h)
        out.square().sum().backward()
        expected = plain(h.float())
        expected.square().sum().backward()
        assert out.dtype == torch.float32 and torch.allclose(out, expected, rtol=1e-6, atol=1e-6), type(layer)
        assert torch.allclose(layer.weight.grad, plain.weight.grad, rtol=1e-4, atol=1e-4), type(layer)
    seen["depthwise"].clear()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        model.eval()(x)
    assert set(seen["depthwise"]) == {torch.bfloat16}  # no gradient: the faster bf16 forward, as before


@pytest.mark.fast
def test_a_cpu_queue_keeps_freed_memory_while_it_trains_and_gives_glibc_its_own_values_back_when_idle(monkeypatch):
    from tests.helpers.fakes import make_run
    from tlcore.serve import cores
    from tlcore.serve.jobs import JobQueue

    calls, trims = [], []
    monkeypatch.setattr(machine, "keep_freed_memory", lambda keep=True: calls.append(keep) or True)
    monkeypatch.setattr(machine, "return_freed_memory", lambda: trims.append(len(calls)))
    q = JobQueue.started(make_run(steps=3, delay=0.01), cpu=cores.plan(2, workers=1, threads=1))
    for owner in ("a", "b"):
        job = q.submit(RunConfig(), owner=owner)
        q.wait_until_ended(job, owner, 10)
        deadline = time.monotonic() + 5
        while len(trims) < (1 if owner == "a" else 2) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert calls == [True, False, True, False]  # kept while each job trains, glibc's own once the queue is idle
    assert trims == [2, 4]  # and the freed memory given back after each job, once the setting is off
    gpu = JobQueue.started(make_run(steps=1, delay=0), gpus=1, pin=lambda i: None)
    calls.clear()
    job = gpu.submit(RunConfig(), owner="c")
    gpu.wait_until_ended(job, "c", 10)
    assert calls == []  # a GPU's tensors are not the C heap's


def test_the_precision_check_prints_both_variants_seed_by_seed_and_their_ratio(monkeypatch, capsys):
    from tlcore.train import presets
    from tools import precisioncheck

    tiny = RunConfig(
        backbone="efficientnet_lite0", dataset="digits", per_class=4, val_per_class=4, image_size=32, epochs=1, batch_size=8
    )
    monkeypatch.setattr(presets, "warm_ups", lambda: ())
    monkeypatch.setattr(presets, "image", lambda: tiny)
    assert precisioncheck.main(["--seeds", "2", "--strategy", "full"]) == 0
    out = capsys.readouterr().out
    runs = [line.split() for line in out.splitlines() if line.startswith("  seed ")]
    assert [(r[1], r[2]) for r in runs] == [("0", "fp32"), ("0", "auto"), ("1", "fp32"), ("1", "auto")]
    assert all(0 <= float(r[4]) <= 1 for r in runs)
    assert "auto - fp32" in out and "paired standard error" in out and ": ratio " in out
