"""Loss prediction across learning-rate schedules with the multi-power law.

L(t) = L0 + A * (S1(t) + S_W)^-alpha - LD(t)                 (Luo et al. 2025, arXiv 2503.12811)
LD(t) = B * sum over k = 1..t of (lr_(k-1) - lr_k) * G(lr_k^-gamma * S_k(t))
G(x) = 1 - (C * x + 1)^-beta,  S_k(t) = lr_k + ... + lr_t

S1(t) + S_W is the area under the learning-rate curve up to step t, warmup included (S_W is the
warmup's area); the sum in LD runs over the steps after the peak, so warmup does not enter it.
Every learning-rate drop lowers the loss by up to B times its size, and the gain builds up as a
power law in the area trained since the drop (slower at smaller rates, through lr_k^-gamma). All
seven parameters are positive. Fit on two or three recorded curves (the paper fits constant and
cosine runs), then predict the whole curve under another schedule, e.g. WSD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hyperlaw.lr_schedules.base import Schedule
from hyperlaw.scaling.annealing import (
    HUBER_DELTA,
    AnnealingFitError,
    _curve_points,
    _linear_start,
    _rates,
    binned_points,
)

N_PARAMS = 7
START_C = (0.1, 1.0, 10.0)  # the paper starts at C = 1; its scale depends on the rates' units
START_SHAPE = 0.5  # the paper's start for beta and gamma
RATE_FLOOR = 1e-12  # relative to the peak: keeps lr_k^-gamma finite for steps at rate 0
# Cost bounds. The decay term pairs every fitted step with every step that lowered the rate;
# past these sizes the fit bins neighbouring points of each curve (each bin at its middle step,
# the geometric mean of its losses), and the drops are summed in bins (each holding at most
# 1/bins of the total drop, none across a fitted step), where a bin's rate and area are its
# drop-weighted means: a quadrature of a smooth sum. The starts are compared on a coarse
# version of the problem; the best is then fitted on the fine one.
FIT_POINTS, FIT_BINS = 256, 128  # per curve, at most
SCREEN_POINTS, SCREEN_BINS, SCREEN_NFEV = 64, 64, 100
EXACT_CELLS = 1 << 20  # step-by-drop pairs evaluated exactly in `predict`
PREDICT_CHUNK = 512  # steps per chunk of a long `predict`
PREDICT_BINS = 1024
# (L0, log A, alpha, log B, log C, beta, gamma); L0's upper bound is set by the data
BOUNDS = [(0.0, np.inf), (-20.0, 20.0), (1e-3, 3.0), (-20.0, 30.0), (-20.0, 20.0),
          (1e-3, 5.0), (0.0, 3.0)]


@dataclass(frozen=True)
class _DropTerms:
    """What LD(t) needs at some steps t, independent of the law's parameters."""

    area: NDArray[np.float64]  # S1(t) + S_W at each step
    drops: NDArray[np.float64]  # lr_(k-1) - lr_k at each post-peak step k with a change
    rates: NDArray[np.float64]  # lr_k at those steps, floored above 0
    areas_since: NDArray[np.float64]  # S_k(t), one row per step t, 0 where k > t

    @classmethod
    def build(cls, eta: NDArray[np.float64], index: NDArray[np.int_],
              max_bins: int | None = None) -> _DropTerms:
        """The terms at steps `index`: exact, or with the drops summed in bins when there
        are more than `max_bins` of them."""
        cumulative = np.cumsum(eta)
        peak = int(np.argmax(eta)) if eta.size else 0
        k = np.arange(peak + 1, int(index.max()) + 1 if index.size else peak + 1)
        drops = eta[k - 1] - eta[k]
        k, drops = k[drops != 0], drops[drops != 0]
        floor = RATE_FLOOR * max(float(eta.max()) if eta.size else 0.0, RATE_FLOOR)
        rates = np.maximum(eta[k], floor)
        before = cumulative[k - 1]  # S_k(t) = cumulative[t] - cumulative[k - 1]
        if max_bins is not None and len(k) > max_bins:
            k, drops, rates, before = _binned(k, drops, rates, before, index, max_bins)
        since = cumulative[index][:, None] - before[None, :]
        since = np.where(k[None, :] <= index[:, None], np.maximum(since, 0.0), 0.0)
        return cls(area=cumulative[index], drops=drops, rates=rates, areas_since=since)


def _binned(k: NDArray[np.int_], drops: NDArray[np.float64], rates: NDArray[np.float64],
            before: NDArray[np.float64], index: NDArray[np.int_],
            max_bins: int) -> tuple[NDArray[np.int_], NDArray[np.float64], NDArray[np.float64],
                                    NDArray[np.float64]]:
    """The drops summed in bins of consecutive steps: a bin never spans a step in `index` (so
    every member is on the same side of each evaluated step) and holds at most 1/max_bins of
    the total drop; its rate (geometric) and area are the drop-weighted means of its members'."""
    segment = np.searchsorted(np.unique(index), k, side="left")
    mass = np.abs(drops)
    share = np.floor((np.cumsum(mass) - mass) / (mass.sum() / max_bins)).astype(np.int64)
    _, first, inverse = np.unique(segment * (max_bins + 1) + share, return_index=True,
                                  return_inverse=True)
    inverse = inverse.reshape(-1)
    weight = np.bincount(inverse, mass)
    log_rate = np.bincount(inverse, mass * np.log(rates)) / weight
    mean_before = np.bincount(inverse, mass * before) / weight
    summed = np.asarray(np.bincount(inverse, drops), dtype=np.float64)
    return k[first], summed, np.exp(log_rate), mean_before


@dataclass(frozen=True)
class MultiPowerLaw:
    """A fitted multi-power law; `predict(schedule, steps)` gives the loss curve."""

    l0: float
    a: float
    alpha: float
    b: float
    c: float
    beta: float
    gamma: float

    def predict(self, schedule: Schedule | ArrayLike, steps: ArrayLike) -> NDArray[np.float64]:
        """The predicted loss at `steps` under `schedule` (a Schedule or per-step rates)."""
        s = np.asarray(steps, dtype=float)
        index = np.floor(s).astype(int).reshape(-1)
        if np.any(index < 0):
            raise AnnealingFitError("steps must be >= 0")
        eta = _rates(schedule, int(index.max()) + 1 if index.size else 1)
        theta = self._theta()
        if index.size * max(len(eta) - int(np.argmax(eta)), 1) <= EXACT_CELLS:
            return _evaluate(theta, _DropTerms.build(eta, index))[0].reshape(s.shape)
        out = np.empty(index.size)
        for start in range(0, index.size, PREDICT_CHUNK):
            chunk = index[start:start + PREDICT_CHUNK]
            terms = _DropTerms.build(eta, chunk, max_bins=PREDICT_BINS)
            out[start:start + PREDICT_CHUNK] = _evaluate(theta, terms)[0]
        return out.reshape(s.shape)

    def final_loss(self, schedule: Schedule | ArrayLike, total_steps: int) -> float:
        """The predicted loss at the last step of a run of `total_steps` steps."""
        return float(self.predict(schedule, [total_steps - 1])[0])

    def _theta(self) -> NDArray[np.float64]:
        return np.array([self.l0, math.log(self.a), self.alpha, math.log(self.b),
                         math.log(self.c), self.beta, self.gamma])

    @classmethod
    def fit(cls, curves: Sequence[Any], *, min_step: int | None = None) -> MultiPowerLaw:
        """Fit all seven parameters jointly on recorded curves (`LossCurve`s, dicts or tuples).

        As in the paper: a Huber loss (delta 1e-3) on log(predicted) - log(measured) over the
        points after warmup (or from `min_step`), started from a simpler law's fit: L0, A,
        alpha and B from L0 + A * S1^-alpha - B * (peak - lr_t), which is linear in L0, A and
        B for a fixed alpha, with beta = gamma = 0.5. The paper minimizes it with AdamW; here
        scipy's trust-region least squares (Huber loss, analytic Jacobian) does, from the best
        three simple fits times three starting C (0.1, 1, 10): each start is fitted (100
        evaluations at most) on a coarse version of the problem (64 points per curve, drops
        summed in 64 bins), and the best is fitted to convergence on at most 256 points per
        curve (bins of neighbouring points: each at its middle step, the geometric mean of its
        losses, so every point's noise still averages into the fit), drops in 128 bins (the
        exact sums below those sizes), so the cost stays flat however long the curves.
        At least one curve must lower its learning rate after the peak, or nothing tells the
        decay term's parameters.
        """
        from hyperlaw.models.linalg import single_threaded_blas

        if not curves:
            raise AnnealingFitError("fit needs at least one loss curve")
        points = [_curve_points(raw, min_step) for raw in curves]
        n_points = sum(len(index) for _, index, _ in points)
        if n_points < N_PARAMS:
            raise AnnealingFitError(f"only {n_points} points after warmup; record more of the "
                                    f"curves (the law has {N_PARAMS} parameters)")
        fine = _Problem.of(points, FIT_POINTS, FIT_BINS)
        terms = fine.terms
        if not any(t.drops.size and np.any(t.areas_since > 0) for t in terms):
            raise AnnealingFitError("no curve lowers its learning rate after the peak before "
                                    "its last point, so the decay term cannot be fitted; add a "
                                    "decaying run (e.g. cosine) to the constant one")
        if any(np.any(t.area <= 0) for t in terms):
            raise AnnealingFitError("the learning-rate area is 0 at a fitted point; start the "
                                    "curve (or min_step) after the first step with a rate > 0")
        with single_threaded_blas():  # small problems: threaded BLAS only slows them down
            coarse = _Problem.of(points, SCREEN_POINTS, SCREEN_BINS)
            theta = fine.solve(coarse.best_of(fine.starts(), SCREEN_NFEV)).x
        l0, log_a, alpha, log_b, log_c, beta, gamma = (float(v) for v in theta)
        return cls(l0=l0, a=math.exp(log_a), alpha=alpha, b=math.exp(log_b),
                   c=math.exp(log_c), beta=beta, gamma=gamma)


@overload
def _evaluate(theta: NDArray[np.float64], terms: _DropTerms,
              jacobian: Literal[False] = False) -> tuple[NDArray[np.float64], None]: ...


@overload
def _evaluate(theta: NDArray[np.float64], terms: _DropTerms,
              jacobian: Literal[True]) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...


def _evaluate(theta: NDArray[np.float64], terms: _DropTerms,
              jacobian: bool = False) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """The law's loss at the terms' steps and, optionally, its derivatives in theta."""
    l0, log_a, alpha, log_b, log_c, beta, gamma = theta
    b, c = math.exp(log_b), math.exp(log_c)
    log_area = np.log(np.maximum(terms.area, 1e-300))
    power = np.exp(log_a - alpha * log_area)  # A * (S1 + S_W)^-alpha
    cx = terms.areas_since * (c * terms.rates ** -gamma)
    log_u = np.log1p(cx)
    u_beta = np.exp(-beta * log_u)  # (C x + 1)^-beta
    drop = b * ((1.0 - u_beta) @ terms.drops)
    pred = l0 + power - drop
    if not jacobian:
        return pred, None
    slope = beta * u_beta / (1.0 + cx) * cx  # d G / d log C
    jac = np.column_stack([
        np.ones_like(pred), power, -power * log_area, -drop,
        -b * (slope @ terms.drops),
        -b * ((u_beta * log_u) @ terms.drops),
        b * ((slope * np.log(terms.rates)) @ terms.drops),  # d G / d gamma = -slope * log lr_k
    ])
    return pred, jac


@dataclass(frozen=True)
class _Problem:
    """The Huber fit on log losses of some points of the curves."""

    points: list[tuple[NDArray[np.float64], NDArray[np.int_], NDArray[np.float64]]]
    terms: list[_DropTerms]

    @classmethod
    def of(cls, points: list[tuple[NDArray[np.float64], NDArray[np.int_], NDArray[np.float64]]],
           n_points: int, n_bins: int) -> _Problem:
        """The problem on at most `n_points` points and `n_bins` bins of drops per curve."""
        binned = [(eta, *binned_points(index, losses, n_points)) for eta, index, losses in points]
        # exact sums while they cost no more than the bins would (few points, long curves)
        return cls(binned, [_DropTerms.build(eta, index,
                                             max_bins=max(n_bins, n_points * n_bins // len(index)))
                            for eta, index, _ in binned])

    @property
    def losses(self) -> NDArray[np.float64]:
        return np.concatenate([losses for _, _, losses in self.points])

    def residuals(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        pred = np.concatenate([_evaluate(theta, t)[0] for t in self.terms])
        return np.log(np.maximum(pred, 1e-12)) - np.log(self.losses)

    def jacobian(self, theta: NDArray[np.float64]) -> NDArray[np.float64]:
        parts = [_evaluate(theta, t, jacobian=True) for t in self.terms]
        pred = np.concatenate([p for p, _ in parts])
        return np.vstack([j for _, j in parts]) / np.maximum(pred, 1e-12)[:, None]

    def bounds(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        lower, upper = np.array(BOUNDS, dtype=float).T
        upper[0] = 2.0 * float(self.losses.max())  # the decay term can take the loss below L0
        return lower, upper

    def starts(self) -> list[NDArray[np.float64]]:
        """The best three fits of the simpler law, each with three starting C."""
        below_peak = np.concatenate([eta.max() - eta[index] for eta, index, _ in self.points])
        area = np.concatenate([t.area for t in self.terms])
        simple = sorted((_linear_start(area, below_peak, self.losses, alpha)
                         for alpha in np.geomspace(0.02, 3, 60)), key=lambda s: s[0])[:3]
        peak = max(float(eta.max()) for eta, _, _ in self.points)
        lower, upper = self.bounds()
        return [np.clip(np.array([l0, log_a, alpha, math.log(max(b, 1e-3 / peak)),
                                  math.log(c), START_SHAPE, START_SHAPE]),
                        lower + 1e-9, upper - 1e-9)
                for _, (l0, log_a, alpha, b) in simple for c in START_C]

    def solve(self, start: NDArray[np.float64], max_nfev: int = 2000) -> Any:
        """scipy's trust-region least squares from `start`."""
        from scipy.optimize import least_squares

        lower, upper = self.bounds()
        return least_squares(self.residuals, np.clip(start, lower + 1e-9, upper - 1e-9),
                             jac=self.jacobian, bounds=(lower, upper), loss="huber",
                             f_scale=HUBER_DELTA, x_scale="jac", max_nfev=max_nfev)

    def best_of(self, starts: list[NDArray[np.float64]], max_nfev: int) -> NDArray[np.float64]:
        """Of the solutions from `starts` (at most `max_nfev` evaluations each), the one with
        the lowest cost."""
        results = [self.solve(start, max_nfev) for start in starts]
        return np.asarray(min(results, key=lambda r: r.cost).x)
