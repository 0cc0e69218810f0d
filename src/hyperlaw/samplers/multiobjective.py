"""What the samplers share for several objectives and constraints, on arrays.

Every objective column is "lower is better" (as `Observations.objectives` holds them) and a
violation is 0 for a feasible trial, > 0 for an infeasible one, NaN where the trial has no
constraints (NaN counts as feasible).
"""

from __future__ import annotations

import numpy as np

from hyperlaw.history.observations import Observations
from hyperlaw.pareto import default_reference, hypervolume_contributions, pareto_mask


def objectives_of(obs: Observations) -> np.ndarray:
    """The objectives (n, k) of observations, lower better; the loss as one column when the
    observations hold no objectives (the fit sets of intermediate budgets)."""
    return obs.loss[:, None] if obs.objectives is None else obs.objectives


def violation_of(obs: Observations) -> np.ndarray:
    """The violations (n,) of observations; NaN (no constraints) when they hold none."""
    return np.full(len(obs.loss), np.nan) if obs.violation is None else obs.violation


def is_constrained(violation: np.ndarray) -> bool:
    """True when some trial reported constraints (a violation that is not NaN)."""
    return bool(np.isfinite(violation).any())


def feasible(violation: np.ndarray) -> np.ndarray:
    """True where a trial is feasible (no constraints, or a violation of 0)."""
    return ~(np.nan_to_num(violation, nan=0.0) > 0.0)


def leading_ranks(y: np.ndarray, violation: np.ndarray, n_top: int) -> np.ndarray:
    """Ranks under Deb's constrained domination (as `pareto.constrained_ranks`: feasible rows
    by front, then infeasible ones by violation), exact for the fronts that hold the best
    `n_top` rows; the rows after them share one rank past those. Peeling only the leading
    fronts keeps a sampler's cost flat in the number of trials."""
    n = len(y)
    v = np.nan_to_num(violation, nan=0.0)
    ranks = np.full(n, n, dtype=np.int64)
    left = np.flatnonzero(v <= 0)
    rank = placed = 0
    while len(left) and placed < n_top:
        front = pareto_mask(y[left])
        ranks[left[front]] = rank
        placed += int(front.sum())
        left = left[~front]
        rank += 1
    if placed < n_top:
        bad = np.flatnonzero(v > 0)
        _, order = np.unique(v[bad], return_inverse=True)
        ranks[bad] = rank + order
    else:
        ranks[ranks == n] = rank
    return ranks


def best_first(y: np.ndarray, violation: np.ndarray, n_top: int) -> np.ndarray:
    """Indices of the rows of y (n, k), best first, exact for the first `n_top`.

    Order: Deb's constrained domination (feasible rows by non-dominated rank, then infeasible
    ones by violation), and within the front that straddles position `n_top`, the rows with
    the larger exclusive hypervolume contribution first (Ozaki et al.'s split for MOTPE; the
    reference point is the first front's nadir plus 10% of its range). Rows of other fronts
    keep their index order: the split never separates them.
    """
    n = len(y)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    v = np.nan_to_num(violation, nan=0.0)
    if y.shape[1] == 1:  # one objective: feasible by value, infeasible by violation
        return np.lexsort((y[:, 0], v)).astype(np.int64)
    ranks = leading_ranks(y, v, max(n_top, 1))
    order = np.argsort(ranks, kind="stable")
    if 0 < n_top < n:
        boundary = ranks[order[n_top - 1]]
        tied = order[ranks[order] == boundary]
        if len(tied) > 1 and ranks[order[n_top]] == boundary and v[tied[0]] <= 0:
            contrib = hypervolume_contributions(y[tied], default_reference(y[ranks == 0]))
            start = int(np.flatnonzero(ranks[order] == boundary)[0])
            order[start:start + len(tied)] = tied[np.argsort(-contrib, kind="stable")]
    return order.astype(np.int64)


def normalize(y: np.ndarray) -> np.ndarray:
    """Each column scaled to [0, 1] by its observed minimum and maximum (0 where flat)."""
    lo = y.min(axis=0)
    span = y.max(axis=0) - lo
    return (y - lo) / np.where(span > 0, span, 1.0)


def chebyshev(y: np.ndarray, weights: np.ndarray, rho: float = 0.05) -> np.ndarray:
    """ParEGO's augmented Chebyshev scalarization of the normalized objectives:
    max_j w_j z_j + rho * sum_j w_j z_j (Knowles 2006); minimizing it with weights drawn at
    random each time covers the whole front, concave parts included."""
    z = normalize(y) * weights[None, :]
    return z.max(axis=1) + rho * z.sum(axis=1)


def random_weights(k: int, rng: np.random.Generator) -> np.ndarray:
    """A weight vector drawn uniformly from the simplex."""
    return rng.dirichlet(np.ones(k))
