"""The exponential loss forecast of AutoLRS (Jin et al., ICLR 2021) and its spline denoising.

A short loss series is fitted by L(t) = a·e^{b·t} + c with b = −e^β < 0: β by a 1-D
Nelder-Mead search whose objective is the residual of the linear least-squares fit of (a, c)
for that β; then (a, c) by least squares. Before the fit, outliers are dropped by iterated
degree-2 smoothing splines (`denoise`).

    >>> import numpy as np
    >>> steps = np.arange(100)
    >>> losses = 2.0 * np.exp(-0.05 * steps) + 0.5 + np.random.default_rng(0).normal(0, 0.01, 100)
    >>> mask = denoise(losses, **TRAIN_DENOISE)
    >>> fit = fit_exponential(steps[mask], losses[mask])
    >>> round(float(fit.predict(1000)), 1)
    0.5

Pure math: numpy and scipy, no I/O, no global state.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from hyperlaw.errors import HyperlawError

#: Nelder-Mead tolerances and start of the β search (the AutoLRS reference values).
BETA_START = 0.0
BETA_XTOL = 1e-5
BETA_FTOL = 1e-5
#: β is clipped here so that e^β neither overflows nor makes e^{b·t} identically 1.
_BETA_RANGE = (-60.0, 30.0)
#: The denoising of training-loss series: 10 passes, each dropping the worst 3 % of the
#: residuals, only ever from the first half of the series.
TRAIN_DENOISE: dict[str, Any] = {"passes": 10, "drop_fraction": 0.03, "eligible_fraction": 0.5}
#: The denoising of validation-loss series: one pass dropping the single worst point.
VAL_DENOISE: dict[str, Any] = {"passes": 1, "drop_count": 1}
#: Series shorter than this are not denoised (a degree-2 spline needs a few points).
MIN_SPLINE_POINTS = 5


@dataclass(frozen=True)
class ExponentialFit:
    """L(t) = a·e^{b·t} + c (b < 0) and the residual sum of squares of the fit."""

    a: float
    b: float
    c: float
    residual: float = 0.0

    def predict(self, t: ArrayLike) -> Any:
        """The fitted loss at step(s) t (counted like the steps the fit was given)."""
        value = self.a * np.exp(self.b * np.asarray(t, dtype=float)) + self.c
        return float(value) if np.ndim(value) == 0 else value


def _series(steps: ArrayLike, losses: ArrayLike, where: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(steps, dtype=float).reshape(-1)
    y = np.asarray(losses, dtype=float).reshape(-1)
    if t.shape != y.shape:
        raise HyperlawError(f"{where}: steps and losses differ in length ({t.size} and "
                            f"{y.size}); pass one step per loss")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise HyperlawError(f"{where}: steps and losses must be finite; drop NaN or infinite "
                            "points (a diverged series has no forecast)")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        raise HyperlawError(f"{where}: steps must be strictly increasing")
    return t, y


def _least_squares(t: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, float, float]:
    """(a, c) of the least-squares fit for this β, and its residual sum of squares."""
    b = -math.exp(min(max(beta, _BETA_RANGE[0]), _BETA_RANGE[1]))
    design = np.column_stack([np.exp(b * t), np.ones_like(t)])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    residual = float(np.sum((design @ coef - y) ** 2))
    return float(coef[0]), float(coef[1]), residual


def fit_exponential(steps: ArrayLike, losses: ArrayLike) -> ExponentialFit:
    """Fit L(t) = a·e^{b·t} + c, b = −e^β, to a loss series (at least 3 points).

    β is found by `scipy.optimize.fmin` from β = 0 with xtol = ftol = 1e-5 (values of the
    AutoLRS reference); its objective is the residual of the least-squares (a, c) for that β.
    The steps are used as given, so a prediction is counted from the same origin.
    """
    from scipy.optimize import fmin

    t, y = _series(steps, losses, "fit_exponential")
    if t.size < 3:
        raise HyperlawError(f"fit_exponential: need at least 3 points for 3 parameters, got "
                            f"{t.size}")
    def misfit(v: np.ndarray) -> float:  # the residual of the best fit for beta = v[0]
        return _least_squares(t, y, float(v[0]))[2]

    found = fmin(misfit, x0=[BETA_START], xtol=BETA_XTOL, ftol=BETA_FTOL, disp=False)
    beta = min(max(float(found[0]), _BETA_RANGE[0]), _BETA_RANGE[1])
    a, c, residual = _least_squares(t, y, beta)
    return ExponentialFit(a=a, b=-math.exp(beta), c=c, residual=residual)


def _noise_scale(y: np.ndarray) -> float:
    """A robust estimate of the point noise: the MAD of first differences over √2."""
    diffs = np.diff(y)
    mad = float(np.median(np.abs(diffs - np.median(diffs))))
    return 1.4826 * mad / math.sqrt(2.0)


def denoise(losses: ArrayLike, passes: int, drop_fraction: float = 0.0, *,
            drop_count: int | None = None, eligible_fraction: float = 1.0,
            steps: ArrayLike | None = None) -> np.ndarray:
    """The mask of the points of a loss series kept after iterated spline outlier removal.

    Each pass fits a degree-2 smoothing spline to the kept points and drops those with the
    largest absolute residuals: `drop_count` of them, or else the fraction `drop_fraction` of
    the kept points (rounded down). Only points in the first `eligible_fraction` of the series
    may be dropped; the later points, nearest to the forecast horizon, are always kept.
    The spline's smoothing budget is n·σ², with σ the noise estimated robustly from the median
    absolute deviation of successive differences. Series shorter than 5 points are kept whole,
    and at least 5 points always remain. `TRAIN_DENOISE` and `VAL_DENOISE` hold the settings of
    the AutoLRS reference for training and validation losses.
    """
    from scipy.interpolate import UnivariateSpline

    y = np.asarray(losses, dtype=float).reshape(-1)
    t, y = _series(np.arange(y.size) if steps is None else steps, y, "denoise")
    if passes < 0 or not 0 <= drop_fraction <= 1 or not 0 <= eligible_fraction <= 1:
        raise HyperlawError("denoise: need passes >= 0, and drop_fraction and "
                            "eligible_fraction in [0, 1]")
    if drop_count is not None and drop_count < 0:
        raise HyperlawError(f"denoise: drop_count must be >= 0, got {drop_count}")
    kept = np.ones(y.size, dtype=bool)
    eligible = np.arange(y.size) < math.ceil(eligible_fraction * y.size)
    for _ in range(passes):
        n = int(kept.sum())
        wanted = drop_count if drop_count is not None else int(drop_fraction * n)
        wanted = min(wanted, n - MIN_SPLINE_POINTS)
        if wanted <= 0:
            break
        tk, yk = t[kept], y[kept]
        with warnings.catch_warnings():  # FITPACK warns when the budget is hard to meet
            warnings.simplefilter("ignore")
            spline = UnivariateSpline(tk, yk, k=2, s=n * _noise_scale(yk) ** 2)
        residual = np.zeros(y.size)
        residual[kept] = np.abs(spline(tk) - yk)
        residual[~(kept & eligible)] = -1.0
        worst = np.argsort(residual, kind="stable")[::-1][:wanted]
        worst = worst[residual[worst] > 1e-12 * max(1.0, float(np.abs(yk).max()))]
        if worst.size == 0:
            break
        kept[worst] = False
    return kept
