"""The user's prior beliefs (`prior=` on a parameter) as a density on the unit cube.

A numeric parameter with `prior=v, prior_width=w` has a normal density centred on v's unit
coordinate with standard deviation w, truncated to [0, 1] (on the log scale for `log`
parameters; discrete ones take the mass of their bins). A `Choice` gives its preferred
value 1 - w + w/k and every other value w/k. Parameters without a prior are uniform. The
density is a product over dimensions; inactive (NaN) coordinates count as 1.

Samplers use it as follows (see the guide, "Priors and warm starts"):

- startup points: with probability `PRIOR_SHARE` a draw from the prior, else the sampler's
  uniform (Sobol') point, so a wrong prior still leaves a third of the start exploring;
- TPE: the prior is the Parzen estimators' prior component (instead of a flat kernel);
- GP (πBO, Hvarfner et al. 2022): the log acquisition gains (β / n) w log π(x), n the number
  of complete trials, so the prior steers early and fades as the data grow; w = min(1, 2s),
  s the prior's share against a uniform density in explaining the best third of the complete
  trials (`prior_share`), so a prior the data contradict stops steering;
- PriorBand (`PriorBandSampler`): new configurations mix uniform, prior and incumbent draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hyperlaw.space import DEFAULT_PRIOR_WIDTH, Choice, Space

#: share of startup points drawn from the prior (the rest stay uniform)
PRIOR_SHARE = 2.0 / 3.0
#: πBO's β: the prior's weight is β / n after n complete trials (the paper's default is 10)
PIBO_BETA = 10.0
_LOG_FLOOR = -50.0


@dataclass(frozen=True)
class SpacePrior:
    """The prior density of a space on the unit cube (see the module docstring).

    Attributes:
        mu: Centre per dimension (0.5 where a dimension has no numeric prior).
        sigma: Standard deviation per dimension (inf: uniform).
        probs: For each `Choice` dimension with a prior, its index and value probabilities.
    """

    mu: np.ndarray
    sigma: np.ndarray
    probs: tuple[tuple[int, np.ndarray], ...]

    @property
    def numeric(self) -> np.ndarray:
        """Dimensions with a normal prior."""
        return np.isfinite(self.sigma)

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """m points (m, d) drawn from the prior (uniform where a dimension has none)."""
        from scipy.special import ndtr, ndtri

        d = len(self.mu)
        out = rng.random((m, d))
        j = self.numeric
        if j.any():
            mu, sigma = self.mu[j], self.sigma[j]
            lo, hi = ndtr(-mu / sigma), ndtr((1.0 - mu) / sigma)
            q = np.clip(lo + out[:, j] * (hi - lo), 1e-12, 1 - 1e-12)
            out[:, j] = np.clip(mu + sigma * ndtri(q), 0.0, 1.0)
        for dim, probs in self.probs:
            idx = np.minimum(np.searchsorted(np.cumsum(probs), out[:, dim], side="right"),
                             len(probs) - 1)
            out[:, dim] = (idx + 0.5) / len(probs)
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density of each row of x (n, d) relative to uniform (0 where there is no
        prior); discrete dimensions count the density at their bin's centre."""
        x = np.atleast_2d(x)
        total = np.zeros(len(x))
        j = self.numeric
        if j.any():
            total += self._normal_terms(x[:, j], self.mu[j], self.sigma[j]).sum(axis=1)
        for dim, probs in self.probs:
            k = len(probs)
            col = x[:, dim]
            idx = np.minimum((np.nan_to_num(col, nan=0.0) * k).astype(np.int64), k - 1)
            total += np.where(np.isnan(col), 0.0, np.log(probs[idx] * k))
        return np.maximum(total, _LOG_FLOOR)

    def grad_log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Gradient of `log_pdf` with respect to x (zero along choices and where there is no
        prior)."""
        x = np.atleast_2d(x)
        grad = np.zeros_like(x)
        j = self.numeric
        grad[:, j] = -(x[:, j] - self.mu[j]) / self.sigma[j] ** 2
        return np.nan_to_num(grad)

    def _normal_terms(self, x: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        from scipy.special import ndtr

        mass = np.maximum(ndtr((1.0 - mu) / sigma) - ndtr(-mu / sigma), 1e-300)
        terms = (-0.5 * ((x - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)
                 - np.log(mass))
        return np.where(np.isnan(x), 0.0, terms)


def space_prior(space: Space) -> SpacePrior | None:
    """The prior density of `space`, or None when no parameter has a prior."""
    params = [space[name] for name in space.dims]
    if not any(p.has_prior for p in params):
        return None
    d = len(params)
    mu, sigma = np.full(d, 0.5), np.full(d, np.inf)
    probs: list[tuple[int, np.ndarray]] = []
    for j, param in enumerate(params):
        if not param.has_prior:
            continue
        width = float(param.prior_width or DEFAULT_PRIOR_WIDTH)
        if isinstance(param, Choice):
            k = param.n_values
            p = np.full(k, width / k)
            p[param.index(param.prior)] += 1.0 - width
            probs.append((j, p))
        else:
            mu[j], sigma[j] = param.to_unit(param.prior), width
    return SpacePrior(mu, sigma, tuple(probs))


def pibo_weight(n_complete: int, beta: float = PIBO_BETA) -> float:
    """πBO's exponent of the prior after `n_complete` trials: β / n."""
    return beta / max(n_complete, 1)


def contrast(density: SpacePrior, top: np.ndarray, rows: np.ndarray) -> float:
    """How much more likely `density` makes the best rows than all the rows: the mean log
    density of `top` minus that of `rows` (so rows a density proposed itself are no evidence
    for it)."""
    return float(density.log_pdf(top).mean() - density.log_pdf(rows).mean())


def evidence_weight(prior: SpacePrior, top: np.ndarray, rows: np.ndarray) -> float:
    """min(1, 2 `prior_share` against a uniform density): 1 while the prior explains the best
    rows `top` among `rows` at least as well as a uniform density, falling toward 0 as they
    lie farther from it than the rows do."""
    return min(1.0, 2.0 * prior_share(prior, top, rows))


def prior_share(prior: SpacePrior, top: np.ndarray, rows: np.ndarray,
                rival: SpacePrior | None = None) -> float:
    """The prior's share against `rival` (uniform when None) in explaining the best rows
    `top` among `rows`: the softmax of the two `contrast`s; 1/2 without top rows."""
    if not len(top):
        return 0.5
    gap = (0.0 if rival is None else contrast(rival, top, rows)) - contrast(prior, top, rows)
    return 1.0 / (1.0 + math.exp(max(min(gap, 50.0), -50.0)))
