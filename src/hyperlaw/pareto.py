"""Pareto fronts and hypervolume: the math of several objectives, on plain arrays.

Every function takes points as an array of shape (n, k) with lower better in every column
(callers flip maximized objectives first). Rows holding a NaN are "not known yet": they are on
no front, rank after every known row, and add nothing to a hypervolume.

Hypervolume is exact for any number of objectives: a sweep for two, slicing along the last
objective for more (the HSO scheme of While et al., "A faster algorithm for calculating
hypervolume", IEEE TEC 2006), each slice reduced to its own front first.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "constrained_ranks",
    "crowding_distance",
    "default_reference",
    "hypervolume",
    "hypervolume_contributions",
    "hypervolume_history",
    "non_dominated_ranks",
    "pareto_mask",
]


def _points(y: np.ndarray | list) -> np.ndarray:
    points = np.asarray(y, dtype=float)
    if points.ndim == 1:
        points = points[:, None]
    if points.ndim != 2:
        raise ValueError(f"points must be an array of shape (n, k), got shape {points.shape}")
    return points


def _known(points: np.ndarray) -> np.ndarray:
    return ~np.isnan(points).any(axis=1)


def pareto_mask(y: np.ndarray | list) -> np.ndarray:
    """True for the rows no other row dominates (the first front); False for NaN rows.

    A row dominates another when it is no worse in every column and better in one; equal rows
    do not dominate each other, so duplicates on the front are all kept.
    """
    points = _points(y)
    mask = np.zeros(len(points), dtype=bool)
    known = np.flatnonzero(_known(points))
    mask[known] = _front_of(points[known])
    return mask


def _front_of(points: np.ndarray) -> np.ndarray:
    """The first-front mask of finite points. After a lexicographic sort a row can only be
    dominated by an earlier one, so each row is checked against the front found so far."""
    order = np.lexsort(points.T[::-1])
    on_front = np.zeros(len(points), dtype=bool)
    front: list[np.ndarray] = []
    for i in order:
        row = points[i]
        if front:
            kept = np.asarray(front)
            dominated = np.all(kept <= row, axis=1) & np.any(kept < row, axis=1)
            if dominated.any():
                continue
        front.append(row)
        on_front[i] = True
    return on_front


def non_dominated_ranks(y: np.ndarray | list) -> np.ndarray:
    """Front index of every row: 0 for the Pareto front, 1 for the front once it is removed,
    and so on; rows with a NaN get one rank past the last front."""
    points = _points(y)
    ranks = np.full(len(points), -1, dtype=int)
    remaining = np.flatnonzero(_known(points))
    rank = 0
    while remaining.size:
        front = _front_of(points[remaining])
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    ranks[ranks < 0] = rank
    return ranks


def constrained_ranks(y: np.ndarray | list, violation: np.ndarray | list) -> np.ndarray:
    """Ranks under constrained domination (Deb et al., NSGA-II, 2002): feasible rows
    (violation 0 or NaN, meaning no constraints) by their fronts, then infeasible rows one
    rank each, in order of increasing violation (equal violations share a rank)."""
    points = _points(y)
    violation = np.asarray(violation, dtype=float)
    if violation.shape != (len(points),):
        raise ValueError(
            f"violation must have one entry per point ({len(points)}), got shape "
            f"{violation.shape}")
    feasible = np.isnan(violation) | (violation <= 0)
    ranks = np.empty(len(points), dtype=int)
    ranks[feasible] = non_dominated_ranks(points[feasible])
    first_infeasible = int(ranks[feasible].max()) + 1 if feasible.any() else 0
    infeasible = np.flatnonzero(~feasible)
    _, order = np.unique(violation[infeasible], return_inverse=True)
    ranks[infeasible] = first_infeasible + order
    return ranks


def crowding_distance(y: np.ndarray | list) -> np.ndarray:
    """NSGA-II's crowding distance of the rows of one front: the sum over objectives of the
    gap between each row's neighbours, divided by that objective's range; infinite at the
    extremes of every objective (and for fronts of two rows or fewer)."""
    points = _points(y)
    n, k = points.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(points[:, j], kind="stable")
        column = points[order, j]
        span = column[-1] - column[0]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (column[2:] - column[:-2]) / span
    return distance


def hypervolume(y: np.ndarray | list, reference: np.ndarray | list) -> float:
    """The volume dominated by the rows and bounded by `reference` (exact). Rows that do not
    dominate the reference point strictly in every objective add nothing."""
    points = _points(y)
    ref = _reference(reference, points.shape[1])
    return _hypervolume(_inside(points, ref), ref)


def _reference(reference: np.ndarray | list, k: int) -> np.ndarray:
    ref = np.asarray(reference, dtype=float).reshape(-1)
    if ref.shape != (k,) or not np.isfinite(ref).all():
        raise ValueError(
            f"the reference point must hold {k} finite numbers (one per objective), got "
            f"{np.asarray(reference).tolist()!r}")
    return ref


def _inside(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The front of the known rows that strictly dominate the reference point."""
    points = points[_known(points)]
    points = points[np.all(points < ref, axis=1)]
    return points[_front_of(points)] if len(points) else points


def _hypervolume(front: np.ndarray, ref: np.ndarray) -> float:
    n, k = front.shape
    if n == 0:
        return 0.0
    if k == 1:
        return float(ref[0] - front[:, 0].min())
    if k == 2:
        return _hypervolume_2d(front, ref)
    # slice along the last objective: between consecutive levels the dominated region is the
    # (k-1)-dimensional hypervolume of the rows at or below the slice
    order = np.argsort(front[:, -1], kind="stable")
    front = front[order]
    levels = np.append(front[:, -1], ref[-1])
    total = 0.0
    for i in range(n):
        depth = levels[i + 1] - levels[i]
        if depth > 0:
            below = front[: i + 1, :-1]
            total += depth * _hypervolume(below[_front_of(below)], ref[:-1])
    return total


def _hypervolume_2d(front: np.ndarray, ref: np.ndarray) -> float:
    order = np.argsort(front[:, 0], kind="stable")
    x, f2 = front[order, 0], front[order, 1]
    heights = np.minimum.accumulate(f2)  # a front sorted by f1 descends in f2
    widths = np.diff(np.append(x, ref[0]))
    return float(np.sum(widths * (ref[1] - heights)))


def hypervolume_contributions(y: np.ndarray | list,
                              reference: np.ndarray | list) -> np.ndarray:
    """Each row's exclusive contribution: the hypervolume lost without it (0 for dominated
    rows, duplicates and rows outside the reference box)."""
    points = _points(y)
    ref = _reference(reference, points.shape[1])
    total = _hypervolume(_inside(points, ref), ref)
    contributions = np.zeros(len(points))
    candidates = np.flatnonzero(pareto_mask(points) & np.all(points < ref, axis=1))
    for i in candidates:
        others = np.delete(points, i, axis=0)
        contributions[i] = total - _hypervolume(_inside(others, ref), ref)
    return np.maximum(contributions, 0.0)


def hypervolume_history(y: np.ndarray | list, reference: np.ndarray | list) -> np.ndarray:
    """Hypervolume of the first i + 1 rows, for i = 0 .. n - 1 (how a study's front grew)."""
    points = _points(y)
    ref = _reference(reference, points.shape[1])
    history = np.zeros(len(points))
    front = np.empty((0, points.shape[1]))
    volume = 0.0
    for i, row in enumerate(points):
        if np.isfinite(row).all() and np.all(row < ref):
            dominated = np.all(front <= row, axis=1).any() if len(front) else False
            if not dominated:
                merged = np.vstack([front, row])
                front = merged[_front_of(merged)]
                volume = _hypervolume(front, ref)
        history[i] = volume
    return history


def default_reference(y: np.ndarray | list) -> np.ndarray:
    """A reference point from the rows themselves: the front's worst value in each objective
    plus 10% of the front's range there (10% of the value's magnitude, at least 0.1, where the
    front is flat). Raises ValueError when no row is fully known."""
    points = _points(y)
    known = points[_known(points)]
    if not len(known):
        raise ValueError("no point has every objective value; a reference point needs one")
    front = known[_front_of(known)]
    worst, best = front.max(axis=0), front.min(axis=0)
    margin = 0.1 * (worst - best)
    flat = margin <= 0
    margin[flat] = np.maximum(0.1 * np.abs(worst[flat]), 0.1)
    return worst + margin
