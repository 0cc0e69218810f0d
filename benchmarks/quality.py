"""Optimization quality and suggestion cost of hyperlaw's samplers next to Optuna's.

    python benchmarks/quality.py --quick    # 7 tasks, 3 seeds, 50 evaluations: 4-32 min
    python benchmarks/quality.py            # 13 tasks, 5 seeds, 50 and 200 evaluations
    python benchmarks/quality.py --timing-only   # the suggestion-cost table alone: ~5 min

Runtimes are for a 2-core machine, idle (4 min) or shared with other work (32 min). The full
mode takes hours: Optuna's GPSampler at 200 evaluations and the costlier scikit-learn tasks
(MLP, gradient boosting, random forest) dominate. `--optimizers`, `--tasks`, `--seeds` and
`--budgets` select a reduced configuration.

Every optimizer runs the same tasks with the same seeds in this one process:

- synthetic functions in 2 to 20 dimensions (Branin, Hartmann-6, Ackley, Rosenbrock, Levy,
  Styblinski-Tang) with known minima;
- scikit-learn models tuned on its bundled datasets, scored by 3-fold cross-validation
  (the best known value is the best any optimizer found in the run);
- sequentially and with 4 simulated parallel workers (4 trials always pending; the oldest is
  told first), which exercises each sampler's handling of running trials.

Printed: normalized regret per task, (best - best known) / (median over seeds of random
search's first value - best known); mean rank of each optimizer (rank per task, seed and
budget; ties averaged); duplicates in parallel runs; seconds per suggestion at 10, 100, 300
and 1,000 trials on a 10-dimensional history. Raw numbers go to
benchmarks/results/quality-<mode>.json.
"""

from __future__ import annotations

import argparse
import json
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
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from scipy.stats import rankdata

import hyperlaw as hl
from hyperlaw.samplers import AutoSampler, GPSampler, RandomSampler, TPESampler

optuna.logging.set_verbosity(optuna.logging.ERROR)
warnings.filterwarnings("ignore")
RESULTS = Path(__file__).parent / "results"


# --- tasks ----------------------------------------------------------------------------------
@dataclass
class Task:
    name: str
    space: dict[str, hl.space.Param]
    fn: Callable[[dict[str, Any]], float]
    best_known: float | None  # None: the best value any optimizer finds
    kind: str  # "synthetic" or "sklearn"


def _vec(p: dict[str, Any], d: int) -> np.ndarray:
    return np.array([p[f"x{i}"] for i in range(d)], dtype=float)


def _box(d: int, lo: float, hi: float) -> dict[str, hl.space.Param]:
    return {f"x{i}": hl.Float(lo, hi) for i in range(d)}


def branin(p: dict[str, Any]) -> float:
    x, y = p["x0"], p["x1"]
    return ((y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: dict[str, Any]) -> float:
    x = _vec(p, 6)
    return float(-_H_ALPHA @ np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1)))


def ackley(d: int) -> Callable[[dict[str, Any]], float]:
    def f(p: dict[str, Any]) -> float:
        x = _vec(p, d)
        return float(-20 * np.exp(-0.2 * np.sqrt(np.mean(x**2)))
                     - np.exp(np.mean(np.cos(2 * np.pi * x))) + 20 + math.e)
    return f


def rosenbrock(d: int) -> Callable[[dict[str, Any]], float]:
    def f(p: dict[str, Any]) -> float:
        x = _vec(p, d)
        return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
    return f


def levy(d: int) -> Callable[[dict[str, Any]], float]:
    def f(p: dict[str, Any]) -> float:
        w = 1 + (_vec(p, d) - 1) / 4
        return float(np.sin(np.pi * w[0]) ** 2
                     + np.sum((w[:-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:-1] + 1) ** 2))
                     + (w[-1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[-1]) ** 2))
    return f


def styblinski_tang(d: int) -> Callable[[dict[str, Any]], float]:
    def f(p: dict[str, Any]) -> float:
        x = _vec(p, d)
        return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))
    return f


_DATA: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name not in _DATA:
        from sklearn import datasets
        from sklearn.preprocessing import StandardScaler

        loader = {"breast_cancer": datasets.load_breast_cancer, "wine": datasets.load_wine,
                  "digits": datasets.load_digits, "diabetes": datasets.load_diabetes}[name]
        x, y = loader(return_X_y=True)
        _DATA[name] = (StandardScaler().fit_transform(x), y)
    return _DATA[name]


def _cv_error(model: Any, data: str, scoring: str = "accuracy") -> float:
    from sklearn.model_selection import KFold, cross_val_score

    x, y = _data(data)
    folds = KFold(3, shuffle=True, random_state=0)
    score = float(np.mean(cross_val_score(model, x, y, cv=folds, scoring=scoring)))
    return 1.0 - score if scoring == "accuracy" else -score


def svm_breast(p: dict[str, Any]) -> float:
    from sklearn.svm import SVC

    return _cv_error(SVC(C=p["C"], gamma=p["gamma"]), "breast_cancer")


def knn_wine(p: dict[str, Any]) -> float:
    from sklearn.neighbors import KNeighborsClassifier

    return _cv_error(KNeighborsClassifier(n_neighbors=p["k"], weights=p["weights"], p=p["p"]),
                     "wine")


def enet_diabetes(p: dict[str, Any]) -> float:
    from sklearn.linear_model import ElasticNet

    return _cv_error(ElasticNet(alpha=p["alpha"], l1_ratio=p["l1_ratio"], max_iter=5000),
                     "diabetes", scoring="neg_mean_squared_error")


def rf_wine(p: dict[str, Any]) -> float:
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=20, max_depth=p["max_depth"],
                                   max_features=p["max_features"],
                                   min_samples_leaf=p["min_samples_leaf"],
                                   criterion=p["criterion"], random_state=0)
    return _cv_error(model, "wine")


def gbm_breast(p: dict[str, Any]) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(
        learning_rate=p["learning_rate"], max_leaf_nodes=p["max_leaf_nodes"],
        l2_regularization=p["l2"], min_samples_leaf=p["min_samples_leaf"], max_iter=40,
        random_state=0)
    return _cv_error(model, "breast_cancer")


def mlp_digits(p: dict[str, Any]) -> float:
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=(p["width"],) * p["depth"], alpha=p["alpha"],
                          learning_rate_init=p["lr"], max_iter=30, random_state=0)
    return _cv_error(model, "digits")


def tasks(full: bool) -> list[Task]:
    quick = [
        Task("branin-2d", {"x0": hl.Float(-5, 10), "x1": hl.Float(0, 15)}, branin, 0.397887,
             "synthetic"),
        Task("hartmann-6d", _box(6, 0, 1), hartmann6, -3.32237, "synthetic"),
        Task("ackley-5d", _box(5, -32.768, 32.768), ackley(5), 0.0, "synthetic"),
        Task("rosenbrock-4d", _box(4, -5, 10), rosenbrock(4), 0.0, "synthetic"),
        Task("svm-breast_cancer", {"C": hl.Float(1e-3, 1e3, log=True),
                                   "gamma": hl.Float(1e-5, 10, log=True)}, svm_breast, None,
             "sklearn"),
        Task("knn-wine", {"k": hl.Int(1, 50), "weights": hl.Choice(["uniform", "distance"]),
                          "p": hl.Int(1, 2)}, knn_wine, None, "sklearn"),
        Task("elasticnet-diabetes", {"alpha": hl.Float(1e-4, 10, log=True),
                                     "l1_ratio": hl.Float(0, 1)}, enet_diabetes, None,
             "sklearn"),
    ]
    if not full:
        return quick
    extra = [
        Task("levy-6d", _box(6, -10, 10), levy(6), 0.0, "synthetic"),
        Task("styblinski_tang-8d", _box(8, -5, 5), styblinski_tang(8), -39.16599 * 8,
             "synthetic"),
        Task("ackley-20d", _box(20, -32.768, 32.768), ackley(20), 0.0, "synthetic"),
        Task("rf-wine", {"max_depth": hl.Int(1, 20), "max_features": hl.Float(0.05, 1.0),
                         "min_samples_leaf": hl.Int(1, 20),
                         "criterion": hl.Choice(["gini", "entropy"])}, rf_wine, None,
             "sklearn"),
        Task("gbm-breast_cancer", {"learning_rate": hl.Float(1e-3, 1.0, log=True),
                                   "max_leaf_nodes": hl.Int(2, 64, log=True),
                                   "l2": hl.Float(1e-6, 10, log=True),
                                   "min_samples_leaf": hl.Int(1, 50, log=True)}, gbm_breast,
             None, "sklearn"),
        Task("mlp-digits", {"width": hl.Int(8, 128, log=True), "depth": hl.Int(1, 3),
                            "alpha": hl.Float(1e-6, 1e-1, log=True),
                            "lr": hl.Float(1e-4, 1e-1, log=True)}, mlp_digits, None, "sklearn"),
    ]
    return [*quick, *extra]


# --- optimizers -----------------------------------------------------------------------------
def optuna_distribution(param: hl.space.Param) -> BaseDistribution:
    if isinstance(param, hl.Float):
        return FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, hl.Int):
        return IntDistribution(param.low, param.high, log=param.log)
    assert isinstance(param, hl.Choice)
    return CategoricalDistribution(list(param.values))


def hyperlaw_runner(make: Callable[[int], hl.samplers.Sampler]) -> Callable[..., list[Any]]:
    def run(task: Task, seed: int, budget: int, workers: int) -> list[Any]:
        study = hl.create_study(space=task.space, sampler=make(seed))
        pending: list[hl.Trial] = []
        out: list[Any] = []
        while len(out) < budget:
            while len(pending) < workers and len(out) + len(pending) < budget:
                pending.append(study.ask())
            trial = pending.pop(0)
            value = task.fn(trial.params)
            study.tell(trial, value)
            out.append((value, dict(trial.params)))
        return out
    return run


def optuna_runner(make: Callable[[int], optuna.samplers.BaseSampler]) -> Callable[..., list[Any]]:
    def run(task: Task, seed: int, budget: int, workers: int) -> list[Any]:
        study = optuna.create_study(sampler=make(seed))
        dists = {k: optuna_distribution(v) for k, v in task.space.items()}
        pending: list[optuna.Trial] = []
        out: list[Any] = []
        while len(out) < budget:
            while len(pending) < workers and len(out) + len(pending) < budget:
                pending.append(study.ask(dists))
            trial = pending.pop(0)
            value = task.fn(trial.params)
            study.tell(trial, value)
            out.append((value, dict(trial.params)))
        return out
    return run


OPTIMIZERS: dict[str, Callable[..., list[Any]]] = {
    "random": hyperlaw_runner(lambda s: RandomSampler(seed=s)),
    "hyperlaw-auto": hyperlaw_runner(lambda s: AutoSampler(seed=s)),
    "hyperlaw-tpe": hyperlaw_runner(lambda s: TPESampler(seed=s)),
    "hyperlaw-gp": hyperlaw_runner(lambda s: GPSampler(seed=s)),
    "optuna-tpe": optuna_runner(lambda s: optuna.samplers.TPESampler(seed=s)),
    "optuna-gp": optuna_runner(lambda s: optuna.samplers.GPSampler(seed=s)),
    "optuna-cmaes": optuna_runner(lambda s: optuna.samplers.CmaEsSampler(seed=s)),
}


# --- suggestion cost ------------------------------------------------------------------------
def suggestion_seconds(name: str, n: int, d: int = 10, repeats: int = 3) -> float:
    """Median seconds of `repeats` consecutive suggestions after n random trials."""
    rng = np.random.default_rng(n)
    space = _box(d, 0, 1)
    fn = ackley(d)
    xs = rng.random((n, d))
    times = []
    if name.startswith("hyperlaw"):
        sampler = {"hyperlaw-tpe": TPESampler, "hyperlaw-gp": GPSampler}[name](seed=0)
        study = hl.create_study(space=space, sampler="random", seed=0)
        for row in xs:
            params = {f"x{i}": float(v) for i, v in enumerate(row)}
            study.tell(study.ask(params), fn(params))
        study.sampler = sampler
        for _ in range(repeats):
            t0 = time.perf_counter()
            trial = study.ask()
            times.append(time.perf_counter() - t0)
            study.tell(trial, fn(trial.params))
    else:
        make = {"optuna-tpe": optuna.samplers.TPESampler,
                "optuna-gp": optuna.samplers.GPSampler}[name]
        study = optuna.create_study(sampler=make(seed=0))
        dists = {k: optuna_distribution(v) for k, v in space.items()}
        study.add_trials([optuna.trial.create_trial(
            params={f"x{i}": float(v) for i, v in enumerate(row)}, distributions=dists,
            value=fn({f"x{i}": float(v) for i, v in enumerate(row)})) for row in xs])
        for _ in range(repeats):
            t0 = time.perf_counter()
            trial = study.ask(dists)
            times.append(time.perf_counter() - t0)
            study.tell(trial, fn(trial.params))
    return float(np.median(times))


# --- reporting ------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="7 tasks, 3 seeds, 50 evaluations")
    ap.add_argument("--seeds", type=int)
    ap.add_argument("--budgets", type=int, nargs="+")
    ap.add_argument("--tasks", nargs="+", help="task names to run (default: all of the mode)")
    ap.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS))
    ap.add_argument("--parallel-optimizers", nargs="+",
                    default=["hyperlaw-auto", "hyperlaw-tpe", "optuna-tpe"],
                    help="optimizers also run with 4 simulated parallel workers")
    ap.add_argument("--timing-sizes", type=int, nargs="*", default=[10, 100, 300, 1000],
                    help="history sizes for the suggestion-cost table (none: skip it)")
    ap.add_argument("--timing-optimizers", nargs="+",
                    default=["hyperlaw-tpe", "optuna-tpe", "hyperlaw-gp", "optuna-gp"])
    ap.add_argument("--max-optuna-gp-trials", type=int, default=300,
                    help="skip Optuna GP timing above this history size (it grows cubically)")
    ap.add_argument("--label", help="name of the result files (default: the mode)")
    ap.add_argument("--timing-only", action="store_true", help="only the suggestion-cost table")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    label = args.label or mode
    if "random" not in args.optimizers:  # its first values normalize the regret
        args.optimizers.insert(0, "random")
    seeds = list(range(args.seeds or (3 if args.quick else 5)))
    budgets = sorted(args.budgets or ([50] if args.quick else [50, 200]))
    chosen = [t for t in tasks(not args.quick) if not args.tasks or t.name in args.tasks]
    if args.timing_only:
        chosen = []
    started = time.time()
    print(f"mode={mode} seeds={len(seeds)} budgets={budgets} tasks={len(chosen)} "
          f"python={platform.python_version()} optuna={optuna.__version__} "
          f"cpus={os.cpu_count()}", flush=True)

    runs: dict[str, Any] = {}  # key "task|optimizer|workers|seed" -> values
    configs = [(o, 1) for o in args.optimizers] + [
        (o, 4) for o in args.parallel_optimizers if o in args.optimizers]
    for task in chosen:
        for opt, workers in configs:
            t0 = time.time()
            for seed in seeds:
                out = OPTIMIZERS[opt](task, seed, max(budgets), workers)
                runs[f"{task.name}|{opt}|{workers}|{seed}"] = out
            print(f"  {task.name:22s} {opt:14s} workers={workers} "
                  f"{time.time() - t0:6.1f} s", flush=True)

    report: dict[str, Any] = {"mode": mode, "seeds": seeds, "budgets": budgets, "runs": {}}
    lines: list[str] = []
    for workers in (1, 4):
        opts = [o for o, w in configs if w == workers]
        if not opts or not chosen:
            continue
        for budget in budgets:
            regrets: dict[str, dict[str, list[float]]] = {}
            ranks: dict[str, list[float]] = {o: [] for o in opts}
            for task in chosen:
                allvals = [v for k, r in runs.items() if k.startswith(task.name + "|")
                           for v, _ in r]
                best = task.best_known if task.best_known is not None else min(allvals)
                first = np.median([runs[f"{task.name}|random|1|{s}"][0][0] for s in seeds])
                scale = max(first - best, 1e-12)
                regrets[task.name] = {}
                for opt in opts:
                    regrets[task.name][opt] = [
                        max(min(v for v, _ in runs[f"{task.name}|{opt}|{workers}|{s}"][:budget])
                            - best, 0.0) / scale for s in seeds]
                for i, _ in enumerate(seeds):
                    r = rankdata([regrets[task.name][o][i] for o in opts])
                    for o, rank in zip(opts, r, strict=True):
                        ranks[o].append(float(rank))
            header = ["task", *opts]
            rows = [[t, *[f"{np.mean(regrets[t][o]):.4f}" for o in opts]] for t in regrets]
            for kind in ("synthetic", "sklearn"):
                names = [t.name for t in chosen if t.kind == kind]
                if names:
                    rows.append([f"mean ({kind})", *[
                        f"{np.mean([np.mean(regrets[t][o]) for t in names]):.4f}"
                        for o in opts]])
            rows.append(["MEAN RANK", *[f"{np.mean(ranks[o]):.2f}" for o in opts]])
            title = (f"\nNormalized regret (mean over {len(seeds)} seeds), {budget} evaluations, "
                     f"{'sequential' if workers == 1 else '4 parallel workers'}")
            lines += [title, table(header, rows)]
            report["runs"][f"{budget}|{workers}"] = {"regret": regrets, "ranks": ranks}
    dup_rows = []
    for opt in [o for o, w in configs if w == 4 and chosen]:
        dups = 0
        for task in chosen:
            for s in seeds:
                keys = [repr(sorted(p.items())) for _, p in runs[f"{task.name}|{opt}|4|{s}"]]
                dups += len(keys) - len(set(keys))
        seq = np.mean([np.mean(report["runs"][f"{b}|1"]["regret"][t.name][opt])
                       for b in budgets for t in chosen])
        par = np.mean([np.mean(report["runs"][f"{b}|4"]["regret"][t.name][opt])
                       for b in budgets for t in chosen])
        dup_rows.append([opt, str(dups), f"{seq:.4f}", f"{par:.4f}",
                         f"{(par - seq) / max(seq, 1e-12) * 100:+.1f}%"])
    if dup_rows:
        lines += ["\nParallel (4 workers) vs sequential, all tasks and budgets",
                  table(["optimizer", "duplicate suggestions", "mean regret seq",
                         "mean regret 4 workers", "change"], dup_rows)]

    timing: dict[str, dict[int, float]] = {}
    for opt in args.timing_optimizers if args.timing_sizes else []:
        timing[opt] = {}
        for n in args.timing_sizes:
            if opt == "optuna-gp" and n > args.max_optuna_gp_trials:
                continue
            timing[opt][n] = suggestion_seconds(opt, n)
            print(f"  timing {opt:14s} n={n:5d} {timing[opt][n]:.4f} s", flush=True)
    rows = [[o, *[f"{timing[o][n]:.4f}" if n in timing[o] else "-"
                  for n in args.timing_sizes]] for o in timing]
    for mine, theirs in (("hyperlaw-tpe", "optuna-tpe"), ("hyperlaw-gp", "optuna-gp")):
        if mine in timing and theirs in timing:
            rows.append([f"ratio {mine}/{theirs}", *[
                f"{timing[mine][n] / timing[theirs][n]:.3f}"
                if n in timing[mine] and n in timing[theirs] else "-"
                for n in args.timing_sizes]])
    if timing:
        lines += ["\nSeconds per suggestion (median of 3 consecutive asks, 10-d history of n "
                  "random trials)", table(["sampler", *map(str, args.timing_sizes)], rows)]
    report["timing"] = timing
    report["wall_seconds"] = time.time() - started
    lines.append(f"\nwall time {report['wall_seconds']:.0f} s")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"quality-{label}.json").write_text(json.dumps(report, indent=1, default=str))
    (RESULTS / f"quality-{label}.md").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
