"""Loss prediction across learning-rate schedules with the LR-annealing law.

L(s) = L0 + A * S1(s)^-alpha - C * S2(s), where S1 is the area under the learning-rate curve up
to step s and S2 the annealing area: S2(s) = sum of m_i, m_i = decay * m_(i-1) + (lr_(i-1) -
lr_i) (Tissue et al. 2024, arXiv 2408.11029). The annealing area counts from the step where the
learning rate peaks, so warmup does not enter it. Fit on one or two recorded loss curves, then
predict the whole curve under another schedule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hyperlaw.errors import HyperlawError
from hyperlaw.schedules.base import Schedule

DEFAULT_DECAY = 0.999
HUBER_DELTA = 1e-3


class AnnealingFitError(HyperlawError, ValueError):
    """Loss curves cannot be fitted (too short, mismatched lengths, non-positive losses)."""


@dataclass(frozen=True)
class LossCurve:
    """A recorded run: its per-step learning rates (or schedule) and losses at some steps."""

    lrs: Any  # a Schedule, or an array with the rate of every step 0 .. max(steps)
    steps: ArrayLike
    losses: ArrayLike


def lr_areas(lrs: ArrayLike, decay: float = DEFAULT_DECAY) -> tuple[NDArray[np.float64],
                                                                    NDArray[np.float64]]:
    """S1 (cumulative learning rate) and S2 (annealing area) at every step of `lrs`."""
    eta = np.asarray(lrs, dtype=float).reshape(-1)
    s1 = np.cumsum(eta)
    drops = np.zeros_like(eta)
    drops[1:] = eta[:-1] - eta[1:]
    drops[: int(np.argmax(eta)) + 1] = 0.0  # warmup does not anneal
    momentum = np.zeros_like(eta)
    level = 0.0
    for i, drop in enumerate(drops):
        level = decay * level + drop
        momentum[i] = level
    return s1, np.cumsum(momentum)


def _rates(lrs: Any, n_steps: int) -> NDArray[np.float64]:
    if isinstance(lrs, Schedule):
        return lrs.values(n_steps)
    eta = np.asarray(lrs, dtype=float).reshape(-1)
    if len(eta) < n_steps:
        raise AnnealingFitError(f"the learning rates cover {len(eta)} steps but losses reach "
                                f"step {n_steps - 1}; pass the rate of every step")
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
    def fit(cls, curves: Sequence[Any], *, decay: float = DEFAULT_DECAY,
            min_step: int | None = None) -> AnnealingLaw:
        """Fit L0, A, alpha and C on recorded curves (Huber loss on log losses, L-BFGS-B).

        Points before `min_step` are ignored; by default each curve's warmup (the steps before
        its learning rate first peaks) is.
        """
        from scipy.optimize import minimize

        if not curves:
            raise AnnealingFitError("fit needs at least one loss curve")
        if not 0 < decay < 1:
            raise AnnealingFitError(f"decay must lie in (0, 1), got {decay!r}")
        s1s, s2s, ys = [], [], []
        for raw in curves:
            curve = _as_curve(raw)
            steps = np.asarray(curve.steps, dtype=float).reshape(-1)
            losses = np.asarray(curve.losses, dtype=float).reshape(-1)
            if steps.shape != losses.shape or len(steps) < 2:
                raise AnnealingFitError("each curve needs matching steps and losses, at least 2")
            if not np.all(np.isfinite(losses)) or np.any(losses <= 0):
                raise AnnealingFitError("losses must be finite and > 0")
            index = np.floor(steps).astype(int)
            eta = _rates(curve.lrs, int(index.max()) + 1)
            s1, s2 = lr_areas(eta, decay)
            start = int(np.argmax(eta)) if min_step is None else min_step
            keep = index >= start
            s1s.append(s1[index[keep]])
            s2s.append(s2[index[keep]])
            ys.append(losses[keep])
        s1, s2, y = np.concatenate(s1s), np.concatenate(s2s), np.concatenate(ys)
        if len(y) < 4:
            raise AnnealingFitError(f"only {len(y)} points after warmup; record more of the "
                                    "curve (the law has 4 parameters)")
        log_y = np.log(y)

        def objective(theta: NDArray[np.float64]) -> float:
            l0, log_a, alpha, c = theta
            pred = l0 + math.exp(log_a) * s1**-alpha - c * s2
            if np.any(pred <= 0):
                return 1e6
            r = np.log(pred) - log_y
            quad = np.abs(r) <= HUBER_DELTA
            return float(np.sum(np.where(quad, 0.5 * r**2,
                                         HUBER_DELTA * (np.abs(r) - 0.5 * HUBER_DELTA))))

        bounds = [(0.0, 2.0 * float(y.max())), (-20.0, 10.0), (1e-3, 3.0), (0.0, 1e3)]
        starts = sorted((_linear_start(s1, s2, y, alpha) for alpha in np.geomspace(0.02, 3, 60)),
                        key=lambda t: t[0])[:3]
        best = min((minimize(objective, np.clip(theta, *np.array(bounds).T), method="L-BFGS-B",
                             bounds=bounds) for _, theta in starts), key=lambda r: r.fun)
        l0, log_a, alpha, c = best.x
        return cls(l0=float(l0), a=math.exp(log_a), alpha=float(alpha), c=float(c), decay=decay)


def _linear_start(s1: NDArray[np.float64], s2: NDArray[np.float64], y: NDArray[np.float64],
                  alpha: float) -> tuple[float, NDArray[np.float64]]:
    """For a fixed alpha the law is linear in (L0, A, C): its least-squares fit and error."""
    design = np.column_stack([np.ones_like(s1), s1**-alpha, -s2])
    (l0, a, c), *_ = np.linalg.lstsq(design, y, rcond=None)
    a, c = max(a, 1e-9), max(c, 0.0)
    error = float(np.sum((l0 + a * s1**-alpha - c * s2 - y) ** 2))
    return error, np.array([l0, math.log(a), alpha, c])
