"""Expected hypervolume improvement in log form, exact for independent per-objective
Gaussian posteriors.

A new point y adds sum_b prod_j max(0, upper_bj - max(y_j, lower_bj)) to the hypervolume,
over the disjoint boxes of the region no observed point dominates
(`pareto.improvement_boxes`). With independent objectives y_j ~ N(mu_j, sigma_j^2) the
expectation of each product is the product of the expectations, and for one factor

    E[max(0, u - max(y, l))] = sigma (h(beta) - h(alpha)),  alpha = (l - mu) / sigma,
                                                            beta = (u - mu) / sigma,

with h(z) = z Phi(z) + phi(z), the function of the expected improvement. Everything is summed
in log space (log h from `acquisition.log_h`), so the value stays finite and keeps a slope far
behind the front, where the improvement of almost every outcome is 0 (the failure of plain
EHVI that Ament et al. 2023, "Unexpected improvements to expected improvement", fix with
LogEHVI).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, logsumexp

from hyperlaw.models.acquisition import log_h

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def _log1mexp(x: np.ndarray) -> np.ndarray:
    """log(1 - exp(x)) for x <= 0, accurate at both ends."""
    x = np.minimum(x, -1e-300)
    return np.where(x > -0.6931, np.log(-np.expm1(x)), np.log1p(-np.exp(x)))


def _log_phi_difference(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """log(Phi(beta) - Phi(alpha)) for alpha < beta, by the tail that keeps precision."""
    upper = alpha > 0  # both in the upper tail: Phi(-alpha) - Phi(-beta)
    hi = np.where(upper, log_ndtr(-alpha), log_ndtr(beta))
    lo = np.where(upper, log_ndtr(-beta), log_ndtr(alpha))
    return hi + _log1mexp(lo - hi)


def log_ehvi(mean: np.ndarray, std: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
             grad: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | np.ndarray:
    """log EHVI at m candidates from their means and standard deviations (m, k) and the
    improvement boxes (b, k) (lower bounds may be -inf). With `grad`, also its derivatives
    with respect to the means and to the standard deviations (each (m, k))."""
    mu, sigma = mean[:, None, :], std[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        alpha = (lower[None] - mu) / sigma  # (m, b, k); -inf for unbounded boxes
        beta = (upper[None] - mu) / sigma
        log_hb, log_ha = log_h(beta), log_h(alpha)
        log_d = log_hb + _log1mexp(log_ha - log_hb)  # log(h(beta) - h(alpha))
        log_factor = np.log(sigma) + log_d
        log_box = log_factor.sum(axis=2)  # (m, b)
        value = logsumexp(log_box, axis=1)
        if not grad:
            return value
        weight = np.exp(log_box - value[:, None])[:, :, None]  # each box's share
        # d log factor / d mu = -(Phi(beta) - Phi(alpha)) / factor
        d_mu = -np.exp(_log_phi_difference(alpha, beta) - log_d) / sigma
        # d log factor / d sigma = (phi(beta) - phi(alpha)) / factor
        d_sigma = (np.exp(-0.5 * beta**2 - _LOG_SQRT_2PI - log_factor)
                   - np.exp(-0.5 * alpha**2 - _LOG_SQRT_2PI - log_factor))
    return (value, np.sum(weight * np.nan_to_num(d_mu), axis=1),
            np.sum(weight * np.nan_to_num(d_sigma), axis=1))
