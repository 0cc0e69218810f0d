"""Cost-aware search around the cost–performance front, in the spirit of CARBS (Fetterman et
al. 2023, "Tune As You Scale: Hyperparameter Optimization For Compute Efficient Training").

The question is not "the best loss" but "the best loss at each budget". Two Gaussian
processes (`models/gp.py`) model the objective and the log of the trial's cost
(`TrialRecord.cost[cost]`: wall seconds by default, or tokens, FLOPs, ... that the objective
added with `Trial.add_cost`). The complete trials that no cheaper trial beats form the front
(`analysis.cost.cost_frontier`). Each proposal aims at a target cost drawn uniformly over the
front's range of log cost and a tenth beyond its dearest member (so the whole front is
searched and pushed outwards, as CARBS samples a target cost along its front): candidates are
drawn around the three front members nearest that cost, plus a share drawn uniformly over the
space. They are scored by (`acquisition`):

- "ehvi" (default): the expected improvement of the hypervolume of the (log cost, loss)
  front, at the candidate's predicted cost (the front is a staircase, so this is a sum of
  expected improvements, one per step right of that cost, weighted by the step's width);
- "front_ei": CARBS's rule, the expected improvement of the loss over the front's value at the
  candidate's predicted cost, among the candidates predicted to cost about the target
  (without that window every proposal went to the band of cost where the front is steepest).

On the two tasks of `benchmarks/cost_aware.py` "ehvi" reached the larger hypervolume at equal
total cost (see benchmarks/README.md), and fitted the planted compute exponent of the test's
synthetic scaling surface more closely.

Unlike CARBS, the scaled parameters (model size, tokens) are ordinary parameters of the
space: the cost model learns how they drive the cost, so no cost formula is needed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hyperlaw.analysis.cost import trial_cost
from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.history.observations import categorical_mask, encode_row, params_key
from hyperlaw.models.acquisition import log_expected_improvement
from hyperlaw.models.gp import GaussianProcess, Hyper, fit_hyper, sq_dists
from hyperlaw.models.linalg import single_threaded_blas
from hyperlaw.pareto import non_dominated_ranks, pareto_mask
from hyperlaw.samplers.base import ReplicaSalt, Sampler
from hyperlaw.space import Space
from hyperlaw.trial import TrialState

#: how far past the dearest front member a target cost may lie, and the half-width of the
#: window of predicted costs around it, as fractions of the front's range of log cost
_BEYOND, _WINDOW = 0.1, 0.1


class CostAwareSampler(ReplicaSalt, Sampler):
    """Propose around the cost–performance front (CARBS-style; see the module docstring).

    `cost`: the key of `TrialRecord.cost` to trade the objective against. The first
    `n_startup_trials` configurations are drawn at random. `radius` is the standard deviation
    (on the unit cube) of the perturbation around a front member; `n_candidates` are scored,
    a fraction `explore` of them drawn uniformly; `acquisition` is "ehvi" or "front_ei". The
    models fit at most `max_points` trials (the first fronts of (cost, loss), recent first).
    With several objectives the first one is traded against cost.
    """

    name = "cost_aware"

    def __init__(self, seed: int | None = None, *, cost: str = "seconds",
                 n_startup_trials: int = 10, n_candidates: int = 1024, radius: float = 0.1,
                 explore: float = 0.2, acquisition: str = "ehvi",
                 max_points: int = 200) -> None:
        super().__init__(seed)
        if acquisition not in ("front_ei", "ehvi"):
            raise HyperlawError(f"CostAwareSampler: acquisition must be 'front_ei' or 'ehvi', "
                                f"got {acquisition!r}")
        self.acquisition = acquisition
        self.max_points = int(max_points)
        self.cost = str(cost)
        self.n_startup_trials = int(n_startup_trials)
        self.n_candidates = int(n_candidates)
        self.radius = float(radius)
        self.explore = float(explore)

    def options(self) -> dict[str, Any]:
        return {"cost": self.cost, "n_startup_trials": self.n_startup_trials,
                "n_candidates": self.n_candidates, "radius": self.radius,
                "explore": self.explore, "acquisition": self.acquisition,
                "max_points": self.max_points}

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        rng = self.rng(number, self._replica)
        data = self._data(space, history)
        if data is None and len(history.completed()) >= max(self.n_startup_trials, 3):
            raise HyperlawError(
                f"sampler cost_aware: none of the {len(history.completed())} complete trials "
                f"has a positive cost {self.cost!r}; report it from the objective with "
                f"trial.add_cost({self.cost}=...), or pass cost='seconds' (wall time)")
        if space.dim == 0 or data is None or len(data[1]) < max(self.n_startup_trials, 3):
            return space.sample(rng)
        with single_threaded_blas():
            return self._propose(space, history, rng, *data)

    def _data(self, space: Space, history: History
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, frozenset[str]] | None:
        """Unit-cube rows, signed losses and log costs of the complete trials that have the
        cost, and the keys of every configuration tried or running."""
        sign = history.sign()
        rows, losses, costs, keys = [], [], [], set()
        for t in history.trials:
            if t.params:
                keys.add(params_key(t.params))
            if t.state is not TrialState.COMPLETE or t.value is None or not t.feasible:
                continue
            amount = trial_cost(t, self.cost)
            if amount is None or not math.isfinite(t.value):
                continue
            rows.append(encode_row(space, t.params))
            losses.append(sign * float(t.value))
            costs.append(math.log(amount))
        if not rows:
            return None
        x = np.nan_to_num(np.array(rows).reshape(len(rows), space.dim), nan=0.5)
        return x, np.array(losses), np.array(costs), frozenset(keys)

    def _propose(self, space: Space, history: History, rng: np.random.Generator,
                 x: np.ndarray, loss: np.ndarray, log_cost: np.ndarray,
                 keys: frozenset[str]) -> dict[str, Any]:
        cat = categorical_mask(space)
        keep = _subset(log_cost, loss, self.max_points)
        x, loss, log_cost = x[keep], loss[keep], log_cost[keep]
        loss_model = _Model.fit(history, ("hl.carbs.loss", space.hash), x, loss, cat)
        cost_model = _Model.fit(history, ("hl.carbs.cost", space.hash), x, log_cost, cat)
        front = np.flatnonzero(pareto_mask(np.column_stack([log_cost, loss])))
        target, width = self._target_cost(log_cost[front], rng)
        centers = x[front[np.argsort(np.abs(log_cost[front] - target))[:3]]]
        candidates = self._candidates(space, centers, rng)
        mean, std = loss_model.predict(candidates)
        predicted_cost, _ = cost_model.predict(candidates)
        if self.acquisition == "ehvi":
            span = float(np.ptp(log_cost)) or 1.0
            score = log_hypervolume_improvement(
                mean, std, predicted_cost, log_cost[front], loss[front],
                float(log_cost.max()) + _BEYOND * span, float(loss.max()))
            width = np.inf
        else:
            threshold = _front_value(log_cost[front], loss[front], predicted_cost)
            score = log_expected_improvement(mean, std, threshold)
        # the candidates predicted to cost about the target, by score; then the others, the
        # nearest to the target first
        distance = np.abs(predicted_cost - target)
        outside = distance > width
        for i in np.lexsort((np.where(outside, distance, -score), outside)):
            params = space.decode(candidates[i])
            if params_key(params) not in keys:
                return params
        return space.sample(rng)

    @staticmethod
    def _target_cost(front_cost: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
        """A log cost to improve the front at, uniform over the front's range and a tenth
        beyond its dearest member, and the half-width of the window around it."""
        low, high = float(front_cost.min()), float(front_cost.max())
        span = max(high - low, 1e-3)
        target = rng.uniform(low, high + _BEYOND * span)
        return target, _WINDOW * span

    def _candidates(self, space: Space, centers: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
        """Perturbations of the given front members, and uniform draws."""
        n_uniform = int(self.n_candidates * self.explore)
        n_local = self.n_candidates - n_uniform
        centers = centers[rng.integers(len(centers), size=n_local)]
        local = np.clip(centers + rng.normal(0.0, self.radius, centers.shape), 0.0, 1.0 - 1e-9)
        cat = categorical_mask(space)
        if cat.any():  # an unordered choice has no neighbours: redraw it now and then
            redraw = (rng.random(local.shape) < self.radius) & cat
            local[redraw] = rng.random(int(redraw.sum()))
        return np.vstack([local, rng.random((n_uniform, space.dim))])


class _Model:
    """A GP on standardized targets, its hyperparameters warm-started from the history's
    memo."""

    def __init__(self, gp: GaussianProcess, center: float, spread: float) -> None:
        self.gp, self.center, self.spread = gp, center, spread

    @classmethod
    def fit(cls, history: History, key: tuple[Any, ...], x: np.ndarray, y: np.ndarray,
            cat: np.ndarray) -> _Model:
        center, spread = float(np.mean(y)), float(np.std(y))
        spread = spread if spread > 0 and math.isfinite(spread) else 1.0
        z = (y - center) / spread
        d2 = sq_dists(x, x, cat)
        previous: Hyper | None = history.memo.get(key)
        hyper = fit_hyper(x, z, cat, previous, max_iter=20 if previous is not None else 60,
                          d2=d2)
        history.memo[key] = hyper
        return cls(GaussianProcess(x, z, cat, hyper, d2=d2), center, spread)

    def predict(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation in the targets' own units."""
        mean, std = self.gp.predict(points)
        return self.center + self.spread * mean, self.spread * std


def _front_value(front_cost: np.ndarray, front_loss: np.ndarray,
                 at: np.ndarray) -> np.ndarray:
    """The front's loss at each cost of `at`: the best loss of the members that cost at most
    that much, or the cheapest member's loss below all of them."""
    order = np.argsort(front_cost, kind="stable")
    costs = front_cost[order]
    best = np.minimum.accumulate(front_loss[order])
    k = np.searchsorted(costs, at, side="right")
    return best[np.maximum(k - 1, 0)]


def _subset(log_cost: np.ndarray, loss: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most `limit` trials to fit: by non-dominated front in (cost, loss), the
    most recent first within a front."""
    if len(loss) <= limit:
        return np.arange(len(loss))
    ranks = non_dominated_ranks(np.column_stack([log_cost, loss]))
    order = np.lexsort((-np.arange(len(loss)), ranks))
    return np.sort(order[:limit])


def log_hypervolume_improvement(mean: np.ndarray, std: np.ndarray, cost: np.ndarray,
                                front_cost: np.ndarray, front_loss: np.ndarray,
                                ref_cost: float, ref_loss: float) -> np.ndarray:
    """log of the expected hypervolume improvement (in the (cost, loss) plane, up to the
    reference point) of candidates with loss ~ N(mean, std²) at a known cost: the front is a
    staircase, so the improvement is the sum over its steps right of the candidate's cost of
    the step's width times the expected improvement below the step's loss."""
    order = np.argsort(front_cost, kind="stable")
    edges = np.concatenate([front_cost[order], [ref_cost]])
    steps = np.concatenate([[ref_loss], np.minimum.accumulate(front_loss[order])])
    starts = np.concatenate([[-np.inf], edges[:-1]])
    stops = edges
    width = np.clip(stops[None, :] - np.maximum(starts[None, :], cost[:, None]), 0.0, None)
    log_ei = log_expected_improvement(mean[:, None], std[:, None],
                                      np.minimum(steps, ref_loss)[None, :])
    with np.errstate(divide="ignore"):
        terms = np.log(width) + log_ei
    from scipy.special import logsumexp

    return np.asarray(logsumexp(terms, axis=1))
