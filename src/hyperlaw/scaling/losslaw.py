"""The loss law L(N, D) = E + A / N^alpha + B / D^beta (the Chinchilla form).

    law = LossLaw.fit(records)                    # best loss of each (N, D) cell
    law.predict(n_params=1e9, n_tokens=1e11)      # .value, .low, .high
    law.coefficients                              # {"E": ..., "A": ..., "alpha": ..., ...}

Fitted as Hoffmann et al. 2022 and the Step Law's released tool (`step-law/steplaw:
code/fit_tool.py`) do: a Huber loss (delta 1e-3) on log(predicted) - log(measured), the
constants E, A, B in log space, from a grid of starting points. Intervals resample whole cells.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hyperlaw.models.linalg import single_threaded_blas
from hyperlaw.scaling.fit import CELL_COLUMNS, Prediction, ScalingFitError, as_rows

NAMES = ("E", "A", "alpha", "B", "beta")
HUBER_DELTA = 1e-3
# the exponents the fit starts from; E, A, B start at their non-negative least-squares values
# for each pair
START_EXPONENTS = (0.05, 0.15, 0.3, 0.5)
LOG_FLOOR = -20.0  # the log of a constant least squares put at zero


@dataclass(frozen=True, eq=False)
class LossLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta, with bootstrap fits for intervals."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    # rows: one bootstrap fit each, columns as `NAMES`
    bootstrap: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 5)), repr=False)
    confidence: float = 0.9
    n_cells: int = 0

    @property
    def coefficients(self) -> dict[str, float]:
        """E, A, alpha, B, beta."""
        return {n: float(getattr(self, n)) for n in NAMES}

    def formula(self) -> str:
        """The law as text."""
        return (f"L = {self.E:.4g} + {self.A:.4g} / N^{self.alpha:.4g} "
                f"+ {self.B:.4g} / D^{self.beta:.4g}")

    def predict(self, n_params: ArrayLike, n_tokens: ArrayLike) -> Prediction:
        """The loss at (n_params, n_tokens), with the central `confidence` interval of the
        bootstrap fits' predictions (empty bootstrap: the bounds are the value)."""
        n = _positive("n_params", n_params)
        d = _positive("n_tokens", n_tokens)
        value = _law(np.array([self.coefficients[k] for k in NAMES]), n, d)
        if len(self.bootstrap) == 0:
            return Prediction(value=_scalar(value), low=_scalar(value), high=_scalar(value),
                              confidence=self.confidence)
        draws = np.stack([_law(row, n, d) for row in self.bootstrap], axis=-1)
        tail = (1.0 - self.confidence) / 2.0
        low, high = np.quantile(draws, [tail, 1.0 - tail], axis=-1)
        return Prediction(value=_scalar(value), low=_scalar(low), high=_scalar(high),
                          confidence=self.confidence)

    @classmethod
    def fit(cls, records: Any, *, loss: str = "loss", n_bootstrap: int = 200,
            confidence: float = 0.9, seed: int | None = 0) -> LossLaw:
        """Fit on the best loss of each (n_params, n_tokens) cell of `records` (a list of dicts
        or a DataFrame with those columns and `loss`); `n_bootstrap` refits on resampled cells
        give the intervals."""
        n, d, y = _cells(as_rows(records), loss)
        if len(y) < 6:
            raise ScalingFitError(f"LossLaw.fit: {len(y)} (N, D) cells cannot determine five "
                                  "constants; give at least 6 cells, varying both N and D")
        if len(np.unique(n)) < 2 or len(np.unique(d)) < 2:
            raise ScalingFitError("LossLaw.fit: the cells must vary both n_params and n_tokens")
        rng = np.random.default_rng(seed)
        boot: list[NDArray[np.float64]] = []
        with single_threaded_blas():  # many tiny fits: threaded BLAS only contends for cores
            theta = _fit_from_grid(n, d, y)
            while len(boot) < n_bootstrap:
                pick = rng.integers(0, len(y), len(y))
                if len(np.unique(n[pick])) < 2 or len(np.unique(d[pick])) < 2:
                    continue
                boot.append(_natural(_minimize(theta, n[pick], d[pick], y[pick])[0]))
        return cls(**_named(_natural(theta)), bootstrap=np.array(boot).reshape(-1, 5),
                   confidence=confidence, n_cells=len(y))

    def to_dict(self) -> dict[str, Any]:
        """The law as JSON-serializable data (`LossLaw.from_dict` reads it back)."""
        return {**self.coefficients, "bootstrap": self.bootstrap.tolist(),
                "confidence": self.confidence, "n_cells": self.n_cells}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossLaw:
        """A law from `to_dict` output."""
        return cls(**{k: float(data[k]) for k in NAMES},
                   bootstrap=np.asarray(data.get("bootstrap", ()), dtype=float).reshape(-1, 5),
                   confidence=float(data.get("confidence", 0.9)),
                   n_cells=int(data.get("n_cells", 0)))


def _cells(rows: list[dict[str, Any]], loss: str) -> tuple[NDArray[np.float64], ...]:
    best: dict[tuple[float, float], float] = {}
    for i, r in enumerate(rows):
        missing = [c for c in (*CELL_COLUMNS, loss) if c not in r]
        if missing:
            raise ScalingFitError(f"LossLaw.fit: record {i} has no {missing}; every record "
                                  f"needs n_params, n_tokens and {loss!r}")
        key = (float(r[CELL_COLUMNS[0]]), float(r[CELL_COLUMNS[1]]))
        value = float(r[loss])
        if math.isfinite(value) and value > 0:
            best[key] = min(best.get(key, math.inf), value)
    keys = sorted(best)
    return (np.array([k[0] for k in keys]), np.array([k[1] for k in keys]),
            np.array([best[k] for k in keys]))


def _named(coef: NDArray[np.float64]) -> dict[str, float]:
    return {k: float(v) for k, v in zip(NAMES, coef, strict=True)}


def _law(coef: NDArray[np.float64], n: Any, d: Any) -> NDArray[np.float64]:
    e, a, alpha, b, beta = coef
    return np.asarray(e + a / np.power(n, alpha) + b / np.power(d, beta), dtype=float)


def _natural(theta: NDArray[np.float64]) -> NDArray[np.float64]:
    """(log E, log A, alpha, log B, beta) -> (E, A, alpha, B, beta)."""
    e, a, alpha, b, beta = theta
    return np.array([math.exp(e), math.exp(a), alpha, math.exp(b), beta])


def _objective(theta: NDArray[np.float64], log_n: NDArray[np.float64],
               log_d: NDArray[np.float64],
               log_y: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """The summed Huber loss of log residuals, in units of delta^2 (so the optimizer's
    tolerances see values of order one), and its gradient."""
    e, a, alpha, b, beta = theta
    terms = np.stack([np.full_like(log_n, e), a - alpha * log_n, b - beta * log_d])
    top = terms.max(axis=0)
    weights = np.exp(terms - top)
    total = weights.sum(axis=0)
    r = top + np.log(total) - log_y
    small = np.abs(r) <= HUBER_DELTA
    z = r / HUBER_DELTA
    value = float(np.where(small, 0.5 * z**2, np.abs(z) - 0.5).sum())
    dr = np.where(small, z, np.sign(z)) / HUBER_DELTA
    share = weights / total  # d log L / d term
    grad = np.array([(dr * share[0]).sum(), (dr * share[1]).sum(),
                     -(dr * share[1] * log_n).sum(), (dr * share[2]).sum(),
                     -(dr * share[2] * log_d).sum()])
    return value, grad


def _minimize(start: NDArray[np.float64], n: NDArray[np.float64], d: NDArray[np.float64],
              y: NDArray[np.float64]) -> tuple[NDArray[np.float64], float]:
    from scipy.optimize import minimize

    result = minimize(_objective, start, args=(np.log(n), np.log(d), np.log(y)), jac=True,
                      method="L-BFGS-B", options={"ftol": 1e-13, "gtol": 1e-9},
                      bounds=[(None, None), (None, None), (0.0, 2.0), (None, None), (0.0, 2.0)])
    return np.asarray(result.x, dtype=float), float(result.fun)


def _fit_from_grid(n: NDArray[np.float64], d: NDArray[np.float64],
                   y: NDArray[np.float64]) -> NDArray[np.float64]:
    """The best of the fits started from each pair of `START_EXPONENTS`."""
    from scipy.optimize import nnls

    best: tuple[float, NDArray[np.float64]] | None = None
    for alpha, beta in itertools.product(START_EXPONENTS, repeat=2):
        columns = np.column_stack([np.ones_like(n), n**-alpha, d**-beta])
        scale = columns.max(axis=0)
        e, a, b = nnls(columns / scale, y)[0] / scale
        logs = [math.log(c) if c > 0 else LOG_FLOOR for c in (e, a, b)]
        theta, value = _minimize(np.array([logs[0], logs[1], alpha, logs[2], beta]), n, d, y)
        if best is None or value < best[0]:
            best = (value, theta)
    assert best is not None
    return best[1]


def _positive(name: str, value: ArrayLike) -> NDArray[np.float64]:
    x = np.asarray(value, dtype=float)
    if np.any(~np.isfinite(x)) or np.any(x <= 0):
        raise ScalingFitError(f"LossLaw.predict: {name} must be positive, got {value!r}")
    return x


def _scalar(x: Any) -> Any:
    return float(x) if np.ndim(x) == 0 else np.asarray(x)


__all__ = ["LossLaw"]
