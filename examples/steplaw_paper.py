"""Reproduce the Step Law paper's fitting procedure on its own 1,911 released runs.

1. In each (N, D) cell keep the runs whose smoothed final loss is within 0.25% of the cell's
   best; batch size in tokens = sequences x 2048.
2. Least squares of log lr on [log N, log D] and of log batch on [log D]; 1,000 bootstrap
   resamples for the intervals (`hl.scaling.fit`, method "tolerance").
3. Print the fitted constants beside the published ones.
4. Held-out check: fit on the four smaller model sizes only and compare the predicted learning
   rate of the 1.07e9-parameter cells with the range of learning rates of that cell's runs
   within 1% of its best loss.
5. The loss law L(N, D) = E + A/N^alpha + B/D^beta on each cell's best smoothed loss (the paper
   released the fitting code, not fitted constants), and the same held-out check for it.
   `--write-loss-law` refits it with 200 bootstrap resamples into the file `step_law` reads.

    python examples/steplaw_paper.py [--write-loss-law]
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pandas as pd

import hyperlaw as hl
from hyperlaw.scaling.steplaw import loss_law

RUNS = Path(__file__).resolve().parent / "data" / "steplaw" / "dense_lr_bs_loss.csv"
LOSS_LAW = (Path(__file__).resolve().parents[1] / "src" / "hyperlaw" / "scaling" / "data"
            / "steplaw_loss_law.json")
PUBLISHED = {"lr": {"prefactor": 1.79, "n_params": -0.713, "n_tokens": 0.307},
             "batch_size": {"prefactor": 0.58, "n_tokens": 0.571}}


def load_runs() -> pd.DataFrame:
    """The paper's runs as records for `hl.scaling.fit`."""
    df = pd.read_csv(RUNS)
    return pd.DataFrame({"n_params": df["N"], "n_tokens": df["D"], "lr": df["lr"],
                         "batch_size": df["bs"] * 2048, "loss": df["smooth loss"]})


def main() -> dict[str, object]:
    runs = load_runs()
    print(f"{len(runs)} runs, {runs.groupby(['n_params', 'n_tokens']).ngroups} (N, D) cells\n")
    # the paper's procedure on its own runs: no prior (the default's is these runs' law)
    lr_law = hl.scaling.fit(runs, target="lr", features=("n_params", "n_tokens"), prior=None)
    batch_law = hl.scaling.fit(runs, target="batch_size", features=("n_tokens",), prior=None)
    print("| law | constant | hyperlaw (all kept rows) | hyperlaw (bootstrap mean) | published |")
    print("|---|---|---|---|---|")
    for law in (lr_law, batch_law):
        for name, value in law.coefficients.items():
            boot = law.bootstrap_coefficients[name]
            print(f"| {law.target} | {name} | {value:.4g} | {boot:.4g} | "
                  f"{PUBLISHED[law.target][name]} |")
    prior = hl.scaling.step_law(1e9, 1e11)
    mine = lr_law.predict(n_params=1e9, n_tokens=1e11)
    print(f"\nN=1e9, D=1e11: published lr {prior.lr:.4g}; refit {mine.value:.4g} "
          f"(90% interval {mine.low:.4g} .. {mine.high:.4g})")

    small = runs[runs["n_params"] < 1e9]
    large = runs[runs["n_params"] > 1e9]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hl.scaling.ScalingWarning)  # 2.5x in N: said below
        held_out = hl.scaling.fit(small, target="lr", prior=None)
    print(f"\nFitted on the four smaller sizes (N {small['n_params'].min():.3g} .. "
          f"{small['n_params'].max():.3g}, only 2.5x apart): {held_out.formula()}")
    print("| D (N = 1.07e9) | predicted lr | runs within 1% of best: lr range | inside |")
    print("|---|---|---|---|")
    inside = []
    for n_tokens, cell in large.groupby("n_tokens"):
        good = cell[cell["loss"] <= cell["loss"].min() * 1.01]
        p = held_out.predict(n_params=float(cell["n_params"].iloc[0]), n_tokens=n_tokens)
        ok = good["lr"].min() <= p.value <= good["lr"].max()
        inside.append(ok)
        print(f"| {n_tokens:.3g} | {p.value:.4g} ({p.low:.3g} .. {p.high:.3g}) | "
              f"{good['lr'].min():.3g} .. {good['lr'].max():.3g} | {'yes' if ok else 'no'} |")
    loss_law = loss_law_check(runs)
    return {"lr": lr_law, "batch_size": batch_law, "held_out_inside": all(inside),
            "loss_law": loss_law}


def loss_law_check(runs: pd.DataFrame) -> hl.scaling.LossLaw:
    """The loss law on every cell, then fitted on the smaller sizes and checked on 1.07e9."""
    law = loss_law()  # the fit on every cell that step_law ships (`--write-loss-law`)
    print(f"\nLoss law on the {law.n_cells} cells' best smoothed loss: {law.formula()}")
    small = runs[runs["n_params"] < 1e9]
    held_out = hl.scaling.LossLaw.fit(small, n_bootstrap=50)
    print(f"Fitted on the four smaller sizes: {held_out.formula()}")
    print("| D (N = 1.07e9) | best loss | predicted (90% interval) | error |")
    print("|---|---|---|---|")
    for n_tokens, cell in runs[runs["n_params"] > 1e9].groupby("n_tokens"):
        p = held_out.predict(float(cell["n_params"].iloc[0]), float(n_tokens))
        best = cell["loss"].min()
        print(f"| {n_tokens:.3g} | {best:.4f} | {p.value:.4f} ({p.low:.4f} .. {p.high:.4f}) | "
              f"{p.value / best - 1:+.2%} |")
    return law


def write_loss_law(path: Path = LOSS_LAW) -> hl.scaling.LossLaw:
    """Fit the loss law on every released dense run with 200 bootstrap resamples and write it
    where `hl.scaling.step_law` reads it."""
    law = hl.scaling.LossLaw.fit(load_runs(), n_bootstrap=200, seed=0)
    path.write_text(json.dumps(law.to_dict()) + "\n")
    print(f"{law.formula()} -> {path}")
    return law


if __name__ == "__main__":
    write_loss_law() if "--write-loss-law" in sys.argv[1:] else main()
