"""Bayesian extrapolation of a partial learning curve: a predictive distribution of its value at
a later step.

The model is an ensemble of parametric families, each written as y = w₀ + w₁·g(u; θ) with a
shape g from the family and its nonlinear parameters θ on a fixed grid (a deterministic
particle approximation of their posterior). Given θ the model is linear-Gaussian with a
conjugate Normal-Inverse-Gamma prior on (w, σ²), so each particle's evidence and Student-t
predictive are exact and cheap; the ensemble weights particles by evidence. Real curves are
neither exactly parametric nor independently noisy, so two constants calibrated on real
training curves (see benchmarks/curves.py) temper the evidence and add a model-discrepancy term
that grows with the extrapolation distance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hyperlaw.errors import HyperlawError

# The two constants below were chosen by `python benchmarks/curves.py --calibrate` on half of
# the real training curves of benchmarks/data (MLPs and CNNs on digits, character-level GRU
# language models), for 80% and 95% interval coverage from 10%, 25% and 50% of a curve.
#: Fraction of the log-likelihood kept (real residuals are autocorrelated).
EVIDENCE_WEIGHT = 0.25
#: Model-discrepancy std per unit of log extrapolation distance, as a fraction of the observed
#: change of the curve.
DISCREPANCY = 1.0
#: Long curves are averaged into this many points before fitting.
MAX_POINTS = 64

_PRIOR_COEF_VARIANCE = 100.0  # w | σ² ~ N(0, σ²·v₀·I) in the curve's normalised units
_PRIOR_A, _PRIOR_B = 1.0, 1e-4  # σ² ~ InvGamma(a₀, b₀): a noise floor of ~1% of the range


@dataclass(frozen=True)
class Prediction:
    """A predictive distribution: a mixture of Student-t components.

    `mean` is its mean; `quantiles(q)`, `cdf(x)` and `interval(level)` read it.
    """

    mean: float
    weights: np.ndarray = field(repr=False)
    locs: np.ndarray = field(repr=False)
    scales: np.ndarray = field(repr=False)
    dof: float = field(repr=False)

    @property
    def std(self) -> float:
        """The standard deviation of the predictive mixture."""
        variance = self.scales**2 * (self.dof / (self.dof - 2.0) if self.dof > 2 else 1e6)
        second = float(np.sum(self.weights * (variance + self.locs**2)))
        return math.sqrt(max(second - self.mean**2, 0.0))

    def cdf(self, x: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """P(value <= x)."""
        from scipy import special

        points = np.asarray(x, dtype=float)
        z = (points[..., None] - self.locs) / self.scales
        result = np.sum(self.weights * special.stdtr(self.dof, z), axis=-1)
        return float(result) if result.ndim == 0 else result

    def quantiles(self, q: float | Sequence[float] | np.ndarray) -> float | np.ndarray:
        """The value below which the curve lands with probability q (each q in (0, 1))."""
        from scipy import special

        probs = np.asarray(q, dtype=float)
        if np.any((probs <= 0) | (probs >= 1)) or np.any(np.isnan(probs)):
            raise HyperlawError(f"quantiles must lie strictly between 0 and 1, got {q!r}")
        # the components share one Student-t: tabulate its CDF once (in asinh(z), which keeps
        # the table fine near 0 and reaching far into the tails), then bisect the mixture
        grid = np.linspace(-13.0, 13.0, 1301)
        table = special.stdtr(self.dof, np.sinh(grid))
        weights, locs, scales = self.weights, self.locs, self.scales

        def mixture_cdf(x: np.ndarray) -> np.ndarray:
            z = np.arcsinh((x[..., None] - locs) / scales)
            return np.sum(weights * np.interp(z, grid, table), axis=-1)

        tail = special.stdtrit(self.dof, np.clip(probs, 1e-9, 1 - 1e-9))
        low = np.min(locs) + np.minimum(tail, 0) * np.max(scales) - 1e-12
        high = np.max(locs) + np.maximum(tail, 0) * np.max(scales) + 1e-12
        low = np.broadcast_to(low, probs.shape).astype(float)
        high = np.broadcast_to(high, probs.shape).astype(float)
        for _ in range(50):
            middle = 0.5 * (low + high)
            below = mixture_cdf(middle) < probs
            low = np.where(below, middle, low)
            high = np.where(below, high, middle)
        result = 0.5 * (low + high)
        return float(result) if result.ndim == 0 else result

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        """The central interval holding `level` of the probability."""
        low, high = np.asarray(self.quantiles([(1 - level) / 2, (1 + level) / 2]))
        return float(low), float(high)


# --- shapes: each fitted family as g(u; θ) on a grid of θ --------------------------------------
_POW3_ALPHAS = np.geomspace(0.02, 8.0, 20)[:, None]
_POW4_ALPHAS = np.geomspace(0.05, 8.0, 10)[:, None, None]
_POW4_SHIFTS = np.geomspace(0.3, 30.0, 5)[None, :, None]
_DELTAS = np.geomspace(0.3, 3.0, 6)[None, :, None]
_HALF_LIFE_FRACTIONS = np.linspace(0.0, 1.0, 14)[:, None, None]


def _shapes(u: np.ndarray, u_end: float) -> tuple[list[str], list[np.ndarray]]:
    """Per family, its shapes evaluated at `u` (rows: grid points). u >= 1 is the progress in
    units of the first observed step; `u_end` the last observed progress. Half-lives range
    from half a unit to 30 times the observed length."""
    low, high = math.log(0.5), math.log(30.0 * max(u_end, 1.0))
    half_lives = np.exp(low + (high - low) * _HALF_LIFE_FRACTIONS)
    ratio = np.power(u / half_lives, _DELTAS).reshape(-1, u.size)
    names = ["pow3", "pow4", "ilog2", "janoschek", "mmf"]
    shapes = [
        np.power(u, -_POW3_ALPHAS),
        np.power((u + _POW4_SHIFTS) / (1.0 + _POW4_SHIFTS), -_POW4_ALPHAS).reshape(-1, u.size),
        (math.log(2.0) / np.log(u + 1.0))[None, :],
        np.exp(-ratio * math.log(2.0)),  # Janoschek; exp3, exp4 and Weibull have these shapes
        1.0 / (1.0 + ratio),  # MMF; Hill and log-power have these shapes
    ]
    return names, shapes


FITTED_FAMILIES = ("pow3", "pow4", "ilog2", "janoschek", "mmf")


def _progress(steps: np.ndarray) -> tuple[float, float]:
    """(origin, unit) mapping a step to progress u = (step − origin)/unit + 1."""
    gaps = np.diff(steps)
    positive = gaps[gaps > 0]
    unit = float(np.min(positive)) if positive.size else max(float(steps[0]), 1.0)
    return float(steps[0]), unit


def _compress(u: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    if u.size <= limit:
        return u, y
    bins = np.array_split(np.arange(u.size), limit)
    return (np.array([u[b].mean() for b in bins]), np.array([y[b].mean() for b in bins]))


def extrapolate(steps: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray,
                at_step: float, *, evidence_weight: float = EVIDENCE_WEIGHT,
                discrepancy: float = DISCREPANCY) -> Prediction:
    """The predictive distribution of the curve's value at `at_step`, given its values so far.

    `steps` are increasing numbers in any unit (epochs, iterations, tokens); the first one
    counts as one unit of training. Works for rising and falling curves alike.
    """
    t = np.asarray(steps, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    if t.size == 0 or t.size != y.size:
        raise HyperlawError(
            f"extrapolate needs as many steps as values and at least one of each, got "
            f"{t.size} steps and {y.size} values"
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise HyperlawError("extrapolate: steps and values must be finite numbers; drop the "
                            "diverged (NaN or infinite) points first")
    if np.any(np.diff(t) <= 0):
        raise HyperlawError("extrapolate: steps must be strictly increasing; sort the curve "
                            "and drop repeated steps")
    if not math.isfinite(at_step):
        raise HyperlawError(f"extrapolate: at_step must be a finite number, got {at_step!r}")
    origin, unit = _progress(t)
    u = (t - origin) / unit + 1.0
    u_star = max((float(at_step) - origin) / unit + 1.0, 1.0)
    spread = float(np.ptp(y))
    scale = max(spread, 1e-9 * max(1.0, float(np.max(np.abs(y)))))
    horizon = max(math.log(u_star / u[-1]), 0.0)
    if y.size < 3:
        loc = float(y[-1])
        width = max(scale, 0.05 * abs(loc), 1e-12) * (1.0 + horizon)
        return Prediction(loc, np.ones(1), np.array([loc]), np.array([width]), 1.0)

    center = float(y[-1])
    u_fit, y_fit = _compress(u, (y - center) / scale, MAX_POINTS)
    n = u_fit.size
    _, shapes = _shapes(np.append(u_fit, u_star), float(u[-1]))
    prior_logs = []
    for shape in shapes:
        prior_logs.append(np.full(shape.shape[0], -math.log(len(shapes) * shape.shape[0])))
    g_all = np.vstack(shapes)
    log_prior = np.concatenate(prior_logs)
    g, g_star = g_all[:, :n], g_all[:, n]

    lam = evidence_weight
    inv_v0 = 1.0 / _PRIOR_COEF_VARIANCE
    s11 = lam * n + inv_v0
    s12 = lam * g.sum(axis=1)
    s22 = lam * np.einsum("kn,kn->k", g, g) + inv_v0
    r1 = lam * y_fit.sum()
    r2 = lam * (g @ y_fit)
    yy = lam * float(y_fit @ y_fit)
    det = s11 * s22 - s12 * s12
    m1 = (s22 * r1 - s12 * r2) / det
    m2 = (s11 * r2 - s12 * r1) / det
    a_n = _PRIOR_A + lam * n / 2.0
    b_n = np.maximum(_PRIOR_B + 0.5 * (yy - (r1 * m1 + r2 * m2)), 1e-12)
    log_evidence = -0.5 * np.log(det) - a_n * np.log(b_n) + log_prior
    weights = np.exp(log_evidence - np.max(log_evidence))
    keep = weights > 1e-8 * weights.max()
    weights = weights[keep] / weights[keep].sum()
    g_star, m1, m2, b_n, det = g_star[keep], m1[keep], m2[keep], b_n[keep], det[keep]
    s11, s12, s22 = s11, s12[keep], s22[keep]

    locs = m1 + m2 * g_star
    # x*ᵀ P⁻¹ x* with x* = [1, g*] and P⁻¹ = [[s22, −s12], [−s12, s11]] / det
    leverage = (s22 - 2.0 * s12 * g_star + s11 * g_star**2) / det
    dof = 2.0 * a_n
    variances = b_n / a_n * (1.0 + leverage)
    drift = discrepancy * horizon * (abs(float(y[0] - y[-1])) / scale)
    scales = np.sqrt(variances + drift**2)
    locs = center + scale * locs
    scales = scale * scales
    mean = float(np.sum(weights * locs))
    return Prediction(mean, weights, locs, scales, float(dof))
