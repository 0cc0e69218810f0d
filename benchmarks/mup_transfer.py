"""Width transfer with and without μP: how far the optimal learning rate drifts from width 24
to 128, and what the rate tuned at width 24 costs at width 128.

The MLPs and the teacher-student task of `examples/scaling_end_to_end.py` (AdamW, warmup then
linear decay, fresh samples every step). For each parametrization ("standard", and μP relative
to width 24 via `hyperlaw.scaling.mup`) and width, a learning-rate sweep over a few seeds; each
width's optimum is the vertex of the parabola of the seed-mean loss in log(lr) (`hl.scaling.fit`,
method "parabola"). Then the width-24 optimum is trained at width 128 and compared with the
best rate of the width-128 sweep.

    nice -n 10 python benchmarks/mup_transfer.py     # writes results/mup_transfer.json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
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


def main() -> dict[str, object]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--widths", type=int, nargs="+", default=[24, 32, 48, 64, 96, 128])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--samples", type=float, default=2**13)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lrs", type=int, default=9, help="points from 3e-4 to 1e-1, log")
    args = parser.parse_args()
    lrs = np.geomspace(3e-4, 1e-1, args.lrs).tolist()
    base, top = args.widths[0], args.widths[-1]
    out: dict[str, object] = {"args": vars(args), "lrs": lrs}

    def loss(width: int, lr: float, mup: bool) -> float:
        return float(np.mean([e2e.train(width, lr, args.batch, args.samples, seed=s,
                                        mup_base=base if mup else None)
                              for s in range(args.seeds)]))

    for name, mup in (("standard", False), ("mup", True)):
        sweeps = {w: [loss(w, r, mup) for r in lrs] for w in args.widths}
        optima = {w: optimum(lrs, sweeps[w]) for w in args.widths}
        transferred = loss(top, optima[base], mup)
        best = min(sweeps[top])
        out[name] = {"sweeps": sweeps, "optima": optima,
                     "drift": optima[top] / optima[base], "transferred_loss": transferred,
                     "best_loss_top": best, "gap": transferred / best - 1.0}
        print(f"{name}: optimal lr " + ", ".join(f"w{w} {o:.3g}" for w, o in optima.items())
              + f"; drift {base}->{top}: {optima[top] / optima[base]:.2f}x; the width-{base} "
              f"rate at width {top}: loss {transferred:.4f} vs best of the sweep {best:.4f} "
              f"({transferred / best - 1:+.2%})", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
