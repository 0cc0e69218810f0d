"""Log expected improvement, numerically stable far into the tails (minimization)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import erfcx, log_ndtr, ndtr

if TYPE_CHECKING:
    from hyperlaw.models.gp import Chain

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z Phi(z)), the log of the standardized expected improvement."""
    return _log_h(z, slope=False)[0]


def _log_h_and_slope(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log h(z) and its derivative Phi(z) / h(z), where h(z) = phi(z) + z Phi(z)."""
    value, slope = _log_h(z, slope=True)
    assert slope is not None
    return value, slope


def _log_h(z: np.ndarray, slope: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """log h(z), and with `slope` its derivative (left out on the large pools scored
    without gradients)."""
    z = np.asarray(z, dtype=float)
    mid = z > -1.0
    if mid.all():
        return _log_h_near(z, slope)
    if not mid.any():
        return _log_h_tail(z, slope)
    low = ~mid  # z <= -1
    near, tail = _log_h_near(z[mid], slope), _log_h_tail(z[low], slope)
    out = np.empty_like(z)
    out[mid], out[low] = near[0], tail[0]
    if not slope:
        return out, None
    slopes = np.empty_like(z)
    slopes[mid], slopes[low] = near[1], tail[1]
    return out, slopes


def _log_phi(z: np.ndarray) -> np.ndarray:
    """log phi(z), the log of the standard normal density, as a new array."""
    out = -0.5 * z
    out *= z
    out -= _LOG_SQRT_2PI
    return out


def _log_h_near(z: np.ndarray, slope: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """For z > -1: directly."""
    cdf = ndtr(z)
    h = _log_phi(z)  # phi(z) + z cdf, in place (pools of candidates are large)
    np.exp(h, out=h)
    h += z * cdf
    return np.log(h), cdf / h if slope else None


def _log_h_tail(z: np.ndarray, slope: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """For z <= -1: phi(z) (1 + z r(z)) with r = Phi/phi = sqrt(pi/2) erfcx(-z/sqrt(2))."""
    ratio = np.negative(z)  # in place from here on (pools of candidates are large)
    ratio /= math.sqrt(2.0)
    erfcx(ratio, out=ratio)
    ratio *= _SQRT_HALF_PI
    inner = z * ratio
    np.log1p(inner, out=inner)
    # far tail: 1 + z r(z) ~ 1/z^2 loses precision; use the asymptotic form there
    far = z < -1e4
    if far.any():
        inner[far] = -2.0 * np.log(-z[far])
    value = _log_phi(z)
    value += inner
    return value, ratio / np.exp(inner) if slope else None


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log sum exp over the last axis, kept as an axis of length 1 (scipy's costs more per
    call than the sum itself at these sizes)."""
    top = a.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    shifted = a - top
    np.exp(shifted, out=shifted)
    return top + np.log(shifted.sum(axis=-1, keepdims=True))


def log_expected_improvement(mean: np.ndarray, std: np.ndarray,
                             best: float | np.ndarray) -> np.ndarray:
    """log E[max(best - f, 0)] for f ~ N(mean, std^2) (`best`: one for all, or one each)."""
    return np.log(std) + log_h((best - mean) / std)


def log_expected_improvement_with_grad(mean: np.ndarray, std: np.ndarray, chain: Chain,
                                       best: float) -> tuple[np.ndarray, np.ndarray]:
    """log EI and its gradient, given the chain rule through the mean and the std (see
    `GaussianProcess.predict_with_grad`)."""
    z = (best - mean) / std
    lh, ratio = _log_h_and_slope(z)  # ratio: d log h / dz = Phi(z) / h(z)
    # d z = -(d mean + z d std) / std
    return np.log(std) + lh, chain(-ratio / std, (1.0 - ratio * z) / std)


def fantasy_log_expected_improvement(mean: np.ndarray, std: np.ndarray,
                                     best: np.ndarray) -> np.ndarray:
    """log of the mean over fantasy worlds of EI: column j of mean (m, s) and best[j] belong
    to world j, std (m,) is shared. With the worlds drawn from the joint posterior at the
    pending points (and best[j] their incumbent), this is the part of the batch expected
    improvement (q-EI) that depends on the new point, integrated exactly over its value."""
    z = best[None, :] - mean
    z /= std[:, None]
    lei = log_h(z)
    lei += np.log(std)[:, None]
    return _logsumexp(lei)[:, 0] - math.log(mean.shape[1])


def fantasy_log_expected_improvement_with_grad(
        mean: np.ndarray, std: np.ndarray, chain: Chain, best: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
    """`fantasy_log_expected_improvement` and its gradient, given the chain rule through the
    means (m, s) and the shared std."""
    z = (best[None, :] - mean) / std[:, None]
    lh, slope = _log_h_and_slope(z)
    lei = np.log(std)[:, None] + lh
    total = _logsumexp(lei)
    weight = np.exp(lei - total)  # each world's share of the mean EI
    u = weight * slope  # weight * d log h / dz
    # d log EI_j = d std / std + (Phi/h)_j * (-(d mean_j + z_j d std) / std)
    grad = chain(-u / std[:, None], (1.0 - (u * z).sum(axis=1)) / std)
    return total[:, 0] - math.log(mean.shape[1]), grad


def log_probability_below(mean: np.ndarray, std: np.ndarray, threshold: float) -> np.ndarray:
    """log P(f <= threshold) for f ~ N(mean, std^2) (a probability of feasibility)."""
    return log_ndtr((threshold - mean) / std)


def log_probability_below_with_grad(mean: np.ndarray, std: np.ndarray, chain: Chain,
                                    threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """`log_probability_below` and its gradient, given the chain rule through the mean and
    the std."""
    z = (threshold - mean) / std
    log_cdf = log_ndtr(z)
    ratio = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_cdf)  # phi(z) / Phi(z)
    # d z = -(d mean + z d std) / std
    return log_cdf, chain(-ratio / std, -ratio * z / std)
