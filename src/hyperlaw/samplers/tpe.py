"""Tree-structured Parzen estimator (Bergstra et al. 2011) on the unit-cube encoding.

Trials are ranked (complete by loss, then pruned by the step they reached and their last
value, then failed and, as a constant liar, running ones). The best `gamma(n)` form the
"good" density l(x), the rest the "bad" density g(x); candidates drawn from l maximize
l(x) / g(x). Dimensions that are active in the same trials form a group that is modelled
jointly (multivariate) and independently of other groups, so conditional spaces decompose.
With `multi_fidelity`, the model may fit the values of an intermediate budget instead
(`budgets.py`).

Several objectives (MOTPE, Ozaki et al. 2020, 2022) and constraints: complete trials are
ranked by Deb's constrained domination (`multiobjective.best_first`): feasible ones by
non-dominated rank, the front that straddles the split by hypervolume contribution, then the
infeasible ones by violation. Infeasible trials thus fall into the bad density unless fewer
than `gamma(n)` trials are feasible, when the least violating fill the good one and pull the
search towards the feasible region. (c-TPE's one split per constraint needs each
constraint's value; the violation is what every trial has.) Under MO-ASHA `multi_fidelity`
fits the rung with enough configurations, ranked by their vectors of values there, as BOHB
does for one objective; the rungs hold no constraints, so constrained studies fit `obs`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hyperlaw.history import History
from hyperlaw.history.observations import (
    COMPLETE,
    FAILED,
    PRUNED,
    RUNNING,
    Observations,
    categorical_mask,
    n_bins,
    observations,
    params_key,
)
from hyperlaw.samplers.base import ReplicaSalt, Sampler, avoid_tried
from hyperlaw.samplers.budgets import (
    MultiFidelity,
    check_multi_fidelity,
    fidelity,
    min_observations,
)
from hyperlaw.samplers.multiobjective import (
    best_first,
    is_constrained,
    objectives_of,
    violation_of,
)
from hyperlaw.samplers.priors import PRIOR_SHARE, SpacePrior, space_prior
from hyperlaw.samplers.sobol import SobolSampler
from hyperlaw.space import Space

_LOG_TINY = -700.0


def default_gamma(n: int) -> int:
    """Size of the good group: min(ceil(0.1 n), 25)."""
    return min(math.ceil(0.1 * n), 25)


def default_weights(n: int) -> np.ndarray:
    """Weights of n trials in time order: flat below 25, else older ones ramp from 1/n to 1."""
    if n < 25:
        return np.ones(n)
    ramp = np.linspace(1.0 / n, 1.0, num=n - 25)
    return np.concatenate([ramp, np.ones(25)])


class TPESampler(ReplicaSalt, Sampler):
    """TPE with quasi-random startup, grouped multivariate Parzen estimators and a prior.

    With `prior=` on parameters, two thirds of the startup points are drawn from the prior
    and the prior component of the good density l(x) is the user's prior instead of a flat
    kernel (the bad density keeps the flat one), see `priors.py`.

    `multi_fidelity` (True, False or "auto"): fit the largest budget with enough observations
    (see `budgets.py`); "auto" does so only while few trials are complete.
    """

    name = "tpe"

    def __init__(self, seed: int | None = None, *, n_startup_trials: int = 10,
                 n_ei_candidates: int = 24, multivariate: bool = True,
                 prior_weight: float = 1.0, constant_liar: bool = True,
                 multi_fidelity: MultiFidelity = "auto") -> None:
        super().__init__(seed)
        self.multi_fidelity = check_multi_fidelity(multi_fidelity, type(self).__name__)
        self.n_startup_trials = int(n_startup_trials)
        self.n_ei_candidates = int(n_ei_candidates)
        self.multivariate = bool(multivariate)
        self.prior_weight = float(prior_weight)
        self.constant_liar = bool(constant_liar)
        self._startup: SobolSampler | None = None

    def options(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials,
                "n_ei_candidates": self.n_ei_candidates, "multivariate": self.multivariate,
                "prior_weight": self.prior_weight, "constant_liar": self.constant_liar,
                "multi_fidelity": self.multi_fidelity}

    # --- suggestion ----------------------------------------------------------------------
    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        if space.dim == 0:
            return space.sample(self.rng(number))
        obs = observations(space, history)
        if obs.n_informative < self.n_startup_trials:
            return self.startup_point(space, history, number)
        fit = self.fit_observations(space, history, obs)
        rng = self.rng(number, self._replica)
        params = space.decode(self.propose(space, fit, rng))
        for attempt in range(40):  # a known configuration: propose again, then explore
            if params_key(params) not in obs.keys:
                break
            params = (space.decode(self.propose(space, fit, rng)) if attempt < 8
                      else space.sample(rng))
        return avoid_tried(space, params, obs.keys, rng)

    def fit_observations(self, space: Space, history: History,
                         obs: Observations) -> Observations:
        """What the model fits: `obs`, or the observations of an intermediate budget (with
        several objectives, their vectors there; not with constraints, which the rungs do not
        hold)."""
        if is_constrained(violation_of(obs)):
            return obs
        found = fidelity(space, history, obs, self.multi_fidelity,
                         min_observations(space, self.n_startup_trials))
        return obs if found is None else found.obs

    def startup_point(self, space: Space, history: History, number: int) -> dict[str, Any]:
        """Scrambled Sobol' point `number` (per-replica scramble), skipping known ones."""
        seed = (self.seed + self._replica) % 2**32
        if self._startup is None or self._startup.seed != seed:
            self._startup = SobolSampler(seed=seed)
        keys = observations(space, history).keys
        params = self._startup.suggest(space, history, number)
        prior = space_prior(space)
        rng = self.rng(number, self._replica, 7)
        if prior is not None and rng.random() < PRIOR_SHARE:  # a draw from the user's prior
            for _ in range(16):
                params = space.decode(prior.sample(rng, 1)[0])
                if params_key(params) not in keys:
                    break
        extra = 1
        while params_key(params) in keys and extra < 64:
            params = self._startup.suggest(space, history, number + 997 * extra)
            extra += 1
        if params_key(params) in keys:  # a nearly exhausted finite space
            params = avoid_tried(space, params, keys, self.rng(number, self._replica))
        return params

    def propose(self, space: Space, obs: Observations, rng: np.random.Generator) -> np.ndarray:
        """A unit-cube point maximizing l/g, group by group."""
        below, above = self.split(obs)
        x = np.nan_to_num(obs.x, nan=-1.0)  # keep NaN out of the arithmetic
        active = ~np.isnan(obs.x)
        cat = categorical_mask(space)
        bins = n_bins(space)
        point = rng.random(space.dim)
        prior = space_prior(space)
        for dims in self.groups(active):
            rows_b = below[active[below][:, dims].all(axis=1)]
            rows_a = above[active[above][:, dims].all(axis=1)]
            good = _Parzen(x[rows_b][:, dims], default_weights(len(rows_b)), cat[dims], bins[dims],
                           self.prior_weight, prior, dims)
            bad = _Parzen(x[rows_a][:, dims], default_weights(len(rows_a)), cat[dims], bins[dims],
                          self.prior_weight)
            candidates = good.sample(rng, self.n_ei_candidates)
            score = good.log_pdf(candidates) - bad.log_pdf(candidates)
            point[dims] = candidates[int(np.argmax(score))]
        return point

    @staticmethod
    def rank(obs: Observations, n_top: int = 0) -> np.ndarray:
        """Indices of complete trials by loss, then pruned ones by step reached and loss.
        With several objectives or constraints complete trials are in `best_first` order,
        exact for the first `n_top`."""
        complete = obs.of_state(COMPLETE)
        pruned = obs.of_state(PRUNED)
        if ranks_by_domination(obs):
            complete = complete[best_first(objectives_of(obs)[complete],
                                           violation_of(obs)[complete], n_top)]
        else:
            complete = complete[np.argsort(obs.loss[complete], kind="stable")]
        pruned = pruned[np.lexsort((obs.loss[pruned], -obs.step[pruned]))]
        return np.concatenate([complete, pruned])

    def split(self, obs: Observations) -> tuple[np.ndarray, np.ndarray]:
        """Trial indices (in time order) of the good and the bad group."""
        n_good = default_gamma(len(obs.of_state(COMPLETE, PRUNED)))
        ranked = self.rank(obs, n_good)
        worst = [obs.of_state(FAILED)]
        if self.constant_liar:
            worst.append(obs.of_state(RUNNING))
        good = np.sort(ranked[:n_good])
        bad = np.sort(np.concatenate([ranked[n_good:], *worst]))
        return good, bad

    def groups(self, active: np.ndarray) -> list[np.ndarray]:
        """Dimensions with identical activity across trials, modelled jointly."""
        d = active.shape[1]
        if not self.multivariate:
            return [np.array([j]) for j in range(d)]
        found: dict[bytes, list[int]] = {}
        for j in range(d):
            found.setdefault(np.packbits(active[:, j]).tobytes(), []).append(j)
        return [np.array(v) for v in found.values()]


def ranks_by_domination(obs: Observations) -> bool:
    """True when trials are ranked by constrained domination: several objectives, or
    constraints."""
    return objectives_of(obs).shape[1] > 1 or is_constrained(violation_of(obs))


def neighbour_bandwidths(x: np.ndarray) -> np.ndarray:
    """Per observation and dimension, the larger gap to its sorted neighbours (the ends of
    [0, 1] count as neighbours, except that the outermost kernels use their inner gap)."""
    n, d = x.shape
    order = np.argsort(x, axis=0, kind="stable")
    srt = np.take_along_axis(x, order, axis=0)
    padded = np.vstack([np.zeros((1, d)), srt, np.ones((1, d))])
    gaps = np.diff(padded, axis=0)
    sig = np.maximum(gaps[:-1], gaps[1:])
    if n >= 2:
        sig[0] = gaps[1]
        sig[-1] = gaps[-2]
    out = np.empty_like(sig)
    np.put_along_axis(out, order, sig, axis=0)
    return out


class _Parzen:
    """A mixture of one kernel per observation plus a prior kernel, on [0, 1]^d.

    Continuous dimensions use truncated normals (bin masses for discrete ones); unordered
    choices use a categorical kernel leaning to the observed value.
    """

    def __init__(self, x: np.ndarray, weights: np.ndarray, cat: np.ndarray, bins: np.ndarray,
                 prior_weight: float, prior: SpacePrior | None = None,
                 dims: np.ndarray | None = None) -> None:
        n, d = x.shape
        self.cat = cat
        self.bins = bins
        # the prior component: flat, or the user's prior on these dimensions (`priors.py`)
        prior_mu, prior_sigma = np.full(d, 0.5), np.ones(d)
        prior_probs: dict[int, np.ndarray] = {}
        if prior is not None and dims is not None:
            has = prior.numeric[dims]
            prior_mu[has], prior_sigma[has] = prior.mu[dims][has], prior.sigma[dims][has]
            local = {int(j): i for i, j in enumerate(dims)}
            prior_probs = {local[j]: p for j, p in prior.probs if j in local}
        mus = np.vstack([x, prior_mu[None, :]])
        w = np.append(weights, prior_weight)
        self.log_w = np.log(w / w.sum())
        self.mu = mus
        floor = np.maximum(1.0 / min(100.0, n + 2.0),
                           np.where(bins > 0, 0.5 / np.maximum(bins, 1), 0.0))
        sigma = np.clip(neighbour_bandwidths(x), floor, 1.0) if n else np.ones((0, d))
        self.sigma = np.vstack([sigma, prior_sigma[None, :]])
        # categorical kernels: weight 1 on the observed value plus a uniform smoothing
        self.cat_probs: list[np.ndarray] = []
        for j in np.flatnonzero(cat):
            k = int(bins[j])
            idx = np.minimum((mus[:n, j] * k).astype(np.int64), k - 1)
            probs = np.full((n + 1, k), 1.0 / k)
            smooth = prior_weight / (n + 1)
            probs[:n] = smooth / k
            probs[np.arange(n), idx] += 1.0
            probs[:n] /= 1.0 + smooth
            if int(j) in prior_probs:
                probs[n] = prior_probs[int(j)]
            self.cat_probs.append(probs)

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        from scipy.special import ndtr, ndtri
        comp = rng.choice(len(self.log_w), size=m, p=np.exp(self.log_w))
        mu, sigma = self.mu[comp], self.sigma[comp]
        lo = ndtr(-mu / sigma)
        hi = ndtr((1.0 - mu) / sigma)
        u = rng.random(mu.shape)
        q = np.clip(lo + u * (hi - lo), 1e-12, 1 - 1e-12)
        out = np.clip(mu + sigma * ndtri(q), 0.0, 1.0)
        for c, j in enumerate(np.flatnonzero(self.cat)):
            probs = self.cat_probs[c][comp]
            k = probs.shape[1]
            cum = probs.cumsum(axis=1)
            idx = np.minimum((rng.random((m, 1)) * cum[:, -1:] > cum).sum(axis=1), k - 1)
            out[:, j] = (idx + 0.5) / k
        disc = (self.bins > 0) & ~self.cat
        if disc.any():
            k = self.bins[disc]
            out[:, disc] = (np.minimum(np.floor(out[:, disc] * k), k - 1) + 0.5) / k
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """Log density (bin mass for discrete dimensions) of each row of x."""
        from scipy.special import logsumexp, ndtr
        cont = ~self.cat
        mu = self.mu[None, :, cont]
        sigma = self.sigma[None, :, cont]
        xc = x[:, None, cont]
        z_norm = np.log(np.maximum(ndtr((1.0 - mu) / sigma) - ndtr(-mu / sigma), 1e-300))
        bins = self.bins[cont]
        disc = bins > 0
        lp = -0.5 * ((xc - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * math.log(2 * math.pi)
        if disc.any():
            k = bins[disc]
            lo = np.floor(xc[..., disc] * k) / k
            mass = (ndtr((lo + 1.0 / k - mu[..., disc]) / sigma[..., disc])
                    - ndtr((lo - mu[..., disc]) / sigma[..., disc]))
            lp[..., disc] = np.log(np.maximum(mass, 1e-300))
        total = (lp - z_norm).sum(axis=2)
        for c, j in enumerate(np.flatnonzero(self.cat)):
            probs = self.cat_probs[c]
            k = probs.shape[1]
            idx = np.minimum((x[:, j] * k).astype(np.int64), k - 1)
            total = total + np.log(probs[:, idx].T)
        return logsumexp(np.maximum(total, _LOG_TINY) + self.log_w[None, :], axis=1)
