"""Online tuning of SOR's omega over a stream of linear systems (see examples/online_sor.py).

For each seed: a stream of shifted Poisson systems; every arm (omega on a 16-point grid) is
solved on every system once, so that each method below is charged the real iteration count
of the omega it picked, and the best fixed omega in hindsight (the arm with the least total)
and the per-instance oracle are known. Methods: hyperlaw's OnlineTuner, contextual (LinUCB
and SquareCB on Chebyshev features of the Jacobi spectral radius) and instance-blind (UCB,
Thompson) bandits over the same arms. Prints cumulative SOR iterations, medians over seeds.

    python benchmarks/online_sor.py --systems 200 --grid 16 --seeds 5
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import online_sor

import hyperlaw as hl
from hyperlaw.online import CONTEXTUAL

METHODS = ("linucb", "squarecb", "ucb", "thompson")


def cost_table(n_systems: int, grid: int, seed: int, arms: list[float]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(rho per system, iterations per system and arm)."""
    systems = online_sor.stream(n_systems, grid, seed)
    rho = np.array([s[0] for s in systems])
    table = np.array([[online_sor.sor_iterations(a, b, w) for w in arms]
                      for _, a, b in systems], dtype=float)
    return rho, table


def run(method: str, rho: np.ndarray, table: np.ndarray, seed: int) -> list[float]:
    features = {"rho": online_sor.RHO_RANGE} if method in CONTEXTUAL else None
    tuner = hl.online.OnlineTuner(online_sor.OMEGA, features=features, method=method,  # type: ignore[arg-type]
                                  n_arms=table.shape[1], seed=seed)
    for i, r in enumerate(rho):
        omega = tuner.suggest({"rho": float(r)} if features else None)
        tuner.observe(table[i, tuner.arms.index(omega)])
    return tuner.costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--systems", type=int, default=200)
    parser.add_argument("--grid", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    arms = online_sor.OMEGA.grid(16)
    names = (*METHODS, "best fixed", "oracle")
    rows: dict[str, list[float]] = {m: [] for m in names}
    late: dict[str, list[float]] = {m: [] for m in names}  # the last third of the stream
    tail = slice(2 * args.systems // 3, None)
    for seed in range(args.seeds):
        rho, table = cost_table(args.systems, args.grid, seed, arms)
        paid = {m: np.asarray(run(m, rho, table, seed)) for m in METHODS}
        fixed_arm = int(table.sum(axis=0).argmin())
        paid["best fixed"] = table[:, fixed_arm]
        paid["oracle"] = table.min(axis=1)
        for m in names:
            rows[m].append(float(paid[m].sum()))
            late[m].append(float(paid[m][tail].sum()))
        print(json.dumps({"seed": seed, "best_fixed_omega": arms[fixed_arm],
                          **{k: v[-1] for k, v in rows.items()},
                          "last_third": {k: v[-1] for k, v in late.items()}}), flush=True)
    fixed, fixed_late = np.median(rows["best fixed"]), np.median(late["best fixed"])
    print(f"\n{args.systems} systems on a {args.grid}x{args.grid} grid, {args.seeds} seeds; "
          "SOR iterations (median over seeds) against the best fixed omega in hindsight: "
          "whole stream, and its last third")
    for name in names:
        med, med_late = float(np.median(rows[name])), float(np.median(late[name]))
        print(f"  {name:11s} {med:9.0f}  {med / fixed:5.2f}x  "
              f"[{min(rows[name]):.0f} .. {max(rows[name]):.0f}]   last third {med_late:7.0f}"
              f"  {med_late / fixed_late:5.2f}x")


if __name__ == "__main__":
    main()
