"""A Gaussian-process regressor on the unit cube: Matérn-5/2 ARD kernel, learned noise, MAP.

Continuous and integer dimensions enter the distance as differences, unordered choices as
0/1 mismatches. Hyperparameters are fitted by maximizing the marginal likelihood times
priors (L-BFGS-B with analytic gradients, warm-started from the previous fit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hyperlaw.models.linalg import (
    factor,
    gaussian_nll,
    lower_times,
    single_threaded_blas,
    triangular_inverse,
)

_SQRT5 = math.sqrt(5.0)
#: entries of a distance or kernel matrix transformed at a time (128 KiB: in cache)
_BLOCK_CELLS = 2**14
#: chain(u_mean, u_std): the gradient (m, d) of u_mean * mean + u_std * std at each row
Chain = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: bounds of the log hyperparameters: lengthscales, signal variance, noise variance. An
#: ordered input spans [0, 1], so a lengthscale above 1 would call it nearly linear over its
#: whole range; capped there, the model keeps some doubt along every such input and the
#: acquisition keeps exploring it (unordered choices may still be found irrelevant).
_LOG_LS = (math.log(1e-2), math.log(30.0))
_LOG_LS_ORDERED = (math.log(1e-2), 0.0)
#: L-BFGS-B stops when a step improves the log posterior by less than this, relatively: far
#: finer than the posterior's own uncertainty about the hyperparameters
FIT_FTOL = 1e-6
_LOG_SCALE = (math.log(5e-2), math.log(20.0))
_LOG_NOISE = (math.log(1e-6), math.log(1.0))


def sq_dists(a: np.ndarray, b: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """Per-dimension squared differences, shape (len(a), len(b), d); mismatch for choices."""
    diff = a[:, None, :] - b[None, :, :]
    out = diff * diff
    if cat.any():
        out[..., cat] = (np.abs(diff[..., cat]) > 1e-9).astype(float)
    return out


def scaled_sq_dists(a: np.ndarray, b: np.ndarray, cat: np.ndarray,
                    inv_ls2: np.ndarray) -> np.ndarray:
    """sum_k inv_ls2[k] * sq_dists(a, b)[..., k] without the (len(a), len(b), d) tensor."""
    return _scaled_sq_dists(a, _ScaledSide(b, cat, inv_ls2))


class _ScaledSide:
    """One side of `scaled_sq_dists`, prepared once (a model's training inputs): ordered
    coordinates in lengthscale units and their squared norms, and the choices' columns."""

    def __init__(self, x: np.ndarray, cat: np.ndarray, inv_ls2: np.ndarray) -> None:
        self.x, self.inv_ls2 = x, inv_ls2
        self.choices = np.flatnonzero(cat)
        self.ordered = np.flatnonzero(~cat)
        self.weights = np.sqrt(inv_ls2[self.ordered])
        self.scaled = x[:, self.ordered] * self.weights
        self.norms = np.einsum("ij,ij->i", self.scaled, self.scaled)


def _scaled_sq_dists(a: np.ndarray, side: _ScaledSide,
                     then: Callable[[np.ndarray], None] | None = None) -> np.ndarray:
    """`scaled_sq_dists` from the rows of a to a prepared side, and `then` (in place) on
    them. The elementwise passes run on blocks of `_BLOCK_CELLS` entries, which stay in
    cache: a pool of candidates times the training inputs does not."""
    sa = a[:, side.ordered] * side.weights
    out = sa @ side.scaled.T
    norms = np.einsum("ij,ij->i", sa, sa)
    step = max(_BLOCK_CELLS // max(out.shape[1], 1), 1)
    for start in range(0, len(out), step):
        rows = slice(start, start + step)
        block = out[rows]
        block *= -2.0
        block += norms[rows, None]
        block += side.norms[None, :]
        np.maximum(block, 0.0, out=block)
        for k in side.choices:
            block += side.inv_ls2[k] * (np.abs(a[rows, k, None] - side.x[None, :, k]) > 1e-9)
        if then is not None:
            then(block)
    return out


def _sqrt5_root(r2: np.ndarray) -> None:
    """Squared distances to sqrt(5) r, in place."""
    r2 *= 5.0
    np.sqrt(r2, out=r2)


def matern52(r: np.ndarray) -> np.ndarray:
    """The Matérn-5/2 correlation at distances r (in lengthscales)."""
    return _matern52_scaled(_SQRT5 * r, overwrite=True)[0]


def _matern52_scaled(s: np.ndarray, overwrite: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(1 + s + s^2 / 3) exp(-s) for s = sqrt(5) r, and exp(-s) (for derivatives). With
    `overwrite`, s (a temporary of the caller) holds s^2 / 3 on return: pools of candidates
    are large, and every temporary of their size costs memory traffic."""
    e = np.negative(s)
    np.exp(e, out=e)
    k = 1.0 + s
    square = np.multiply(s, s, out=s if overwrite else None)
    square /= 3.0
    k += square
    k *= e
    return k, e


@dataclass
class Hyper:
    """Log lengthscales (one per dimension), log signal variance and log noise variance."""

    log_ls: np.ndarray
    log_scale: float
    log_noise: float

    def vector(self) -> np.ndarray:
        return np.concatenate([self.log_ls, [self.log_scale, self.log_noise]])

    @classmethod
    def from_vector(cls, v: np.ndarray) -> Hyper:
        return cls(np.array(v[:-2]), float(v[-2]), float(v[-1]))

    @classmethod
    def initial(cls, d: int) -> Hyper:
        """Unit lengthscales and signal variance, noise at the prior's mode."""
        return cls(np.zeros(d), 0.0, math.log(_NOISE_SHAPE - 1.0) - math.log(_NOISE_RATE))


#: Priors (the forms and constants of Optuna 4-5's GPSampler, `optuna/_gp/prior.py`):
#: every inverse squared lengthscale lam gets log p = -0.1 (lam + 1/lam), symmetric in log lam
#: around lam = 1 and steep beyond lengthscales of about 0.3 and 3; the signal variance is
#: Gamma(2, 1); the noise variance Gamma(1.1, 30), which keeps it small unless the data insist.
_LS_WEIGHT = 0.1
_EXACT_NOISE = 1e-8  # relative noise of rows observed without noise (fantasies)
_SCALE_SHAPE, _SCALE_RATE = 2.0, 1.0
_NOISE_SHAPE, _NOISE_RATE = 1.1, 30.0


def log_prior(h: np.ndarray, d: int) -> tuple[float, np.ndarray]:
    """Log prior density (up to a constant) of the log hyperparameters, and its gradient."""
    lam = np.exp(-2.0 * h[:-2])
    scale, noise = math.exp(h[-2]), math.exp(h[-1])
    grad = np.empty_like(h)
    lp = -_LS_WEIGHT * float(np.sum(lam + 1.0 / lam))
    grad[:-2] = 2.0 * _LS_WEIGHT * (lam - 1.0 / lam)
    lp += (_SCALE_SHAPE - 1.0) * h[-2] - _SCALE_RATE * scale
    grad[-2] = (_SCALE_SHAPE - 1.0) - _SCALE_RATE * scale
    lp += (_NOISE_SHAPE - 1.0) * h[-1] - _NOISE_RATE * noise
    grad[-1] = (_NOISE_SHAPE - 1.0) - _NOISE_RATE * noise
    return lp, grad


class GaussianProcess:
    """Posterior of a zero-mean GP given standardized targets, for fixed hyperparameters.

    `exact` marks rows observed without noise (fantasies of running trials, or drawn latent
    values: the model then expects nothing to learn there), given the relative noise variance
    `exact_noise`. y may hold several target columns (fantasy worlds that differ in the
    values of such rows): the means then have one column per world.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, cat: np.ndarray, hyper: Hyper,
                 d2: np.ndarray | None = None, exact: np.ndarray | None = None,
                 exact_noise: float = _EXACT_NOISE,
                 kernel_at_x: np.ndarray | None = None) -> None:
        self.x, self.y, self.cat, self.hyper = x, y, cat, hyper
        self.inv_ls2 = np.exp(-2.0 * hyper.log_ls)
        self.scale = math.exp(hyper.log_scale)
        self._side = _ScaledSide(x, cat, self.inv_ls2)  # the training side of distances
        #: the kernel between the training inputs (from `d2` when given, else as
        #: `cross_kernel(x)` gives it); `kernel_at_x` passes it when known already (not
        #: copied). It serves the means at the training inputs and models conditioned on more
        #: values at them (`fantasize`) without another pass over the distances
        if kernel_at_x is None:
            kernel_at_x = self.cross_kernel(x) if d2 is None else self._kernel(d2)
        self.kernel_at_x = kernel_at_x
        k = kernel_at_x.copy()
        noise = np.full(len(x), math.exp(hyper.log_noise))
        if exact is not None:  # nearly noise-free: two fantasies at one point stay solvable
            noise[exact] = exact_noise * self.scale
        k[np.diag_indices_from(k)] += noise + 1e-9 * self.scale
        self._chol, self.alpha = factor(k, y)
        self._chol_inv: np.ndarray | None = None
        self._gradient_terms: tuple[np.ndarray, np.ndarray] | None = None

    def _kernel(self, d2: np.ndarray) -> np.ndarray:
        r = np.sqrt(np.maximum(d2 @ self.inv_ls2, 0.0))
        return self.scale * matern52(r)

    def cross_kernel(self, xs: np.ndarray) -> np.ndarray:
        """Kernel between the rows of xs and the training inputs."""

        def kernel(block: np.ndarray) -> None:  # squared distances to the kernel, in place
            _sqrt5_root(block)
            block[...] = _matern52_scaled(block, overwrite=True)[0]
            block *= self.scale

        return _scaled_sq_dists(xs, self._side, kernel)

    def _scaled_distances(self, xs: np.ndarray) -> np.ndarray:
        """sqrt(5) r from each row of xs to each training input (r: the distance in units of
        the lengthscales)."""
        return _scaled_sq_dists(xs, self._side, _sqrt5_root)

    def chol_inv(self) -> np.ndarray:
        """The inverse of the lower Cholesky factor L of the training covariance (cached):
        K^-1 = L^-T L^-1, and a variance is k** - |L^-1 k*|^2 by one triangular product."""
        if self._chol_inv is None:
            self._chol_inv = triangular_inverse(self._chol[0])
        return self._chol_inv

    def _whitened(self, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L^-1 k* (one column per row of ks) and the variances k** - |L^-1 k*|^2. Near the
        data the two terms nearly cancel: an explicit K^-1 there, conditioned as badly as K
        (1e8 and more once trials crowd a basin with little noise), gives variances wrong by
        factors, which the log acquisition turns into noise; L^-1 is conditioned as the
        square root of K."""
        w = lower_times(self.chol_inv(), ks.T)
        return w, self.scale - np.einsum("ij,ij->j", w, w)

    def predict(self, xs: np.ndarray, columns: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at rows of xs (with
        target columns, the means of the first `columns` only when given)."""
        ks = self.cross_kernel(xs)
        mean = ks @ (self.alpha if columns is None else self.alpha[:, :columns])
        var = self._whitened(ks)[1]
        return mean, np.sqrt(np.maximum(var, 1e-12 * self.scale))

    def posterior_covariance(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and joint covariance of the latent function at the rows of xs (a
        few: one triangular solve, without the inverse)."""
        from scipy.linalg import solve_triangular

        ks = self.cross_kernel(xs)
        prior = self.scale * matern52(np.sqrt(scaled_sq_dists(xs, xs, self.cat, self.inv_ls2)))
        v = solve_triangular(self._chol[0], ks.T, lower=True, check_finite=False)
        return ks @ self.alpha, prior - v.T @ v

    def predict_mean(self, xs: np.ndarray) -> np.ndarray:
        """Posterior mean of the latent function at rows of xs (no variance: cheaper)."""
        if xs is self.x:
            return self.kernel_at_x @ self.alpha
        return self.cross_kernel(xs) @ self.alpha

    def predict_with_grad(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray, Chain]:
        """Posterior mean, standard deviation, and the chain rule through them:
        chain(u_mean, u_std) is, at each row of xs, the gradient (m, d) of
        u_mean * mean + u_std * std with respect to its non-categorical coordinates (zero for
        categorical ones). With target columns (fantasy worlds) the mean and u_mean have
        one column per world. An acquisition's derivatives in the mean and the standard
        deviation thus cost one pass over the training points, not one per output."""
        s = self._scaled_distances(xs)
        k, e = _matern52_scaled(s)
        ks = self.scale * k
        dk_dr2 = -self.scale * (5.0 / 6.0) * (1.0 + s) * e  # d k / d r^2
        mean = ks @ self.alpha
        w, var = self._whitened(ks)
        v = lower_times(self.chol_inv(), w, transposed=True).T  # rows k*' K^-1
        resolved = var > 1e-12 * self.scale
        std = np.sqrt(np.where(resolved, var, 1e-12 * self.scale))

        def chain(u_mean: np.ndarray, u_std: np.ndarray) -> np.ndarray:
            # d mean = sum_i alpha_i d k_i; d std = d var / (2 std) = -sum_i v_i d k_i / std
            by_mean = (u_mean[:, None] * self.alpha[None, :] if self.alpha.ndim == 1
                       else u_mean @ self.alpha.T)
            by_std = np.where(resolved, u_std / std, 0.0)[:, None] * v
            return self._weighted_gradient(xs, dk_dr2 * (by_mean - by_std))

        return mean, std, chain

    def _weighted_gradient(self, xs: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Gradient (m, d) of sum_i w[:, i] k(xs, x_i), given w = weights * d k / d r^2:
        d r^2 / d xs_k = 2 inv_ls2_k (xs_k - x_ik); zero for categorical coordinates."""
        cont = ~self.cat
        if self._gradient_terms is None:  # 2 inv_ls2 and the training inputs, where ordered
            self._gradient_terms = (2.0 * self.inv_ls2[cont], self.x[:, cont])
        twice_inv_ls2, x_ordered = self._gradient_terms
        every = not len(self._side.choices)  # every coordinate ordered: no gather, no scatter
        grad = twice_inv_ls2 * ((xs if every else xs[:, cont]) * w.sum(axis=1)[:, None]
                                - w @ x_ordered)
        if every:
            return grad
        out = np.zeros_like(xs)
        out[:, cont] = grad
        return out


def neg_log_posterior(h: np.ndarray, d2: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood minus log prior, and its gradient."""
    return neg_log_posterior_with_distance_grad(h, d2, y)[:2]


def neg_log_posterior_with_distance_grad(h: np.ndarray, d2: np.ndarray, y: np.ndarray
                                         ) -> tuple[float, np.ndarray, np.ndarray]:
    """`neg_log_posterior`, and q (n, n): its derivative in each squared scaled distance r_ij^2
    (what a learned warp of the inputs needs: d r_ij^2 / d d2_ijk = 1 / ls_k^2)."""
    n, d = y.shape[0], d2.shape[2]
    inv_ls2 = np.exp(-2.0 * h[:-2])
    scale, noise = math.exp(h[-2]), math.exp(h[-1])
    s = d2 @ inv_ls2  # sqrt(5) r, in place (as are the products below: n x n each)
    np.maximum(s, 0.0, out=s)
    np.sqrt(s, out=s)
    s *= _SQRT5
    k, e = _matern52_scaled(s)
    k *= scale
    kn = k.copy()
    kn[np.diag_indices(n)] += noise + 1e-9
    found = gaussian_nll(kn, y)
    if found is None:
        return 1e10, np.zeros_like(h), np.zeros((n, n))
    nll, alpha, k_inv = found
    k_inv = k_inv + np.tril(k_inv, -1).T  # the lower triangle only: mirror it
    w = np.outer(alpha, alpha) - k_inv
    grad = np.empty_like(h)
    g = 1.0 + s  # scale 5/3 (1 + s) e: d k / d log ls_k = g * d2_k / ls_k^2
    g *= scale * (5.0 / 3.0)
    g *= e
    g *= w
    grad[:-2] = -0.5 * np.einsum("ij,ijk->k", g, d2) * inv_ls2
    k *= w
    grad[-2] = -0.5 * float(np.sum(k))
    grad[-1] = -0.5 * noise * float(np.trace(w))
    lp, lp_grad = log_prior(h, d)
    g *= 0.25  # d nll / d r^2 (d r^2 / d log ls_k = -2 d2_k / ls_k^2)
    return nll - lp, grad - lp_grad, g


def hyper_bounds(cat: np.ndarray) -> list[tuple[float, float]]:
    """Bounds of `Hyper.vector()` for a space with unordered choices `cat`."""
    return [_LOG_LS if c else _LOG_LS_ORDERED for c in cat] + [_LOG_SCALE, _LOG_NOISE]


def fit_hyper(x: np.ndarray, y: np.ndarray, cat: np.ndarray, start: Hyper | None,
              max_iter: int, d2: np.ndarray | None = None) -> Hyper:
    """MAP hyperparameters, starting from `start` (a previous fit) or the prior mean."""
    return fit_map(x, y, cat, start, max_iter, d2)[0]


def fit_map(x: np.ndarray, y: np.ndarray, cat: np.ndarray, start: Hyper | None,
            max_iter: int, d2: np.ndarray | None = None) -> tuple[Hyper, float]:
    """`fit_hyper`, and `neg_log_posterior` at the hyperparameters found (the value the fit
    computed there: evidence without another factorization)."""
    from scipy.optimize import minimize

    d = x.shape[1]
    d2 = sq_dists(x, x, cat) if d2 is None else d2
    h0 = (start if start is not None and len(start.log_ls) == d else Hyper.initial(d)).vector()
    bounds = hyper_bounds(cat)
    h0 = np.clip(h0, [b[0] for b in bounds], [b[1] for b in bounds])
    seen: dict[bytes, float] = {}  # every value computed, by its point

    def objective(h: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = neg_log_posterior(h, d2, y)
        seen[h.tobytes()] = value
        return value, grad

    with single_threaded_blas():
        res = minimize(objective, h0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": max_iter, "ftol": FIT_FTOL})
    best = res.x if np.all(np.isfinite(res.x)) and res.fun < 1e9 else h0
    hyper = Hyper.from_vector(best)
    value = seen.get(hyper.vector().tobytes())
    if value is None:
        value = neg_log_posterior(hyper.vector(), d2, y)[0]
    return hyper, value
