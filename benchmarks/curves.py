"""Learning-curve extrapolation on real curves of held-out tasks.

Tasks are split, never curves: a task is an LCDB dataset of benchmarks/data/lcdb.npz
(validation error of 20 scikit-learn learners over training-set sizes, bounds (0, 1)) or a curve
family of benchmarks/data/curves.npz (validation losses of MLPs, CNNs and character-level
language models over epochs or tokens, bounds (0, None)). The odd LCDB datasets (sorted by
OpenML id) are never used to build; each family is held out from its own fold (below). From
the first 10%, 20%, 30% and 50% of each held-out curve every predictor predicts the final
value; the script prints per group of tasks and fraction: the coverage of the 80% interval,
its median width (and the ratio to the baseline "today"), and the median absolute error of
the predictive mean and of the predictive median against "last value seen" and a fitted pow3
curve.

A predictor is a callable (steps, values, at_step, bounds) -> an object with `mean`, `median`
and `quantiles(q)`; `PREDICTORS` holds them by name, so a new model is one more entry. A predictor
with constants fitted on curves (`FOLDS`) must not have seen the task it predicts: the shipped
constants of hl.curves.extrapolate are fitted (`--calibrate`) on the even LCDB datasets and the
three families, so each family is predicted with the constants of its leave-one-family-out fold,
fitted on the even LCDB datasets and the two other families (results/curves_constants.json).

    python benchmarks/curves.py                   # evaluate every predictor on held-out tasks
    python benchmarks/curves.py --calibrate       # fit the shipped constants on the build tasks
    python benchmarks/curves.py --calibrate lcpfn # only the LC-PFN's
    python benchmarks/curves.py --only hyperlaw today --fractions 0.1 0.5
    python benchmarks/curves.py --every 5         # every 5th curve of each task (iteration)
    python benchmarks/curves.py --calibrate --maps shared  # one map per model (not shipped)
    python benchmarks/curves.py --maps shared     # evaluate them on the held-out tasks
    python benchmarks/curves.py --choose-variance # the coefficient prior, on the build tasks
    python benchmarks/curves.py --calibrate --unbounded  # the maps of unbounded metrics
    python benchmarks/curves.py --unbounded       # held-out tasks as if bounds=None
    python benchmarks/curves.py --score           # the build score of the shipped maps
    python benchmarks/curves.py --calibrate --maps improving  # maps of improving curves alone

Every metric here falls as training goes on, and "hyperlaw" is told so (`direction=
"minimize"`): a curve that rose over the steps seen is forecast around its last value.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperlaw.curves import ensemble, extrapolate, pfn

HERE = Path(__file__).resolve().parent
FAMILIES = HERE / "data" / "curves.npz"
LCDB = HERE / "data" / "lcdb.npz"
FRACTIONS = (0.10, 0.20, 0.30, 0.50)
LEVEL = 0.8
#: The way every metric here improves: LCDB's error rates and the families' losses fall.
DIRECTION: ensemble.Direction = "minimize"
Bounds = tuple[float | None, float | None]


@dataclass(frozen=True)
class Task:
    """One task: its group name, its steps, its curves (rows) and the metric's bounds."""

    name: str
    group: str
    steps: np.ndarray
    curves: np.ndarray
    bounds: Bounds
    build: bool


def load_tasks(families: Path = FAMILIES, lcdb: Path = LCDB) -> list[Task]:
    """Every task: the LCDB datasets (even ones for building) and the three families."""
    tasks = []
    data = np.load(lcdb)
    names = sorted({key.split("/")[0] for key in data.files},
                   key=lambda name: int(name.removeprefix("openml")))
    for index, name in enumerate(names):
        tasks.append(Task(name, "lcdb", data[f"{name}/steps"].astype(float),
                          data[f"{name}/curves"].astype(float), (0.0, 1.0), index % 2 == 0))
    data = np.load(families)
    for name in sorted({key.split("/")[0] for key in data.files}):
        tasks.append(Task(name, name, data[f"{name}/steps"].astype(float),
                          data[f"{name}/curves"].astype(float), (0.0, None), False))
    return tasks


def seen_points(n: int, fraction: float) -> int:
    """How many leading points make `fraction` of a curve of n points (at least 3)."""
    return max(3, round(fraction * n))


# --- predictors --------------------------------------------------------------------------------
Predictor = Callable[[np.ndarray, np.ndarray, float, Bounds], Any]


@dataclass(frozen=True)
class Point:
    """A point forecast: every quantile is the forecast (no interval)."""

    mean: float

    @property
    def median(self) -> float:
        return self.mean

    def quantiles(self, q: Any) -> np.ndarray:
        return np.full(np.shape(q), self.mean)


def last_value(steps: np.ndarray, values: np.ndarray, at_step: float, bounds: Bounds) -> Point:
    """The last value seen."""
    return Point(float(values[-1]))


_ALPHAS = np.geomspace(0.01, 4.0, 200)[:, None]


def pow3(steps: np.ndarray, values: np.ndarray, at_step: float, bounds: Bounds) -> Point:
    """The least-squares fit of c − a·t^(−α) (t counted from 1 at the first step, α on a fine
    grid, c and a linear), clipped into the bounds."""
    unit = float(np.min(np.diff(steps)))
    t = (steps - steps[0]) / unit + 1.0
    t_star = (at_step - steps[0]) / unit + 1.0
    g = t**-_ALPHAS  # alphas x points
    g_mean, y_mean = g.mean(axis=1, keepdims=True), values.mean()
    slope = ((g - g_mean) @ (values - y_mean)) / np.maximum(
        np.sum((g - g_mean) ** 2, axis=1), 1e-300)
    residual = np.sum((y_mean + slope[:, None] * (g - g_mean) - values) ** 2, axis=1)
    best = int(np.argmin(residual))
    forecast = y_mean + slope[best] * (t_star ** -_ALPHAS[best, 0] - g_mean[best, 0])
    low, high = bounds
    return Point(float(np.clip(forecast, -np.inf if low is None else low,
                               np.inf if high is None else high)))


def hyperlaw(steps: np.ndarray, values: np.ndarray, at_step: float, bounds: Bounds,
             **constants: Any) -> Any:
    """hl.curves.extrapolate with the task's bounds and direction and the shipped constants (or
    those given: `evaluate` passes a held-out family the constants of its fold, fitted without
    it)."""
    return extrapolate(steps, values, at_step, bounds=bounds, direction=DIRECTION, **constants)


def lcpfn(steps: np.ndarray, values: np.ndarray, at_step: float, bounds: Bounds,
          **constants: Any) -> Any:
    """hyperlaw.curves.pfn.predict (the LC-PFN) with the task's bounds and the shipped
    recalibration (or that of the task's fold, as for "hyperlaw")."""
    return pfn.predict(steps, values, at_step, bounds=bounds, **constants)


def bounded_maps(steps: np.ndarray, values: np.ndarray, at_step: float, bounds: Bounds,
                 **constants: Any) -> Any:
    """hl.curves.extrapolate with the bounded geometry's maps (CALIBRATION, or the fold's)
    whatever the bounds: what it did to unbounded curves before they had maps of their own."""
    return extrapolate(steps, values, at_step, bounds=bounds,
                       **{"calibration": ensemble.CALIBRATION, **constants})


def today(steps: np.ndarray, values: np.ndarray, at_step: float, bounds: Bounds) -> Any:
    """The model as first released: no bounds, no recalibration, its two constants."""
    return extrapolate(steps, values, at_step, **ensemble.UNBOUNDED_UNCALIBRATED)


#: Per predictor, the recalibration of each held-out family's fold (fitted without it) as
#: CONSTANTS stores it; with "shipped" too, that entry serves every other task.
FOLDS: dict[str, dict[str, dict[str, Any]]] = {}


def load_folds(maps: str = "shipped") -> dict[str, dict[str, dict[str, Any]]]:
    """The fold recalibrations of "hyperlaw" and "lcpfn" from CONSTANTS (written by
    --calibrate; the library's own constants serve the tasks of no fold); `maps` "shared" or
    "per-kind": those of ALTERNATIVE_CONSTANTS instead, with their "shipped" entry for the tasks
    of no fold."""
    import json

    path = constants_path(maps)
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python benchmarks/curves.py --calibrate"
                         f"{'' if maps == 'shipped' else ' --maps ' + maps}`")
    folds = json.loads(path.read_text())
    return {name: {fold: c for fold, c in folds[name].items()
                   if maps != "shipped" or fold != "shipped"} for name in ("hyperlaw", "lcpfn")}


PREDICTORS: dict[str, Predictor] = {
    "hyperlaw": hyperlaw,
    "lcpfn": lcpfn,
    "today": today,
    "bounded maps": bounded_maps,
    "last value": last_value,
    "pow3": pow3,
}


#: The models checked against the issue's goals.
GOAL_ROWS = ("hyperlaw", "lcpfn")


# --- evaluation --------------------------------------------------------------------------------
def evaluate(name: str, tasks: list[Task], fractions: tuple[float, ...], every: int = 1
             ) -> dict[tuple[str, float], np.ndarray]:
    """Per (group, fraction), one row per curve (every `every`-th curve of each task):
    |mean − truth|, low, high, truth, |median − truth|."""
    out: dict[tuple[str, float], list] = {}
    for task in tasks:
        predictor, folds = PREDICTORS[name], FOLDS.get(name, {})
        table = folds.get(task.name, folds.get("shipped"))
        if table is not None:
            predictor = functools.partial(predictor, **options_of(table, task.bounds))
        for fraction in fractions:
            seen = seen_points(len(task.steps), fraction)
            rows = out.setdefault((task.group, fraction), [])
            for curve in task.curves[::every]:
                prediction = predictor(task.steps[:seen], curve[:seen], float(task.steps[-1]),
                                       task.bounds)
                low, high = np.asarray(prediction.quantiles([(1 - LEVEL) / 2, (1 + LEVEL) / 2]))
                rows.append((abs(prediction.mean - curve[-1]), low, high, curve[-1],
                             abs(prediction.median - curve[-1])))
    return {key: np.array(rows, dtype=float) for key, rows in out.items()}


def summary(table: np.ndarray) -> dict[str, float]:
    """Coverage and median width of the interval, median error of the mean and of the
    median (the point forecast that minimises the expected absolute error)."""
    width = table[:, 2] - table[:, 1]
    hit = (table[:, 1] <= table[:, 3]) & (table[:, 3] <= table[:, 2])
    return {"n": len(table), "cover": float(hit.mean()) if np.any(width > 0) else math.nan,
            "width": float(np.median(width)), "error": float(np.median(table[:, 0])),
            "median error": float(np.median(table[:, 4])),
            "below": float(np.mean(table[:, 3] < table[:, 1])) if np.any(width > 0) else math.nan}


def with_all(results: dict[tuple[str, float], np.ndarray]) -> dict[tuple[str, float], np.ndarray]:
    """The results with one more group, "all", pooling every group per fraction."""
    fractions = sorted({fraction for _, fraction in results})
    pooled = {("all", f): np.concatenate([v for (g, fr), v in results.items() if fr == f])
              for f in fractions}
    return {**results, **pooled}


def report(results: dict[str, dict[tuple[str, float], np.ndarray]]) -> list[str]:
    """The table of every predictor, and which goals each group misses."""
    lines = [f"{'group':<13} {'seen':>5} {'n':>5} {'predictor':<11} {'cover80':>8} "
             f"{'below':>6} {'width':>8} {'w/today':>8} {'error':>8} {'e/last':>7} {'e/pow3':>7} "
             f"{'m.error':>8} {'m/last':>7} {'m/pow3':>7}"]
    misses: dict[str, list[str]] = {name: [] for name in GOAL_ROWS if name in results}
    first = next(iter(results.values()))
    for key in first:
        stats = {name: summary(table[key]) for name, table in results.items()}
        for name, s in stats.items():
            ratio = {ref: s["error"] / stats[ref]["error"] if ref in stats else math.nan
                     for ref in ("last value", "pow3")}
            by_median = {ref: s["median error"] / stats[ref]["error"] if ref in stats
                         else math.nan for ref in ("last value", "pow3")}
            wide = s["width"] / stats["today"]["width"] if "today" in stats else math.nan
            lines.append(f"{key[0]:<13} {key[1]:>5.0%} {s['n']:>5} {name:<11} "
                         f"{s['cover']:>8.3f} {s['below']:>6.3f} {s['width']:>8.4f} "
                         f"{wide:>8.2f} {s['error']:>8.4f} {ratio['last value']:>7.2f} "
                         f"{ratio['pow3']:>7.2f} {s['median error']:>8.4f} "
                         f"{by_median['last value']:>7.2f} {by_median['pow3']:>7.2f}")
            if name in misses:
                missed = [goal for goal, ok in (
                    ("coverage", 0.75 <= s["cover"] <= 0.85), ("width", wide <= 0.5),
                    ("error vs last", ratio["last value"] <= 0.8),
                    ("error vs pow3", ratio["pow3"] <= 0.8),
                    ("median vs last", by_median["last value"] <= 0.8),
                    ("median vs pow3", by_median["pow3"] <= 0.8)) if not ok]
                if missed:
                    misses[name].append(f"{key[0]} {key[1]:.0%}: misses {', '.join(missed)}")
    lines += ["", "goals: coverage80 in [0.75, 0.85], width <= 0.5 x today, error <= 0.8 x last "
              "value and pow3 (error: of the mean; median: of the median as point forecast)"]
    for name, missed in misses.items():
        lines += [f"{name}:"] + (missed or ["all goals met"])
    return lines


# --- calibration -------------------------------------------------------------------------------
CONSTANTS = HERE / "results" / "curves_constants.json"
#: Per model, whether it ships maps per kind of metric (a declared range, a loss) or one map
#: for both, each the better on the build tasks (benchmarks/README.md).
SHIPPED_PER_KIND = {"hyperlaw": True, "lcpfn": False}
#: `--maps shared` / `--maps per-kind`: every model with one map, or with maps per kind.
ALTERNATIVE_CONSTANTS = {"shared": HERE / "results" / "curves_constants_shared.json",
                         "per-kind": HERE / "results" / "curves_constants_per_kind.json",
                         "improving": HERE / "results" / "curves_constants_improving.json"}
KINDS = ("bounded", "loss")
#: With maps per kind, candidate weights of the other kind's groups in a kind's maps, relative
#: to the kind's own groups (0: its own curves only; 1: the groups weigh as in one map).
OTHER_KIND_WEIGHTS = (0.0, 0.25, 0.5, 1.0)


def constants_path(maps: str) -> Path:
    """Where the constants of these maps ("shipped", "shared", "per-kind") are kept."""
    return CONSTANTS if maps == "shipped" else ALTERNATIVE_CONSTANTS[maps]


def per_kind_of(name: str, maps: str) -> bool:
    """Whether model `name` gets maps per kind of metric under `maps`."""
    return SHIPPED_PER_KIND[name] if maps in ("shipped", "improving") else maps == "per-kind"


def oriented_pit(prediction: Any, truth: float, rising: bool) -> float:
    """The PIT of the truth oriented as in ensemble.Calibration: low when the curve went
    further than predicted, whichever its direction."""
    pit = float(prediction.cdf(truth))
    return 1.0 - pit if rising else pit


def ensemble_pit(task: Task, seen: int, curve: np.ndarray, improving_only: bool = False,
                 **constants: Any) -> tuple[float, float] | None:
    """(stage, oriented PIT) of the truth under the raw ensemble (with these constants), the
    direction unknown to it, as the shipped maps were fitted; `improving_only`: under the
    ensemble told the direction, and None for a curve that worsened (`--maps improving`)."""
    if improving_only and ensemble.worsened(curve[:seen], DIRECTION):
        return None
    told = {"direction": DIRECTION} if improving_only else {}
    prediction = extrapolate(task.steps[:seen], curve[:seen], float(task.steps[-1]),
                             bounds=task.bounds, calibration=None, **told, **constants)
    return (ensemble.stage_of(task.steps[:seen], float(task.steps[-1])),
            oriented_pit(prediction, curve[-1], bool(curve[seen - 1] > curve[0])))


def pfn_pit(task: Task, seen: int, curve: np.ndarray) -> tuple[float, float]:
    """(stage, oriented PIT) of the truth under the raw network (its own sense of rising)."""
    prediction = pfn.predict(task.steps[:seen], curve[:seen], float(task.steps[-1]),
                             bounds=task.bounds, calibration=None)
    return (ensemble.stage_of(task.steps[:seen], float(task.steps[-1])),
            oriented_pit(prediction, curve[-1], pfn._is_rising(curve[:seen])))


def raw_cases(tasks: list[Task], fractions: tuple[float, ...],
              pit: Callable[[Task, int, np.ndarray], tuple[float, float] | None] = ensemble_pit
              ) -> dict[str, np.ndarray]:
    """Per task, rows (stage, oriented PIT, fraction) of a raw model (no recalibration) for
    every curve and fraction it recalibrates (`pit` None: not). A family (300 curves) is
    thinned to every third curve."""
    out = {}
    for task in tasks:
        rows = []
        for fraction in fractions:
            seen = seen_points(len(task.steps), fraction)
            for curve in task.curves[::1 if task.group == "lcdb" else 3]:
                case = pit(task, seen, curve)
                if case is not None:
                    rows.append((*case, fraction))
        out[task.name] = np.array(rows)
        print(f"  {task.name}: {len(rows)} cases", flush=True)
    return out


#: Candidate stage bins (upper edges) of a recalibration; `choose_bins` picks one per model.
LAYOUTS: tuple[tuple[float, ...], ...] = ((1.0,), (0.4, 0.7, 1.0), (0.25, 0.4, 0.55, 0.7, 1.0),
           (0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0),
           (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0))


def kind_of(bounds: Bounds) -> str:
    """The kind of metric a map per kind serves: "bounded" for a declared two-sided range (an
    error rate), "loss" for one bound or none."""
    return "bounded" if bounds[0] is not None and bounds[1] is not None else "loss"


def fit_bins(cases: dict[str, np.ndarray], group_of: dict[str, str], bins: tuple[float, ...],
             weight_of: dict[str, float] | None = None, keep_median: bool = False
             ) -> ensemble.Calibration:
    """ensemble.Calibration.fit on the cases of these tasks with these stage bins, each group
    of tasks (LCDB, each family) weighing the same times `weight_of[group]` (default 1), so
    that LCDB's many curves do not set the maps alone. Groups of weight 0 are left out.
    `keep_median`: maps that keep the model's median (the unbounded geometry's)."""
    scale = weight_of or {}
    groups = [group_of[task] for task, rows in cases.items() for _ in rows]
    counts = {group: groups.count(group) for group in set(groups)}
    weights = np.array([scale.get(group, 1.0) / counts[group] for group in groups])
    table = np.concatenate(list(cases.values()))
    keep = weights > 0
    return ensemble.Calibration.fit(table[keep, 0], table[keep, 1], weights[keep], bins,
                                    keep_median=keep_median)


def mapped_pits(calibration: ensemble.Calibration, table: np.ndarray) -> np.ndarray:
    """The recalibrated PIT of each case (rows: stage, oriented PIT, fraction)."""
    rows = np.minimum(np.searchsorted(calibration.stages, table[:, 0]), len(calibration.pits) - 1)
    out = np.empty(len(table))
    for row in np.unique(rows):
        chosen = rows == row
        out[chosen] = np.interp(table[chosen, 1], calibration.pits[row], calibration.levels)
    return out


def left_out_error(cases: dict[str, np.ndarray], group_of: dict[str, str], own: set[str],
                   bins: tuple[float, ...], other: float = 1.0, keep_median: bool = False
                   ) -> float:
    """Leave one out: the mean |coverage − LEVEL| of the 80% interval over the groups of
    `own` and the fractions, each group recalibrated with maps fitted without it (the other
    groups of `own` at weight 1, the rest at `other`). With one group in `own` (LCDB alone)
    one of its tasks is left out at a time instead, its coverage pooled per fraction."""
    weight_of = {group_of[t]: 1.0 if group_of[t] in own else other for t in cases}
    units = ([[t for t in cases if group_of[t] == group] for group in sorted(own)]
             if len(own) > 1 else [[t] for t in cases if group_of[t] in own])
    hits: dict[tuple[str, float], list[np.ndarray]] = {}
    for unit in units:
        fitted = fit_bins({t: c for t, c in cases.items() if t not in unit}, group_of, bins,
                          weight_of, keep_median)
        table = np.concatenate([cases[t] for t in unit])
        hit = np.abs(mapped_pits(fitted, table) - 0.5) <= LEVEL / 2
        for fraction in np.unique(table[:, 2]):
            hits.setdefault((group_of[unit[0]], fraction), []).append(hit[table[:, 2] == fraction])
    return float(np.mean([abs(float(np.mean(np.concatenate(h))) - LEVEL)
                          for h in hits.values()]))


def fit_maps(cases: dict[str, np.ndarray], group_of: dict[str, str], own: set[str],
             others: tuple[float, ...], keep_median: bool = False) -> dict[str, Any]:
    """The recalibration for the groups of `own` with the stage bins of LAYOUTS and the
    weight of the other groups of `others` that transfer best to a group of `own` left out
    (`left_out_error`; fewer bins, then the larger weight, on a tie), as CONSTANTS stores it."""
    choices = [(bins, other) for bins in LAYOUTS for other in others]
    errors = {c: round(left_out_error(cases, group_of, own, *c, keep_median), 4)
              for c in choices}
    bins, other = min(choices, key=lambda c: (errors[c], len(c[0]), -c[1]))
    print(f"  {', '.join(sorted(own))}: {len(bins)} stage bins, other groups at weight {other} "
          f"(left-out mean |coverage - {LEVEL}|: "
          + ", ".join(f"{len(b)} bins/{o} {e:.3f}" for (b, o), e in errors.items()) + ")",
          flush=True)
    fitted = fit_bins(cases, group_of, bins, {g: 1.0 if g in own else other
                                              for g in group_of.values()}, keep_median)
    return {"stages": fitted.stages, "levels": fitted.levels, "pits": fitted.pits,
            **({"other_groups_weight": other} if len(others) > 1 else {})}


def fit_calibration(cases: dict[str, np.ndarray], group_of: dict[str, str],
                    kinds: dict[str, str] | None = None, keep_median: bool = False
                    ) -> dict[str, Any]:
    """One recalibration of these cases (every group its own), or, given the kind of metric
    of each group (`kind_of`), one per kind, the other kind's groups at a weight of
    OTHER_KIND_WEIGHTS. `keep_median`: maps that keep the model's median."""
    groups = {group_of[task] for task in cases}
    if kinds is None:
        return fit_maps(cases, group_of, groups, (1.0,), keep_median)
    return {kind: fit_maps(cases, group_of, {g for g in groups if kinds[g] == kind},
                           OTHER_KIND_WEIGHTS, keep_median) for kind in KINDS}


CALIBRATED = {"hyperlaw": ensemble_pit, "lcpfn": pfn_pit}


def build_tasks(tasks: list[Task]) -> list[Task]:
    """The tasks the constants are fitted on: the even LCDB datasets and the three families
    (each family measured with the fold that left it out)."""
    return [task for task in tasks if task.build or task.group != "lcdb"]


def fit_folds(cases: dict[str, np.ndarray], build: list[Task], per_kind: bool,
              keep_median: bool = False) -> dict[str, Any]:
    """The recalibration fitted on all these build cases ("shipped") and, per family, that of
    its fold (fitted without that family); `per_kind`: maps per kind of metric."""
    group_of = {task.name: task.group for task in build}
    kinds = {task.group: kind_of(task.bounds) for task in build} if per_kind else None
    folds = {"shipped": fit_calibration(cases, group_of, kinds, keep_median)}
    for family in (task.name for task in build if task.group != "lcdb"):
        print(f" fold without {family}:")
        folds[family] = fit_calibration({task: c for task, c in cases.items() if task != family},
                                        group_of, kinds, keep_median)
    return folds


def calibrate(tasks: list[Task], fractions: tuple[float, ...], models: list[str],
              maps: str = "shipped", keep_median: bool = False) -> dict[str, Any]:
    """Per model of `models` ("hyperlaw": the ensemble, "lcpfn"), its recalibrations (see
    `fit_folds`), per kind of metric or one map as `maps` says (`per_kind_of`);
    `keep_median`: maps that keep the model's median (`--unbounded` passes unbounded tasks)."""
    build = build_tasks(tasks)
    out = {}
    for name in models:
        print(f"{name}:")
        pit = (functools.partial(ensemble_pit, improving_only=True)
               if maps == "improving" and name == "hyperlaw" else CALIBRATED[name])
        out[name] = fit_folds(raw_cases(build, fractions, pit), build,
                              per_kind_of(name, maps), keep_median)
    return out


#: The coefficient prior variances `--choose-variance` compares (100: the first release's).
VARIANCES = (1e2, 3e2, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6)
#: Scores within this of the best are not told apart: the smallest such variance is chosen
#: (a wider prior lets a shape that barely moves over the steps seen swing its forecast far).
SCORE_TOLERANCE = 0.01


def choose_variance(tasks: list[Task], fractions: tuple[float, ...], maps: str = "shipped"
                    ) -> float:
    """The ensemble's coefficient prior variance, chosen on the build tasks only: for each of
    VARIANCES the maps (of `maps`) are fitted as `--calibrate` fits them (every build group,
    and each family's fold without it) and the build cases scored with them (`build_score`).
    The smallest variance within SCORE_TOLERANCE of the lowest score wins."""
    build = build_tasks(tasks)
    scores = {}
    print(f"{'variance':>9} {'seen':>5} {'cover80':>8} {'|cov-0.8|':>10} {'m/pow3':>7} "
          f"{'gm m/pow3':>10}")
    for variance in VARIANCES:
        cases = raw_cases(build, fractions,
                          functools.partial(ensemble_pit, coefficient_variance=variance))
        folds = fit_folds(cases, build, per_kind_of("hyperlaw", maps))
        scores[variance] = build_score(build, fractions, folds, variance)
    lowest = min(scores.values())
    best = min(v for v, score in scores.items() if score <= lowest + SCORE_TOLERANCE)
    print("mean score (|cov-0.8| + gm m/pow3): "
          + ", ".join(f"{v:g} {s:.4f}" for v, s in scores.items()) + f"; chosen {best:g}")
    return best


def build_score(build: list[Task], fractions: tuple[float, ...], folds: dict[str, Any],
                variance: float) -> float:
    """Every build case predicted with these maps (an LCDB build dataset with the maps of all
    groups, a family with its fold's; every second LCDB curve, every third family curve),
    scored per fraction as the mean over groups of |coverage − 0.8| of the 80% interval plus
    the geometric mean over groups of the median's error ÷ pow3's, averaged over the
    fractions; each fraction's figures are printed."""
    rows = []
    for task in build:
        options = {"coefficient_variance": variance, "direction": DIRECTION,
                   **options_of(folds.get(task.name, folds["shipped"]), task.bounds)}
        for fraction in fractions:
            seen = seen_points(len(task.steps), fraction)
            steps, at_step = task.steps[:seen], float(task.steps[-1])
            for curve in task.curves[::2 if task.group == "lcdb" else 3]:
                low, median, high = np.asarray(extrapolate(
                    steps, curve[:seen], at_step, bounds=task.bounds, **options
                ).quantiles([(1 - LEVEL) / 2, 0.5, (1 + LEVEL) / 2]))
                rows.append((task.group, fraction, low <= curve[-1] <= high,
                             abs(median - curve[-1]),
                             abs(pow3(steps, curve[:seen], at_step, task.bounds).mean
                                 - curve[-1])))
    per_fraction = []
    for fraction in fractions:
        chosen = [r for r in rows if r[1] == fraction]
        groups = sorted({r[0] for r in chosen})
        cover = {g: np.mean([r[2] for r in chosen if r[0] == g]) for g in groups}
        ratio = {g: np.median([r[3] for r in chosen if r[0] == g])
                 / np.median([r[4] for r in chosen if r[0] == g]) for g in groups}
        miss = float(np.mean([abs(c - LEVEL) for c in cover.values()]))
        geometric = float(np.exp(np.mean(np.log(list(ratio.values())))))
        per_fraction.append(miss + geometric)
        pooled = np.median([r[3] for r in chosen]) / np.median([r[4] for r in chosen])
        print(f"{variance:>9g} {fraction:>5.0%} {np.mean([r[2] for r in chosen]):>8.3f} "
              f"{miss:>10.3f} {pooled:>7.3f} {geometric:>10.3f}", flush=True)
    return float(np.mean(per_fraction))


def calibration_of(table: dict[str, Any]) -> ensemble.Calibration:
    """The recalibration stored in CONSTANTS."""
    return ensemble.Calibration(tuple(table["stages"]), tuple(table["levels"]),
                                tuple(tuple(r) for r in table["pits"]))


def options_of(table: dict[str, Any], bounds: Bounds) -> dict[str, Any]:
    """The keyword arguments of extrapolate and pfn.predict for a recalibration read from
    CONSTANTS or ALTERNATIVE_CONSTANTS (maps per kind: the map of the kind of these bounds)."""
    return {"calibration": calibration_of(table[kind_of(bounds)] if "loss" in table
                                          else table)}


#: The keys of CONSTANTS holding each model's maps of the unbounded geometry.
UNBOUNDED_KEYS = {"hyperlaw": "hyperlaw unbounded", "lcpfn": "lcpfn unbounded"}
#: Where each model's shipped unbounded maps are pasted.
UNBOUNDED_CONSTANT = {"hyperlaw": "ensemble.py", "lcpfn": "pfn.py"}


def without_bounds(tasks: list[Task]) -> list[Task]:
    """The tasks as if their metric had no declared bound (bounds=None for every group)."""
    return [dataclasses.replace(task, bounds=(None, None)) for task in tasks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calibrate", nargs="*", choices=sorted(CALIBRATED), default=None,
                        help="fit the constants of these models (default: both) on the build "
                             "tasks and print them")
    parser.add_argument("--only", nargs="+", choices=sorted(PREDICTORS), default=None,
                        help="predictors to evaluate (default: all; 'bounded maps' only "
                             "with --unbounded)")
    parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    parser.add_argument("--every", type=int, default=1,
                        help="evaluate every N-th curve of each task only (quicker, noisier)")
    parser.add_argument("--maps", choices=("shipped", "shared", "per-kind", "improving"),
                        default="shipped",
                        help="fit (with --calibrate) or evaluate these recalibrations: the "
                             "shipped ones (maps per kind for the ensemble, one map for the "
                             "LC-PFN), one map per model, maps per kind for both, or the "
                             "shipped kind fitted on the ensemble's improving curves alone")
    parser.add_argument("--score", action="store_true",
                        help="print the build score of the ensemble with the maps of --maps "
                             "(as --choose-variance scores each variance)")
    parser.add_argument("--choose-variance", action="store_true",
                        help="compare the ensemble's coefficient prior variances of VARIANCES "
                             "on the build tasks (maps fitted for each) and print the choice")
    parser.add_argument("--choose-above-spans", action="store_true",
                        help="compare the LC-PFN's ABOVE_SPANS of ABOVE_SPANS_TRIED on the build "
                             "tasks taken as unbounded (maps fitted for each) and print them")
    parser.add_argument("--unbounded", action="store_true",
                        help="treat every task as unbounded (bounds=None): fit (with "
                             "--calibrate) or evaluate the models' maps of that geometry")
    args = parser.parse_args()
    tasks = without_bounds(load_tasks()) if args.unbounded else load_tasks()
    fractions = tuple(args.fractions)
    if args.choose_variance:
        choose_variance(tasks, fractions, args.maps)
        return
    if args.score:
        import json

        folds = json.loads(constants_path(args.maps).read_text())["hyperlaw"]
        score = build_score(build_tasks(tasks), fractions, folds,
                            ensemble.COEFFICIENT_VARIANCE)
        print(f"build score with the {args.maps} maps: {score:.4f}")
        return
    if args.choose_above_spans:
        choose_above_spans(without_bounds(tasks), fractions)
        return
    if args.calibrate is not None and args.unbounded:
        calibrate_unbounded(tasks, fractions, args.calibrate or sorted(CALIBRATED))
        return
    if args.calibrate is not None:
        import json

        path = constants_path(args.maps)
        folds = json.loads(path.read_text()) if path.exists() else {}
        folds.update(calibrate(tasks, fractions, args.calibrate or sorted(CALIBRATED),
                               args.maps))
        path.write_text(json.dumps(folds, indent=1) + "\n")
        if args.maps != "shipped":
            print(f"\nwrote {path} (evaluate with --maps {args.maps})")
            return
        print(f"\nwrote {path}; paste the shipped entries into hyperlaw/curves/:")
        if "hyperlaw" in folds:
            shipped = folds["hyperlaw"]["shipped"]
            print(f"ensemble.py: CALIBRATION = Calibration(**{shipped['loss']})\n"
                  f"ensemble.py: RANGE_CALIBRATION = Calibration(**{shipped['bounded']})")
        if "lcpfn" in folds:
            print(f"pfn.py: CALIBRATION = Calibration(**{folds['lcpfn']['shipped']})")
        return
    FOLDS.update(load_folds(args.maps))
    if args.unbounded:
        FOLDS["bounded maps"] = FOLDS["hyperlaw"]
        FOLDS.update({name: load_unbounded_folds(name) for name in CALIBRATED})
    only = args.only or [name for name in PREDICTORS
                         if args.unbounded or name != "bounded maps"]
    held_out = [task for task in tasks if not task.build]  # the families: by their folds
    print(f"held-out tasks: {len(held_out)} ({sum(len(t.curves) for t in held_out)} curves); "
          f"shipped constants: evidence_weight={ensemble.EVIDENCE_WEIGHT}, "
          f"coefficient_variance={ensemble.COEFFICIENT_VARIANCE:g}, "
          f"discrepancy={ensemble.DISCREPANCY}\n")
    results, timing = {}, {}
    for name in only:
        started = time.perf_counter()
        results[name] = with_all(evaluate(name, held_out, fractions, args.every))
        count = sum(len(v) for (g, _), v in results[name].items() if g != "all")
        timing[name] = (time.perf_counter() - started) / count * 1e3
    print("\n".join(report(results)))
    print("\nms per prediction (with its 80% interval): "
          + ", ".join(f"{name} {ms:.2f}" for name, ms in timing.items()))


def calibrate_unbounded(tasks: list[Task], fractions: tuple[float, ...],
                        models: list[str]) -> None:
    """Per model of `models`, compare the candidates on the build tasks taken as unbounded
    (`compare_unbounded`), then fit its maps of the unbounded geometry (median kept) on them
    and store them under its UNBOUNDED_KEYS entry of CONSTANTS."""
    import json

    folds = json.loads(CONSTANTS.read_text()) if CONSTANTS.exists() else {}
    for name in models:
        print(f"{name}: candidates on the build tasks (maps fitted without the task "
              "measured):\n" + "\n".join(compare_unbounded(tasks, fractions, name)) + "\n",
              flush=True)
        folds[UNBOUNDED_KEYS[name]] = calibrate(tasks, fractions, [name], "shared",
                                                keep_median=True)[name]
    CONSTANTS.write_text(json.dumps(folds, indent=1) + "\n")
    print(f"\nwrote {CONSTANTS}; paste the shipped entries into hyperlaw/curves/:")
    for name in models:
        print(f"{UNBOUNDED_CONSTANT[name]}: UNBOUNDED_CALIBRATION = "
              f"Calibration(**{folds[UNBOUNDED_KEYS[name]]['shipped']})")


#: The LC-PFN's distances of an open improving end `--choose-above-spans` compares.
ABOVE_SPANS_TRIED = (4.0, 8.0, 16.0, 24.0, 32.0)


def choose_above_spans(tasks: list[Task], fractions: tuple[float, ...]) -> float:
    """The LC-PFN's `ABOVE_SPANS` (how far beyond the observed values an open improving end
    lies), chosen on the build tasks taken as unbounded: for each of ABOVE_SPANS_TRIED the
    candidates of `compare_unbounded`, scored for maps keeping the median as the mean over
    fractions of |coverage − 0.8| plus the median's error ÷ pow3's; the lowest wins."""
    scores = {}
    shipped = pfn.ABOVE_SPANS
    try:
        for spans in ABOVE_SPANS_TRIED:
            pfn.ABOVE_SPANS = spans
            table = unbounded_candidates(tasks, fractions, "lcpfn")
            print(f"ABOVE_SPANS = {spans:g}\n" + "\n".join(candidate_lines(table)) + "\n",
                  flush=True)
            scores[spans] = float(np.mean([abs(cover - LEVEL) + to_pow3 for (candidate, _), (
                cover, _, _, to_pow3) in table.items() if candidate == "median kept"]))
    finally:
        pfn.ABOVE_SPANS = shipped
    best = min(scores, key=lambda s: scores[s])
    print("score (|cov-0.8| + m/pow3, maps keeping the median): "
          + ", ".join(f"{s:g} {v:.3f}" for s, v in scores.items()) + f"; chosen {best:g}")
    return best


def raw_unbounded(name: str, steps: np.ndarray, values: np.ndarray, at_step: float
                  ) -> tuple[Any, bool]:
    """Model `name`'s raw prediction with no bounds, and the direction of improvement the
    model reads from the values."""
    if name == "lcpfn":
        return (pfn.predict(steps, values, at_step, bounds=None, calibration=None),
                pfn._is_rising(values))
    return (extrapolate(steps, values, at_step, bounds=None, calibration=None),
            bool(values[-1] > values[0]))


def with_maps(name: str, raw: Any, calibration: ensemble.Calibration, stage: float,
              rising: bool) -> Any:
    """Model `name`'s raw prediction through `calibration`'s map at this stage."""
    if name == "lcpfn":
        return pfn.recalibrated(raw, calibration, stage, rising)
    return dataclasses.replace(raw, calibration=calibration.knots(stage, rising))


def compare_unbounded(tasks: list[Task], fractions: tuple[float, ...],
                      name: str = "hyperlaw") -> list[str]:
    """`unbounded_candidates` as printed lines (`candidate_lines`)."""
    return candidate_lines(unbounded_candidates(tasks, fractions, name))


def candidate_lines(table: dict[tuple[str, float], tuple[float, ...]]) -> list[str]:
    """The rows of `unbounded_candidates` as text, a header first."""
    return [f"{'candidate':<13} {'seen':>5} {'cover80':>8} {'width':>8} {'m/last':>7} "
            f"{'m/pow3':>7}"] + [
        f"{candidate:<13} {fraction:>5.0%} {cover:>8.3f} {width:>8.4f} {to_last:>7.2f} "
        f"{to_pow3:>7.2f}"
        for (candidate, fraction), (cover, width, to_last, to_pow3) in table.items()]


def unbounded_candidates(tasks: list[Task], fractions: tuple[float, ...],
                         name: str = "hyperlaw") -> dict[tuple[str, float], tuple[float, ...]]:
    """The recalibrations of model `name`'s unbounded predictions compared on the build tasks
    (taken as unbounded), each map fitted without the LCDB dataset or the family it is
    measured on (5 stage bins): none (the raw model), the bounded geometry's maps (the
    ensemble's CALIBRATION, the LC-PFN's one map), maps fitted in the unbounded geometry, and
    those maps keeping the median. Per (candidate, fraction), pooled: coverage of the 80%
    interval, its median width, the median error of the median ÷ last value's and ÷ pow3's."""
    build = build_tasks(tasks)
    cases: dict[str, list[tuple[Any, ...]]] = {}
    for task in build:
        for fraction in fractions:
            seen = seen_points(len(task.steps), fraction)
            steps, at_step = task.steps[:seen], float(task.steps[-1])
            for curve in task.curves[::1 if task.group == "lcdb" else 3]:
                raw, rising = raw_unbounded(name, steps, curve[:seen], at_step)
                cases.setdefault(task.name, []).append((
                    ensemble.stage_of(steps, at_step), oriented_pit(raw, curve[-1], rising),
                    fraction, raw, rising, curve[-1], curve[seen - 1],
                    pow3(steps, curve[:seen], at_step, task.bounds).mean))
    group_of = {task.name: task.group for task in build}
    units = [[t] for t in cases if group_of[t] == "lcdb"] + [
        [t for t in cases if group_of[t] == g] for g in sorted(set(group_of.values()) - {"lcdb"})]
    pits = {t: np.array([c[:3] for c in rows]) for t, rows in cases.items()}
    out: dict[tuple[str, float], tuple[float, ...]] = {}
    bounded = pfn.CALIBRATION if name == "lcpfn" else ensemble.CALIBRATION
    for candidate, keep in (("raw", None), ("bounded maps", None), ("fitted maps", False),
                            ("median kept", True)):
        rows = []
        for unit in units:
            fitted = (bounded if candidate == "bounded maps" else None if keep is None
                      else fit_bins({t: v for t, v in pits.items() if t not in unit}, group_of,
                                    ensemble.STAGE_BINS, keep_median=keep))
            for stage, _, fraction, raw, rising, truth, last, forecast in (
                    c for t in unit for c in cases[t]):
                prediction = (raw if fitted is None
                              else with_maps(name, raw, fitted, stage, rising))
                low, median, high = np.asarray(prediction.quantiles([0.1, 0.5, 0.9]))
                rows.append((fraction, low <= truth <= high, high - low, abs(median - truth),
                             abs(last - truth), abs(forecast - truth)))
        table = np.array(rows, dtype=float)
        for fraction in fractions:
            t = table[table[:, 0] == fraction]
            out[candidate, fraction] = (float(t[:, 1].mean()), float(np.median(t[:, 2])),
                                        float(np.median(t[:, 3]) / np.median(t[:, 4])),
                                        float(np.median(t[:, 3]) / np.median(t[:, 5])))
    return out


def load_unbounded_folds(name: str) -> dict[str, dict[str, Any]]:
    """Model `name`'s fold maps of the unbounded geometry (written by --calibrate
    --unbounded)."""
    import json

    key = UNBOUNDED_KEYS[name]
    folds = json.loads(CONSTANTS.read_text()) if CONSTANTS.exists() else {}
    if key not in folds:
        raise SystemExit(f"{CONSTANTS} has no {key!r} entry: run `python "
                         f"benchmarks/curves.py --calibrate {name} --unbounded`")
    return {fold: c for fold, c in folds[key].items() if fold != "shipped"}


if __name__ == "__main__":
    main()
