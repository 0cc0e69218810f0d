"""Multi-seed tuning against single-seed tuning at equal compute, judged on unseen seeds.

    python benchmarks/multiseed.py                  # 10 repetitions
    python benchmarks/multiseed.py --repeats 20 --configs 12

The task is seed-sensitive on purpose: a small MLP (64-32-10) trained for 3 epochs of SGD on
300 digits that the seed draws from a pool of 1,200 (the seed also sets the initialisation
and the data order); its validation cross-entropy on 597 fixed images is the objective. The
learning rate, momentum and width multiplier are searched by hyperlaw's TPE. At equal
compute, per repetition:

- single seed: 3 x `configs` trials, each trained once (tuning seed 0);
- multi-seed: `configs` trials with `seeds_per_config=3` (tuning seeds 0, 1, 2; mean).

Each winner is then trained on 10 test seeds (100-109) that tuning never saw. Printed: the
median over repetitions of the winner's test mean, and of its optimism (tuning value minus
test mean: how much the tuning figure flatters the winner).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import numpy as np
import torch
from sklearn.datasets import load_digits

import hyperlaw as hl

X, Y = load_digits(return_X_y=True)
X_T, Y_T = torch.tensor(X / 16.0, dtype=torch.float32), torch.tensor(Y)
POOL, VALID = slice(0, 1200), slice(1200, 1797)
SPACE = {"lr": hl.Float(1e-3, 1.0, log=True), "momentum": hl.Float(0.0, 0.95),
         "width": hl.Int(8, 64, log=True)}


def train(trial: hl.Trial) -> float:
    seed = trial.seed if trial.seed is not None else 0
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    subset = torch.randperm(POOL.stop, generator=generator)[:300]
    model = torch.nn.Sequential(torch.nn.Linear(64, trial.params["width"]), torch.nn.ReLU(),
                                torch.nn.Linear(trial.params["width"], 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"],
                                momentum=trial.params["momentum"])
    loss = float("nan")
    for epoch in range(3):
        for batch in subset[torch.randperm(300, generator=generator)].split(30):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X_T[batch]), Y_T[batch]).backward()
            optimizer.step()
        with torch.no_grad():
            loss = float(torch.nn.functional.cross_entropy(model(X_T[VALID]), Y_T[VALID]))
        if not np.isfinite(loss):
            return 10.0  # diverged: a bad configuration, not a failure
        trial.report(loss, epoch)
    return loss


def tuned(repeat: int, configs: int, seeds: int) -> tuple[float, float]:
    """The winner's tuning value and its mean over the test seeds."""
    study = hl.create_study(space=SPACE, sampler="tpe", seed=repeat)
    if seeds == 1:
        study.optimize(train, n_trials=3 * configs, seeds_per_config=[0], show_progress=False)
    else:
        study.optimize(train, n_trials=configs, seeds_per_config=seeds, show_progress=False)
    [winner] = study.reevaluate(train, top_k=1, seeds=range(100, 110))
    return winner.tuning_value, winner.mean


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--configs", type=int, default=12)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows: dict[str, list[tuple[float, float]]] = {"single seed": [], "3 seeds": []}
    for repeat in range(args.repeats):
        for name, seeds in (("single seed", 1), ("3 seeds", 3)):
            tuning, test = tuned(repeat, args.configs, seeds)
            rows[name].append((tuning, test))
            print(f"repeat {repeat} {name:11s}: tuning {tuning:.4f}, test mean {test:.4f}",
                  flush=True)
    print(f"\nmedians over {args.repeats} repetitions ({3 * args.configs} trainings each):")
    for name, results in rows.items():
        test = statistics.median(r[1] for r in results)
        optimism = statistics.median(r[1] - r[0] for r in results)
        print(f"  {name:11s}  winner's test mean {test:.4f}   optimism {optimism:+.4f}")
    better = sum(m[1] < s[1] for s, m in zip(rows["single seed"], rows["3 seeds"],
                                             strict=True))
    print(f"3 seeds' winner better on the test seeds in {better} of {args.repeats} repetitions")


if __name__ == "__main__":
    sys.exit(main())
