"""PriorBand (Mallik et al. 2023), simplified: the sampler for Hyperband and ASHA when the
space carries priors.

Each new configuration is drawn from one of three sources:

- uniform, with probability p_u = 1 / (1 + η^r): r = 0 (p_u = 1/2) until some budget has
  η observed configurations, then r = 1 (p_u = 1/4 for η = 3). PriorBand ties r to the rung
  at which the new configuration enters its bracket; a sampler does not know the bracket,
  and a fixed quarter of uniform draws keeps a misleading prior or a local incumbent from
  taking every draw;
- the prior (`prior=` on the parameters, see `priors.py`);
- a perturbation of the incumbent (the best configuration at that budget): a normal of
  standard deviation `perturbation` on the unit scale around it for numeric parameters,
  half the mass kept on its value for choices.

The rest, 1 - p_u, is split between the prior and the incumbent by how well each explains
the best ⌈n/η⌉ configurations at the highest budget with η observations (the incumbent left
out): for each density, the mean log density of those best configurations minus that of all
configurations observed there (so configurations the prior itself proposed do not count as
evidence for it); the shares are the softmax of the two. A prior that points at the good
region keeps its share; one that misleads loses it to the incumbent. Without any prior the
rest goes to the incumbent (before an incumbent exists, to the uniform source).

The scheduler (ASHA, Hyperband) decides the fidelity; this sampler only decides the
configuration, from the values reported at the rung budgets (`budgets.py`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.history.observations import (
    COMPLETE,
    categorical_mask,
    observations,
    params_key,
)
from hyperlaw.samplers.base import ReplicaSalt, Sampler, avoid_tried
from hyperlaw.samplers.budgets import TOP, Fidelity, fidelity
from hyperlaw.samplers.priors import SpacePrior, prior_share, space_prior
from hyperlaw.space import Space

#: the sources a configuration is drawn from, in the order of `mix`
SOURCES = ("uniform", "prior", "incumbent")


class PriorBandSampler(ReplicaSalt, Sampler):
    """New configurations from a mix of uniform, prior and incumbent draws (PriorBand).

    Args:
        seed: Seed of the draws.
        reduction_factor: η, as in the scheduler (it sets p_u and the top share).
        perturbation: Standard deviation of the incumbent's perturbation (unit scale).
    """

    name = "priorband"

    def __init__(self, seed: int | None = None, *, reduction_factor: float = 3,
                 perturbation: float = 0.1) -> None:
        super().__init__(seed)
        if not reduction_factor > 1 or not 0 < perturbation <= 1:
            raise HyperlawError(
                f"PriorBandSampler: reduction_factor={reduction_factor!r} must be > 1 and "
                f"perturbation={perturbation!r} in (0, 1]; e.g. reduction_factor=3, "
                "perturbation=0.1")
        self.reduction_factor = float(reduction_factor)
        self.perturbation = float(perturbation)

    def options(self) -> dict[str, Any]:
        return {"reduction_factor": self.reduction_factor, "perturbation": self.perturbation}

    def mix(self, space: Space, history: History) -> tuple[dict[str, float], np.ndarray | None]:
        """The probability of each source (`SOURCES`) and the incumbent's unit row."""
        prior = space_prior(space)
        level = self._level(space, history)
        if level is None:
            share = 0.5 if prior is not None else 1.0
            return {"uniform": share, "prior": 1.0 - share, "incumbent": 0.0}, None
        order = np.argsort(level.obs.loss[level.obs.state == COMPLETE], kind="stable")
        rows = level.obs.x[level.obs.state == COMPLETE][order]
        incumbent = rows[0]
        p_uniform = 1.0 / (1.0 + self.reduction_factor)
        w_prior = 0.0
        if prior is not None:
            n_top = max(2, math.ceil(len(rows) / self.reduction_factor))
            w_prior = prior_share(prior, rows[1:n_top], rows[1:],
                                  rival=self._around(space, incumbent))
        rest = 1.0 - p_uniform
        return ({"uniform": p_uniform, "prior": rest * w_prior,
                 "incumbent": rest * (1.0 - w_prior)}, incumbent)

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        rng = self.rng(number, self._replica)
        if space.dim == 0:
            return space.sample(rng)
        probs, incumbent = self.mix(space, history)
        source = SOURCES[int(rng.choice(3, p=[probs[s] for s in SOURCES]))]
        keys = observations(space, history).keys
        params: dict[str, Any] = {}
        for _ in range(16):
            params = self._draw(space, source, incumbent, rng)
            if params_key(params) not in keys:
                break
        return avoid_tried(space, params, keys, rng)

    # --- parts ---------------------------------------------------------------------------
    def _level(self, space: Space, history: History) -> Fidelity | None:
        obs = observations(space, history)
        found = fidelity(space, history, obs, True, math.ceil(self.reduction_factor))
        if found is None and np.count_nonzero(obs.state == COMPLETE) >= self.reduction_factor:
            done = obs.state == COMPLETE  # no intermediate values: the complete trials
            return Fidelity(TOP, int(done.sum()), obs)
        return found

    def _around(self, space: Space, row: np.ndarray) -> SpacePrior:
        """The incumbent's perturbation as a density (see the module docstring)."""
        cat = categorical_mask(space)
        known = ~np.isnan(row)
        mu = np.where(known, row, 0.5)
        sigma = np.where(known & ~cat, self.perturbation, np.inf)
        probs = []
        for j in np.flatnonzero(cat & known):
            k = int(space[space.dims[j]].n_values or 1)
            p = np.full(k, 0.5 / k)
            p[min(int(row[j] * k), k - 1)] += 0.5
            probs.append((int(j), p))
        return SpacePrior(mu, sigma, tuple(probs))

    def _draw(self, space: Space, source: str, incumbent: np.ndarray | None,
              rng: np.random.Generator) -> dict[str, Any]:
        if source == "prior":
            density = space_prior(space)
        elif source == "incumbent" and incumbent is not None:
            density = self._around(space, incumbent)
        else:
            density = None
        if density is None:
            return space.sample(rng)
        return space.decode(density.sample(rng, 1)[0])
