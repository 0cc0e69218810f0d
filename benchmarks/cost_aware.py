"""The cost-aware sampler against random search and TPE: the (cost, loss) front at equal cost.

Two tasks, each run sequentially through a real study until the trials' total cost reaches
the same budget for every sampler:

- `scaling`: a known loss surface in model size N, tokens D, learning rate and batch size
  (Chinchilla's fitted law, Hoffmann et al. 2022, plus quadratic penalties in log learning
  rate and log batch size around optima that move with N and D); cost = 6·N·D FLOPs, reported
  with `trial.add_cost(flops=...)`. Budget: `--scaling-budget` times the compute of the
  largest model on the most tokens.
- `mlp_digits`: the recorded curves of benchmarks/data/curves.npz; a configuration's loss is
  its recorded final validation loss (nearest recorded configuration, as in
  multifidelity.py), its cost the recorded seconds to train it to the end
  (`trial.add_cost(train_seconds=...)`). Budget: `--table-trials` times the median cost.

Score: the hypervolume of the (log10 cost, loss) front of the complete trials when the budget
is spent, with a fixed reference point per task; median over seeds, and how often the cost-aware
sampler's run beats each other sampler's run of the same seed.

    python benchmarks/cost_aware.py                       # 10 seeds, both tasks
    python benchmarks/cost_aware.py --seeds 3 --tasks scaling
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from multifidelity import DATA, Table

import hyperlaw as hl
from hyperlaw.pareto import hypervolume

RESULTS = Path(__file__).resolve().parent / "results"
#: sampler name -> (registered name, options)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}), "tpe": ("tpe", {}),
    "cost_aware": ("cost_aware", {}),  # the default: acquisition="ehvi"
    "cost_aware front_ei": ("cost_aware", {"acquisition": "front_ei"})}

# Chinchilla's fitted law (Hoffmann et al. 2022, approach 3)
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
SCALING_SPACE = hl.Space({
    "n_params": hl.Float(1e5, 1e9, log=True), "n_tokens": hl.Float(1e6, 1e11, log=True),
    "lr": hl.Float(1e-5, 1e-1, log=True), "batch_size": hl.Int(8, 4096, log=True)})


def optimal_lr(n_params: float, n_tokens: float) -> float:
    """The planted optimal learning rate (exponents of the Step Law's form)."""
    return 1.79 * n_params**-0.713 * n_tokens**0.307


def optimal_batch(n_tokens: float) -> float:
    """The planted optimal batch size (grows with the token budget)."""
    return 0.58 * n_tokens**0.3


def scaling_loss(n_params: float, n_tokens: float, lr: float, batch_size: float) -> float:
    """The known surface: Chinchilla's law plus penalties for a learning rate and a batch size
    away from their optima (in log space)."""
    base = E + A / n_params**ALPHA + B / n_tokens**BETA
    return (base + 0.02 * math.log(lr / optimal_lr(n_params, n_tokens)) ** 2
            + 0.01 * math.log(batch_size / optimal_batch(n_tokens)) ** 2)


@dataclass
class Task:
    """A task: its space, the loss and cost of a configuration, the cost name and budget."""

    name: str
    space: hl.Space
    evaluate: Callable[[dict[str, Any]], tuple[float, float]]
    cost: str
    budget: float
    reference: tuple[float, float]  # (log10 cost, loss)


def scaling_task(budget_factor: float) -> Task:
    def evaluate(p: dict[str, Any]) -> tuple[float, float]:
        return (scaling_loss(p["n_params"], p["n_tokens"], p["lr"], p["batch_size"]),
                6.0 * p["n_params"] * p["n_tokens"])
    top = 6.0 * 1e9 * 1e11
    # the reference loss: a typical random configuration's (only better ones count)
    typical = np.median([evaluate(SCALING_SPACE.sample(np.random.default_rng([0, i])))[0]
                         for i in range(1000)])
    return Task("scaling", SCALING_SPACE, evaluate, "flops", budget_factor * top,
                (math.log10(top) + 0.1, float(typical)))


def table_task(data: Any, trials: float) -> Task:
    table = Table.load(data, "mlp_digits")
    seconds = table.seconds * float(table.steps[-1]) / float(table.steps[0])

    def evaluate(p: dict[str, Any]) -> tuple[float, float]:
        k = table.nearest(p)
        return float(table.curves[k, -1]), float(seconds[k])
    return Task("mlp_digits", table.space, evaluate, "train_seconds",
                trials * float(np.median(seconds)),
                (math.log10(float(seconds.max())) + 0.1, float(np.median(table.curves[:, -1]))))


def run(task: Task, sampler: str, seed: int) -> tuple[np.ndarray, int]:
    """Ask and tell until the total cost reaches the budget (a trial that would overrun what
    is left is not run; 10 in a row end the run); the (log10 cost, loss) points of the
    complete trials and the number of trials."""
    name, options = SAMPLERS[sampler]
    if name == "cost_aware":
        options = {**options, "cost": task.cost}
    chosen: Any = hl.samplers.SAMPLERS[name](seed=seed, **options) if options else name
    study = hl.create_study(space=task.space, sampler=chosen, seed=seed)
    spent, points, misses = 0.0, [], 0
    while spent < task.budget and misses < 10:
        trial = study.ask()
        loss, cost = task.evaluate(dict(trial.params))
        if spent + cost > task.budget:  # not run: it would overrun what is left
            study.tell(trial, state=hl.TrialState.FAILED)
            misses += 1
            continue
        misses = 0
        trial.add_cost(**{task.cost: cost})
        study.tell(trial, loss)
        spent += cost
        points.append((math.log10(cost), loss))
    return np.array(points).reshape(-1, 2), len(study.trials)


def run_task(task: Task, seeds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"budget": task.budget, "cost": task.cost,
                           "reference": list(task.reference), "samplers": {}}
    for sampler in SAMPLERS:
        volumes, trials, started = [], [], time.perf_counter()
        for seed in range(seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                points, n = run(task, sampler, seed)
            volumes.append(hypervolume(points, np.array(task.reference)))
            trials.append(n)
        out["samplers"][sampler] = {"hypervolume": volumes, "trials": trials,
                                    "seconds": time.perf_counter() - started}
    return out


def print_task(task: Task, found: dict[str, Any], seeds: int) -> None:
    ref = tuple(round(r, 3) for r in task.reference)
    print(f"\n## {task.name}: budget {task.budget:.3g} {task.cost}; hypervolume of the "
          f"(log10 {task.cost}, loss) front, reference {ref}")
    print(f"{'sampler':<20}{'median HV':>12}{'min':>10}{'max':>10}{'trials':>8}"
          f"{'cost_aware wins':>17}{'seconds':>9}")
    ours = np.array(found["samplers"]["cost_aware"]["hypervolume"])
    for name, m in found["samplers"].items():
        hv = np.array(m["hypervolume"])
        wins = "" if name.startswith("cost_aware") else f"{np.mean(ours > hv):.0%}"
        print(f"{name:<20}{np.median(hv):>12.4f}{hv.min():>10.4f}{hv.max():>10.4f}"
              f"{np.median(m['trials']):>8.0f}{wins:>17}{m['seconds']:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--tasks", nargs="*", default=["scaling", "mlp_digits"])
    parser.add_argument("--scaling-budget", type=float, default=0.5,
                        help="the budget in units of the largest run's compute")
    parser.add_argument("--table-trials", type=float, default=60,
                        help="the mlp_digits budget in units of the median trial's cost")
    parser.add_argument("--save", type=Path, default=RESULTS / "cost_aware.json")
    args = parser.parse_args()
    logging.getLogger("hyperlaw").setLevel(logging.ERROR)
    tasks = {"scaling": lambda: scaling_task(args.scaling_budget),
             "mlp_digits": lambda: table_task(np.load(DATA), args.table_trials)}
    saved: dict[str, Any] = {"command": f"python benchmarks/cost_aware.py --seeds {args.seeds} "
                             f"--scaling-budget {args.scaling_budget} --table-trials "
                             f"{args.table_trials}", "tasks": {}}
    for name in args.tasks:
        task = tasks[name]()
        found = run_task(task, args.seeds)
        print_task(task, found, args.seeds)
        saved["tasks"][name] = found
    if args.save:
        args.save.write_text(json.dumps(saved, indent=1))
        print(f"\nsaved to {args.save}")


if __name__ == "__main__":
    main()
