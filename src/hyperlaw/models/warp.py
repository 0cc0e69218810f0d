"""Learned input warping (Snoek et al. 2014): each ordered input of the unit cube passes
through the CDF of a Kumaraswamy distribution, 1 - (1 - x^a)^b, before the kernel sees it.

a > 1 stretches the top of a range and b < 1 stretches its very end (an optimum on a face of
the box, such as an elastic net's lasso edge at l1_ratio = 1); a < 1 and b > 1 do the same at
the bottom. A stationary kernel then models a function that changes quickly in one part of
a range and slowly in the rest. The exponents are fitted with the kernel's hyperparameters,
by the same maximum a posteriori fit, under a log-normal prior centred on the identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hyperlaw.models.gp import (
    FIT_FTOL,
    Chain,
    GaussianProcess,
    Hyper,
    fit_map,
    hyper_bounds,
    neg_log_posterior,
    neg_log_posterior_with_distance_grad,
    sq_dists,
)
from hyperlaw.models.linalg import single_threaded_blas

#: inputs are squeezed into [eps, 1 - eps] first: the warp's slope at 0 (a < 1) or at 1
#: (b < 1) is then finite, and so are the acquisition's gradients on the box's faces
_EPS = 1e-7
#: bounds of log a and log b: 1/4 maps the last 1% of a range onto a third of it
_LOG_EXPONENT = (math.log(0.25), math.log(4.0))
#: variance of the normal prior of log a and log b (centred on 0, the identity)
_PRIOR_VAR = 0.75


@dataclass
class InputWarp:
    """Log Kumaraswamy exponents a and b of the ordered inputs (`ordered`: their indices);
    the other inputs (unordered choices) pass unchanged."""

    ordered: np.ndarray
    log_a: np.ndarray
    log_b: np.ndarray

    @classmethod
    def identity(cls, cat: np.ndarray) -> InputWarp:
        """No warp on any ordered input of a space with choices `cat`."""
        ordered = np.flatnonzero(~cat)
        return cls(ordered, np.zeros(len(ordered)), np.zeros(len(ordered)))

    def vector(self) -> np.ndarray:
        return np.concatenate([self.log_a, self.log_b])

    def with_vector(self, v: np.ndarray) -> InputWarp:
        m = len(self.ordered)
        return InputWarp(self.ordered, np.array(v[:m]), np.array(v[m:]))

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        a, b = np.exp(self.log_a), np.exp(self.log_b)
        u = _EPS + (1.0 - 2.0 * _EPS) * np.clip(x[:, self.ordered], 0.0, 1.0)
        ua = u**a
        rest = 1.0 - ua  # in (0, 1): u < 1
        restb = rest**b
        return a, b, u, ua, rest, restb

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The warped inputs (rows of the unit cube; x itself under the identity)."""
        if self.is_identity():
            return x
        out = x.copy()
        out[:, self.ordered] = 1.0 - self._parts(x)[5]
        return out

    def apply_with_slope(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The warped inputs and d warped / d input, elementwise (1 for unwarped inputs)."""
        if self.is_identity():
            return x, np.ones_like(x)
        a, b, u, ua, rest, restb = self._parts(x)
        out, slope = x.copy(), np.ones_like(x)
        out[:, self.ordered] = 1.0 - restb
        slope[:, self.ordered] = (1.0 - 2.0 * _EPS) * a * b * ua / u * restb / rest
        return out, slope

    def exponent_slopes(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The warped ordered inputs (n, m) and their derivatives in log a and in log b."""
        a, b, u, ua, rest, restb = self._parts(x)
        d_log_a = b * restb / rest * ua * np.log(u) * a
        d_log_b = -restb * np.log(rest) * b
        return 1.0 - restb, d_log_a, d_log_b

    def is_identity(self) -> bool:
        return not np.any(self.log_a) and not np.any(self.log_b)


def log_prior(v: np.ndarray) -> tuple[float, np.ndarray]:
    """Log prior density (up to a constant) of the log exponents, and its gradient."""
    return -0.5 * float(v @ v) / _PRIOR_VAR, -v / _PRIOR_VAR


def warped_objective(x: np.ndarray, y: np.ndarray, cat: np.ndarray, warp: InputWarp
                     ) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """The negative log posterior of [kernel hyperparameters (`Hyper.vector`), warp exponents
    (`InputWarp.vector`, on `warp`'s inputs)] given inputs x and targets y, with its gradient."""
    n_hyper, ordered = len(cat) + 2, warp.ordered

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        h = v[:n_hyper]
        warped, d_log_a, d_log_b = warp.with_vector(v[n_hyper:]).exponent_slopes(x)
        xw = x.copy()
        xw[:, ordered] = warped
        value, grad_h, q = neg_log_posterior_with_distance_grad(h, sq_dists(xw, xw, cat), y)
        # d value / d exponent of input k: sum_ij q_ij inv_ls2_k d (w_ik - w_jk)^2, with q
        # symmetric: 4 inv_ls2_k sum_i dw_ik (w_ik rowsum_i - (q w)_ik)
        pull = warped * q.sum(axis=1)[:, None] - q @ warped
        inv_ls2 = np.exp(-2.0 * h[:-2])[ordered]
        grad_w = 4.0 * inv_ls2 * np.stack([(d_log_a * pull).sum(axis=0),
                                           (d_log_b * pull).sum(axis=0)])
        lp, lp_grad = log_prior(v[n_hyper:])
        return value - lp, np.concatenate([grad_h, grad_w.ravel() - lp_grad])

    return objective


#: kernel hyperparameters and the warp of the inputs, fitted together
Fit = tuple[Hyper, InputWarp]


def fit_warped(x: np.ndarray, y: np.ndarray, cat: np.ndarray, start: Fit | None,
               max_iter: int, warped: bool = True, d2: np.ndarray | None = None
               ) -> tuple[Fit, float]:
    """MAP kernel hyperparameters and warp exponents, fitted together from `start` (the prior's
    centre, no warp, when None or of another space), and the negative log posterior there.
    Without `warped`, the kernel alone is fitted (the warp is the identity), on `d2`, the
    plain inputs' `sq_dists`, when given."""
    from scipy.optimize import minimize

    hyper = start[0] if start is not None and len(start[0].log_ls) == len(cat) else None
    if not warped:
        kernel, value = fit_map(x, y, cat, hyper, max_iter, d2)
        return (kernel, InputWarp.identity(cat)), value
    warp = start[1] if hyper is not None and start is not None else InputWarp.identity(cat)
    v0 = np.concatenate([(hyper or Hyper.initial(len(cat))).vector(), warp.vector()])
    bounds = hyper_bounds(cat) + [_LOG_EXPONENT] * len(warp.vector())
    v0 = np.clip(v0, [b[0] for b in bounds], [b[1] for b in bounds])
    objective = warped_objective(x, y, cat, warp)
    with single_threaded_blas():
        res = minimize(objective, v0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": max_iter, "ftol": FIT_FTOL})
    converged = bool(np.all(np.isfinite(res.x)) and np.isfinite(res.fun) and res.fun < 1e9)
    best, value = (res.x, float(res.fun)) if converged else (v0, objective(v0)[0])
    n_hyper = len(cat) + 2
    return (Hyper.from_vector(best[:n_hyper]), warp.with_vector(best[n_hyper:])), value


def neg_log_posterior_of(x: np.ndarray, y: np.ndarray, cat: np.ndarray, fit: Fit,
                         d2: np.ndarray | None = None) -> float:
    """The negative log posterior of a fit for inputs x and targets y (of the plain inputs
    when the warp is the identity, as `fit_warped` fits them then, on `d2` when given)."""
    hyper, warp = fit
    if warp.is_identity():
        return neg_log_posterior(hyper.vector(), sq_dists(x, x, cat) if d2 is None else d2,
                                 y)[0]
    return warped_objective(x, y, cat, warp)(np.concatenate([hyper.vector(),
                                                             warp.vector()]))[0]


class WarpedGP:
    """A GP whose inputs are warped: it takes points of the unit cube and gives gradients in
    their coordinates. `gp` is fitted on the warped training inputs (`x`)."""

    def __init__(self, gp: GaussianProcess, warp: InputWarp) -> None:
        self.gp, self.warp = gp, warp
        self.x, self.alpha, self.hyper = gp.x, gp.alpha, gp.hyper

    def predict_mean(self, xs: np.ndarray) -> np.ndarray:
        return self.gp.predict_mean(self.warp.apply(xs))

    def predict(self, xs: np.ndarray, columns: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        return self.gp.predict(self.warp.apply(xs), columns=columns)

    def predict_with_grad(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, Chain]:
        if self.warp.is_identity():  # the local searches' hot path: no slopes to apply
            return self.gp.predict_with_grad(xs)
        warped, slope = self.warp.apply_with_slope(xs)
        mean, std, chain = self.gp.predict_with_grad(warped)

        def warped_chain(u_mean: np.ndarray, u_std: np.ndarray) -> np.ndarray:
            return chain(u_mean, u_std) * slope

        return mean, std, warped_chain
