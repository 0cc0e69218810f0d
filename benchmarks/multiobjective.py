"""Several objectives and constraints: hyperlaw's samplers next to Optuna's, in one run.

    python benchmarks/multiobjective.py                      # quick: 3 seeds, 50 and 100
    python benchmarks/multiobjective.py --seeds 10 --budgets 50,100,200   # the issue's run
    python benchmarks/multiobjective.py --problems zdt1,dtlz2 --optimizers hyperlaw-gp,optuna-gp
    python benchmarks/multiobjective.py --timing-only        # suggestion cost alone

Problems (every objective minimized):

- ZDT1, ZDT2, ZDT3 (Zitzler, Deb and Thiele 2000) in 8 dimensions: convex, concave and
  disconnected fronts; reference point (1.1, 11);
- DTLZ2 (Deb et al. 2002) with 3 objectives in 6 dimensions; reference (1.5, 1.5, 1.5);
- C2-DTLZ2 (Jain and Deb 2014): DTLZ2 with 3 objectives in 6 dimensions under a constraint
  that leaves four patches of its front feasible (radius 0.4); reference (1.5, 1.5, 1.5);
  only feasible trials count towards the hypervolume;
- mlp-params: an sklearn MLPClassifier on the digits (1,200 training, 597 validation
  images, 20 epochs of Adam): validation log loss against the number of parameters, over
  width (8 to 128, powers of 2), depth (1 to 3), learning rate and L2 penalty (on grids of
  half and whole decades); reference (1.0, 45,000);
- mlp-cost: the same network, validation log loss against training cost (6 x parameters x
  samples x epochs, in GFLOPs) with the epochs (5 to 40) searched instead of the penalty;
  reference (1.0, 13).

The networks' spaces are finite (630 and 840 configurations): each configuration is trained
once with a fixed seed and its result kept in benchmarks/results/mlp-cache.json, so that the
tasks are deterministic and repeated configurations cost nothing.

Every optimizer runs each problem once per seed up to the largest budget, through its
ask/tell interface; the hypervolume after 50, 100 and 200 evaluations is read from that run.
Printed: mean hypervolume per problem and budget, the mean rank of each optimizer per budget
(ranked per problem and seed; ties averaged), and seconds per suggestion with 200 complete
trials on ZDT1 (median of 3 asks). JSON: benchmarks/results/multiobjective.json. Finished
runs are appended to benchmarks/results/multiobjective-runs.jsonl, which is kept in the
repository: a later start runs only what is missing (the full grid takes hours, mostly
Optuna's GPSampler), and `--cached-only` remakes the tables from it in seconds. Delete the
lines of an optimizer after changing it.

Optuna: NSGAIISampler, TPESampler and GPSampler with their defaults and the seed, the
constraint set by `trial.set_constraint` (Optuna 5's replacement of `constraints_func`, which
Optuna 4 gets). `hyperlaw-auto` picks hyperlaw-gp on every problem here (fewer than 300
trials, no conditional or mostly categorical space): it is left out unless named.
Ax/BoTorch is compared only when importable.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from scipy.stats import rankdata
from threadpoolctl import threadpool_limits

import hyperlaw as hl
from hyperlaw.pareto import hypervolume_history
from hyperlaw.samplers import AutoSampler, GPSampler, NSGA2Sampler, RandomSampler, TPESampler

RESULTS = Path(__file__).parent / "results"


# --- problems --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    name: str
    space: dict[str, hl.space.Param]
    #: params -> (objective values, violation: 0 feasible, None without constraints)
    fn: Callable[[dict[str, Any]], tuple[tuple[float, ...], float | None]]
    reference: tuple[float, ...]


def _vec(p: dict[str, Any]) -> np.ndarray:
    return np.array([p[f"x{i}"] for i in range(len(p))], dtype=float)


def _box(d: int) -> dict[str, hl.space.Param]:
    return {f"x{i}": hl.Float(0.0, 1.0) for i in range(d)}


def zdt(kind: int) -> Callable[[dict[str, Any]], tuple[tuple[float, ...], float | None]]:
    def f(p: dict[str, Any]) -> tuple[tuple[float, ...], float | None]:
        x = _vec(p)
        f1 = x[0]
        g = 1.0 + 9.0 * x[1:].mean()
        r = f1 / g
        h = {1: 1.0 - math.sqrt(r), 2: 1.0 - r * r,
             3: 1.0 - math.sqrt(r) - r * math.sin(10.0 * math.pi * f1)}[kind]
        return (float(f1), float(g * h)), None
    return f


def dtlz2_values(x: np.ndarray, m: int = 3) -> np.ndarray:
    g = float(np.sum((x[m - 1:] - 0.5) ** 2))
    theta = x[: m - 1] * math.pi / 2
    out = np.full(m, 1.0 + g)
    for i in range(m):
        out[i] *= np.prod(np.cos(theta[: m - 1 - i]))
        if i > 0:
            out[i] *= math.sin(theta[m - 1 - i])
    return out


def dtlz2(p: dict[str, Any]) -> tuple[tuple[float, ...], float | None]:
    return tuple(float(v) for v in dtlz2_values(_vec(p))), None


def c2_dtlz2(p: dict[str, Any]) -> tuple[tuple[float, ...], float | None]:
    f = dtlz2_values(_vec(p))
    m, r = len(f), 0.4
    sq = f * f
    near_axis = min((f[i] - 1.0) ** 2 + sq.sum() - sq[i] - r * r for i in range(m))
    near_centre = float(np.sum((f - 1.0 / math.sqrt(m)) ** 2)) - r * r
    return tuple(float(v) for v in f), max(0.0, min(near_axis, near_centre))


_DIGITS: tuple[np.ndarray, ...] | None = None
_MLP_CACHE: dict[str, tuple[float, int]] = {}
_MLP_CACHE_FILE = RESULTS / "mlp-cache.json"
_N_TRAIN = 1200


def _digits() -> tuple[np.ndarray, ...]:
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits
        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))
        x, y = x[order] / 16.0, y[order]
        _DIGITS = (x[:_N_TRAIN], y[:_N_TRAIN], x[_N_TRAIN:], y[_N_TRAIN:])
        _merge_mlp_cache()
    return _DIGITS


def _merge_mlp_cache() -> None:
    """Add the configurations trained by any run (this one or a concurrent one) so far."""
    if _MLP_CACHE_FILE.exists():
        _MLP_CACHE.update({k: tuple(v) for k, v in
                           json.loads(_MLP_CACHE_FILE.read_text()).items()})


def mlp_loss(width: int, depth: int, lr: float, alpha: float, epochs: int) -> tuple[float, int]:
    """Validation log loss and parameter count of one trained MLP (cached)."""
    key = f"{width},{depth},{lr:.6g},{alpha:.6g},{epochs}"
    xt, yt, xv, yv = _digits()
    if key not in _MLP_CACHE:
        _merge_mlp_cache()  # another run of the benchmark may have trained it meanwhile
    if key not in _MLP_CACHE:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.metrics import log_loss
        from sklearn.neural_network import MLPClassifier
        model = MLPClassifier((width,) * depth, alpha=alpha, learning_rate_init=lr,
                              max_iter=epochs, batch_size=64, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            with threadpool_limits(1):  # threaded BLAS on shared cores: 30 times slower
                model.fit(xt, yt)
        loss = float(log_loss(yv, model.predict_proba(xv), labels=list(range(10))))
        sizes = [64, *((width,) * depth), 10]
        params = sum(a * b + b for a, b in itertools.pairwise(sizes))
        _merge_mlp_cache()
        _MLP_CACHE[key] = (min(loss, 10.0), params)
        # written whole and renamed: concurrent runs never read half a file
        partial = _MLP_CACHE_FILE.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(_MLP_CACHE))
        os.replace(partial, _MLP_CACHE_FILE)
    loss, params = _MLP_CACHE[key]
    return float(loss), int(params)


def _mlp_common() -> dict[str, hl.space.Param]:
    return {"log2_width": hl.Int(3, 7), "depth": hl.Int(1, 3),
            "log10_lr": hl.Float(-4.0, -1.0, step=0.5)}


def mlp_params(p: dict[str, Any]) -> tuple[tuple[float, ...], float | None]:
    loss, params = mlp_loss(2 ** p["log2_width"], p["depth"], 10.0 ** p["log10_lr"],
                            10.0 ** p["log10_alpha"], 20)
    return (loss, float(params)), None


def mlp_cost(p: dict[str, Any]) -> tuple[tuple[float, ...], float | None]:
    loss, params = mlp_loss(2 ** p["log2_width"], p["depth"], 10.0 ** p["log10_lr"], 1e-4,
                            p["epochs"])
    return (loss, 6.0 * params * _N_TRAIN * p["epochs"] / 1e9), None


def problems() -> list[Problem]:
    return [
        Problem("zdt1", _box(8), zdt(1), (1.1, 11.0)),
        Problem("zdt2", _box(8), zdt(2), (1.1, 11.0)),
        Problem("zdt3", _box(8), zdt(3), (1.1, 11.0)),
        Problem("dtlz2", _box(6), dtlz2, (1.5, 1.5, 1.5)),
        Problem("c2-dtlz2", _box(6), c2_dtlz2, (1.5, 1.5, 1.5)),
        Problem("mlp-params", {**_mlp_common(), "log10_alpha": hl.Float(-6.0, -1.0, step=1.0)},
                mlp_params, (1.0, 45_000.0)),
        Problem("mlp-cost", {**_mlp_common(), "epochs": hl.Int(5, 40, step=5)}, mlp_cost,
                (1.0, 13.0)),
    ]


# --- optimizers ------------------------------------------------------------------------------
Run = Callable[[Problem, int, int], tuple[np.ndarray, np.ndarray]]  # -> values (n, k), viol.


def hyperlaw_runner(make: Callable[[int], hl.samplers.Sampler]) -> Run:
    def run(problem: Problem, seed: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
        k = len(problem.reference)
        study = hl.create_study(space=problem.space, directions=["minimize"] * k,
                                sampler=make(seed))
        values, violations = [], []
        for _ in range(budget):
            trial = study.ask()
            value, violation = problem.fn(dict(trial.params))
            if violation is not None:
                trial.constrain("violation", violation, max=0.0)
            study.tell(trial, value)
            values.append(value)
            violations.append(np.nan if violation is None else violation)
        return np.array(values), np.array(violations)
    return run


def optuna_distribution(param: hl.space.Param) -> BaseDistribution:
    if isinstance(param, hl.Float):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    assert isinstance(param, hl.Int)
    return IntDistribution(param.low, param.high, log=param.log, step=param.step)


#: Optuna 5 takes constraints from the trial; Optuna 4 only through `constraints_func`
_SET_CONSTRAINT = hasattr(optuna.trial.Trial, "set_constraint")


def _constraints(trial: optuna.trial.FrozenTrial) -> list[float]:
    return [trial.user_attrs.get("violation", 0.0)]


def optuna_runner(make: Callable[..., optuna.samplers.BaseSampler]) -> Run:
    def run(problem: Problem, seed: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
        old_api = {} if _SET_CONSTRAINT else {"constraints_func": _constraints}
        study = optuna.create_study(directions=["minimize"] * len(problem.reference),
                                    sampler=make(seed=seed, **old_api))
        dists = {k: optuna_distribution(v) for k, v in problem.space.items()}
        values, violations = [], []
        for _ in range(budget):
            trial = study.ask(dists)
            value, violation = problem.fn(dict(trial.params))
            if violation is not None:
                if _SET_CONSTRAINT:
                    trial.set_constraint("violation", violation)
                else:
                    trial.set_user_attr("violation", violation)
            study.tell(trial, list(value))
            values.append(value)
            violations.append(np.nan if violation is None else violation)
        return np.array(values), np.array(violations)
    return run


HYPERLAW_SAMPLERS: dict[str, Callable[[int], hl.samplers.Sampler]] = {
    "random": lambda s: RandomSampler(seed=s),
    "hyperlaw-gp": lambda s: GPSampler(seed=s),
    "hyperlaw-tpe": lambda s: TPESampler(seed=s),
    "hyperlaw-nsga2": lambda s: NSGA2Sampler(seed=s),
    # the GP's two acquisitions for several objectives, named (the default is one of them)
    "hyperlaw-gp-parego": lambda s: GPSampler(seed=s, multi_objective="parego"),
    "hyperlaw-gp-ehvi": lambda s: GPSampler(seed=s, multi_objective="ehvi"),
    # below 300 trials on these spaces it is hyperlaw-gp, point for point
    "hyperlaw-auto": lambda s: AutoSampler(seed=s),
}
OPTUNA_SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "optuna-gp": optuna.samplers.GPSampler,
    "optuna-tpe": optuna.samplers.TPESampler,
    "optuna-nsga2": optuna.samplers.NSGAIISampler,
}
OPTIMIZERS: dict[str, Run] = {
    **{name: hyperlaw_runner(make) for name, make in HYPERLAW_SAMPLERS.items()},
    **{name: optuna_runner(make) for name, make in OPTUNA_SAMPLERS.items()},
}
#: the protocol's list: the named GP variants and auto (hyperlaw-gp here) are left out
DEFAULT_OPTIMIZERS = ["random", "hyperlaw-gp", "hyperlaw-tpe", "hyperlaw-nsga2", "optuna-gp",
                      "optuna-tpe", "optuna-nsga2"]


def ax_available() -> bool:
    try:
        import ax  # noqa: F401
    except ImportError:
        return False
    return True


# --- measurement -----------------------------------------------------------------------------
def hypervolumes(problem: Problem, values: np.ndarray, violations: np.ndarray,
                 budgets: list[int]) -> list[float]:
    """Hypervolume of the feasible evaluations among the first b, for each budget b."""
    y = np.where(np.nan_to_num(violations, nan=0.0)[:, None] > 0, np.inf, values)
    history = hypervolume_history(y, problem.reference)
    return [float(history[min(b, len(history)) - 1]) for b in budgets]


def load_runs(path: Path) -> dict[tuple[str, str, int], dict[int, float]]:
    """The finished runs of the cache: (problem, optimizer, seed) -> {budget: hypervolume}.
    A run up to 200 evaluations answers 50 and 100 too; longer runs overwrite shorter ones."""
    runs: dict[tuple[str, str, int], dict[int, float]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            cell = runs.setdefault((r["problem"], r["optimizer"], r["seed"]), {})
            cell.update(zip(r["budgets"], r["hypervolume"], strict=True))
    return alias_default_gp(runs)


def alias_default_gp(runs: dict[tuple[str, str, int], dict[int, float]]
                     ) -> dict[tuple[str, str, int], dict[int, float]]:
    """hyperlaw-gp is, point for point, its named variant for the number of objectives
    (`multi_objective="auto"`: log EHVI with two, ParEGO with more): runs of the variant
    stand for it where it has none of its own."""
    k = {p.name: len(p.reference) for p in problems()}
    for (problem, name, seed), cell in list(runs.items()):
        variant = "hyperlaw-gp-ehvi" if k.get(problem) == 2 else "hyperlaw-gp-parego"
        if name == variant:
            runs.setdefault((problem, "hyperlaw-gp", seed), dict(cell))
    return runs


def suggestion_seconds(name: str, problem: Problem, n: int = 200, repeats: int = 3) -> float:
    """Median seconds of `repeats` asks on a box problem after n random evaluations."""
    rng = np.random.default_rng(n)
    k = len(problem.reference)
    rows = [{f"x{i}": float(v) for i, v in enumerate(r)}
            for r in rng.random((n, len(problem.space)))]
    times = []
    if name.startswith("hyperlaw"):
        sampler = HYPERLAW_SAMPLERS[name](0)
        study = hl.create_study(space=problem.space, directions=["minimize"] * k,
                                sampler="random", seed=0)
        for params in rows:
            study.tell(study.ask(params), problem.fn(params)[0])
        study.sampler = sampler
        for _ in range(repeats):
            t0 = time.perf_counter()
            trial = study.ask()
            times.append(time.perf_counter() - t0)
            study.tell(trial, problem.fn(dict(trial.params))[0])
    else:
        study = optuna.create_study(directions=["minimize"] * k,
                                    sampler=OPTUNA_SAMPLERS[name](seed=0))
        dists = {k: optuna_distribution(v) for k, v in problem.space.items()}
        study.add_trials([optuna.trial.create_trial(
            params=params, distributions=dists, values=list(problem.fn(params)[0]))
            for params in rows])
        for _ in range(repeats):
            t0 = time.perf_counter()
            trial = study.ask(dists)
            times.append(time.perf_counter() - t0)
            study.tell(trial, list(problem.fn(dict(trial.params))[0]))
    return float(np.median(times))


def mean_ranks(runs: dict[tuple[str, str, int], dict[int, float]], names: list[str],
               probs: list[str], seeds: list[int], budgets: list[int]
               ) -> dict[int, tuple[dict[str, float], list[tuple[str, int]]]]:
    """Mean rank per budget (1 = largest hypervolume) over the (problem, seed) cells where
    every optimizer has a run reaching that budget, and those cells."""
    out: dict[int, tuple[dict[str, float], list[tuple[str, int]]]] = {}
    for b in budgets:
        ranks: dict[str, list[float]] = {n: [] for n in names}
        cells = [(p, s) for p in probs for s in seeds
                 if all(b in runs.get((p, n, s), {}) for n in names)]
        for p, s in cells:
            hv = [runs[(p, n, s)][b] for n in names]
            for n, r in zip(names, rankdata([-v for v in hv]), strict=True):
                ranks[n].append(float(r))
        out[b] = ({n: float(np.mean(r)) if r else math.nan for n, r in ranks.items()}, cells)
    return out


def run_missing(runs: dict[tuple[str, str, int], dict[int, float]], runs_file: Path,
                chosen: list[Problem], names: list[str], seeds: list[int],
                budgets: list[int]) -> None:
    """Run every (seed, problem, optimizer) without a cached run reaching the largest budget,
    seed by seed (an interrupted run still leaves whole seeds), appending to the cache."""
    for seed in seeds:
        for problem in chosen:
            for name in names:
                cell = runs.setdefault((problem.name, name, seed), {})
                if budgets[-1] in cell:
                    continue
                t0 = time.perf_counter()
                values, violations = OPTIMIZERS[name](problem, seed, budgets[-1])
                cell.update(zip(budgets, hypervolumes(problem, values, violations, budgets),
                                strict=True))
                with runs_file.open("a") as f:
                    f.write(json.dumps({"problem": problem.name, "optimizer": name,
                                        "seed": seed, "budgets": budgets,
                                        "hypervolume": [cell[b] for b in budgets],
                                        "seconds": time.perf_counter() - t0}) + "\n")
                print(f"  {problem.name} {name} seed {seed}: "
                      f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def tabulate(runs: dict[tuple[str, str, int], dict[int, float]], chosen: list[Problem],
             names: list[str], seeds: list[int], budgets: list[int]) -> dict[str, Any]:
    """Print and return the mean hypervolume (with the number of runs behind each mean) and
    the mean ranks, with and without Optuna's GP, over the cells every optimizer ran."""
    out: dict[str, Any] = {"hypervolume": {}, "runs": {}}
    print(f"\nmean hypervolume over seeds {seeds[0]}-{seeds[-1]} (higher is better; "
          "[n] runs where fewer than all)")
    print(f"{'problem':<12} {'budget':>6} " + " ".join(f"{n:>16}" for n in names))
    for problem in chosen:
        for b in budgets:
            row = []
            for n in names:
                hv = [runs[(problem.name, n, s)][b] for s in seeds
                      if b in runs.get((problem.name, n, s), {})]
                mean = float(np.mean(hv)) if hv else math.nan
                out["hypervolume"].setdefault(f"{problem.name}@{b}", {})[n] = mean
                out["runs"].setdefault(f"{problem.name}@{b}", {})[n] = len(hv)
                row.append(f"{mean:.4g}" + (f" [{len(hv)}]" if len(hv) < len(seeds) else ""))
            print(f"{problem.name:<12} {b:>6} " + " ".join(f"{r:>16}" for r in row))
    probs = [p.name for p in chosen]
    variants = {"all": names, "without optuna-gp": [n for n in names if n != "optuna-gp"]}
    for label, group in variants.items():
        if label != "all" and group == names:
            continue
        ranks = mean_ranks(runs, group, probs, seeds, budgets)
        out[f"mean_rank ({label})"] = {
            str(b): {"ranks": r, "cells": [f"{p}/{s}" for p, s in c]}
            for b, (r, c) in ranks.items()}
        print(f"\nmean rank (1 = best), {label}: over the (problem, seed) cells every "
              "optimizer ran")
        print(f"{'budget':>6} {'cells':>5} " + " ".join(f"{n:>16}" for n in group))
        for b in budgets:
            r, c = ranks[b]
            print(f"{b:>6} {len(c):>5} " + " ".join(f"{r[n]:>16.2f}" for n in group))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="run and tabulate seeds first-seed .. seeds - 1")
    parser.add_argument("--budgets", default="50,100")
    parser.add_argument("--problems", default=",".join(p.name for p in problems()))
    parser.add_argument("--optimizers", default=",".join(DEFAULT_OPTIMIZERS))
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--cached-only", action="store_true",
                        help="run nothing: tabulate the finished runs (ranks over the "
                             "(problem, seed) cells every optimizer ran)")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--timing-problem", default="zdt1",
                        help="the problem of the suggestion timing (zdt1-3, dtlz2)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("hyperlaw").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    names = args.optimizers.split(",")
    chosen = [p for p in problems() if p.name in args.problems.split(",")]
    seeds = list(range(args.first_seed, args.seeds))
    runs_file = RESULTS / "multiobjective-runs.jsonl"
    runs = load_runs(runs_file)
    report: dict[str, Any] = {"machine": platform.platform(), "python": sys.version.split()[0],
                              "optuna": optuna.__version__, "seeds": args.seeds,
                              "budgets": budgets, "ax": "not installed: skipped"
                              if not ax_available() else "installed, not wired"}
    if not args.timing_only:
        if not args.cached_only:
            run_missing(runs, runs_file, chosen, names, seeds, budgets)
        report.update(tabulate(runs, chosen, names, seeds, budgets))
    if not args.no_timing:
        timed = [n for n in names if n != "random"]
        timing = next(p for p in problems() if p.name == args.timing_problem)
        key = "seconds_per_suggestion_at_200" + (
            "" if timing.name == "zdt1" else f" ({timing.name})")
        report[key] = {n: suggestion_seconds(n, timing) for n in timed}
        print(f"\nseconds per suggestion, {timing.name} with 200 complete trials (median of 3)")
        for n, s in report[key].items():
            print(f"{n:>15} {s:8.3f}")
    if not ax_available():
        print("\nAx/BoTorch: not installed in this environment, skipped")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "multiobjective.json"
    # a run with --timing-only or --no-timing keeps the other part of an earlier report
    kept = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**kept, **report}, indent=2) + "\n")


if __name__ == "__main__":
    main()
