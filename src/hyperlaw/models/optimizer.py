"""Maximize an acquisition over the unit cube with mixed dimensions.

Random points and perturbations of the incumbents are scored in one batch. The best of them
and a few more drawn with probability proportional to exp(acquisition) start a local search
that alternates a box-constrained quasi-Newton search over the continuous coordinates (each
start its own, all in one batch per round: `box_bfgs.py`; analytic gradients when given,
scaled by the lengthscales so that every direction has a similar curvature) with exhaustive
sweeps over the values of each discrete coordinate (integers, log-scaled ones at their
`Levels`, steps and unordered choices), until neither changes the point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from hyperlaw.models.box_bfgs import minimize_batch

Acquisition = Callable[[np.ndarray], np.ndarray]
#: values and gradients (m, d) of the acquisition at rows of a batch
AcquisitionGrad = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]

_MAX_SWEEP_VALUES = 64  # discrete dimensions with more values get a subset per sweep
_ROUNDS = 4  # continuous/discrete alternations per start
#: a local search stops once within this distance (in lengthscales) of a better one
_MERGE_WITHIN = 0.05
#: a local search stops at an iteration that gains less than this share of the (log)
#: acquisition: 1e-5 spent a fifth more rounds (every search of a 200-evaluation run made
#: with both) for a best value higher by a median 3e-5 in log acquisition, more than 1e-2
#: on 4-5% of the suggestions
_FTOL = 1e-4
#: BFGS iterations per local search: at 200 evaluations, a cap of 40 instead of 100 cut the
#: rounds of a 10-dimensional search by a third; the best value found fell by more than 1e-2
#: in log acquisition on 2% of the suggestions, and not at all at the median
_MAX_ITER = 40
#: a local search stops once its log acquisition trails the best search's by more than
#: `_TRAIL_BY` after `_TRAIL_AFTER` rounds (a climb that far behind rarely ends on top).
#: Every search of 200-evaluation runs of 14 tasks made both ways: 1-24% fewer rounds; the
#: best value found fell by more than 1e-2 on at most 1.6% of a run's suggestions
_TRAIL_BY = 2.0
_TRAIL_AFTER = 6
#: once the best search has converged, a search trailing it by more than `_SETTLED_TRAIL_BY`
#: stops unless `_SETTLED_REACH` times the gain its next full quasi-Newton step promises
#: would close the gap. Every search of 200-evaluation runs of 10 tasks (seeds 0 and 1) made
#: both ways: a median of 17% fewer rounds (3-35%); the best value found fell by more than
#: 1e-2 on a median of 0.8% of a run's suggestions (at most 5.3%), by 0.002 on the mean
_SETTLED_TRAIL_BY = 0.25
_SETTLED_REACH = 4.0


#: unit-cube positions of the values of discrete dimensions that are not evenly spaced
#: (log-scaled integers), by dimension index, ascending
Levels = Mapping[int, np.ndarray]


def snap(x: np.ndarray, bins: np.ndarray, levels: Levels | None = None) -> np.ndarray:
    """Move coordinates of discrete dimensions to the centre of their bin, and those of
    dimensions with `levels` to the nearest level."""
    disc = bins > 0
    if not disc.any() and not levels:
        return x
    x = x.copy()
    if disc.any():
        k = bins[disc]
        x[..., disc] = (np.minimum(np.floor(x[..., disc] * k), k - 1) + 0.5) / k
    for j, at in (levels or {}).items():
        x[..., j] = at[nearest_level(x[..., j], at)]
    return x


def nearest_level(u: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the level of `at` (ascending positions) nearest to each of `u`."""
    return np.searchsorted(0.5 * (at[1:] + at[:-1]), u)


def positions(bins: np.ndarray, levels: Levels | None = None) -> dict[int, np.ndarray]:
    """Unit-cube positions of the values of every discrete ordered or unordered dimension:
    the centres of its bins, or its levels."""
    out = {int(j): (np.arange(bins[j]) + 0.5) / bins[j] for j in np.flatnonzero(bins > 0)}
    out.update(levels or {})
    return out


def maximize(acq: Acquisition, d: int, cat: np.ndarray, bins: np.ndarray,
             incumbents: np.ndarray, rng: np.random.Generator, *,
             acq_grad: AcquisitionGrad | None = None, lengthscales: np.ndarray | None = None,
             uniform: np.ndarray | None = None, n_local: int = 256, n_starts: int = 8,
             max_iter: int = _MAX_ITER, ftol: float | None = None, n_backup: int = 64,
             screen: Acquisition | None = None, levels: Levels | None = None) -> np.ndarray:
    """Candidate points, best acquisition first: the local-search results, then the best
    `n_backup` scored points (fallbacks when the best ones were already tried). The pool
    holds `uniform` (points spread over the cube; by default 2048 uniform random ones) and
    `n_local` perturbations of the incumbents. `screen` scores the pool in place of `acq`
    when given (a cheaper approximation of it); the local searches, which start from the
    best of the pool, climb `acq` itself, each until an iteration gains less than `ftol` of
    its value (relatively; by default `_FTOL`). `levels` makes dimensions discrete whose
    values are not evenly spaced (see `Levels`): scored, swept and proposed only at them."""
    pool = [rng.random((2048, d)) if uniform is None else uniform]
    if len(incumbents):
        centres = incumbents[rng.integers(len(incumbents), size=n_local)]
        local = centres + rng.normal(scale=rng.choice([0.01, 0.05, 0.15], size=(n_local, 1)),
                                     size=(n_local, d))
        flip = rng.random((n_local, d)) < 1.0 / max(d, 1)  # change a few choices too
        local = np.where(flip & cat, rng.random((n_local, d)), local)
        pool += [np.clip(local, 0.0, 1.0), incumbents]
    candidates = snap(np.vstack(pool), bins, levels)
    if np.any(bins > 0) or levels:  # discrete spaces repeat points: keep one of each
        candidates = np.unique(candidates, axis=0)
    scores = (acq if screen is None else screen)(candidates)
    finite = np.isfinite(scores)
    candidates, scores = candidates[finite], scores[finite]
    if not len(candidates):
        return snap(rng.random((1, d)), bins, levels)
    starts = _pick_starts(scores, n_starts, rng)
    # the best incumbent always starts a search too (exploitation near the best point)
    start_points = candidates[starts]
    if len(incumbents):
        start_points = np.vstack([start_points, snap(incumbents[:1], bins, levels)])
    disc = positions(bins, levels)
    cont = np.array([j for j in range(d) if j not in disc], dtype=np.int64)
    scale = np.ones(len(cont)) if lengthscales is None else np.clip(lengthscales[cont], 1e-3, 1)
    points, values = _local_search(acq, acq_grad, start_points, cont, disc, scale,
                                   max_iter, _FTOL if ftol is None else ftol)
    order = np.argsort(-values, kind="stable")
    backup = candidates[np.argsort(-scores, kind="stable")[:n_backup]]
    return np.vstack([points[order], backup])


def _pick_starts(scores: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The best index, then up to n-1 others drawn with probability exp(score - best)."""
    best = int(np.argmax(scores))
    weights = np.exp(scores - scores[best])
    weights[best] = 0.0
    k = min(n - 1, int(np.count_nonzero(weights > 0)))
    if k <= 0:
        return np.array([best])
    others = rng.choice(len(scores), size=k, replace=False, p=weights / weights.sum())
    return np.concatenate([[best], others])


def _local_search(acq: Acquisition, acq_grad: AcquisitionGrad | None, xs: np.ndarray,
                  cont: np.ndarray, disc: Mapping[int, np.ndarray], scale: np.ndarray,
                  max_iter: int, ftol: float) -> tuple[np.ndarray, np.ndarray]:
    """Alternate continuous and discrete moves for a batch of starts; (points, values).
    `disc`: the positions of the values of each discrete dimension (see `positions`)."""
    values = acq(xs)
    for _ in range(_ROUNDS):
        before = values.copy()
        if len(cont):
            xs, values = _continuous_step(acq, acq_grad, xs, values, cont, scale, max_iter,
                                          ftol)
        for j, at in disc.items():
            xs, values = _sweep(acq, xs, values, j, at)
        if not len(disc) or np.all(values <= before + 1e-9):
            break
    return xs, values


def _continuous_step(acq: Acquisition, acq_grad: AcquisitionGrad | None, xs: np.ndarray,
                     values: np.ndarray, cont: np.ndarray, scale: np.ndarray, max_iter: int,
                     ftol: float) -> tuple[np.ndarray, np.ndarray]:
    """Each start's own box-constrained BFGS over the continuous coordinates, in units of
    their lengthscales; the starts run in lockstep, one batched acquisition call a round
    (see `box_bfgs.py`)."""

    every = len(cont) == xs.shape[1]  # all coordinates continuous: no gathers

    def objective(z: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if every:
            batch = np.clip(z * scale, 0.0, 1.0)
        else:
            batch = xs[rows]
            batch[:, cont] = np.clip(z * scale, 0.0, 1.0)
        if acq_grad is not None:
            vals, grads = acq_grad(batch)
            return -vals, -(grads if every else grads[:, cont]) * scale
        return _finite_difference(acq, batch, cont, scale)

    # starts that share their discrete coordinates search one function
    same = np.unique(np.delete(xs, cont, axis=1), axis=0, return_inverse=True)[1].ravel()
    res = minimize_batch(objective, xs[:, cont] / scale, np.zeros(len(cont)), 1.0 / scale,
                         max_iter=max_iter, ftol=ftol, same=same,
                         merge_within=_MERGE_WITHIN, trail_by=_TRAIL_BY,
                         trail_after=_TRAIL_AFTER, settled_trail_by=_SETTLED_TRAIL_BY,
                         settled_reach=_SETTLED_REACH)
    moved = xs.copy()
    moved[:, cont] = np.clip(res.x * scale, 0.0, 1.0)  # the points `objective` evaluated
    new = np.where(np.isfinite(res.fun), -res.fun, -np.inf)
    better = new > values
    return np.where(better[:, None], moved, xs), np.where(better, new, values)


def _finite_difference(acq: Acquisition, batch: np.ndarray, cont: np.ndarray,
                       scale: np.ndarray, h: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Negative values and one-sided difference gradients (scaled units) of each row: forward,
    or backward on the upper bound."""
    n, k = len(batch), len(cont)
    shifted = np.repeat(batch[:, None, :], k + 1, axis=1)  # (n, k + 1, d)
    at = batch[:, cont]
    moved = np.where(at + h <= 1.0, at + h, at - h)
    shifted[:, np.arange(1, k + 1), cont] = moved
    values = acq(shifted.reshape(n * (k + 1), -1)).reshape(n, k + 1)
    grad = (values[:, 1:] - values[:, :1]) / (moved - at)
    return -values[:, 0], -grad * scale


def _sweep(acq: Acquisition, xs: np.ndarray, values: np.ndarray, j: int,
           at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each start moved to its best value of coordinate j, whose values lie at positions `at`
    (all of them, or a subset: the neighbours of the current one and an even spread)."""
    k = len(at)
    if k <= _MAX_SWEEP_VALUES:
        options = np.broadcast_to(np.arange(k), (len(xs), k))
    else:
        current = nearest_level(xs[:, j], at)
        spread = np.linspace(0, k - 1, _MAX_SWEEP_VALUES - 17).round().astype(int)
        near = current[:, None] + np.arange(-8, 9)[None, :]
        options = np.clip(np.hstack([near, np.broadcast_to(spread, (len(xs), len(spread)))]),
                          0, k - 1)
    m = options.shape[1]
    batch = np.repeat(xs[:, None, :], m, axis=1)
    batch[:, :, j] = at[options]
    scores = acq(batch.reshape(len(xs) * m, -1)).reshape(len(xs), m)
    pick = np.argmax(scores, axis=1)
    rows = np.arange(len(xs))
    better = scores[rows, pick] > values
    moved = np.where(better[:, None], batch[rows, pick], xs)
    return moved, np.where(better, scores[rows, pick], values)
