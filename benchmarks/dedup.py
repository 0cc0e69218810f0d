"""Evaluations saved by running equivalent configurations once (`create_study(dedup=...)`).

Each study runs `--trials` trials with dedup on and again with dedup off, on three spaces
where samplers may repeat configurations: a tiny finite space (24 configurations, fewer than
the trials), knn-wine from quality.py (an int in [1, 50] and two choices:
200 configurations; 3-fold CV error of a k-NN classifier) and a conditional space (a model
choice whose branches have their own small int and stepped-float parameters; a cheap
deterministic function). Prints, per space and sampler, the objective evaluations with dedup
(median over seeds) against the trials run, and whether the best value is the same both ways.

    python benchmarks/dedup.py --trials 60 --seeds 3
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import knn_wine

import hyperlaw as hl

CONDITIONAL = hl.Space({
    "model": hl.Choice(["linear", "tree", "knn"]),
    "alpha": hl.Float(0.0, 1.0, step=0.1, when={"model": "linear"}),
    "depth": hl.Int(1, 8, when={"model": "tree"}),
    "leaf": hl.Int(1, 4, when={"model": "tree"}),
    "k": hl.Int(1, 10, when={"model": "knn"}),
    "scale": hl.Choice([True, False]),
})


def conditional(p: dict[str, Any]) -> float:
    base = {"linear": (p.get("alpha", 0) - 0.3) ** 2 + 0.2,
            "tree": 0.05 * abs(p.get("depth", 0) - 5) + 0.02 * p.get("leaf", 0),
            "knn": 0.03 * abs(p.get("k", 0) - 4) + 0.1}[p["model"]]
    return base + (0.0 if p["scale"] else 0.05)


def tiny(p: dict[str, Any]) -> float:
    return abs(p["depth"] - 3) + {"relu": 0.0, "gelu": 0.1, "tanh": 0.3}[p["act"]] + \
        (0.0 if p["norm"] else 0.2)


TASKS: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], float]]] = {
    "tiny-finite": ({"depth": hl.Int(1, 4), "act": hl.Choice(["relu", "gelu", "tanh"]),
                     "norm": hl.Choice([True, False])}, tiny),
    "knn-wine": ({"k": hl.Int(1, 50), "weights": hl.Choice(["uniform", "distance"]),
                  "p": hl.Int(1, 2)}, knn_wine),
    "conditional": (dict(CONDITIONAL), conditional),
}


def run(task: str, sampler: str, seed: int, trials: int, dedup: bool) -> tuple[int, float]:
    """(objective evaluations, best value) of one study."""
    space, fn = TASKS[task]
    calls = [0]

    def objective(trial: hl.Trial) -> float:
        calls[0] += 1
        return fn(trial.params)

    study = hl.create_study(space=space, sampler=sampler, seed=seed, dedup=dedup)
    study.optimize(objective, n_trials=trials, show_progress=False)
    assert len(study.trials) == trials
    return calls[0], study.best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("hyperlaw").setLevel(logging.ERROR)
    print(f"{args.trials} trials per study, {args.seeds} seeds: objective evaluations with "
          "dedup (median [min..max]), trials reused, best value the same without dedup")
    for task in TASKS:
        for sampler in ("tpe", "random", "gp"):
            evals, same = [], []
            for seed in range(args.seeds):
                n_on, best_on = run(task, sampler, seed, args.trials, True)
                n_off, best_off = run(task, sampler, seed, args.trials, False)
                assert n_off == args.trials
                evals.append(n_on)
                same.append(best_on == best_off)
            med = float(np.median(evals))
            print(f"  {task:12s} {sampler:7s} {med:5.0f} [{min(evals)}..{max(evals)}] of "
                  f"{args.trials}: {1 - med / args.trials:4.0%} saved; same best: "
                  f"{sum(same)}/{len(same)}", flush=True)


if __name__ == "__main__":
    main()
