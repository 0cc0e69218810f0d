"""Fit power laws of an optimal hyperparameter in model size and token budget (Step-Law procedure).

    law = fit(records, target="lr", features=("n_params", "n_tokens"))
    law.predict(n_params=1e9, n_tokens=1e11)   # .value, .low, .high
    law.coefficients                            # {"prefactor": ..., "n_params": ..., ...}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hyperlaw.errors import ScalingFitError
from hyperlaw.scaling.exponent_prior import (
    DEFAULT_PRIOR_SD,
    check_sd,
    combine,
    prior_exponents,
    unmeasured,
)

CELL_COLUMNS = ("n_params", "n_tokens")
Method = Literal["tolerance", "parabola"]
Interval = Literal["prediction", "confidence"]
#: the one default of every entry point (Python, ScalingStudy, the CLI), chosen by
#: benchmarks/scaling_holdout.py
DEFAULT_METHOD: Method = "tolerance"
DEFAULT_TOLERANCE = 0.0025  # the Step Law paper's band: runs within 0.25% of a cell's best
DEFAULT_BOOTSTRAP = 1000


class ScalingWarning(UserWarning):
    """A fitted law rests on thin evidence (narrow range of sizes, optimum on a grid edge)."""


class ExtrapolationWarning(ScalingWarning):
    """A prediction lies beyond the cells the law was fitted on, where the small sizes cannot
    say how the optimum moves (its exponent's interval holds 0) or far beyond them."""


#: past this factor beyond the largest fitted value of a feature, a prediction warns even
#: when the law's exponent is clear
FAR_BEYOND = 8.0
# an exponent this close to 0 is 0 up to rounding (optima equal across the cells fit to
# exponents of about 1e-15, of either sign)
_ROUNDING = 1e-9


@dataclass(frozen=True)
class Prediction:
    """A predicted value with the bounds of its bootstrap confidence interval."""

    value: Any
    low: Any
    high: Any
    confidence: float

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """The prediction as plain numbers (or lists)."""
        def plain(x: Any) -> Any:
            return np.asarray(x).tolist()
        return {"value": plain(self.value), "low": plain(self.low), "high": plain(self.high),
                "confidence": self.confidence}


@dataclass(frozen=True)
class CellOptimum:
    """The optimum of one (N, D) cell as the fit used it."""

    cell: dict[str, float]
    value: float  # the target's optimal value (geometric mean of kept runs, or parabola vertex)
    best_loss: float
    kept: int  # runs the cell contributed


@dataclass(frozen=True, eq=False)
class PowerLaw:
    """target* = prefactor * prod(feature ** exponent), fitted by least squares in log space."""

    target: str
    features: tuple[str, ...]
    intercept: float  # log of the prefactor
    exponents: tuple[float, ...]
    bootstrap: NDArray[np.float64] = field(repr=False)  # rows: [intercept, *exponents]
    confidence: float = 0.9
    # for prediction intervals: one draw of a cell's scatter around the law per bootstrap
    # row, in log space (empty: intervals of the law itself)
    scatter: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0), repr=False)
    method: str = "tolerance"
    tolerance: float = 0.0025
    cells: tuple[CellOptimum, ...] = field(default=(), repr=False)
    n_rows: int = 0  # rows the least squares ran on
    # the prior's exponent per feature it covers (empty: the runs alone) and its sd
    prior: dict[str, float] = field(default_factory=dict)
    prior_sd: float = DEFAULT_PRIOR_SD
    # per feature, the interval of its exponent from the runs alone (None: not measured,
    # the prior's); empty: read it from `bootstrap`
    trend: tuple[tuple[float, float] | None, ...] = field(default=(), repr=False)

    @property
    def coefficients(self) -> dict[str, float]:
        """The prefactor and one exponent per feature, from the fit on all kept rows."""
        return {"prefactor": math.exp(self.intercept),
                **{f: float(e) for f, e in zip(self.features, self.exponents, strict=True)}}

    @property
    def bootstrap_coefficients(self) -> dict[str, float]:
        """Means of the bootstrap fits (the prefactor is exp of the mean log prefactor)."""
        mean = self.bootstrap.mean(axis=0)
        return {"prefactor": math.exp(mean[0]),
                **{f: float(e) for f, e in zip(self.features, mean[1:], strict=True)}}

    def formula(self) -> str:
        """The law as text, e.g. `lr = 1.79 * n_params^-0.713 * n_tokens^0.307`."""
        terms = " * ".join(f"{f}^{e:.3f}" for f, e in zip(self.features, self.exponents,
                                                           strict=True))
        return f"{self.target} = {math.exp(self.intercept):.4g}" + (f" * {terms}" if terms else "")

    @property
    def interval(self) -> Interval:
        """"prediction" (where a new cell's best value falls) or "confidence" (where the
        law itself lies)."""
        return "prediction" if len(self.scatter) else "confidence"

    def predict(self, **features: ArrayLike) -> Prediction:
        """The target at the given feature values, with its bootstrap interval (see
        `interval`)."""
        missing = [f for f in self.features if f not in features]
        extra = [f for f in features if f not in self.features]
        if missing or extra:
            raise ScalingFitError(f"predict: the law of {self.target!r} takes exactly "
                                  f"{list(self.features)}; missing {missing}, unexpected {extra}")
        logs = []
        for name in self.features:
            x = np.asarray(features[name], dtype=float)
            if np.any(~np.isfinite(x)) or np.any(x <= 0):
                raise ScalingFitError(f"predict: {name} must be positive, got {features[name]!r}")
            logs.append(np.log(x))
        self._warn_beyond({n: float(np.max(features[n])) for n in self.features})
        shape = np.broadcast_shapes(*(v.shape for v in logs)) if logs else ()
        design = np.stack([np.ones(shape), *(np.broadcast_to(v, shape) for v in logs)], axis=-1)
        point = np.exp(design @ np.array([self.intercept, *self.exponents]))
        draws = design @ self.bootstrap.T
        if len(self.scatter):
            draws = draws + self.scatter
        draws = np.exp(draws)
        tail = (1.0 - self.confidence) / 2.0
        low, high = np.quantile(draws, [tail, 1.0 - tail], axis=-1)
        # a law whose draws all agree can put its point outside them by rounding
        low, high = np.minimum(low, point), np.maximum(high, point)
        return Prediction(value=_scalar(point), low=_scalar(low), high=_scalar(high),
                          confidence=self.confidence)

    def _warn_beyond(self, largest: Mapping[str, float]) -> None:
        """An ExtrapolationWarning for each feature asked beyond the fitted cells where the
        exponent's interval holds 0 (the small sizes show no trend to carry), where the cells
        hold only two of its values (nothing shows the optimum follows a power law), or far
        beyond."""
        tail = (1.0 - self.confidence) / 2.0
        for j, name in enumerate(self.features):
            fitted = [c.cell[name] for c in self.cells if name in c.cell]
            if not fitted or largest[name] <= max(fitted):
                continue
            factor = largest[name] / max(fitted)
            measured = self.trend[j] if self.trend else tuple(
                np.quantile(self.bootstrap[:, j + 1], [tail, 1.0 - tail]))
            leaning = (f"; the prediction leans on the prior's exponent ({self.prior[name]:.3g}"
                       f" ± {self.prior_sd:.2g})" if name in self.prior else "")
            if measured is not None and measured[0] <= _ROUNDING and measured[1] >= -_ROUNDING:
                low, high = measured
                warnings.warn(
                    f"{self.target!r} at {name}={largest[name]:.3g} lies {factor:.2g}x beyond "
                    f"the largest fitted ({max(fitted):.3g}), and across the fitted cells the "
                    f"optimum shows no clear trend in {name!r} (exponent "
                    f"{self.exponents[j]:.3g}, {self.confidence:.0%} interval {low:.3g} .. "
                    f"{high:.3g}): the runs cannot say whether it moves at this size"
                    f"{leaning}. Sweep {self.target!r} there, or fit on cells that reach closer "
                    "to it",
                    ExtrapolationWarning, stacklevel=3)
            elif len(set(fitted)) < 3:
                values = ", ".join(f"{v:.3g}" for v in sorted(set(fitted)))
                count = "two values" if len(set(fitted)) == 2 else "one value"
                warnings.warn(
                    f"{self.target!r} at {name}={largest[name]:.3g} lies {factor:.2g}x beyond "
                    f"the largest fitted, and the law rests on {count} of {name!r} "
                    f"({values}): a power law passes through any two optima, so nothing shows "
                    f"that the optimum follows one{leaning}. Fit on a third {name!r}, or "
                    f"sweep {self.target!r} there", ExtrapolationWarning, stacklevel=3)
            elif factor > FAR_BEYOND:
                warnings.warn(
                    f"{self.target!r} at {name}={largest[name]:.3g} lies {factor:.2g}x beyond "
                    f"the largest fitted ({max(fitted):.3g}); the interval assumes the law "
                    "holds that far", ExtrapolationWarning, stacklevel=3)

    def to_dict(self) -> dict[str, Any]:
        """The law as JSON-serializable data (`PowerLaw.from_dict` reads it back)."""
        return {"target": self.target, "features": list(self.features),
                "intercept": self.intercept, "exponents": list(self.exponents),
                "coefficients": self.coefficients, "confidence": self.confidence,
                "method": self.method, "tolerance": self.tolerance, "n_rows": self.n_rows,
                "bootstrap": self.bootstrap.tolist(), "scatter": self.scatter.tolist(),
                "cells": [c.__dict__ for c in self.cells], "prior": dict(self.prior),
                "prior_sd": self.prior_sd,
                "trend": [list(t) if t is not None else None for t in self.trend]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PowerLaw:
        """A law from `to_dict` output."""
        return cls(target=data["target"], features=tuple(data["features"]),
                   intercept=float(data["intercept"]),
                   exponents=tuple(float(e) for e in data["exponents"]),
                   bootstrap=np.asarray(data["bootstrap"], dtype=float).reshape(
                       -1, 1 + len(data["features"])),
                   confidence=float(data["confidence"]), method=data["method"],
                   tolerance=float(data["tolerance"]), n_rows=int(data["n_rows"]),
                   scatter=np.asarray(data.get("scatter", ()), dtype=float),
                   cells=tuple(CellOptimum(**c) for c in data.get("cells", ())),
                   prior={k: float(v) for k, v in data.get("prior", {}).items()},
                   prior_sd=float(data.get("prior_sd", DEFAULT_PRIOR_SD)),
                   trend=tuple((float(t[0]), float(t[1])) if t is not None else None
                               for t in data.get("trend", ())))


def _scalar(x: Any) -> Any:
    return float(x) if np.ndim(x) == 0 else np.asarray(x)


def as_rows(records: Any) -> list[dict[str, Any]]:
    """Records (a list of dicts or a pandas DataFrame) as a list of dicts."""
    if hasattr(records, "to_dict") and hasattr(records, "columns"):
        return list(records.to_dict("records"))
    if isinstance(records, Mapping) or not isinstance(records, Iterable):
        raise ScalingFitError("records must be a list of dicts or a pandas DataFrame, got "
                              f"{type(records).__name__}")
    rows = list(records)
    if not all(isinstance(r, Mapping) for r in rows):
        raise ScalingFitError("records must be a list of dicts (one per training run)")
    return [dict(r) for r in rows]


def _column(rows: Sequence[Mapping[str, Any]], name: str) -> NDArray[np.float64]:
    missing = sum(1 for r in rows if name not in r)
    if missing:
        raise ScalingFitError(f"{missing} of {len(rows)} records have no {name!r}; every record "
                              f"needs the columns the fit uses")
    values = np.array([float(r[name]) for r in rows])
    return values


def default_features(target: str, varying: Sequence[str]) -> tuple[str, ...]:
    """The features of `target`'s law when none are given: tokens alone for the batch size
    (the Step Law's B = b * D^beta), every varying cell column for anything else."""
    if target == "batch_size" and "n_tokens" in varying:
        return ("n_tokens",)
    return tuple(varying)


def varying_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The cell columns (n_params, n_tokens) that take more than one value in `rows`."""
    return tuple(c for c in CELL_COLUMNS
                 if len({r[c] for r in rows if c in r}) > 1)


def fit_laws(records: Any, targets: Sequence[str] = ("lr",),
             features: Mapping[str, Sequence[str]] | None = None,
             **settings: Any) -> dict[str, PowerLaw]:
    """One law per target, each on its given features or `default_features`; `settings` go
    to `fit`. `ScalingStudy.fit` and `hyperlaw scaling fit` both call this, so they agree.
    A `prior` mapping {feature: exponent} serves every law that has the feature."""
    rows = as_rows(records)
    varying = varying_columns(rows)
    chosen = {t: tuple(features[t]) if features and t in features
              else default_features(t, varying) for t in targets}
    prior = settings.pop("prior", "steplaw")
    if isinstance(prior, Mapping):
        unused = [f for f in prior if not any(f in fs for fs in chosen.values())]
        if unused:
            raise ScalingFitError(f"prior names {unused}, which no law has as a feature "
                                  f"({chosen}); name only their features")
    return {t: fit(rows, target=t, features=fs, prior={f: e for f, e in prior.items()
                                                      if f in fs}
                   if isinstance(prior, Mapping) else prior, **settings)
            for t, fs in chosen.items()}


def fit(records: Any, target: str = "lr", features: Sequence[str] = CELL_COLUMNS, *,
        loss: str = "loss", cell: Sequence[str] | None = None,
        tolerance: float = DEFAULT_TOLERANCE, method: Method = DEFAULT_METHOD,
        interval: Interval = "prediction", n_bootstrap: int = DEFAULT_BOOTSTRAP,
        confidence: float = 0.9, seed: int | None = 0,
        prior: str | Mapping[str, float] | None = "steplaw",
        prior_sd: float = DEFAULT_PRIOR_SD) -> PowerLaw:
    """Fit log(target) = c + sum_i e_i log(feature_i) on the near-optimal runs of each cell.

    Runs are grouped into cells by `cell` (default: those of n_params and n_tokens that the
    records have). `method="tolerance"` (the Step-Law procedure) keeps every run whose loss is
    within `tolerance` (relative) of its cell's best and regresses on all kept runs;
    `method="parabola"` estimates each cell's optimum as the vertex of a parabola of loss in
    log(target) through its best value and the two next to it (for sparse or noisy sweeps;
    `tolerance` is then unused) and regresses on one optimum per cell.

    Intervals come from `n_bootstrap` resamples. `interval="prediction"` (the default) says
    where the best value of a new cell falls: it resamples the cells' sizes and token budgets,
    each independently, and keeps every run of the cells drawn (runs of one cell, and cells of
    one size, are not independent evidence about the law), and adds, to each resampled law,
    the scatter of a cell's near-optimal runs around the law, drawn from the fit's residuals.
    That is what a recommendation for an untuned run needs. `interval="confidence"` is the
    interval of the law's own value (resampling runs), which narrows as runs are added however
    far single cells stray from it.

    `prior` is a normal prior on the exponents (`exponent_prior`): "steplaw" (the default;
    the Step Law's exponents for lr and batch size, measured in the standard
    parametrization), "mup" (lr flat in model size: for models widened under μP), a mapping
    {feature: exponent}, or None (the runs alone), with standard deviation `prior_sd`. It
    weighs against the runs' own bootstrap spread, so it matters where the cells pin an
    exponent poorly, and an exponent whose feature takes fewer than three values in the
    cells is the prior's. Without a prior such a law runs through two points.
    """
    rows = as_rows(records)
    features = tuple(features)
    if method not in ("tolerance", "parabola"):
        raise ScalingFitError(f"unknown method {method!r}; use 'tolerance' or 'parabola'")
    if interval not in ("prediction", "confidence"):
        raise ScalingFitError(f"unknown interval {interval!r}; use 'prediction' or "
                              "'confidence'")
    if not 0 <= tolerance < 1:
        raise ScalingFitError(f"tolerance must lie in [0, 1), got {tolerance!r}")
    if not 0 < confidence < 1:
        raise ScalingFitError(f"confidence must lie in (0, 1), got {confidence!r}")
    if n_bootstrap < 1:
        raise ScalingFitError(f"n_bootstrap must be >= 1, got {n_bootstrap!r}")
    if not rows:
        raise ScalingFitError("no records to fit; pass at least one run per cell")
    cell = tuple(cell) if cell is not None else tuple(
        c for c in CELL_COLUMNS if c in rows[0] or c in features)
    for name in (*features, *cell):
        if name not in cell:
            raise ScalingFitError(f"feature {name!r} must be constant within a cell; add it "
                                  "to cell=(...)")
    means = prior_exponents(prior, target, features)
    sd = check_sd(prior_sd)
    rng = np.random.default_rng(seed)
    settings: dict[str, Any] = {"loss": loss, "cell": cell, "tolerance": tolerance,
                                "method": method, "interval": interval,
                                "confidence": confidence}
    if not means:
        return _fit_data(rows, target, features, n_bootstrap=n_bootstrap, rng=rng, **settings)
    return _fit_with_prior(rows, target, features, means, sd, n_bootstrap, rng, settings)


def _fit_with_prior(rows: list[dict[str, Any]], target: str, features: tuple[str, ...],
                    means: Mapping[str, float], sd: float, n_bootstrap: int,
                    rng: np.random.Generator, settings: Mapping[str, Any]) -> PowerLaw:
    """The runs' law combined with a normal prior N(means, sd²) on the exponents it names
    (see `fit` and `exponent_prior`)."""
    levels = {f: len({r[f] for r in rows if f in r}) for f in features}
    fixed = unmeasured(levels, means)
    free = tuple(f for f in features if f not in fixed)
    data = _fit_data(_divide_out(rows, target, {f: means[f] for f in fixed}), target, free,
                     n_bootstrap=n_bootstrap, rng=rng, **settings)
    coef = np.array([data.intercept, *data.exponents])
    boot = data.bootstrap
    tail = (1.0 - settings["confidence"]) / 2.0
    measured: dict[str, tuple[float, float]] = {}
    for k, f in enumerate(free):
        low, high = np.quantile(boot[:, k + 1], [tail, 1.0 - tail])
        measured[f] = (float(low), float(high))
    if any(f in means for f in free):
        coef, boot = combine(coef, boot, np.array([means.get(f, np.nan) for f in free]),
                             np.array([sd if f in means else np.inf for f in free]), rng)
    exponent_draws = {}
    for f in fixed:  # the prior's exponent; the rest of the law moves with each draw of it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ScalingWarning)
            along = _fit_data(_with_target(rows, f), "__feature", free, n_bootstrap=1,
                              rng=rng, **{**settings, "interval": "confidence"})
        delta = rng.standard_normal(len(boot)) * sd
        boot = boot - delta[:, None] * np.array([along.intercept, *along.exponents])[None, :]
        exponent_draws[f] = means[f] + delta
    column = {f: k + 1 for k, f in enumerate(free)}
    return replace(
        data, features=features, intercept=float(coef[0]),
        exponents=tuple(float(coef[column[f]]) if f in column else means[f] for f in features),
        bootstrap=np.column_stack([boot[:, 0], *(boot[:, column[f]] if f in column
                                                  else exponent_draws[f] for f in features)]),
        cells=tuple(replace(c, value=c.value * math.prod(
            c.cell[f] ** means[f] for f in fixed if f in c.cell)) for c in data.cells),
        prior=dict(means), prior_sd=sd, trend=tuple(measured.get(f) for f in features))


def _divide_out(rows: list[dict[str, Any]], target: str,
                exponents: Mapping[str, float]) -> list[dict[str, Any]]:
    """`rows` with the target divided by prod(feature ** exponent): the law's part that is
    not fitted."""
    if not exponents:
        return rows
    out = []
    for r in rows:
        r = dict(r)
        if target in r and all(f in r for f in exponents):
            if any(not float(r[f]) > 0 for f in exponents):
                raise ScalingFitError(f"features {list(exponents)} must be positive")
            r[target] = float(r[target]) / math.prod(float(r[f]) ** e
                                                     for f, e in exponents.items())
        out.append(r)
    return out


def _with_target(rows: list[dict[str, Any]], feature: str) -> list[dict[str, Any]]:
    """`rows` whose target ("__feature") is `feature`'s value: fitted as the law is, it gives
    how the law's coefficients move per unit of `feature`'s exponent."""
    return [{**r, "__feature": r[feature]} for r in rows]


def _fit_data(rows: list[dict[str, Any]], target: str, features: tuple[str, ...], *,
              loss: str, cell: tuple[str, ...], tolerance: float, method: Method,
              interval: Interval, n_bootstrap: int, confidence: float,
              rng: np.random.Generator) -> PowerLaw:
    """The law the runs alone give (see `fit`)."""
    y = _column(rows, target)
    losses = _column(rows, loss)
    keys = np.stack([_column(rows, c) for c in cell], axis=1) if cell else np.zeros((len(rows), 0))
    good = np.isfinite(losses) & np.isfinite(y) & (y > 0)
    if not good.any():
        raise ScalingFitError(f"no record has a finite loss and a positive {target!r}")
    x = np.stack([_column(rows, f) for f in features], axis=1) if features else np.zeros(
        (len(rows), 0))
    if np.any(x[good] <= 0):
        raise ScalingFitError(f"features {list(features)} must be positive")
    groups = _groups(keys[good])
    logx, logy, losses = np.log(x[good]), np.log(y[good]), losses[good]
    _check_identifiable(logx, groups, features)
    if method == "tolerance":
        kept = np.zeros(len(logy), dtype=bool)
        for members in groups:
            best = losses[members].min()
            kept[members] = losses[members] <= best * (1.0 + tolerance)
        design = _design(logx[kept])
        coef = _lstsq(design, logy[kept])
        n = int(kept.sum())
        if interval == "prediction":
            kept_of = [np.flatnonzero(kept[m]) for m in groups]  # each cell's kept rows
            index_of = np.cumsum(kept) - 1  # position of a kept row among the kept rows
            boot = _crossed_bootstrap([index_of[m][k] for m, k in zip(groups, kept_of,
                                                                      strict=True)],
                                      np.array([keys[good][m[0]] for m in groups]),
                                      design, logy[kept], n_bootstrap, rng)
            residuals = logy[kept] - design @ coef
        else:
            boot = np.array([_lstsq(design[i], logy[kept][i])
                             for i in (rng.integers(0, n, n) for _ in range(n_bootstrap))])
        cells = tuple(
            CellOptimum(cell=dict(zip(cell, keys[good][m[0]].tolist(), strict=True)),
                        value=float(np.exp(logy[m][kept[m]].mean())),
                        best_loss=float(losses[m].min()), kept=int(kept[m].sum()))
            for m in groups)
        n_rows = n
    else:
        optima = [_parabola_optimum(logy[m], losses[m]) for m in groups]
        _warn_edges(optima, groups, logy, keys[good], cell, target)
        cell_x = np.array([logx[m[0]] for m in groups])
        design = _design(cell_x)
        coef = _lstsq(design, np.array([o[0] for o in optima]))
        boot_rows = []
        for _ in range(n_bootstrap):
            values = []
            for m in groups:
                pick = m[rng.integers(0, len(m), len(m))]
                values.append(_parabola_optimum(logy[pick], losses[pick])[0])
            boot_rows.append(_lstsq(design, np.array(values)))
        boot = np.array(boot_rows)
        residuals = np.array([o[0] for o in optima]) - design @ coef
        residuals = residuals * math.sqrt(len(groups) / max(len(groups) - design.shape[1], 1))
        cells = tuple(
            CellOptimum(cell=dict(zip(cell, keys[good][m[0]].tolist(), strict=True)),
                        value=float(np.exp(o[0])), best_loss=float(losses[m].min()),
                        kept=len(m))
            for m, o in zip(groups, optima, strict=True))
        n_rows = len(groups)
    scatter = (rng.choice(residuals, size=len(boot)) if interval == "prediction"
               else np.zeros(0))
    return PowerLaw(target=target, features=features, intercept=float(coef[0]),
                    exponents=tuple(float(c) for c in coef[1:]), bootstrap=boot,
                    confidence=confidence, method=method, tolerance=tolerance, cells=cells,
                    n_rows=n_rows, scatter=scatter)


def _crossed_bootstrap(rows_of_cell: list[NDArray[np.intp]], cell_keys: NDArray[np.float64],
                       design: NDArray[np.float64], logy: NDArray[np.float64],
                       n_bootstrap: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Weighted least-squares fits on resamples of the cells' coordinates.

    Each cell column's values (the sizes, the token budgets) are drawn with replacement, each
    column independently, and a cell's runs weigh the product of how often its values were
    drawn: the pigeonhole bootstrap for crossed factors (Owen, Ann. Appl. Stat. 1(2), 2007).
    The cells of one size share that size's deviation from the law, so the independent
    evidence about a size exponent is the number of sizes, not of cells; resampling cells as
    if independent made the law's interval too narrow exactly where a new size is predicted.
    A resample whose cells do not separate the features is drawn again.
    """
    levels = [np.unique(column, return_inverse=True)[1].reshape(-1) for column in cell_keys.T]
    if not levels:  # no cell columns: the cells themselves are the units
        levels = [np.arange(len(rows_of_cell))]
    cell_design = design[[int(r[0]) for r in rows_of_cell]]  # a cell's runs share one row
    rows = np.concatenate(rows_of_cell)
    cell_of_row = np.concatenate([np.full(len(r), c) for c, r in enumerate(rows_of_cell)])
    design, logy = design[rows], logy[rows]
    fits: list[NDArray[np.float64]] = []
    while len(fits) < n_bootstrap:
        weight = np.ones(len(rows_of_cell))
        for level in levels:
            count = int(level.max()) + 1
            weight *= np.bincount(rng.integers(0, count, count), minlength=count)[level]
        if np.linalg.matrix_rank(cell_design[weight > 0]) < design.shape[1]:
            continue
        row_weight = weight[cell_of_row]
        used = row_weight > 0
        root = np.sqrt(row_weight[used])
        fits.append(_lstsq(design[used] * root[:, None], logy[used] * root))
    return np.array(fits)


def _groups(keys: NDArray[np.float64]) -> list[NDArray[np.intp]]:
    if keys.shape[1] == 0:
        return [np.arange(len(keys))]
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [np.flatnonzero(inverse == g) for g in range(inverse.max() + 1)]


def _design(logx: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.column_stack([np.ones(len(logx)), logx])


def _lstsq(design: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(np.linalg.lstsq(design, y, rcond=None)[0], dtype=np.float64)


def _check_identifiable(logx: NDArray[np.float64], groups: list[NDArray[np.intp]],
                        features: tuple[str, ...]) -> None:
    per_cell = np.array([logx[m[0]] for m in groups]).reshape(len(groups), -1)
    if len(groups) < len(features) + 1:
        raise ScalingFitError(f"{len(groups)} cell(s) cannot determine a law in "
                              f"{list(features)}; add cells (at least {len(features) + 1})")
    for j, name in enumerate(features):
        span = per_cell[:, j].max() - per_cell[:, j].min()
        if span == 0:
            raise ScalingFitError(f"every cell has the same {name!r}; vary it across cells or "
                                  "drop it from features")
        if span < math.log(4.0):
            warnings.warn(f"the cells span only {math.exp(span):.2g}x in {name!r}; its exponent "
                          "is poorly determined (aim for at least 4x)", ScalingWarning,
                          stacklevel=3)
    if np.linalg.matrix_rank(_design(per_cell)) < len(features) + 1:
        raise ScalingFitError(f"the cells do not separate the features {list(features)}; "
                              "vary them independently")


def _parabola_optimum(logy: NDArray[np.float64],
                      losses: NDArray[np.float64]) -> tuple[float, bool]:
    """The vertex of the parabola of loss in log(target) through the best value tried and its
    two neighbours (kept between them), and whether the best sits on an edge of the values."""
    # values equal up to rounding noise (a rate enqueued twice, read back from JSON) are one
    same = np.round(logy, 9)
    values, inverse = np.unique(same, return_inverse=True)
    mean_loss = np.bincount(inverse.reshape(-1), weights=losses) / np.bincount(
        inverse.reshape(-1))
    best = int(np.argmin(mean_loss))
    on_edge = len(values) > 1 and best in (0, len(values) - 1)
    if len(values) < 3:
        return float(values[best]), on_edge
    start = min(max(best - 1, 0), len(values) - 3)
    (x0, x1, x2), (y0, y1, y2) = values[start: start + 3], mean_loss[start: start + 3]
    # the parabola through three points, by divided differences (exact, no ill-conditioned
    # least squares): y = y0 + d1 (x - x0) + a (x - x0)(x - x1)
    d1, d2 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1)
    a = (d2 - d1) / (x2 - x0)
    if a <= 0:
        return float(values[best]), on_edge
    vertex = (x0 + x1) / 2 - d1 / (2 * a)
    return float(np.clip(vertex, x0, x2)), on_edge


def _warn_edges(optima: list[tuple[float, bool]], groups: list[NDArray[np.intp]],
                logy: NDArray[np.float64], keys: NDArray[np.float64], cell: tuple[str, ...],
                target: str) -> None:
    edges = [dict(zip(cell, keys[m[0]].tolist(), strict=True))
             for (_, edge), m in zip(optima, groups, strict=True) if edge]
    if edges:
        warnings.warn(f"the best {target!r} sits on the edge of the values tried in cells "
                      f"{edges}; widen the range there", ScalingWarning, stacklevel=3)
