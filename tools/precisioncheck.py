"""What bf16 training costs in accuracy and buys in time on this CPU: the same runs in fp32 and in
the engine's own choice (`precision="auto"`, tlcore.train.precision.use_bf16), seed by seed.

    python -m tools.precisioncheck                       # the default demo, seeds 0-4
    python -m tools.precisioncheck --strategy full --seeds 3

In one process after the server's warm-up (tlcore.train.presets.warm_ups), the two variants
alternate run by run on the same seeds, so a busy machine slows both alike. Prints each run's
validation accuracy and training seconds (the epochs' `train_s`, without the evaluations), then
the means, the accuracy difference with its paired standard error, and the training time ratio
(auto over fp32; below 1 is faster). On a CPU without bf16 instructions both variants are fp32.
"""

from __future__ import annotations

import argparse
import statistics

VARIANTS = ("fp32", "auto")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strategy", default="partial", help="the default demo's strategy unless given (depth 4 for partial)")
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args(argv)

    from tlcore.serve import cores

    cores.wait_briefly()  # before torch, as app.py does
    import torch

    from tlcore.train import precision, presets, recipe

    for config in presets.warm_ups():
        recipe.warm_up(config)
    base = presets.image().replace(strategy=args.strategy)
    device = torch.device("cpu")
    print(f"{base.backbone} on {base.dataset}, {args.strategy}, {base.epochs} epochs, {torch.get_num_threads()} threads")
    print(f"auto trains in bf16 here: {precision.cpu_has_native_bf16()} (the CPU's bf16 instructions)")
    found: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for seed in range(args.seeds):
        for variant in VARIANTS:
            config = base.replace(precision=variant, seed=seed, device=str(device))
            result = recipe.run_or_raise(config)
            found[variant].append((result.val_acc, sum(result.timing["train_s"])))
            print(f"  seed {seed}  {variant:5s} val_acc {result.val_acc:.3f}  training {found[variant][-1][1]:.2f} s", flush=True)
    acc = {v: [a for a, _ in found[v]] for v in VARIANTS}
    secs = {v: statistics.median(s for _, s in found[v]) for v in VARIANTS}
    diffs = [b - a for a, b in zip(acc["fp32"], acc["auto"], strict=True)]
    se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else float("nan")
    print(
        f"mean val_acc: fp32 {statistics.mean(acc['fp32']):.3f}, auto {statistics.mean(acc['auto']):.3f}; "
        f"auto - fp32 {statistics.mean(diffs):+.3f} (paired standard error {se:.3f}, {len(diffs)} seeds)"
    )
    print(f"median training: fp32 {secs['fp32']:.2f} s, auto {secs['auto']:.2f} s: ratio {secs['auto'] / secs['fp32']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
