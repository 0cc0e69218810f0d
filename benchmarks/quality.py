"""Optimization quality and suggestion cost of hyperlaw's samplers next to Optuna's and SMAC3's.

    python benchmarks/quality.py --quick    # 7 tasks, 3 seeds, 50 evaluations: 4-32 min
    python benchmarks/quality.py            # 21 tasks, 5 seeds, 50 and 200 evaluations
    python benchmarks/quality.py --max-minutes 120   # the same, in pieces: run it again to resume
    python benchmarks/quality.py --jobs 2   # two runs at a time (one thread each)
    python benchmarks/quality.py --timing-only   # the suggestion-cost table alone: ~5 min

Runtimes are for a 2-core machine, idle (4 min) or shared with other work (32 min). The full
mode takes hours: Optuna's GPSampler at 200 evaluations and the costlier scikit-learn tasks
(MLP, gradient boosting, random forest) dominate. `--optimizers`, `--tasks`, `--seeds` and
`--budgets` select a reduced configuration; `--first-seed` runs other seeds than 0, 1, ...

Every optimizer runs the same tasks with the same seeds in this one process:

- synthetic functions in 2 to 20 dimensions (Branin, Hartmann-6, Ackley, Rosenbrock, Levy,
  Styblinski-Tang) with known minima;
- full mode only: six functions of the BBOB suite (instance 1, box [-5, 5]^d, 2 to 20
  dimensions) from the `coco-experiment` package, with the optimal value it reports;
- scikit-learn models tuned on its bundled datasets, scored by 3-fold cross-validation
  (the best known value is the best any optimizer found in the run);
- full mode only: a noisy family, Branin and Hartmann-6 observed with Gaussian noise (sd 2.0
  and 0.2, about 5% of the spread of random values; the draw is seeded by the point, so runs
  repeat). Its regret is the noiseless function's value at the recommended point, the best
  observed one (what `best_trial` returns), minus the optimum;
- sequentially and with 4 simulated parallel workers (4 trials always pending; the oldest is
  told first), which exercises each sampler's handling of running trials.

SMAC3 (when installed) runs through its ask/tell interface with its defaults, its initial
design counted in the budget: `smac` is its HyperparameterOptimizationFacade (random forest,
Sobol initial design of 10 per parameter up to a quarter of the budget, model refit every 8
suggestions) on every task; `smac-bb`, its BlackBoxFacade (Gaussian process, SMAC's choice
for low-dimensional problems), is opt-in: about 3-30 s per suggestion on 2 cores. SMAC
sizes its initial design from the budget, so it runs once per budget where the others run
once at the largest budget and are read at each smaller one. With 4 workers SMAC gets 4
pending asks: it never proposes a pending configuration again, but does not model them.
`smac` runs sequentially unless named in `--parallel-optimizers`, and not in `--quick`
(about 5 minutes more there). `hyperlaw-gp-deterministic` (opt-in) is hyperlaw's GP told
the objective is noise-free (`GPSampler(deterministic_objective=True)`: the fitted noise is
capped and every observation believed). HEBO is not compared: HEBO 0.3.6 pins numpy 1.24,
which does not install with numpy >= 2.

Printed: normalized regret per task, (best - best known) / (median over seeds of random
search's first value - best known); mean rank of each optimizer (rank per task, seed and
budget; ties averaged); each family's mean regret, hyperlaw's minus its peer's, paired over
seeds with its standard error (a gap smaller than that is the seeds' noise); duplicates in
parallel runs; seconds per suggestion at 10, 100, 300 and 1,000 trials on a 10-dimensional
history. Raw numbers go to
benchmarks/results/quality-<label>.json and .md.

Every finished run (task, optimizer, workers, seed, budget) and timing is appended to
benchmarks/results/quality-<label>-runs.jsonl (`--cache`); a later start with the same
label loads them instead of running them again, unless the sampler code or library version
behind them changed. `--max-minutes` stops starting runs after that time and prints the
tables over what is complete, naming the incomplete cells; mean ranks then count only the
(task, seed, budget) combinations complete for every optimizer of the table.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
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
logging.getLogger("smac").setLevel(logging.ERROR)
RESULTS = Path(__file__).parent / "results"
# Compared libraries that are not run, with the reason; filled further at start-up.
NOT_RUN: dict[str, str] = {
    "hebo": "not installable with numpy >= 2 (HEBO 0.3.6 pins numpy 1.24)"}


# --- tasks ----------------------------------------------------------------------------------
@dataclass
class Task:
    name: str
    space: dict[str, hl.space.Param]
    fn: Callable[[dict[str, Any]], float]
    best_known: float | None  # None: the best value any optimizer finds
    kind: str  # "synthetic", "bbob", "sklearn" or "noisy"
    #: the noiseless function of a noisy task (`fn` adds the noise): what regret measures
    clean: Callable[[dict[str, Any]], float] | None = None

    def achieved(self, run: list[Any]) -> float:
        """The true value of the run's recommendation: its best observed point."""
        value, params = min(run, key=lambda r: r[0])
        return value if self.clean is None else self.clean(params)


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


def noisy(fn: Callable[[dict[str, Any]], float], sd: float
          ) -> Callable[[dict[str, Any]], float]:
    """fn plus Gaussian noise of standard deviation sd, drawn from a generator seeded by the
    point (runs are reproducible; a point evaluated twice gets the same draw)."""
    def f(p: dict[str, Any]) -> float:
        key = hashlib.sha256(repr(sorted(p.items())).encode()).digest()
        return fn(p) + sd * float(np.random.default_rng(list(key[:16])).standard_normal())
    return f


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


# (function index, name, dimension): Rosenbrock, rotated Rastrigin, Schwefel x*sin(x),
# Gallagher with 101 and 21 peaks, Lunacek bi-Rastrigin
BBOB = [(8, "rosenbrock", 5), (15, "rastrigin", 10), (20, "schwefel", 5),
        (21, "gallagher101", 2), (22, "gallagher21", 20), (24, "lunacek", 10)]


def bbob_tasks() -> list[Task]:
    """BBOB functions, instance 1, on [-5, 5]^d, with the optimal value cocoex reports.

    cocoex's BareProblem has no observer: it writes no files.
    """
    try:
        import cocoex
    except ImportError:
        NOT_RUN["bbob"] = "the BBOB tasks need coco-experiment (pip install coco-experiment)"
        return []
    out = []
    for fid, name, d in BBOB:
        problem = cocoex.BareProblem("bbob", fid, d, 1)
        out.append(Task(f"bbob-f{fid:02d}-{name}-{d}d", _box(d, -5, 5), _bbob_fn(problem, d),
                        float(problem.best_value()), "bbob"))
    return out


def _bbob_fn(problem: Any, d: int) -> Callable[[dict[str, Any]], float]:
    def f(p: dict[str, Any]) -> float:
        return float(problem(_vec(p, d)))
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
    return [*quick, *extra, *bbob_tasks(), *noisy_tasks()]


def noisy_tasks() -> list[Task]:
    """Smooth functions observed with Gaussian noise (standard deviation about 5% of the
    spread of random values); regret is measured on the noiseless function."""
    return [
        Task("branin-2d-noisy", {"x0": hl.Float(-5, 10), "x1": hl.Float(0, 15)},
             noisy(branin, 2.0), 0.397887, "noisy", clean=branin),
        Task("hartmann-6d-noisy", _box(6, 0, 1), noisy(hartmann6, 0.2), -3.32237, "noisy",
             clean=hartmann6),
    ]


# --- optimizers -----------------------------------------------------------------------------
def optuna_distribution(param: hl.space.Param) -> BaseDistribution:
    if isinstance(param, hl.Float):
        return FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, hl.Int):
        return IntDistribution(param.low, param.high, log=param.log)
    assert isinstance(param, hl.Choice)
    return CategoricalDistribution(list(param.values))


#: (task, seed, budget, workers) -> the (value, params) evaluated, and seconds spent asking
Runner = Callable[[Task, int, int, int], tuple[list[Any], float]]


def simulate(budget: int, workers: int, ask: Callable[[], Any],
             tell: Callable[[Any], tuple[float, dict[str, Any]]],
             exhausted: tuple[type[Exception], ...] = ()) -> tuple[list[Any], float]:
    """Evaluate `budget` points with up to `workers` pending; the oldest is told first.
    Returns the (value, params) evaluated and the seconds spent in `ask` (the optimizer's
    suggestion cost, without the objective's).

    `ask` returns a pending trial; `tell` evaluates and reports one, returning (value, params).
    An `exhausted` exception from `ask` (an optimizer that has proposed every configuration of
    a finite space and will not repeat one) ends the run early, with what it evaluated.
    """
    pending: list[Any] = []
    out: list[Any] = []
    more = True
    asking = 0.0
    while len(out) < budget and (more or pending):
        while more and len(pending) < workers and len(out) + len(pending) < budget:
            t0 = time.perf_counter()
            try:
                pending.append(ask())
            except exhausted:
                more = False
            asking += time.perf_counter() - t0
        if pending:
            out.append(tell(pending.pop(0)))
    return out, asking


def hyperlaw_runner(make: Callable[[int], hl.samplers.Sampler]) -> Runner:
    def run(task: Task, seed: int, budget: int, workers: int) -> tuple[list[Any], float]:
        study = hl.create_study(space=task.space, sampler=make(seed))

        def tell(trial: hl.Trial) -> tuple[float, dict[str, Any]]:
            value = task.fn(trial.params)
            study.tell(trial, value)
            return value, dict(trial.params)

        return simulate(budget, workers, study.ask, tell)
    return run


def optuna_runner(make: Callable[[int], optuna.samplers.BaseSampler]) -> Runner:
    def run(task: Task, seed: int, budget: int, workers: int) -> tuple[list[Any], float]:
        study = optuna.create_study(sampler=make(seed))
        dists = {k: optuna_distribution(v) for k, v in task.space.items()}

        def tell(trial: optuna.Trial) -> tuple[float, dict[str, Any]]:
            value = task.fn(trial.params)
            study.tell(trial, value)
            return value, dict(trial.params)

        return simulate(budget, workers, lambda: study.ask(dists), tell)
    return run


def smac_configspace(space: dict[str, hl.space.Param], seed: int) -> Any:
    """The ConfigSpace equivalent of a hyperlaw space (log scales, `when` conditions)."""
    from ConfigSpace import (
        AndConjunction,
        Categorical,
        ConfigurationSpace,
        Constant,
        Float,
        InCondition,
        Integer,
    )

    cs = ConfigurationSpace(seed=seed)
    for name, param in space.items():
        if isinstance(param, hl.Float) and param.step is None:
            cs.add(Float(name, (param.low, param.high), log=param.log))
        elif isinstance(param, hl.Int) and param.step == 1:
            cs.add(Integer(name, (param.low, param.high), log=param.log))
        elif isinstance(param, hl.Choice):
            cs.add(Categorical(name, list(param.values)))
        elif isinstance(param, hl.space.Const):
            cs.add(Constant(name, param.value))
        else:
            raise ValueError(f"{name}: {param!r} has no ConfigSpace equivalent here; "
                             "use a Float or Int without step")
    for name, param in space.items():
        if param.when:
            conditions = [InCondition(cs[name], cs[parent], list(values))
                          for parent, values in param.when.items()]
            cs.add(conditions[0] if len(conditions) == 1 else AndConjunction(*conditions))
    return cs


def smac_facade(name: str) -> Any:
    """"smac": the random-forest HPO facade; "smac-bb": the Gaussian-process black-box one."""
    from smac import BlackBoxFacade, HyperparameterOptimizationFacade

    return {"smac": HyperparameterOptimizationFacade, "smac-bb": BlackBoxFacade}[name]


def _smac_target(config: Any, seed: int = 0) -> float:
    raise RuntimeError("trials are evaluated through ask/tell")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def smac_runner(name: str) -> Runner:
    def run(task: Task, seed: int, budget: int, workers: int) -> tuple[list[Any], float]:
        """SMAC3 through ask/tell; its run directory lives in a temporary directory."""
        from smac import Scenario
        from smac.main.exceptions import ConfigurationSpaceExhaustedException
        from smac.runhistory.dataclasses import TrialValue

        with tempfile.TemporaryDirectory(prefix="quality-smac-") as tmp:
            scenario = Scenario(smac_configspace(task.space, seed), name="run",
                                output_directory=Path(tmp), deterministic=True,
                                n_trials=budget, seed=seed)
            smac = smac_facade(name)(scenario, _smac_target, overwrite=True,
                                     logging_level=False)

            def tell(info: Any) -> tuple[float, dict[str, Any]]:
                params = {k: _plain(v) for k, v in dict(info.config).items()}
                value = task.fn(params)
                smac.tell(info, TrialValue(cost=value), save=False)
                return value, params

            return simulate(budget, workers, smac.ask, tell,
                            exhausted=(ConfigurationSpaceExhaustedException,))
    return run


OPTIMIZERS: dict[str, Runner] = {
    "random": hyperlaw_runner(lambda s: RandomSampler(seed=s)),
    "hyperlaw-auto": hyperlaw_runner(lambda s: AutoSampler(seed=s)),
    "hyperlaw-tpe": hyperlaw_runner(lambda s: TPESampler(seed=s)),
    "hyperlaw-gp": hyperlaw_runner(lambda s: GPSampler(seed=s)),
    "hyperlaw-gp-deterministic": hyperlaw_runner(
        lambda s: GPSampler(seed=s, deterministic_objective=True)),
    "optuna-tpe": optuna_runner(lambda s: optuna.samplers.TPESampler(seed=s)),
    "optuna-gp": optuna_runner(lambda s: optuna.samplers.GPSampler(seed=s)),
    "optuna-cmaes": optuna_runner(lambda s: optuna.samplers.CmaEsSampler(seed=s)),
    "smac": smac_runner("smac"),
    "smac-bb": smac_runner("smac-bb"),
}
# Optimizers whose behaviour depends on the budget they are given: run once per budget.
BUDGET_AWARE = {"smac", "smac-bb"}
# Optimizers run only when named in --optimizers.
OPT_IN = {"smac-bb", "hyperlaw-gp-deterministic"}


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
    elif name.startswith("smac"):
        return smac_suggestion_seconds(name, space, fn, xs)
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


def smac_suggestion_seconds(name: str, space: dict[str, hl.space.Param],
                            fn: Callable[..., float], xs: np.ndarray) -> float:
    """SMAC's part of `suggestion_seconds`: mean over one cycle of its config selector.

    SMAC refits its model every `retrain_after` suggestions (8 for the random-forest facade,
    1 for the Gaussian-process one) and hands out the next candidates of the same
    acquisition search in between, so single asks are not comparable: the history is told
    without an initial design, then the asks of one refit cycle are timed and averaged.
    """
    from ConfigSpace import Configuration
    from smac import Scenario
    from smac.runhistory.dataclasses import TrialInfo, TrialValue

    facade = smac_facade(name)
    cycle = facade.get_config_selector.__kwdefaults__["retrain_after"]
    seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="quality-smac-") as tmp:
        cs = smac_configspace(space, 0)
        scenario = Scenario(cs, name="timing", output_directory=Path(tmp), deterministic=True,
                            n_trials=len(xs) + cycle, seed=0)
        smac = facade(scenario, _smac_target, overwrite=True, logging_level=False,
                      initial_design=facade.get_initial_design(scenario, n_configs=0))
        for row in xs:
            params = {f"x{i}": float(v) for i, v in enumerate(row)}
            smac.tell(TrialInfo(Configuration(cs, values=params), seed=0),
                      TrialValue(cost=fn(params)), save=False)
        for _ in range(cycle):
            t0 = time.perf_counter()
            info = smac.ask()
            seconds += time.perf_counter() - t0
            smac.tell(info, TrialValue(cost=fn(dict(info.config))), save=False)
    return seconds / cycle


# --- run cache ------------------------------------------------------------------------------
_FINGERPRINTS: dict[str, str] = {}


def code_fingerprint(opt: str) -> str:
    """What a cached result of `opt` depends on: its library's version or hyperlaw's code."""
    if opt not in _FINGERPRINTS:
        if opt.startswith("optuna"):
            _FINGERPRINTS[opt] = f"optuna {optuna.__version__}"
        elif opt.startswith("smac"):
            _FINGERPRINTS[opt] = f"smac {importlib.metadata.version('smac')}"
        else:  # the samplers, their models and the space they sample
            root = Path(hl.__file__).parent
            digest = hashlib.sha256()
            for path in sorted([*(root / "samplers").rglob("*.py"),
                                *(root / "models").rglob("*.py"), root / "space.py"]):
                digest.update(path.read_bytes())
            _FINGERPRINTS[opt] = f"hyperlaw {hl.__version__} {digest.hexdigest()[:12]}"
    return _FINGERPRINTS[opt]


def task_fingerprint(task: Task) -> str:
    lib = {"sklearn": "scikit-learn", "bbob": "coco-experiment"}.get(task.kind)
    return repr(task.space) + (f" {lib} {importlib.metadata.version(lib)}" if lib else "")


class RunCache:
    """Finished runs and timings, one JSON object a line, appended as each finishes.

    A record is used only while the code behind it (`code_fingerprint`) and the task's
    definition are unchanged; others stay in the file and are run again.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        self.stale: set[int] = set()  # ids of records made with other code
        self.loaded = 0
        if path is None or not path.exists():
            return
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by an interrupted run
                continue
            self.records.setdefault(self._key(record), []).append(record)

    @staticmethod
    def _key(record: dict[str, Any]) -> tuple[Any, ...]:
        if record["kind"] == "timing":
            return ("timing", record["optimizer"], record["n"])
        return ("run", record["task"], record["optimizer"], record["workers"], record["seed"])

    def _append(self, record: dict[str, Any]) -> None:
        self.records.setdefault(self._key(record), []).append(record)
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    def _valid(self, record: dict[str, Any], **expected: Any) -> bool:
        if all(record.get(k) == v for k, v in expected.items()):
            return True
        self.stale.add(id(record))
        return False

    def run(self, task: Task, opt: str, workers: int, seed: int, budget: int
            ) -> tuple[list[Any], float | None] | None:
        """A cached run with this budget (or, budget-independent, a longer one: its start),
        and its seconds spent asking (None in records made before they were kept, and for a
        longer run's start)."""
        for record in self.records.get(("run", task.name, opt, workers, seed), []):
            fits = (record["budget"] == budget if opt in BUDGET_AWARE
                    else record["budget"] >= budget)
            if fits and self._valid(record, code=code_fingerprint(opt),
                                    task_def=task_fingerprint(task)):
                self.loaded += 1
                out = list(zip(record["values"], record["params"], strict=True))[:budget]
                return out, record.get("ask_seconds") if record["budget"] == budget else None
        return None

    def add_run(self, task: Task, opt: str, workers: int, seed: int, budget: int,
                out: list[Any], seconds: float, asking: float) -> None:
        self._append({"kind": "run", "task": task.name, "optimizer": opt, "workers": workers,
                      "seed": seed, "budget": budget, "code": code_fingerprint(opt),
                      "task_def": task_fingerprint(task), "seconds": round(seconds, 3),
                      "ask_seconds": round(asking, 3),
                      "values": [v for v, _ in out], "params": [p for _, p in out]})

    def timing(self, opt: str, n: int) -> float | None:
        for record in self.records.get(("timing", opt, n), []):
            if self._valid(record, code=code_fingerprint(opt)):
                self.loaded += 1
                return float(record["seconds"])
        return None

    def add_timing(self, opt: str, n: int, seconds: float) -> None:
        self._append({"kind": "timing", "optimizer": opt, "n": n,
                      "code": code_fingerprint(opt), "seconds": seconds})


_JOBS: list[tuple[Task, str, int, int, int]] = []  # what forked job processes run, by index


def _limit_threads() -> None:
    """One BLAS / torch thread per job process, so parallel jobs do not oversubscribe."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def _run_job(index: int) -> tuple[list[Any], float, float]:
    """Run job `index`: its (value, params), its wall seconds and its seconds asking."""
    task, opt, workers, seed, budget = _JOBS[index]
    started = time.time()
    out, asking = OPTIMIZERS[opt](task, seed, budget, workers)
    return out, time.time() - started, asking


def run_jobs(todo: list[tuple[Task, str, int, int, int]], cache: RunCache, deadline: float,
             n_jobs: int) -> tuple[dict[int, tuple[list[Any], float]], int]:
    """Run the missing runs (`n_jobs` forked processes at a time), adding each to the cache as
    it finishes; start none after `deadline`. Returns the runs by index in `todo`, and how
    many were not started."""
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from multiprocessing import get_context

    _JOBS[:] = todo  # forked job processes inherit the list
    ran: dict[int, tuple[list[Any], float]] = {}

    def done(index: int, out: list[Any], seconds: float, asking: float) -> None:
        task, opt, workers, seed, budget = todo[index]
        cache.add_run(task, opt, workers, seed, budget, out, seconds, asking)
        ran[index] = out, asking
        print(f"  {task.name:22s} {opt:14s} workers={workers} seed={seed} budget={budget} "
              f"{seconds:7.1f} s ({asking:.1f} s asking)", flush=True)

    if n_jobs <= 1:
        for index in range(len(todo)):
            if time.time() >= deadline:
                return ran, len(todo) - index
            done(index, *_run_job(index))
        return ran, 0
    pending: dict[Future, int] = {}
    next_index = 0
    with ProcessPoolExecutor(n_jobs, mp_context=get_context("fork"),
                             initializer=_limit_threads) as pool:
        while next_index < len(todo) or pending:
            while len(pending) < n_jobs and next_index < len(todo) and time.time() < deadline:
                pending[pool.submit(_run_job, next_index)] = next_index
                next_index += 1
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                done(pending.pop(future), *future.result())
    return ran, len(todo) - next_index


# --- reporting ------------------------------------------------------------------------------
PEERS = (("hyperlaw-tpe", "optuna-tpe"), ("hyperlaw-gp", "optuna-gp"))


def run_cost_table(asking: dict[tuple[str, str, int, int], float], chosen: list[Task],
                   seeds: list[int], budget: int, report: dict[str, Any]) -> list[str]:
    """Lines of the suggestion-cost table over whole sequential runs: per task, the median
    over seeds of the seconds each optimizer spent asking, and the ratio of hyperlaw's to its
    peer's (the objective's own cost left out). Tasks lacking either side are skipped."""
    rows, ratios = [], {}
    for mine, theirs in PEERS:
        found = []
        for task in chosen:
            ours = [asking[k] for s in seeds if (k := (task.name, mine, 1, s)) in asking]
            peer = [asking[k] for s in seeds if (k := (task.name, theirs, 1, s)) in asking]
            if ours and peer:
                ratio = float(np.median(ours) / np.median(peer))
                found.append(ratio)
                rows.append([task.name, f"{mine} / {theirs}", f"{np.median(ours):.2f}",
                             f"{np.median(peer):.2f}", f"{ratio:.3f}"])
        if found:
            ratios[f"{mine}/{theirs}"] = found
            rows.append(["all tasks (median, range)", f"{mine} / {theirs}", "", "",
                         f"{np.median(found):.3f} ({min(found):.3f}-{max(found):.3f})"])
    report["run_cost_ratios"] = ratios
    if not rows:
        return []
    return [f"\nSeconds spent suggesting over a sequential run of {budget} evaluations (median "
            "over seeds; the objective's time left out)",
            table(["task", "pair", "hyperlaw", "peer", "ratio"], rows)]


def families(chosen: list[Task]) -> list[str]:
    """The task families among `chosen`, in the tables' order."""
    return [k for k in ("synthetic", "bbob", "sklearn", "noisy")
            if any(t.kind == k for t in chosen)]


def paired_gap_table(regrets: dict[tuple[int, int], dict[str, dict[str, dict[int, float]]]],
                     chosen: list[Task], seeds: list[int], budgets: list[int],
                     report: dict[str, Any]) -> list[str]:
    """Lines of a table of each family's mean regret, hyperlaw's minus its peer's, paired over
    seeds (sequential runs): the mean of the per-seed differences of the family means, and
    its standard error, which tells a gap from the seeds' noise. Seeds missing a run of
    either side on a task of the family are left out."""
    rows, gaps = [], {}
    for mine, theirs in PEERS:
        for kind in families(chosen):
            names = [t.name for t in chosen if t.kind == kind]
            cells = []
            for budget in budgets:
                by_task = regrets.get((1, budget), {})
                diffs = [np.mean([by_task[n][mine][s] - by_task[n][theirs][s] for n in names])
                         for s in seeds
                         if all(s in by_task.get(n, {}).get(o, {}) for n in names
                                for o in (mine, theirs))]
                if len(diffs) < 2:
                    cells.append("-")
                    continue
                mean = float(np.mean(diffs))
                error = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs)))
                gaps[f"{mine}/{theirs}|{kind}|{budget}"] = [mean, error, len(diffs)]
                cells.append(f"{mean:+.4f} ± {error:.4f} ({len(diffs)})")
            if any(c != "-" for c in cells):
                rows.append([kind, f"{mine} - {theirs}", *cells])
    report["paired_family_gaps"] = gaps
    if not rows:
        return []
    return ["\nFamily mean regret, hyperlaw minus peer, paired over seeds (mean ± standard "
            "error (seeds); below zero: hyperlaw lower)",
            table(["family", "pair", *[f"{b} evaluations" for b in budgets]], rows)]


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(line, rows)])


def mean_cell(values: Iterable[float], complete: bool) -> str:
    """A table cell: the mean, marked `*` when some of its runs are missing, `-` if all."""
    values = list(values)
    if not values:
        return "-"
    return f"{np.mean(values):.4f}" + ("" if complete else "*")


def smac_available() -> bool:
    try:
        import smac  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="7 tasks, 3 seeds, 50 evaluations")
    ap.add_argument("--seeds", type=int)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds run: first-seed, first-seed + 1, ... (fresh seeds check "
                         "whether a sitting's result was the luck of its seeds)")
    ap.add_argument("--budgets", type=int, nargs="+")
    ap.add_argument("--tasks", nargs="+", help="task names to run (default: all of the mode)")
    ap.add_argument("--optimizers", nargs="+", choices=list(OPTIMIZERS), metavar="NAME",
                    help=f"among {', '.join(OPTIMIZERS)}; default: all but "
                         f"{' and '.join(sorted(OPT_IN))} (--quick: nor smac)")
    ap.add_argument("--parallel-optimizers", nargs="*", choices=list(OPTIMIZERS),
                    metavar="NAME", default=["hyperlaw-auto", "hyperlaw-tpe", "optuna-tpe"],
                    help="optimizers also run with 4 simulated parallel workers (none: no "
                         "parallel runs; default: hyperlaw-auto hyperlaw-tpe optuna-tpe)")
    ap.add_argument("--timing-sizes", type=int, nargs="*", default=[10, 100, 300, 1000],
                    help="history sizes for the suggestion-cost table (none: skip it)")
    ap.add_argument("--timing-optimizers", nargs="+", metavar="NAME", choices=[
        "hyperlaw-tpe", "optuna-tpe", "hyperlaw-gp", "optuna-gp", "smac", "smac-bb"],
        help="default: hyperlaw-tpe optuna-tpe hyperlaw-gp optuna-gp, and smac when it runs")
    ap.add_argument("--max-optuna-gp-trials", type=int, default=300,
                    help="skip Optuna GP timing above this history size (it grows cubically)")
    ap.add_argument("--label", help="name of the result files (default: the mode)")
    ap.add_argument("--timing-only", action="store_true", help="only the suggestion-cost table")
    ap.add_argument("--cache", type=Path,
                    help="JSON-lines file of finished runs, read at start and appended to "
                         "(default: benchmarks/results/quality-<label>-runs.jsonl)")
    ap.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    ap.add_argument("--jobs", type=int, default=1,
                    help="runs at a time, each in its own process (one thread each)")
    ap.add_argument("--max-minutes", type=float,
                    help="start no run after this many minutes, then print the tables over "
                         "the complete runs; run again with the same label to resume")
    args = ap.parse_args()
    mode = "quick" if args.quick else "full"
    label = args.label or mode
    if args.optimizers is None:
        args.optimizers = [o for o in OPTIMIZERS if o not in OPT_IN
                           and not (args.quick and o.startswith("smac"))]
    smac_chosen = [o for o in args.optimizers if o.startswith("smac")]
    if smac_chosen and not smac_available():
        for opt in smac_chosen:
            NOT_RUN[opt] = "SMAC3 is not installed (pip install smac)"
            args.optimizers.remove(opt)
    if "random" not in args.optimizers:  # its first values normalize the regret
        args.optimizers.insert(0, "random")
    if args.timing_optimizers is None:
        args.timing_optimizers = ["hyperlaw-tpe", "optuna-tpe", "hyperlaw-gp", "optuna-gp",
                                  *[o for o in ["smac"] if o in args.optimizers]]
    args.timing_optimizers = [o for o in args.timing_optimizers if o not in NOT_RUN]
    n_seeds = args.seeds or (3 if args.quick else 5)
    seeds = list(range(args.first_seed, args.first_seed + n_seeds))
    budgets = sorted(args.budgets or ([50] if args.quick else [50, 200]))
    all_tasks = tasks(not args.quick)
    unknown = set(args.tasks or []) - {t.name for t in all_tasks}
    if unknown:
        ap.error(f"unknown task(s) {sorted(unknown)} in {mode} mode; choose among "
                 f"{[t.name for t in all_tasks]}")
    chosen = [t for t in all_tasks if not args.tasks or t.name in args.tasks]
    if args.timing_only:
        chosen = []
    started = time.time()
    deadline = started + args.max_minutes * 60 if args.max_minutes is not None else math.inf
    RESULTS.mkdir(exist_ok=True)
    cache_path = None if args.no_cache else (
        args.cache or RESULTS / f"quality-{label}-runs.jsonl")
    cache = RunCache(cache_path)
    print(f"mode={mode} seeds={len(seeds)} budgets={budgets} tasks={len(chosen)} "
          f"python={platform.python_version()} optuna={optuna.__version__} "
          f"cpus={os.cpu_count()}", flush=True)
    if cache_path is not None:
        print(f"run cache: {cache_path}", flush=True)

    # (task, optimizer, workers, seed, budget) -> the first `budget` (value, params)
    runs: dict[tuple[str, str, int, int, int], list[Any]] = {}
    configs = [(o, 1) for o in args.optimizers] + [
        (o, 4) for o in args.parallel_optimizers if o in args.optimizers]
    # seed by seed, every optimizer in turn: the runs whose asking times are compared follow
    # each other, so a machine whose speed drifts over minutes slows both alike
    jobs = [(task, opt, workers, seed, budget) for task in chosen for seed in seeds
            for opt, workers in configs
            for budget in (budgets if opt in BUDGET_AWARE else [max(budgets)])]
    found = {i: hit for i, job in enumerate(jobs) if (hit := cache.run(*job)) is not None}
    if found:
        print(f"  {len(found)} of {len(jobs)} runs loaded from the cache", flush=True)
    missing = [i for i in range(len(jobs)) if i not in found]
    ran, not_started = run_jobs([jobs[i] for i in missing], cache, deadline, args.jobs)
    found.update({missing[k]: hit for k, hit in ran.items()})
    # (task, optimizer, workers, seed) -> seconds spent asking over a run of the largest budget
    asking: dict[tuple[str, str, int, int], float] = {}
    for i, (out, ask_seconds) in found.items():
        task, opt, workers, seed, budget = jobs[i]
        for b in [budget] if opt in BUDGET_AWARE else budgets:
            runs[(task.name, opt, workers, seed, b)] = out[:b]
        if ask_seconds is not None and budget == max(budgets):
            asking[(task.name, opt, workers, seed)] = ask_seconds
    if not_started:
        print(f"  time limit: {not_started} runs not started", flush=True)

    report: dict[str, Any] = {"mode": mode, "seeds": seeds, "budgets": budgets, "runs": {},
                              "not_run": NOT_RUN}
    lines: list[str] = []
    # regrets[(workers, budget)][task][optimizer][seed]
    regrets: dict[tuple[int, int], dict[str, dict[str, dict[int, float]]]] = {}
    missing: dict[str, dict[str, int]] = {}  # task -> "optimizer (workers)" -> seeds complete
    for task in chosen:
        allvals = [task.achieved(r) for k, r in runs.items() if k[0] == task.name]
        firsts = [task.achieved(runs[(task.name, "random", 1, s, budgets[0])][:1]) for s in seeds
                  if (task.name, "random", 1, s, budgets[0]) in runs]
        best = task.best_known if task.best_known is not None else min(allvals, default=None)
        scale = max(np.median(firsts) - best, 1e-12) if firsts and best is not None else None
        for opt, workers in configs:
            done = len(seeds)
            for budget in budgets:
                cell = regrets.setdefault((workers, budget), {}).setdefault(
                    task.name, {}).setdefault(opt, {})
                for s in seeds:
                    run = runs.get((task.name, opt, workers, s, budget))
                    if run is not None and scale is not None:
                        cell[s] = max(task.achieved(run) - best, 0.0) / scale
                done = min(done, len(cell))
            if done < len(seeds):
                name = opt if workers == 1 else f"{opt} (4 workers)"
                missing.setdefault(task.name, {})[name] = done
    kinds = families(chosen)
    for workers in (1, 4):
        opts = [o for o, w in configs if w == workers]
        if not opts or not chosen:
            continue
        for budget in budgets:
            table_regrets = regrets[(workers, budget)]
            combos = [(t.name, s) for t in chosen for s in seeds
                      if all(s in table_regrets[t.name][o] for o in opts)]
            ranks: dict[str, list[float]] = {o: [] for o in opts}
            for name, s in combos:
                for o, rank in zip(opts, rankdata([table_regrets[name][o][s] for o in opts]),
                                   strict=True):
                    ranks[o].append(float(rank))
            header = ["task", *opts]
            rows = [[t.name, *[mean_cell(table_regrets[t.name][o].values(),
                                         len(table_regrets[t.name][o]) == len(seeds))
                               for o in opts]] for t in chosen]
            for kind in kinds:
                names = [t.name for t in chosen if t.kind == kind]
                rows.append([f"mean ({kind})", *[mean_cell(
                    [np.mean(list(table_regrets[n][o].values())) for n in names
                     if table_regrets[n][o]],
                    all(len(table_regrets[n][o]) == len(seeds) for n in names))
                    for o in opts]])
            kind_of = {t.name: t.kind for t in chosen}
            for kind in kinds:  # each family's mean rank too: quality is judged per family
                picked = [i for i, (name, _) in enumerate(combos) if kind_of[name] == kind]
                rows.append([f"mean rank ({kind})", *[
                    f"{np.mean([ranks[o][i] for i in picked]):.2f}" if picked else "-"
                    for o in opts]])
            rows.append(["MEAN RANK", *[f"{np.mean(ranks[o]):.2f}" if combos else "-"
                                        for o in opts]])
            title = (f"\nNormalized regret (mean over {len(seeds)} seeds), {budget} evaluations, "
                     f"{'sequential' if workers == 1 else '4 parallel workers'}")
            lines += [title, table(header, rows)]
            if len(combos) < len(chosen) * len(seeds):
                lines.append(f"mean ranks over the {len(combos)} of {len(chosen) * len(seeds)} "
                             "(task, seed) combinations complete for every optimizer")
            report["runs"][f"{budget}|{workers}"] = {
                "regret": {t: {o: list(v.values()) for o, v in r.items()}
                           for t, r in table_regrets.items()},
                "ranks": ranks, "complete_task_seeds": len(combos)}
    if chosen:
        lines += paired_gap_table(regrets, chosen, seeds, budgets, report)
    sequential_only = [o for o, w in configs if o.startswith("smac") and (o, 4) not in configs]
    if sequential_only and chosen:
        lines.append(f"\n{', '.join(sequential_only)}: sequential only in this run (SMAC's "
                     "ask/tell does take pending trials: add to --parallel-optimizers)")
    if missing:
        lines.append("\nIncomplete cells (marked * or -), with the seeds done at every budget")
        lines += [f"  {t}: " + ", ".join(f"{o} {n}/{len(seeds)}" for o, n in m.items())
                  for t, m in missing.items()]
    report["incomplete"] = missing
    short = sorted({(k[0], k[1], k[4], len(r)) for k, r in runs.items() if len(r) < k[4]})
    if short:
        lines.append("\nRuns that ended early, the optimizer having proposed every configuration "
                     "of a finite space (task, optimizer, budget: evaluations)")
        lines += [f"  {t}, {o}, {b}: {n}" for t, o, b, n in short]
    dup_rows = []
    repeated_in: dict[str, int | None] = {}  # task -> number of configurations (None: infinite)

    def repeats(opt: str, workers: int) -> int:
        found = 0
        for task in chosen:
            for s in seeds:
                run = runs.get((task.name, opt, workers, s, max(budgets)))
                keys = [repr(sorted(p.items())) for _, p in run or []]
                if len(keys) > len(set(keys)):
                    found += len(keys) - len(set(keys))
                    repeated_in[task.name] = hl.Space(task.space).n_values
        return found

    for opt in [o for o, w in configs if w == 4 and chosen]:
        dups = f"{repeats(opt, 4)} / {repeats(opt, 1)}"
        pairs = [(regrets[(1, b)][t.name][opt][s], regrets[(4, b)][t.name][opt][s])
                 for b in budgets for t in chosen for s in seeds
                 if s in regrets[(1, b)][t.name][opt] and s in regrets[(4, b)][t.name][opt]]
        if not pairs:
            dup_rows.append([opt, dups, "-", "-", "-"])
            continue
        seq, par = np.mean(pairs, axis=0)
        dup_rows.append([opt, dups, f"{seq:.4f}", f"{par:.4f}",
                         f"{(par - seq) / max(seq, 1e-12) * 100:+.1f}%"])
    if dup_rows:
        lines += ["\nParallel (4 workers) vs sequential, all tasks and budgets",
                  table(["optimizer", "repeated configurations, 4 workers / sequential",
                         "mean regret seq", "mean regret 4 workers", "change"], dup_rows)]
        lines += [f"  repeats occur in {name}: "
                  + ("continuous space" if size is None else f"{size} configurations in all")
                  for name, size in sorted(repeated_in.items())]

    lines += run_cost_table(asking, chosen, seeds, max(budgets), report)

    timing: dict[str, dict[int, float]] = {}
    for opt in args.timing_optimizers if args.timing_sizes else []:
        timing[opt] = {}
        for n in args.timing_sizes:
            if opt == "optuna-gp" and n > args.max_optuna_gp_trials:
                continue
            seconds = cache.timing(opt, n)
            if seconds is None:
                if time.time() >= deadline:
                    not_started += 1
                    continue
                seconds = suggestion_seconds(opt, n)
                cache.add_timing(opt, n, seconds)
            timing[opt][n] = seconds
            print(f"  timing {opt:14s} n={n:5d} {timing[opt][n]:.4f} s", flush=True)
    rows = [[o, *[f"{timing[o][n]:.4f}" if n in timing[o] else "-"
                  for n in args.timing_sizes]] for o in timing]
    for mine, theirs in PEERS:
        if mine in timing and theirs in timing:
            rows.append([f"ratio {mine}/{theirs}", *[
                f"{timing[mine][n] / timing[theirs][n]:.3f}"
                if n in timing[mine] and n in timing[theirs] else "-"
                for n in args.timing_sizes]])
    if timing:
        lines += ["\nSeconds per suggestion (median of 3 consecutive asks, 10-d history of n "
                  "random trials)", table(["sampler", *map(str, args.timing_sizes)], rows)]
        if any(o.startswith("smac") for o in timing):
            lines.append("smac: mean over one model refit cycle (8 asks for the random-forest "
                         "facade, 1 for smac-bb's Gaussian process)")
    report["timing"] = timing
    lines += [f"\nNot run: {name}: {why}" for name, why in NOT_RUN.items()]
    if not_started:
        lines.append(f"\ntime limit ({args.max_minutes:g} min) reached: {not_started} runs "
                     "or timings not started; run the same command again to resume")
    report["wall_seconds"] = time.time() - started
    lines.append(f"\nwall time {report['wall_seconds']:.0f} s" + (
        f" ({cache.loaded} results loaded from {cache_path.name})" if cache.loaded else ""))
    if cache.stale:
        lines.append(f"{len(cache.stale)} cached results were made with other code and "
                     "were not used (their runs were made again, now or in an earlier sitting)")
    text = "\n".join(lines)
    print(text)
    (RESULTS / f"quality-{label}.json").write_text(json.dumps(report, indent=1, default=str))
    (RESULTS / f"quality-{label}.md").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
