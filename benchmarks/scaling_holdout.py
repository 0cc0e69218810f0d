"""Do fitted scaling laws hold for a model larger than any they were fitted on?

On the Step Law paper's 1,911 released runs (`examples/data/steplaw`), for each of the three
largest model sizes: fit the laws of the optimal learning rate (in N and D) and batch size (in
D) on the strictly smaller sizes only, recommend (lr, batch size) for every (N, D) cell of the
held-out size, and compare with that cell's measured runs:

- coverage: does the 90% interval of lr (of batch size) hold the lr (batch size) of the cell's
  best run? Goal: at least 80% of held-out cells;
- loss gap: the smoothed loss of the run nearest the recommendation (in log lr and log batch
  size) against the cell's best. Goal: within 0.5% on average.

Both are also given for the largest size alone, fitted on every smaller one (the protocol the
goals were set on: the largest size left out).

With `--grid transformer`, the same protocol on a grid of tiny transformers trained here
(`examples/scaling_transformer.py`: widths 16 to 64, 0.25M to 2M tokens, batch size 16,
learning rates x1.41 apart, two seeds per run; it also prints the noise floor of the loss
gap, the gap of the rate best on half of the seeds scored on the other half; `--seeds`
trains more seeds). The runs are cached in
`results/scaling_holdout_transformer_runs.json`; an interrupted grid resumes, and
`--cached-only` scores the cached runs in seconds without training.

Each fit is made with the Step Law's exponents as a prior (the default of `hl.scaling.fit`)
and without (the runs alone).

    python benchmarks/scaling_holdout.py [--grid steplaw|transformer] [--cached-only]
        [--methods tolerance parabola] [--intervals confidence prediction]
        [--priors steplaw none]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import hyperlaw as hl

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "examples" / "data" / "steplaw" / "dense_lr_bs_loss.csv"
RESULTS = Path(__file__).resolve().parent / "results" / "scaling_holdout.json"

# The tiny-transformer grid (`examples/scaling_transformer.py`, batch size 16, WSD schedule):
# every width at every token budget, learning rates x1.41 apart (the sweep grid of
# benchmarks/scaling.py), extended while a cell's best rate is on an edge of its sweep.
WIDTHS = (16, 24, 32, 48, 64)
BUDGETS = (2.5e5, 5e5, 1e6, 2e6)
LRS = tuple(2e-3 * 2.0 ** (k / 2) for k in range(1, 8))  # 2.83e-3 .. 2.26e-2
MAX_LRS = 10
SEEDS = 2  # each run's loss is the mean of this many seeds
TRANSFORMER_RUNS = RESULTS.with_name("scaling_holdout_transformer_runs.json")


def load_runs() -> pd.DataFrame:
    df = pd.read_csv(RUNS)
    return pd.DataFrame({"n_params": df["N"].astype(float), "n_tokens": df["D"].astype(float),
                         "lr": df["lr"], "batch_size": df["bs"] * 2048.0,
                         "loss": df["smooth loss"]})


def transformer_runs(cache: Path = TRANSFORMER_RUNS, seeds: int = SEEDS,
                     train: bool = True, budgets: tuple[float, ...] = BUDGETS,
                     head_width: int | None = None, widths: tuple[int, ...] = WIDTHS,
                     mup_base: int | None = None, output_mult: float = 1.0) -> pd.DataFrame:
    """Train (or read from `cache`) the tiny-transformer grid of `widths` at the token
    `budgets` (with `head_width`: every attention head that wide; with `mup_base`: in μP
    relative to that width, the standard model at the base; `output_mult`: the logits'
    multiplier); one row per (width, tokens, lr) with the loss averaged over `seeds` seeds.
    With `train=False`, only the cached runs (of the first `seeds` seeds), averaged over the
    seeds there are; a rate beyond the grid's counts only if all `seeds` of its seeds are
    cached."""
    import scaling  # benchmarks/scaling.py: its trainer jobs and JSON run cache

    runner = scaling.Runner(cache)
    sweeps = {(w, d): list(LRS) for w in widths for d in budgets}

    def runs(cell: tuple[int, float], lr: float) -> list[str]:
        keys = [scaling.key("wsd", cell[0], cell[1], lr, seed=s, head_width=head_width,
                            mup_base=mup_base if cell[0] != mup_base else None,
                            output_mult=output_mult)
                for s in range(seeds)]
        return keys if train else [k for k in keys if k in runner.runs]

    def loss(cell: tuple[int, float], lr: float) -> float:
        return float(np.mean([runner.loss(k) for k in runs(cell, lr)]))

    if train:
        scaling.extend_sweeps(runner, sweeps, runs, MAX_LRS)
    else:  # the grid's rates, and every rate beyond them cached at all `seeds` seeds (as a
        # sweep extended at these seeds would have trained it)
        for k in runner.runs:
            _, width, tokens, lr = k.split("|")[:4]
            cell = (int(width), float(tokens))
            grid = sweeps.get(cell, [])
            spelled = {f"{g:.6g}" for g in grid}  # the keys' spelling of the rates
            if cell in sweeps and lr not in spelled and len(runs(cell, float(lr))) == seeds:
                grid.append(float(lr))
    frame = pd.DataFrame([
        {"n_params": float(scaling.st.non_embedding_params(cell[0])), "n_tokens": cell[1],
         "lr": lr, "batch_size": 16.0, "loss": loss(cell, lr)}
        for cell, grid in sweeps.items() for lr in sorted(grid) if runs(cell, lr)])
    # how far apart the seeds of one run land: the noise floor of "the best measured"
    spread = [np.ptp([runner.loss(k) for k in runs(cell, lr)]) / loss(cell, lr)
              for cell, grid in sweeps.items() for lr in grid if len(runs(cell, lr)) > 1]
    frame.attrs["seed_spread"] = float(np.median(spread)) if spread else math.nan
    # the gap an oracle would show: in each held-out cell, the rate best on the mean of one
    # half of the seeds, scored on the other half's mean against its best (both ways round)
    crossed = []
    for cell, grid in sweeps.items():
        seeded = [runs(cell, lr) for lr in grid if len(runs(cell, lr)) > 1]
        count = min((len(keys) for keys in seeded), default=0) // 2 * 2
        if cell[0] in sorted(widths)[2:] and len(seeded) > 1 and count:
            losses = np.array([[runner.loss(k) for k in keys[:count]] for keys in seeded])
            halves = np.stack([losses[:, :count // 2].mean(axis=1),
                               losses[:, count // 2:].mean(axis=1)], axis=1)
            crossed += [halves[np.argmin(halves[:, a]), b] / halves[:, b].min() - 1
                        for a, b in ((0, 1), (1, 0))]
    frame.attrs["oracle_gap"] = float(np.mean(crossed)) if crossed else math.nan
    return frame


def sparse_sweeps(runs: pd.DataFrame) -> pd.DataFrame:
    """What a tuner's sweep looks like: in each cell, only the runs at the batch size of the
    cell's best run, and of those every other learning rate (a 1-D sweep of 5-7 runs)."""
    kept = []
    for _, cell in runs.groupby(["n_params", "n_tokens"]):
        best_bs = cell.loc[cell["loss"].idxmin(), "batch_size"]
        line = cell[cell["batch_size"] == best_bs].sort_values("lr")
        kept.append(line.iloc[::2])
    return pd.concat(kept)


def evaluate(runs: pd.DataFrame, method: str, interval: str, sparse: bool = False,
             prior: str | None = "steplaw") -> list[dict[str, object]]:
    """One row per held-out cell, for every size with at least two smaller ones, the laws
    fitted with `prior` on their exponents (None: the runs alone).

    The batch-size law is fitted only where the cells' runs vary the batch size; where they do
    not (1-D sweeps, or a grid at one batch size), lr is judged at the cell's best batch size.
    A row's `warned` says whether the learning-rate prediction raised an ExtrapolationWarning.
    """
    sizes = sorted(runs["n_params"].unique())
    rows: list[dict[str, object]] = []
    for held in sizes[2:]:
        train = runs[runs["n_params"] < held]
        if sparse:
            train = sparse_sweeps(train)
        # batch size is tuned only where some cell tried more than one
        tune_bs = bool(train.groupby(["n_params", "n_tokens"])["batch_size"].nunique().max() > 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hl.scaling.ScalingWarning)
            lr_law = hl.scaling.fit(train, target="lr", features=tuple(  # those that vary
                f for f in ("n_params", "n_tokens") if train[f].nunique() > 1),
                                    method=method, interval=interval,  # type: ignore[arg-type]
                                    prior=prior)
            bs_law = hl.scaling.fit(train, target="batch_size", features=("n_tokens",),
                                    method=method, interval=interval,  # type: ignore[arg-type]
                                    prior=prior) if tune_bs else None
        for n_tokens, cell in runs[runs["n_params"] == held].groupby("n_tokens"):
            best = cell.loc[cell["loss"].idxmin()]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", hl.scaling.ExtrapolationWarning)
                lr = lr_law.predict(**{f: v for f, v in (("n_params", held),
                                                         ("n_tokens", n_tokens))
                                       if f in lr_law.features})
            if bs_law is not None:
                bs = bs_law.predict(n_tokens=n_tokens)
            else:  # nothing to say about batch size: judge lr at the best one
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
                "best_bs": best["batch_size"], "bs_tuned": tune_bs,
                "lr_covered": bool(lr.low <= best["lr"] <= lr.high),
                "bs_covered": bool(bs.low <= best["batch_size"] <= bs.high),
                "nearest_lr": float(nearest["lr"]), "loss": float(nearest["loss"]),
                "best_loss": float(best["loss"]),
                "loss_gap": float(nearest["loss"] / best["loss"] - 1.0),
                "warned": any(issubclass(w.category, hl.scaling.ExtrapolationWarning)
                              for w in caught),
            })
    return rows


def summarize(rows: list[dict[str, object]]) -> dict[str, float]:
    """Coverage, mean loss gap and median interval widths over the held-out cells; coverage
    and gap also over the largest size's cells alone (only the largest size held out)."""
    frame = pd.DataFrame(rows)
    tuned = frame[frame["bs_tuned"]]
    largest = frame[frame["n_params"] == frame["n_params"].max()]
    return {"cells": len(frame), "lr_coverage": float(frame["lr_covered"].mean()),
            "largest_cells": len(largest),
            "largest_lr_coverage": float(largest["lr_covered"].mean()),
            "largest_loss_gap": float(largest["loss_gap"].mean()),
            "bs_coverage": float(tuned["bs_covered"].mean()) if len(tuned) else math.nan,
            "mean_loss_gap": float(frame["loss_gap"].mean()),
            "median_lr_width": float(np.median(frame["lr_high"] / frame["lr_low"])),
            "median_bs_width": float(np.median(tuned["bs_high"] / tuned["bs_low"]))
            if len(tuned) else math.nan,
            "warned": int(frame["warned"].sum())}


def fmt(value: float, spec: str) -> str:
    """`value` formatted, or "n/a" where there is nothing to measure."""
    return "n/a" if math.isnan(value) else format(value, spec)


def print_cells(rows: list[dict[str, object]]) -> None:
    """The held-out cells one by one."""
    print("| held-out size | tokens | fitted sizes | recommended lr (90% interval) | best lr "
          "| covered | nearest run's loss | best loss | gap | ExtrapolationWarning |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n_params']:.3g} | {r['n_tokens']:.3g} | {r['train_sizes']} "
              f"| {r['lr']:.4g} ({r['lr_low']:.4g} .. {r['lr_high']:.4g}) | {r['best_lr']:.4g} "
              f"| {'yes' if r['lr_covered'] else 'no'} | {r['loss']:.4f} | {r['best_loss']:.4f} "
              f"| {r['loss_gap']:+.2%} | {'yes' if r['warned'] else 'no'} |")


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Print the held-out table of the chosen grid and write its per-cell rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", choices=("steplaw", "transformer"), default="steplaw",
                        help="the paper's released runs, or the tiny-transformer grid trained "
                             "here (runs cached in --cache; an interrupted grid resumes)")
    parser.add_argument("--cache", type=Path, default=TRANSFORMER_RUNS)
    parser.add_argument("--cached-only", action="store_true",
                        help="transformer grid: train nothing, score the cached runs")
    parser.add_argument("--seeds", type=int, default=SEEDS,
                        help="transformer grid: seeds per run (the loss is their mean)")
    parser.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS),
                        help="transformer grid: the token budgets (cells) to train and score")
    parser.add_argument("--head-width", type=int, default=None,
                        help="transformer grid: every attention head this wide (default: "
                             "heads 16 wide, width 24 one head 24 wide)")
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS),
                        help="transformer grid: the widths (the largest is held out alone)")
    parser.add_argument("--mup-base", type=int, default=None,
                        help="transformer grid: μP relative to this width (the standard "
                             "model at it)")
    parser.add_argument("--output-mult", type=float, default=1.0,
                        help="transformer grid: the logits' multiplier")
    parser.add_argument("--methods", nargs="+", default=["tolerance", "parabola"])
    parser.add_argument("--intervals", nargs="+", default=["confidence", "prediction"])
    parser.add_argument("--priors", nargs="+", choices=("steplaw", "mup", "none"),
                        default=["steplaw", "none"],
                        help="the prior on the laws' exponents: the Step Law's (the "
                             "default of hl.scaling.fit), μP's, or none (the runs alone)")
    args = parser.parse_args(argv)
    if args.grid == "transformer":
        runs = transformer_runs(args.cache, args.seeds, train=not args.cached_only,
                                budgets=tuple(args.budgets), head_width=args.head_width,
                                widths=tuple(args.widths), mup_base=args.mup_base,
                                output_mult=args.output_mult)
        if len(args.widths) < 3:  # trained (or read), nothing to hold out
            print("fewer than three widths: their runs are cached, no width is held out")
            return {}
        label = "" if args.seeds == SEEDS and tuple(args.budgets) == BUDGETS else \
            f"_{args.seeds}seeds_" + "_".join(f"{b:g}" for b in args.budgets)
        label += f"_head{args.head_width}" if args.head_width else ""
        label += "" if tuple(args.widths) == WIDTHS else "_widths" + "_".join(
            str(w) for w in args.widths)
        label += f"_mup{args.mup_base}" if args.mup_base else ""
        label += f"_out{args.output_mult:g}" if args.output_mult != 1.0 else ""
        results = RESULTS.with_name(f"scaling_holdout_transformer{label}.json")
        print(f"{len(runs)} (width, tokens, lr) points of {args.seeds} seeds; median spread of a "
              f"point's seeds {runs.attrs['seed_spread']:.2%} of its loss; the rate best on "
              f"half of the seeds lands {runs.attrs['oracle_gap']:+.2%} above the best of the "
              f"other half, on average over the held-out cells (the gap's noise floor)")
    else:
        runs, results = load_runs(), RESULTS
    out: dict[str, object] = {}
    print("| training runs | method | interval | prior | held-out cells | lr covered "
          "| batch covered | mean loss gap | median lr interval (high/low) "
          "| median batch interval | ExtrapolationWarning "
          "| largest size: lr covered, mean loss gap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for sparse, method, interval, prior in itertools.product(
            (False, True), args.methods, args.intervals, args.priors):
        rows = evaluate(runs, method, interval, sparse,
                        prior=None if prior == "none" else prior)
        s = summarize(rows)
        kind = "1-D sweeps" if sparse else "full grid"
        out[f"{kind}/{method}/{interval}" + {"steplaw": "", "none": "/no prior"}.get(
            prior, f"/{prior} prior")] = {
            "summary": s, "cells": rows}
        print(f"| {kind} | {method} | {interval} | {prior} | {s['cells']} | "
              f"{s['lr_coverage']:.0%} | {fmt(s['bs_coverage'], '.0%')} "
              f"| {s['mean_loss_gap']:+.2%} | {s['median_lr_width']:.2f}x "
              f"| {fmt(s['median_bs_width'], '.2f')}"
              f"{'' if math.isnan(s['median_bs_width']) else 'x'} "
              f"| {s['warned']} of {s['cells']} "
              f"| {s['largest_lr_coverage']:.0%} of {s['largest_cells']}, "
              f"{s['largest_loss_gap']:+.2%} |")
    default = f"full grid/{hl.scaling.fit.__kwdefaults__['method']}/" \
              f"{hl.scaling.fit.__kwdefaults__['interval']}"
    if default in out:
        print(f"\nheld-out cells, {default}:")
        print_cells(out[default]["cells"])  # type: ignore[index]
    results.write_text(json.dumps(out, indent=1))
    print(f"\nper-cell rows: {results}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
