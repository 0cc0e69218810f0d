"""Priors and warm starts: what a belief about the good region buys, and what a wrong one costs.

    nice -n 10 python benchmarks/priors.py --quick      # a minute
    nice -n 10 python benchmarks/priors.py              # the figures of benchmarks/README.md
    python benchmarks/priors.py --parts warm-tpe,priorband   # some parts (saved as they end)
    python benchmarks/priors.py --tables                # the tables of the saved results

(a) `prior`: good, misleading and no prior on Branin, Hartmann-6 and Rosenbrock-4 (known
    minima) with TPE and the GP (πBO); median regret (best - minimum) at 10, 20 and 50
    evaluations over the seeds. The good prior sits a twentieth of the range off the optimum (on
    the unit scale, every dimension); the misleading one near the opposite corner (0.05 or
    0.95 per dimension; for Branin, whose three minima span the box, at (0.95, 0.95), the
    worst corner). Both use the default width (0.25).
    PriorBand: the same functions made multi-fidelity (the value at step s is
    f(x) + (f_start - f*) / s, 27 steps) under Hyperband(1, 27, η=3), PriorBand against
    random configurations; median regret of the best complete trial after 60 trials.
(b) `warm_start`: pairs of related tasks: a first task run for 50 evaluations, then a second
    one (the same function shifted: Hartmann-6 by up to 0.05 per coordinate, a 4-parameter
    log-scaled "validation error" by up to 0.3 decades per parameter) run cold and warm-started
    from the first (its priors and its 3 best configurations queued first). The targets are
    the cold runs' median regret after 20 and 50 evaluations; printed: the median number of
    evaluations each needs to reach it (a run that never does counts as 51) and the share of
    runs that reach it within 50. A control warm-starts from an unrelated task
    (its optimum 0.15 to 0.3 of the range away per coordinate, or 2 of the 6 decades per
    parameter): where a warm start loses.

Results go to benchmarks/results/priors.json and are printed as Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from quality import _vec, branin, rosenbrock
from quality import hartmann6 as hartmann6_at

import hyperlaw as hl
from hyperlaw.schedulers import Hyperband

RESULTS = Path(__file__).parent / "results"
Fn = Callable[[dict[str, Any]], float]


# --- functions with known minima (quality.py's, shared) -------------------------------------
H6_MIN = np.array([0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573])
rosenbrock4 = rosenbrock(4)


def hartmann6(shift: np.ndarray | None = None) -> Fn:
    """Hartmann-6, its minimum moved by `shift` (in the unit cube's coordinates)."""
    if shift is None:
        return hartmann6_at

    def f(p: dict[str, Any]) -> float:
        return hartmann6_at({f"x{i}": p[f"x{i}"] - shift[i] for i in range(6)})
    return f


def val_error(centre: np.ndarray) -> Fn:
    """A validation-error-like function of 4 log-scaled parameters (minimum 0.05 at `centre`,
    in decades), with an interaction between the first two."""
    def f(p: dict[str, Any]) -> float:
        z = np.log10(_vec(p, 4)) - centre
        q = z[0] ** 2 + z[1] ** 2 + 0.8 * z[0] * z[1] + 0.5 * z[2] ** 2 + 0.25 * z[3] ** 2
        return float(0.05 + 0.9 * (1.0 - math.exp(-q / 2.0)))
    return f


def _floats(lo: float, hi: float, d: int, log: bool = False) -> dict[str, hl.space.Param]:
    return {f"x{i}": hl.Float(lo, hi, log=log) for i in range(d)}


# name: (space, function, minimum value, minimizer in the space's units)
PROBLEMS: dict[str, tuple[dict[str, hl.space.Param], Fn, float, np.ndarray]] = {
    "branin": ({"x0": hl.Float(-5.0, 10.0), "x1": hl.Float(0.0, 15.0)}, branin, 0.397887,
               np.array([math.pi, 2.275])),
    "hartmann6": (_floats(0.0, 1.0, 6), hartmann6(), -3.32237, H6_MIN),
    "rosenbrock4": (_floats(-5.0, 10.0, 4), rosenbrock4, 0.0, np.ones(4)),
}


def with_prior(space: dict[str, hl.space.Param], units: np.ndarray) -> dict[str, hl.space.Param]:
    """`space` with priors at the unit coordinates `units`."""
    return {name: param.with_prior(param.from_unit(float(u)))
            for (name, param), u in zip(space.items(), units, strict=True)}


def prior_spaces(space: dict[str, hl.space.Param], x_min: np.ndarray
                 ) -> dict[str, dict[str, hl.space.Param]]:
    """No, good and misleading prior (see the module docstring)."""
    u = np.array([p.to_unit(float(v)) for p, v in zip(space.values(), x_min, strict=True)])
    good = np.clip(u + 0.05 * np.where(u < 0.5, 1.0, -1.0), 0.0, 1.0)
    bad = np.where(u < 0.5, 0.95, 0.05)
    if len(u) == 2:  # Branin: that corner neighbours another of its three minima
        bad = np.array([0.95, 0.95])
    return {"none": space, "good": with_prior(space, good), "misleading": with_prior(space, bad)}


def best_curve(study: hl.Study) -> np.ndarray:
    values = [t.value for t in study.trials if t.value is not None]
    return np.minimum.accumulate(np.array(values, dtype=float))


def run(space: dict[str, hl.space.Param], fn: Fn, sampler: str, seed: int, n: int,
        warm_start: Any = None) -> hl.Study:
    study = hl.create_study(space=space, sampler=sampler, seed=seed, warm_start=warm_start)
    study.optimize(lambda t: fn(t.params), n_trials=n)
    return study


# --- (a) priors -----------------------------------------------------------------------------
def prior_table(samplers: list[str], seeds: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (space, fn, f_min, x_min) in PROBLEMS.items():
        for kind, sp in prior_spaces(space, x_min).items():
            for sampler in samplers:
                curves = [best_curve(run(sp, fn, sampler, s, n)) - f_min for s in range(seeds)]
                out[f"{name}/{sampler}/{kind}"] = [c.tolist() for c in curves]
                print(name, sampler, kind, np.median([c[-1] for c in curves]), flush=True)
    return out


def multi_fidelity(fn: Fn, f_min: float, f_start: float) -> Callable[[hl.Trial], float]:
    def objective(trial: hl.Trial) -> float:
        value = fn(trial.params)
        for step in range(1, 28):
            trial.report(value + (f_start - f_min) / step, step)
            if trial.should_prune():
                raise hl.TrialPruned()
        return value
    return objective


def priorband_table(seeds: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (space, fn, f_min, x_min) in PROBLEMS.items():
        f_start = float(np.median([fn(hl.Space(space).sample(np.random.default_rng(i)))
                                   for i in range(50)]))
        for kind, sp in prior_spaces(space, x_min).items():
            for sampler in ("random", "priorband"):
                regrets = []
                for seed in range(seeds):
                    study = hl.create_study(space=sp, sampler=sampler, seed=seed,
                                            scheduler=Hyperband(1, 27, 3))
                    study.optimize(multi_fidelity(fn, f_min, f_start), n_trials=n)
                    regrets.append(study.best_value - f_min)
                out[f"{name}/{sampler}/{kind}"] = regrets
                print(name, sampler, kind, np.median(regrets), flush=True)
    return out


# --- (b) warm starts ------------------------------------------------------------------------
def family(name: str, rng: np.random.Generator, unrelated: bool
           ) -> tuple[dict[str, hl.space.Param], Fn, Fn, float]:
    """(space, first task, second task, minimum) of one pair of related tasks."""
    if name == "hartmann6":
        s1, s2 = rng.uniform(-0.05, 0.05, 6), rng.uniform(-0.05, 0.05, 6)
        if unrelated:
            s1 = np.where(H6_MIN + s2 < 0.5, 0.3, -0.15)
        return _floats(0.0, 1.0, 6), hartmann6(s1), hartmann6(s2), -3.32237
    base = np.array([-3.0, -3.5, -2.5, -4.0]) + rng.uniform(-0.5, 0.5, 4)
    c1, c2 = base + rng.uniform(-0.3, 0.3, 4), base + rng.uniform(-0.3, 0.3, 4)
    if unrelated:
        c1 = np.where(c2 < -3.0, c2 + 2.0, c2 - 2.0)
    return _floats(1e-6, 1.0, 4, log=True), val_error(c1), val_error(c2), 0.05


def warm_table(sampler: str, seeds: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("hartmann6", "val_error"):
        curves: dict[str, list[list[float]]] = {"cold": [], "warm": [], "unrelated": []}
        for seed in range(seeds):
            for mode in ("related", "unrelated"):
                rng = np.random.default_rng(1000 + seed)
                space, first, second, f_min = family(name, rng, mode == "unrelated")
                earlier = run(space, first, sampler, 10_000 + seed, n)
                warm = run(space, second, sampler, seed, n, warm_start=earlier)
                curves["warm" if mode == "related" else "unrelated"].append(
                    (best_curve(warm) - f_min).tolist())
            curves["cold"].append((best_curve(run(space, second, sampler, seed, n))
                                   - f_min).tolist())
        out[f"{name}/{sampler}"] = curves
        print(name, sampler, {k: np.median([c[-1] for c in v]) for k, v in curves.items()},
              flush=True)
    return out


def trials_to(curve: list[float], target: float) -> int:
    hit = np.flatnonzero(np.array(curve) <= target)
    return int(hit[0]) + 1 if len(hit) else len(curve) + 1


# --- tables ---------------------------------------------------------------------------------
def print_tables(results: dict[str, Any], n: int) -> None:
    checkpoints = [b for b in (10, 20, 50) if b <= n]
    print("\n(a) median regret by prior (columns: evaluations)\n")
    print("| problem | sampler | prior | " + " | ".join(map(str, checkpoints)) + " |")
    print("|---|---|---|" + "---|" * len(checkpoints))
    for key, curves in results.get("priors", {}).items():
        cells = [f"{np.median([c[b - 1] for c in curves]):.3g}" for b in checkpoints]
        print(f"| {' | '.join(key.split('/'))} | " + " | ".join(cells) + " |")
    if results.get("priorband"):
        print("\n(a') Hyperband(1, 27): median regret of the best complete trial\n")
        print("| problem | sampler | prior | regret |\n|---|---|---|---|")
        for key, regrets in results["priorband"].items():
            print(f"| {' | '.join(key.split('/'))} | {np.median(regrets):.3g} |")
    print("\n(b) warm start: evaluations to reach the cold runs' median regret after b "
          "evaluations (median over seeds; share of runs that reach it)\n")
    print("| family | sampler | b | target regret | cold | warm | unrelated warm start |")
    print("|---|---|---|---|---|---|---|")
    for key, curves in results.get("warm", {}).items():
        for b in (20, n):
            target = float(np.median([c[b - 1] for c in curves["cold"]]))
            cells = []
            for mode in ("cold", "warm", "unrelated"):
                needed = [trials_to(c, target) for c in curves[mode]]
                reached = np.mean([k <= n for k in needed])
                cells.append(f"{np.median(needed):.0f} ({reached:.0%})")
            print(f"| {' | '.join(key.split('/'))} | {b} | {target:.3g} | "
                  + " | ".join(cells) + " |")


PARTS = ("priors-tpe", "priors-gp", "priorband", "warm-tpe", "warm-gp")


def run_part(part: str, seeds: int, gp_seeds: int, n: int) -> dict[str, Any]:
    """One part's results under its table's key."""
    if part == "priorband":
        return {"priorband": priorband_table(seeds, 60)}
    table, sampler = part.split("-")
    k = gp_seeds if sampler == "gp" else seeds
    if table == "priors":
        return {"priors": prior_table([sampler], k, n)}
    return {"warm": warm_table(sampler, k, n)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, TPE only")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--gp-seeds", type=int, default=None)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--label", default="priors")
    parser.add_argument("--tables", action="store_true",
                        help="only print the tables of the results saved under --label")
    args = parser.parse_args()
    seeds = args.seeds or (3 if args.quick else 20)
    gp_seeds = 0 if args.quick else (args.gp_seeds or 10)
    path = RESULTS / f"{args.label}.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    for part in [] if args.tables else args.parts.split(","):
        if part.endswith("-gp") and not gp_seeds:
            continue
        start = time.monotonic()
        for key, rows in run_part(part, seeds, gp_seeds, args.trials).items():
            if path.exists():  # another process may have saved its parts meanwhile
                results = json.loads(path.read_text())
            results.setdefault(key, {}).update(rows)
            results.setdefault("minutes", {})[part] = (time.monotonic() - start) / 60
            RESULTS.mkdir(exist_ok=True)
            path.write_text(json.dumps(results))
    print_tables(results, args.trials)


if __name__ == "__main__":
    main()
