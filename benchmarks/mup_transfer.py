"""Width transfer with and without μP: how far the optimal learning rate drifts from the
smallest width to the largest, and what the rate tuned at the smallest costs at the largest.

Two tasks:

- `--task mlp` (the default): the MLPs and the teacher-student task of
  `examples/scaling_end_to_end.py` (AdamW, warmup then linear decay, fresh samples every step);
- `--task transformer`: the tiny transformers of the scaling grid
  (`examples/scaling_transformer.py`, batch size 16, WSD schedule) at one token budget, their
  runs cached with the grid's (`results/scaling_holdout_transformer_runs.json`), so the
  standard parametrization's runs are the grid's own; each sweep is extended x1.41 past an
  edge while its best rate lies on it.

For each parametrization ("standard", and μP relative to the smallest width via
`hyperlaw.scaling.mup`) and width, a learning-rate sweep over a few seeds; each width's optimum
is the vertex of the parabola of the seed-mean loss in log(lr) (`hl.scaling.fit`, method
"parabola"). Then the smallest width's optimum is trained at the largest width and compared
with the best rate of that width's sweep.

    nice -n 10 python benchmarks/mup_transfer.py     # writes results/mup_transfer.json
    python benchmarks/mup_transfer.py --task transformer --widths 24 48 64 128 --seeds 4
    python benchmarks/mup_transfer.py --task transformer --widths 24 48 64 128 --seeds 4 \
        --output-mults 1 2 4 8     # μP with its logit multiplier tuned at the base
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

import hyperlaw as hl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import scaling_end_to_end as e2e

RESULTS = Path(__file__).resolve().parent / "results" / "mup_transfer.json"


def optimum(lrs: list[float], losses: list[float]) -> float:
    """The parabola vertex of loss in log(lr) around the best rate."""
    records = [{"lr": r, "loss": v} for r, v in zip(lrs, losses, strict=True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hl.scaling.ScalingWarning)
        law = hl.scaling.fit(records, target="lr", features=(), method="parabola",
                             n_bootstrap=10)
    return float(law.coefficients["prefactor"])


Sweeps = dict[int, dict[float, float]]  # width -> learning rate -> seed-mean loss


def mlp_task(args: argparse.Namespace, mup: bool) -> tuple[Sweeps, Callable[[float], float]]:
    """The MLP sweeps on a fixed grid of rates, and the loss of a rate at the largest width."""
    lrs = np.geomspace(3e-4, 1e-1, args.lrs).tolist()
    base, top = args.widths[0], args.widths[-1]

    def loss(width: int, lr: float) -> float:
        return float(np.mean([e2e.train(width, lr, args.batch, args.samples, seed=s,
                                        mup_base=base if mup else None)
                              for s in range(args.seeds)]))

    return {w: {r: loss(w, r) for r in lrs} for w in args.widths}, lambda lr: loss(top, lr)


def transformer_task(args: argparse.Namespace,
                     mup: bool) -> tuple[Sweeps, Callable[[float], float]]:
    """The transformer sweeps (grid of the scaling benchmark, extended at its edges) and the
    loss of a rate at the largest width; every run through the grid's run cache. Under μP the
    logits' multiplier is the best of `args.output_mults` at the base width; the standard
    model's is `args.standard_output_mult`."""
    import scaling  # benchmarks/scaling.py: the trainer jobs and the JSON run cache
    import scaling_holdout as holdout

    runner = scaling.Runner(args.cache or holdout.TRANSFORMER_RUNS)
    base, top = args.widths[0], args.widths[-1]

    def sweeps(widths: list[int], mult: float) -> tuple[Sweeps, Callable[[int, float], float]]:
        def keys(width: int, lr: float) -> list[str]:  # at the base μP is the standard model
            return [scaling.key("wsd", width, args.tokens, lr, seed=s,
                                mup_base=base if mup and width != base else None,
                                output_mult=mult)
                    for s in range(args.seeds)]

        def loss(width: int, lr: float) -> float:
            runner.run(keys(width, lr))
            return float(np.mean([runner.loss(k) for k in keys(width, lr)]))

        grids = {w: list(holdout.LRS) for w in widths}
        scaling.extend_sweeps(runner, grids, keys, holdout.MAX_LRS)
        return {w: {r: loss(w, r) for r in grid} for w, grid in grids.items()}, loss

    def best_at_base(mult: float) -> float:
        return min(sweeps([base], mult)[0][base].values())

    mult = args.standard_output_mult
    if mup and len(args.output_mults) > 1:
        at_base = {m: best_at_base(m) for m in args.output_mults}
        while max(at_base) == min(at_base, key=at_base.__getitem__):  # best on the top edge
            doubled = 2 * max(at_base)
            at_base[doubled] = best_at_base(doubled)
        mult = min(at_base, key=at_base.__getitem__)
        print("the base's best loss by logit multiplier: " + ", ".join(
            f"x{m:g} {v:.4f}" for m, v in sorted(at_base.items())) + f"; μP runs at x{mult:g}")
    elif mup:
        mult = args.output_mults[0]
    found, loss = sweeps(args.widths, mult)
    return found, lambda lr: loss(top, lr)


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=("mlp", "transformer"), default="mlp")
    parser.add_argument("--widths", type=int, nargs="+", default=[24, 32, 48, 64, 96, 128])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=float, default=2**13, help="mlp: training samples")
    parser.add_argument("--batch", type=int, default=16, help="mlp: batch size")
    parser.add_argument("--lrs", type=int, default=9,
                        help="mlp: points from 3e-4 to 1e-1, log")
    parser.add_argument("--tokens", type=float, default=5e5, help="transformer: tokens")
    parser.add_argument("--output-mults", type=float, nargs="+", default=[1.0],
                        help="transformer: logit multipliers tried at the base width (x2 "
                        "past the largest while it is the best); μP runs at the best (the "
                        "standard parametrization keeps 1)")
    parser.add_argument("--standard-output-mult", type=float, default=1.0,
                        help="transformer: the standard parametrization's logit multiplier")
    parser.add_argument("--cache", type=Path, default=None,
                        help="transformer: run cache (default: the scaling grid's)")
    args = parser.parse_args()
    base, top = args.widths[0], args.widths[-1]
    task = transformer_task if args.task == "transformer" else mlp_task
    out: dict[str, object] = {"args": {k: str(v) if isinstance(v, Path) else v
                                       for k, v in vars(args).items()}}

    for name, mup in (("standard", False), ("mup", True)):
        sweeps, loss_at_top = task(args, mup)
        optima = {w: optimum(list(sweeps[w]), list(sweeps[w].values())) for w in args.widths}
        transferred = loss_at_top(optima[base])
        best = min(sweeps[top].values())
        out[name] = {"sweeps": {w: {f"{r:.6g}": v for r, v in s.items()}
                                for w, s in sweeps.items()},
                     "optima": optima, "drift": optima[top] / optima[base],
                     "transferred_loss": transferred, "best_loss_top": best,
                     "gap": transferred / best - 1.0}
        print(f"{name}: optimal lr " + ", ".join(f"w{w} {o:.3g}" for w, o in optima.items())
              + f"; drift {base}->{top}: {optima[top] / optima[base]:.2f}x; the width-{base} "
              f"rate at width {top}: loss {transferred:.4f} vs best of the sweep {best:.4f} "
              f"({transferred / best - 1:+.2%})", flush=True)
    results = (RESULTS if args.task == "mlp" else RESULTS.with_name(
        "mup_transfer_transformer" + ("_output_mult" if args.output_mults != [1.0] else "")
        + (f"_standard_x{args.standard_output_mult:g}"
           if args.standard_output_mult != 1.0 else "") + ".json"))
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
