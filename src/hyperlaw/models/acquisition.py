"""Log expected improvement, numerically stable far into the tails (minimization)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hyperlaw.models.gp import Chain

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_HALF_PI = math.sqrt(math.pi / 2)


def log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z Phi(z)), the log of the standardized expected improvement."""
    from scipy.special import erfcx, ndtr

    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    mid = z > -1.0
    zm = z[mid]
    out[mid] = np.log(np.exp(-0.5 * zm * zm - _LOG_SQRT_2PI) + zm * ndtr(zm))
    zt = z[~mid]
    # phi(z) (1 + z Phi(z)/phi(z)), with Phi(z)/phi(z) = sqrt(pi/2) erfcx(-z/sqrt(2))
    ratio = _SQRT_HALF_PI * erfcx(-zt / math.sqrt(2.0))
    inner = np.log1p(zt * ratio)
    # far tail: 1 + z r(z) ~ 1/z^2 loses precision; use the asymptotic form there
    far = zt < -1e4
    inner[far] = -2.0 * np.log(-zt[far])
    out[~mid] = -0.5 * zt * zt - _LOG_SQRT_2PI + inner
    return out


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log sum exp over the last axis, kept as an axis of length 1 (scipy's costs more per
    call than the sum itself at these sizes)."""
    top = a.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.exp(a - top).sum(axis=-1, keepdims=True))


def log_expected_improvement(mean: np.ndarray, std: np.ndarray,
                             best: float | np.ndarray) -> np.ndarray:
    """log E[max(best - f, 0)] for f ~ N(mean, std^2) (`best`: one for all, or one each)."""
    return np.log(std) + log_h((best - mean) / std)


def log_expected_improvement_with_grad(mean: np.ndarray, std: np.ndarray, chain: Chain,
                                       best: float) -> tuple[np.ndarray, np.ndarray]:
    """log EI and its gradient, given the chain rule through the mean and the std (see
    `GaussianProcess.predict_with_grad`)."""
    from scipy.special import log_ndtr

    z = (best - mean) / std
    lh = log_h(z)
    # d log h / dz = Phi(z) / h(z); d z = -(d mean + z d std) / std
    ratio = np.exp(log_ndtr(z) - lh)
    return np.log(std) + lh, chain(-ratio / std, (1.0 - ratio * z) / std)


def fantasy_log_expected_improvement(mean: np.ndarray, std: np.ndarray,
                                     best: np.ndarray) -> np.ndarray:
    """log of the mean over fantasy worlds of EI: column j of mean (m, s) and best[j] belong
    to world j, std (m,) is shared. With the worlds drawn from the joint posterior at the
    pending points (and best[j] their incumbent), this is the part of the batch expected
    improvement (q-EI) that depends on the new point, integrated exactly over its value."""
    lei = np.log(std)[:, None] + log_h((best[None, :] - mean) / std[:, None])
    return _logsumexp(lei)[:, 0] - math.log(mean.shape[1])


def fantasy_log_expected_improvement_with_grad(
        mean: np.ndarray, std: np.ndarray, chain: Chain, best: np.ndarray
        ) -> tuple[np.ndarray, np.ndarray]:
    """`fantasy_log_expected_improvement` and its gradient, given the chain rule through the
    means (m, s) and the shared std."""
    from scipy.special import log_ndtr

    z = (best[None, :] - mean) / std[:, None]
    lh = log_h(z)
    lei = np.log(std)[:, None] + lh
    total = _logsumexp(lei)
    weight = np.exp(lei - total)  # each world's share of the mean EI
    u = weight * np.exp(log_ndtr(z) - lh)  # weight * d log h / dz
    # d log EI_j = d std / std + (Phi/h)_j * (-(d mean_j + z_j d std) / std)
    grad = chain(-u / std[:, None], (1.0 - (u * z).sum(axis=1)) / std)
    return total[:, 0] - math.log(mean.shape[1]), grad


def log_probability_below(mean: np.ndarray, std: np.ndarray, threshold: float) -> np.ndarray:
    """log P(f <= threshold) for f ~ N(mean, std^2) (a probability of feasibility)."""
    from scipy.special import log_ndtr

    return log_ndtr((threshold - mean) / std)


def log_probability_below_with_grad(mean: np.ndarray, std: np.ndarray, chain: Chain,
                                    threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """`log_probability_below` and its gradient, given the chain rule through the mean and
    the std."""
    from scipy.special import log_ndtr

    z = (threshold - mean) / std
    log_cdf = log_ndtr(z)
    ratio = np.exp(-0.5 * z * z - _LOG_SQRT_2PI - log_cdf)  # phi(z) / Phi(z)
    # d z = -(d mean + z d std) / std
    return log_cdf, chain(-ratio / std, -ratio * z / std)
