"""Do fitted scaling laws hold for a model larger than any they were fitted on?

On the Step Law paper's 1,911 released runs (`examples/data/steplaw`), for each of the three
largest model sizes: fit the laws of the optimal learning rate (in N and D) and batch size (in
D) on the strictly smaller sizes only, recommend (lr, batch size) for every (N, D) cell of the
held-out size, and compare with that cell's measured runs:

- coverage: does the 90% interval of lr (of batch size) hold the lr (batch size) of the cell's
  best run? Goal: at least 80% of held-out cells;
- loss gap: the smoothed loss of the run nearest the recommendation (in log lr and log batch
  size) against the cell's best. Goal: within 0.5% on average.

    python benchmarks/scaling_holdout.py [--methods tolerance parabola] [--intervals ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import hyperlaw as hl

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "examples" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
RESULTS = Path(__file__).resolve().parent / "results" / "scaling_holdout.json"


def load_runs() -> pd.DataFrame:
    df = pd.read_csv(RUNS)
    return pd.DataFrame({"n_params": df["N"].astype(float), "n_tokens": df["D"].astype(float),
                         "lr": df["lr"], "batch_size": df["bs"] * 2048.0,
                         "loss": df["smooth loss"]})


def sparse_sweeps(runs: pd.DataFrame) -> pd.DataFrame:
    """What a tuner's sweep looks like: in each cell, only the runs at the batch size of the
    cell's best run, and of those every other learning rate (a 1-D sweep of 5-7 runs)."""
    kept = []
    for _, cell in runs.groupby(["n_params", "n_tokens"]):
        best_bs = cell.loc[cell["loss"].idxmin(), "batch_size"]
        line = cell[cell["batch_size"] == best_bs].sort_values("lr")
        kept.append(line.iloc[::2])
    return pd.concat(kept)


def evaluate(runs: pd.DataFrame, method: str, interval: str,
             sparse: bool = False) -> list[dict[str, object]]:
    """One row per held-out cell, for every held-out size."""
    sizes = sorted(runs["n_params"].unique())
    rows: list[dict[str, object]] = []
    for held in sizes[2:]:
        train = runs[runs["n_params"] < held]
        if sparse:
            train = sparse_sweeps(train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hl.scaling.ScalingWarning)
            lr_law = hl.scaling.fit(train, target="lr", features=("n_params", "n_tokens"),
                                    method=method, interval=interval)  # type: ignore[arg-type]
            bs_law = hl.scaling.fit(train, target="batch_size", features=("n_tokens",),
                                    method=method, interval=interval)  # type: ignore[arg-type]
        for n_tokens, cell in runs[runs["n_params"] == held].groupby("n_tokens"):
            best = cell.loc[cell["loss"].idxmin()]
            lr = lr_law.predict(n_params=held, n_tokens=n_tokens)
            bs = bs_law.predict(n_tokens=n_tokens)
            if sparse:  # a 1-D sweep says nothing about batch size: judge lr at the best one
                cell = cell[cell["batch_size"] == best["batch_size"]]
                bs = hl.scaling.Prediction(best["batch_size"], best["batch_size"],
                                           best["batch_size"], 0.9)
            distance = (np.log(cell["lr"] / lr.value) ** 2
                        + np.log(cell["batch_size"] / bs.value) ** 2)
            nearest = cell.loc[distance.idxmin()]
            rows.append({
                "n_params": held, "n_tokens": float(n_tokens), "train_sizes": len(
                    train["n_params"].unique()),
                "lr": lr.value, "lr_low": lr.low, "lr_high": lr.high, "best_lr": best["lr"],
                "bs": bs.value, "bs_low": bs.low, "bs_high": bs.high,
                "best_bs": best["batch_size"],
                "lr_covered": bool(lr.low <= best["lr"] <= lr.high),
                "bs_covered": bool(bs.low <= best["batch_size"] <= bs.high),
                "loss_gap": float(nearest["loss"] / best["loss"] - 1.0),
            })
    return rows


def summarize(rows: list[dict[str, object]]) -> dict[str, float]:
    frame = pd.DataFrame(rows)
    return {"cells": len(frame), "lr_coverage": float(frame["lr_covered"].mean()),
            "bs_coverage": float(frame["bs_covered"].mean()),
            "mean_loss_gap": float(frame["loss_gap"].mean()),
            "median_lr_width": float(np.median(frame["lr_high"] / frame["lr_low"])),
            "median_bs_width": float(np.median(frame["bs_high"] / frame["bs_low"]))}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["tolerance", "parabola"])
    parser.add_argument("--intervals", nargs="+", default=["confidence", "prediction"])
    args = parser.parse_args(argv)
    runs = load_runs()
    out: dict[str, object] = {}
    print("| training runs | method | interval | held-out cells | lr covered | batch covered "
          "| mean loss gap | median lr interval (high/low) | median batch interval |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sparse in (False, True):
        for method in args.methods:
            for interval in args.intervals:
                rows = evaluate(runs, method, interval, sparse)
                s = summarize(rows)
                kind = "1-D sweeps" if sparse else "full grid"
                out[f"{kind}/{method}/{interval}"] = {"summary": s, "cells": rows}
                print(f"| {kind} | {method} | {interval} | {s['cells']} | "
                      f"{s['lr_coverage']:.0%} | "
                      + ("n/a" if sparse else f"{s['bs_coverage']:.0%}")
                      + f" | {s['mean_loss_gap']:+.2%} | {s['median_lr_width']:.2f}x | "
                      + ("n/a" if sparse else f"{s['median_bs_width']:.2f}x") + " |")
    RESULTS.write_text(json.dumps(out, indent=1))
    print(f"\nper-cell rows: {RESULTS}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
