"""Loss prediction across learning-rate schedules with the LR-annealing law.

L(s) = L0 + A * S1(s)^-alpha - C * S2(s), where S1 is the area under the learning-rate curve up
to step s (warmup included) and S2 the annealing area: S2(s) = sum of m_i, m_i = decay *
m_(i-1) + (lr_(i-1) - lr_i) (Tissue et al. 2024, arXiv 2408.11029). The annealing area counts
from the step where the learning rate peaks, so warmup does not enter it. The decay factor sets
how long a drop takes to pay off (about 1 / (1 - decay) steps); the paper used 0.999 on long runs,
and by default it is fitted here along with L0, A, alpha and C. Fit on one or two recorded loss
curves, then predict the whole curve under another schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hyperlaw.errors import AnnealingFitError
from hyperlaw.lr_schedules.base import Schedule

DEFAULT_DECAY = 0.999  # the paper's value, used when the curves cannot tell decay factors apart
DECAY_RANGE = (0.9, 0.9999)  # decay factors a fit considers
HUBER_DELTA = 1e-3
# past this many points per curve the fit bins neighbouring points: a law of five parameters
# needs no more, and the fit's cost grows with the points
FIT_POINTS = 1024


@dataclass(frozen=True)
class LossCurve:
    """A recorded run: its per-step learning rates (or schedule) and losses at some steps."""

    lrs: Any  # a Schedule, or an array with the rate of every step 0 .. max(steps)
    steps: ArrayLike
    losses: ArrayLike


def lr_areas(lrs: ArrayLike, decay: float = DEFAULT_DECAY) -> tuple[NDArray[np.float64],
                                                                    NDArray[np.float64]]:
    """S1 and S2 after every step of `lrs` (the rate each update used, warmup included).

    S1(s) = sum of lr_i for i <= s, warmup included; S2(s) = sum of m_i for i <= s with
    m_i = decay * m_(i-1) + (lr_(i-1) - lr_i), where drops before the first peak count as 0.
    """
    from scipy.signal import lfilter

    eta = np.asarray(lrs, dtype=float).reshape(-1)
    if eta.size == 0:
        return eta.copy(), eta.copy()
    drops = np.zeros_like(eta)
    drops[1:] = eta[:-1] - eta[1:]
    drops[: int(np.argmax(eta)) + 1] = 0.0  # warmup does not anneal
    return np.cumsum(eta), np.cumsum(lfilter([1.0], [1.0, -decay], drops))


def _rates(lrs: Any, n_steps: int) -> NDArray[np.float64]:
    if isinstance(lrs, Schedule):
        return lrs.values(n_steps)
    eta = np.asarray(lrs, dtype=float).reshape(-1)
    if len(eta) < n_steps:
        raise AnnealingFitError(
            f"the learning rates cover {len(eta)} steps but losses reach step {n_steps - 1}; "
            f"pass an array of {n_steps} rates, one per step 0 .. {n_steps - 1} (the last "
            "step + 1), or the Schedule itself")
    if not np.all(np.isfinite(eta)) or np.any(eta < 0):
        raise AnnealingFitError("learning rates must be finite and >= 0")
    return eta


def _as_curve(curve: Any) -> LossCurve:
    if isinstance(curve, LossCurve):
        return curve
    if isinstance(curve, Mapping):
        return LossCurve(lrs=curve["lrs"], steps=curve["steps"], losses=curve["losses"])
    if isinstance(curve, Sequence) and len(curve) == 3:
        return LossCurve(*curve)
    raise AnnealingFitError("each curve must be a LossCurve, a dict with lrs/steps/losses or "
                            f"a (lrs, steps, losses) tuple; got {type(curve).__name__}")


@dataclass(frozen=True)
class AnnealingLaw:
    """A fitted LR-annealing law; `predict(schedule, steps)` gives the loss curve."""

    l0: float
    a: float
    alpha: float
    c: float
    decay: float = DEFAULT_DECAY

    def predict(self, schedule: Schedule | ArrayLike, steps: ArrayLike) -> NDArray[np.float64]:
        """The predicted loss at `steps` under `schedule` (a Schedule or per-step rates)."""
        s = np.asarray(steps, dtype=float)
        index = np.floor(s).astype(int)
        if np.any(index < 0):
            raise AnnealingFitError("steps must be >= 0")
        eta = _rates(schedule, int(index.max()) + 1 if index.size else 1)
        s1, s2 = lr_areas(eta, self.decay)
        return self._loss(s1[index], s2[index])

    def final_loss(self, schedule: Schedule | ArrayLike, total_steps: int) -> float:
        """The predicted loss at the last step of a run of `total_steps` steps."""
        return float(self.predict(schedule, [total_steps - 1])[0])

    def _loss(self, s1: NDArray[np.float64], s2: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.l0 + self.a * np.maximum(s1, 1e-12) ** -self.alpha - self.c * s2

    @classmethod
    def fit(cls, curves: Sequence[Any], *, decay: float | None = None,
            min_step: int | None = None) -> AnnealingLaw:
        """Fit L0, A, alpha and C (and the decay factor) jointly on recorded curves.

        The loss is a Huber loss on log losses (delta 1e-3, as in Chinchilla-style fits),
        minimized with L-BFGS-B from the best linear least-squares starts. With `decay=None`
        (the default) the decay factor is fitted too: the 4-parameter fit is profiled over
        decay factors 0.9 .. 0.9999 (an annealing effect delayed by 10 to 10,000 steps) and the
        best fit is kept. Curves without any annealing cannot tell decay factors apart; they get
        0.999. Points before `min_step` are ignored; by default each curve's warmup (the steps
        before its learning rate first peaks) is. A curve of more than 1,024 points
        (`FIT_POINTS`) is fitted on 1,024 bins of neighbouring points.
        """
        from hyperlaw.models.linalg import single_threaded_blas

        if not curves:
            raise AnnealingFitError("fit needs at least one loss curve")
        if decay is not None and not 0 < decay < 1:
            raise AnnealingFitError(f"decay must lie in (0, 1) or be None (fitted), "
                                    f"got {decay!r}")
        points = [(eta, *binned_points(index, losses, FIT_POINTS))
                  for eta, index, losses in (_curve_points(raw, min_step) for raw in curves)]
        if sum(len(index) for _, index, _ in points) < 4:
            raise AnnealingFitError(f"only {sum(len(i) for _, i, _ in points)} points after "
                                    "warmup; record more of the curve (the law has 4 parameters)")
        log_y = np.log(np.concatenate([losses for _, _, losses in points]))

        def fit_at(decay: float) -> tuple[float, NDArray[np.float64]]:
            s1s, s2s = [], []
            for eta, index, _ in points:
                s1, s2 = lr_areas(eta, decay)
                s1s.append(s1[index])
                s2s.append(s2[index])
            return _fit_fixed_decay(np.concatenate(s1s), np.concatenate(s2s), log_y)

        anneals = any(np.any(lr_areas(eta, DEFAULT_DECAY)[1][index] != 0)
                      for eta, index, _ in points)
        with single_threaded_blas():  # tiny problems: threaded BLAS only slows L-BFGS-B down
            if decay is None:
                decay = _best_decay(lambda d: fit_at(d)[0]) if anneals else DEFAULT_DECAY
            _, (l0, log_a, alpha, c) = fit_at(decay)
        return cls(l0=float(l0), a=math.exp(log_a), alpha=float(alpha), c=float(c), decay=decay)


def _best_decay(cost: Callable[[float], float]) -> float:
    """The decay factor in DECAY_RANGE whose fit costs least: a grid over log(1 - decay), then
    a bounded Brent search between the best grid point's neighbours."""
    from scipy.optimize import minimize_scalar

    grid = np.linspace(math.log(1 - DECAY_RANGE[1]), math.log(1 - DECAY_RANGE[0]), 13)
    costs = [cost(1 - math.exp(g)) for g in grid]
    k = int(np.argmin(costs))
    refined = minimize_scalar(lambda g: cost(1 - math.exp(g)), method="bounded",
                              bounds=(grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]),
                              options={"xatol": 0.02})
    return 1 - math.exp(float(refined.x) if refined.fun < costs[k] else float(grid[k]))


def _curve_points(raw: Any, min_step: int | None) -> tuple[NDArray[np.float64],
                                                           NDArray[np.int_], NDArray[np.float64]]:
    """A curve's per-step rates and the (step index, loss) pairs the fit uses."""
    curve = _as_curve(raw)
    steps = np.asarray(curve.steps, dtype=float).reshape(-1)
    losses = np.asarray(curve.losses, dtype=float).reshape(-1)
    if steps.shape != losses.shape or len(steps) < 2:
        raise AnnealingFitError("each curve needs matching steps and losses, at least 2")
    if not np.all(np.isfinite(losses)) or np.any(losses <= 0):
        raise AnnealingFitError("losses must be finite and > 0")
    if np.any(steps < 0):
        raise AnnealingFitError("steps must be >= 0")
    index = np.floor(steps).astype(int)
    eta = _rates(curve.lrs, int(index.max()) + 1)
    start = int(np.argmax(eta)) if min_step is None else min_step
    keep = index >= start
    return eta, index[keep], losses[keep]


def binned_points(index: NDArray[np.int_], losses: NDArray[np.float64],
                  n: int) -> tuple[NDArray[np.int_], NDArray[np.float64]]:
    """At most `n` points of a curve: runs of consecutive points binned, each bin standing at
    its middle step with the geometric mean of its losses, so that every point's noise still
    averages into the fit."""
    if len(index) <= n:
        return index, losses
    edges = np.round(np.linspace(0, len(index), n + 1)).astype(int)
    middle = index[(edges[:-1] + edges[1:] - 1) // 2]
    return middle, np.exp(np.add.reduceat(np.log(losses), edges[:-1]) / np.diff(edges))


def _fit_fixed_decay(s1: NDArray[np.float64], s2: NDArray[np.float64],
                     log_y: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """Huber loss on log losses, minimized over (L0, log A, alpha, C): its value and argmin."""
    from scipy.optimize import minimize

    log_s1 = np.log(np.maximum(s1, 1e-12))

    def objective(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        l0, log_a, alpha, c = theta
        power = np.exp(log_a - alpha * log_s1)  # A * S1^-alpha
        pred = l0 + power - c * s2
        if np.any(pred <= 0):
            return 1e6, np.zeros(4)
        r = np.log(pred) - log_y
        quad = np.abs(r) <= HUBER_DELTA
        loss = np.where(quad, 0.5 * r**2, HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA))
        slope = np.where(quad, r, HUBER_DELTA * np.sign(r)) / pred
        grad = [slope.sum(), slope @ power, -(slope * power) @ log_s1, -(slope @ s2)]
        return float(loss.sum()), np.array(grad)

    y = np.exp(log_y)
    bounds = [(0.0, 2.0 * float(y.max())), (-20.0, 10.0), (1e-3, 3.0), (0.0, 1e3)]
    starts = sorted((_linear_start(s1, s2, y, alpha) for alpha in np.geomspace(0.02, 3, 60)),
                    key=lambda t: t[0])[:3]
    best = min((minimize(objective, np.clip(theta, *np.array(bounds).T), method="L-BFGS-B",
                         jac=True, bounds=bounds) for _, theta in starts), key=lambda r: r.fun)
    return float(best.fun), best.x


def _linear_start(s1: NDArray[np.float64], s2: NDArray[np.float64], y: NDArray[np.float64],
                  alpha: float) -> tuple[float, NDArray[np.float64]]:
    """For a fixed alpha the law is linear in (L0, A, C): its least-squares fit and error."""
    design = np.column_stack([np.ones_like(s1), s1**-alpha, -s2])
    (l0, a, c), *_ = np.linalg.lstsq(design, y, rcond=None)
    a, c = max(a, 1e-9), max(c, 0.0)
    error = float(np.sum((l0 + a * s1**-alpha - c * s2 - y) ** 2))
    return error, np.array([l0, math.log(a), alpha, c])
