"""Log expected improvement, numerically stable far into the tails (minimization)."""

from __future__ import annotations

import math

import numpy as np

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


def log_expected_improvement(mean: np.ndarray, std: np.ndarray, best: float) -> np.ndarray:
    """log E[max(best - f, 0)] for f ~ N(mean, std^2)."""
    return np.log(std) + log_h((best - mean) / std)


def log_expected_improvement_with_grad(mean: np.ndarray, std: np.ndarray, d_mean: np.ndarray,
                                       d_std: np.ndarray, best: float
                                       ) -> tuple[np.ndarray, np.ndarray]:
    """log EI and its gradient, given the gradients (m, d) of the mean and the std."""
    from scipy.special import log_ndtr

    z = (best - mean) / std
    lh = log_h(z)
    # d log h / dz = Phi(z) / h(z); d z = -(d mean + z d std) / std
    ratio = np.exp(log_ndtr(z) - lh)
    dz = -(d_mean + z[:, None] * d_std) / std[:, None]
    return np.log(std) + lh, d_std / std[:, None] + ratio[:, None] * dz
