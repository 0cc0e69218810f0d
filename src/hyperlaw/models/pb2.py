"""The time-varying GP bandit of PB2 (Parker-Holder et al., NeurIPS 2020).

When population-based training replaces a weak member by a copy of a strong one, PB2 picks the
copy's new continuous hyperparameters x in [0, 1]^d with a GP-UCB bandit over the observed
reward changes. Each observation is a row (t, x, y): the time t at which an interval of
training ended, the (normalized) hyperparameters used during it and the change of reward y.
Older observations count less through the time-varying kernel (Bogunovic et al., 2016)

    k((t, x), (t', x')) = (1 - eps)^(|t - t'| / 2) * sigma^2 * exp(-||x - x'||^2 / l),

so `times` are best measured in perturbation intervals (the unit in which eps is a decay per
interval), although eps is fitted and adapts to other units. The kernel hyperparameters
(eps <= 0.5, sigma^2, l and a noise variance) maximize the marginal likelihood.

Everything here is pure numpy/scipy and stateless; the PBT scheduler calls `pb2_select`. The
Cholesky factorization and the likelihood are the Matérn GP's (`hyperlaw.models.linalg`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hyperlaw.models.gp import scaled_sq_dists
from hyperlaw.models.linalg import factor, gaussian_nll, single_threaded_blas

#: bounds of (eps, sigma^2, l, noise variance); the fit runs over their logarithms. The bounds
#: of eps follow the reference implementation; l <= 1 follows its clipping of the fitted
#: lengthscale (it keeps the spread informative on the unit cube); targets are standardized,
#: so sigma^2 and the noise are on the scale of 1.
_BOUNDS = np.log([(1e-5, 0.5), (1e-2, 1e2), (1e-3, 1.0), (1e-4, 1.0)])
_START = np.log([0.1, 1.0, 0.5, 1e-2])
_JITTER = 1e-8
#: the UCB weight is beta_t = 0.2 * ln(0.4 * n), floored for tiny n where the log is <= 0
_BETA_MIN = 0.05
#: above this many rows only a recent window is used, its length chosen in steps of 10
_MIN_WINDOW = 200
_WINDOW_STEP = 10
_MAX_WINDOW_CANDIDATES = 5
_MAX_WINDOW = 400
#: targets are standardized and clipped to this range (as in the reference implementation)
_CLIP = 2.0


@dataclass(frozen=True)
class TVHyper:
    """Hyperparameters of the time-varying kernel plus the noise variance."""

    epsilon: float
    variance: float
    lengthscale: float
    noise: float

    def log_vector(self) -> np.ndarray:
        return np.log([self.epsilon, self.variance, self.lengthscale, self.noise])

    @classmethod
    def from_log_vector(cls, v: np.ndarray) -> TVHyper:
        eps, var, ls, noise = np.exp(np.clip(v, _BOUNDS[:, 0], _BOUNDS[:, 1]))
        return cls(float(eps), float(var), float(ls), float(noise))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a.shape[1]
    return scaled_sq_dists(a, b, np.zeros(d, dtype=bool), np.ones(d))


def tv_kernel(ta: np.ndarray, xa: np.ndarray, tb: np.ndarray, xb: np.ndarray,
              hyper: TVHyper) -> np.ndarray:
    """k((t, x), (t', x')) between the rows (ta, xa) and (tb, xb); shape (len(ta), len(tb))."""
    decay = _time_decay(np.abs(ta[:, None] - tb[None, :]), hyper.epsilon)
    return hyper.variance * decay * np.exp(-_sq_dists(xa, xb) / hyper.lengthscale)


def _time_decay(dt: np.ndarray, epsilon: float) -> np.ndarray:
    return np.exp(0.5 * dt * math.log1p(-epsilon))


def neg_log_marginal_likelihood(log_h: np.ndarray, dt: np.ndarray, dx2: np.ndarray,
                                y: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood of y and its gradient in the log hyperparameters.

    `dt` holds the pairwise |t - t'| and `dx2` the pairwise ||x - x'||^2 of the rows.
    """
    n = len(y)
    eps, var, ls, noise = np.exp(log_h)
    k = var * np.exp(0.5 * math.log1p(-eps) * dt - dx2 / ls)
    kn = k.copy()
    kn[np.diag_indices(n)] += noise + _JITTER
    found = gaussian_nll(kn, y)
    if found is None:
        return 1e10, np.zeros(4)
    nll, alpha, k_inv = found  # the lower triangle of K^-1, zeros above
    # d nll / d log h = -1/2 sum((alpha alpha^T - K^-1) * dK/dlog h), and each dK/dlog h is k
    # times a factor; for symmetric factors the lower triangle of K^-1 counts twice off the
    # diagonal.
    trace_inv = float(np.trace(k_inv))
    k_inv *= 2.0
    k_inv[np.diag_indices(n)] *= 0.5
    w = np.outer(alpha, alpha)
    w -= k_inv
    w *= k
    grad = np.array([
        0.25 * eps / (1.0 - eps) * float(np.vdot(w, dt)),  # dK/dlog eps = -k dt/2 eps/(1-eps)
        -0.5 * float(w.sum()),
        -0.5 * float(np.vdot(w, dx2)) / ls,
        -0.5 * noise * (float(alpha @ alpha) - trace_inv),
    ])
    return nll, grad


def fit_tv_hyper(times: np.ndarray, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
                 *, restarts: int = 1, start: TVHyper | None = None,
                 max_iter: int = 60) -> tuple[TVHyper, float]:
    """Maximum-likelihood hyperparameters for standardized targets y, and the optimum's
    negative log marginal likelihood. L-BFGS-B over the bounded log hyperparameters from
    `start` (default: a fixed starting point) plus `restarts` random starts."""
    from scipy.optimize import minimize

    dt = np.abs(times[:, None] - times[None, :])
    dx2 = _sq_dists(x, x)
    lo, hi = _BOUNDS[:, 0], _BOUNDS[:, 1]
    starts = [start.log_vector() if start is not None else _START]
    starts += [lo + (hi - lo) * rng.random(4) for _ in range(restarts)]
    best, best_value = np.clip(starts[0], lo, hi), math.inf
    for h0 in starts:
        res = minimize(neg_log_marginal_likelihood, np.clip(h0, lo, hi), args=(dt, dx2, y),
                       jac=True, method="L-BFGS-B", bounds=list(map(tuple, _BOUNDS)),
                       options={"maxiter": max_iter})
        if np.all(np.isfinite(res.x)) and math.isfinite(res.fun) and res.fun < best_value:
            best, best_value = res.x, float(res.fun)
    return TVHyper.from_log_vector(best), best_value


class TVGaussianProcess:
    """Zero-mean GP posterior with the time-varying kernel, for fixed hyperparameters."""

    def __init__(self, times: np.ndarray, x: np.ndarray, y: np.ndarray, hyper: TVHyper) -> None:
        self.times, self.x, self.hyper = times, x, hyper
        k = tv_kernel(times, x, times, x, hyper)
        k[np.diag_indices_from(k)] += hyper.noise + _JITTER
        self._chol, self.alpha = factor(k, y)

    def _cross(self, now: float, xs: np.ndarray) -> np.ndarray:
        return tv_kernel(np.full(len(xs), now), xs, self.times, self.x, self.hyper)

    def predict(self, now: float, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at (now, rows of xs)."""
        from scipy.linalg import solve_triangular

        ks = self._cross(now, xs)
        v = solve_triangular(self._chol[0], ks.T, lower=True, check_finite=False)
        var = self.hyper.variance - np.einsum("ij,ij->j", v, v)
        return ks @ self.alpha, np.sqrt(np.maximum(var, 1e-12))

    def mean_and_grad(self, now: float, z: np.ndarray) -> tuple[float, np.ndarray]:
        """Posterior mean at (now, z) and its gradient in z."""
        ks = self._cross(now, z[None, :])[0]
        dks = ks[:, None] * (-2.0 / self.hyper.lengthscale) * (z[None, :] - self.x)
        return float(ks @ self.alpha), dks.T @ self.alpha

    def std_and_grad(self, now: float, z: np.ndarray) -> tuple[float, np.ndarray]:
        """Posterior standard deviation at (now, z) and its gradient in z."""
        from scipy.linalg import cho_solve

        ks = self._cross(now, z[None, :])[0]
        dks = ks[:, None] * (-2.0 / self.hyper.lengthscale) * (z[None, :] - self.x)
        w = cho_solve(self._chol, ks, check_finite=False)
        var = max(self.hyper.variance - float(ks @ w), 1e-12)
        std = math.sqrt(var)
        return std, -(dks.T @ w) / std


def standardize(y: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation, clipped to [-2, 2]; constant y gives zeros."""
    centred = y - y.mean()
    sd = float(centred.std())
    if sd <= 1e-12 * max(1.0, float(np.abs(y).max())):
        return np.zeros_like(y)
    return np.clip(centred / sd, -_CLIP, _CLIP)


def ucb_beta(n: int) -> float:
    """beta_t = 0.2 * ln(0.4 * n) for n data rows, floored at a small positive value."""
    return max(0.2 * math.log(0.4 * max(n, 1)), _BETA_MIN)


def select_window(times: np.ndarray, x: np.ndarray, y: np.ndarray,
                  rng: np.random.Generator) -> tuple[int, TVHyper]:
    """How many of the most recent rows (rows sorted by time) the model uses, and the kernel
    hyperparameters fitted on them (y raw).

    Up to 200 rows all are used. Beyond, candidate windows of the most recent 200, 210, ...
    rows are compared by their GP log marginal likelihood per row under the hyperparameters
    fitted on the 200-row window: a longer window wins only if its older rows fit the model
    of the recent ones as well as those do. The winner's hyperparameters are then refitted.
    To bound the cost, windows stop at 400 rows and at most 5 are tried (evenly spaced, in
    steps of a multiple of 10). The reference implementation refits every window in steps
    of 10 up to all rows and compares total likelihoods, which favour the shortest window
    since every added row lowers them.
    """
    n = len(y)
    if n <= _MIN_WINDOW:
        return n, fit_tv_hyper(times, x, standardize(y), rng)[0]
    longest = min(n - n % _WINDOW_STEP, _MAX_WINDOW)
    count = (longest - _MIN_WINDOW) // _WINDOW_STEP + 1
    stride = math.ceil(count / _MAX_WINDOW_CANDIDATES) * _WINDOW_STEP
    candidates = list(range(_MIN_WINDOW, longest + 1, stride))
    if candidates[-1] != longest:
        candidates.append(longest)
    recent, nll = fit_tv_hyper(times[-_MIN_WINDOW:], x[-_MIN_WINDOW:],
                               standardize(y[-_MIN_WINDOW:]), rng)
    scores = [nll / _MIN_WINDOW]
    log_h = recent.log_vector()
    for length in candidates[1:]:
        t, z = times[-length:], x[-length:]
        nll, _ = neg_log_marginal_likelihood(log_h, np.abs(t[:, None] - t[None, :]),
                                             _sq_dists(z, z), standardize(y[-length:]))
        scores.append(nll / length)
    length = candidates[int(np.argmin(scores))]
    if length == _MIN_WINDOW:
        return length, recent
    hyper, _ = fit_tv_hyper(times[-length:], x[-length:], standardize(y[-length:]), rng,
                            restarts=0, start=recent, max_iter=30)
    return length, hyper


def _check_inputs(times: np.ndarray, x: np.ndarray, y: np.ndarray,
                  running: np.ndarray) -> tuple[np.ndarray, ...]:
    times = np.asarray(times, dtype=float).reshape(-1)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.ndim != 2:
        raise ValueError(f"pb2_select: x must be a 2-D array of shape (rows, dimensions), got "
                         f"shape {x.shape}; reshape one-dimensional data with x[:, None]")
    if not len(times) == len(x) == len(y):
        raise ValueError(f"pb2_select: times, x and y must have one entry per row, got "
                         f"{len(times)}, {len(x)} and {len(y)}")
    running = np.asarray(running, dtype=float)
    if running.size == 0:
        running = np.empty((0, x.shape[1]))
    if running.ndim != 2 or running.shape[1] != x.shape[1]:
        raise ValueError(f"pb2_select: running must have shape (members, {x.shape[1]}) like "
                         f"the rows of x, got shape {running.shape}")
    for name, array in (("times", times), ("x", x), ("y", y), ("running", running)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"pb2_select: {name} contains NaN or infinite values; drop those "
                             "rows before calling")
    for name, array in (("x", x), ("running", running)):
        if array.size and (array.min() < -1e-9 or array.max() > 1 + 1e-9):
            raise ValueError(f"pb2_select: {name} must be normalized to [0, 1], got values in "
                             f"[{array.min():g}, {array.max():g}]; map each hyperparameter "
                             "from its bounds to [0, 1] first")
    return times, np.clip(x, 0.0, 1.0), y, np.clip(running, 0.0, 1.0)


def pb2_select(times: np.ndarray, x: np.ndarray, y: np.ndarray, running: np.ndarray,
               now: float, rng: np.random.Generator, *, restarts: int = 10) -> np.ndarray:
    """The next hyperparameters in [0, 1]^d for an exploited member, by PB2's GP-UCB.

    times, x, y: one row per finished interval: its end time, its normalized hyperparameters
    (shape (n, d)) and its raw reward change (standardized and clipped to [-2, 2] here).
    running: normalized hyperparameters of the members still training (shape (m, d), may be
    empty); they count as pseudo-observations at time `now`. The acquisition, maximized at
    time `now` by L-BFGS-B from `restarts` uniform random starts, is

        UCB(x) = mu(x) + sqrt(beta_t) * s(x),   beta_t = 0.2 * ln(0.4 * n),

    where mu is the posterior mean of a GP on the data and s the posterior standard deviation
    (as in the paper's formula; the reference implementation adds the variance instead) of a
    GP on the data plus the running points, so that the spread and with it the bonus shrink
    near configurations already being tried. Both GPs share the hyperparameters fitted on the
    data, which the pseudo-observations' arbitrary values must not influence. With more than
    200 rows only a recent window is used (see `select_window`). With fewer than two rows the
    answer is a uniform random point.
    """
    from scipy.optimize import minimize

    times, x, y, running = _check_inputs(times, x, y, running)
    if not math.isfinite(now):
        raise ValueError(f"pb2_select: now must be a finite time, got {now!r}")
    d = int(x.shape[1])
    if d == 0:
        return np.empty(0)
    if len(y) < 2:
        return rng.random(d)
    order = np.argsort(times, kind="stable")
    times, x, y = times[order], x[order], y[order]
    with single_threaded_blas():
        length, hyper = select_window(times, x, y, rng)
        times, x, y = times[-length:], x[-length:], standardize(y[-length:])
        mean_model = TVGaussianProcess(times, x, y, hyper)
        spread_model = mean_model
        if len(running):
            spread_model = TVGaussianProcess(
                np.concatenate([times, np.full(len(running), float(now))]),
                np.vstack([x, running]), np.zeros(length + len(running)), hyper)
        kappa = math.sqrt(ucb_beta(length))

        def negative_ucb(z: np.ndarray) -> tuple[float, np.ndarray]:
            mu, dmu = mean_model.mean_and_grad(now, z)
            s, ds = spread_model.std_and_grad(now, z)
            return -(mu + kappa * s), -(dmu + kappa * ds)

        best, best_value = rng.random(d), math.inf
        for start in rng.random((max(restarts, 1), d)):
            res = minimize(negative_ucb, start, jac=True, method="L-BFGS-B",
                           bounds=[(0.0, 1.0)] * d)
            point = np.clip(res.x, 0.0, 1.0)
            if np.all(np.isfinite(point)):
                value = negative_ucb(point)[0]
                if value < best_value:
                    best, best_value = point, value
    return best
