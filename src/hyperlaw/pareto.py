"""Pareto fronts and hypervolume: the math of several objectives, on plain arrays.

Every function takes points as an array of shape (n, k) with lower better in every column
(callers flip maximized objectives first). Rows holding a NaN are "not known yet": they are on
no front, rank after every known row, and add nothing to a hypervolume.

Hypervolume is exact for any number of objectives: a sweep for two, a dimension sweep over a
staircase for three, slicing along the last objective for more (the HSO scheme of While et al.,
"A faster algorithm for calculating hypervolume", IEEE TEC 2006), each slice reduced to its
own front first.
"""

from __future__ import annotations

import bisect

import numpy as np

__all__ = [
    "constrained_ranks",
    "crowding_distance",
    "default_reference",
    "dominated_by",
    "hypervolume",
    "hypervolume_contributions",
    "hypervolume_history",
    "improvement_boxes",
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


def dominated_by(points: np.ndarray, front: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Per row of `points` (shape (n, k), lower better): whether some row of `front`
    dominates it. NaN rows are never dominated."""
    points = np.asarray(points, dtype=float)
    front = np.asarray(front, dtype=float)
    out = np.zeros(len(points), dtype=bool)
    for start in range(0, len(front), chunk):
        block = front[start: start + chunk, None, :]
        out |= ((block <= points).all(axis=2) & (block < points).any(axis=2)).any(axis=0)
    return out


_BLOCK = 512  # points checked at once by the front sweep


def _front_of(points: np.ndarray) -> np.ndarray:
    """The first-front mask of finite points, by a sort-filter sweep: sorted by the sum of
    their values (ties by each value in turn), no point is dominated by a later one, so each
    block of points is checked, in vectorized comparisons, against the front found so far and
    against itself, and whatever survives is on the front for good."""
    order = np.lexsort((*points.T[::-1], points.sum(axis=1)))
    on_front = np.zeros(len(points), dtype=bool)
    front = points[:0]
    for start in range(0, len(order), _BLOCK):
        block = order[start: start + _BLOCK]
        block = block[~dominated_by(points[block], front)]
        block = block[~dominated_by(points[block], points[block])]
        on_front[block] = True
        front = np.vstack([front, points[block]])
    return on_front


def non_dominated_ranks(y: np.ndarray | list) -> np.ndarray:
    """Front index of every row: 0 for the Pareto front, 1 for the front once it is removed,
    and so on; rows with a NaN get one rank past the last front."""
    points = _points(y)
    ranks = np.full(len(points), -1, dtype=int)
    remaining = np.flatnonzero(_known(points))
    if points.shape[1] == 2 and remaining.size:
        ranks[remaining] = _ranks_2d(points[remaining])
        ranks[ranks < 0] = ranks[remaining].max() + 1
        return ranks
    rank = 0
    while remaining.size:
        front = _front_of(points[remaining])
        ranks[remaining[front]] = rank
        remaining = remaining[~front]
        rank += 1
    ranks[ranks < 0] = rank
    return ranks


def _ranks_2d(points: np.ndarray) -> np.ndarray:
    """Front indices of finite two-objective points in O(n log n). In order of the first
    objective (then the second), every member seen so far has a first value <= the point's,
    so a front dominates the point when its last member (its lowest second value) is lower in
    the second objective, or level there with a lower first value. Those last values rise
    from front to front, so a binary search finds the first front that does not dominate it,
    which the point joins."""
    order = np.lexsort((points[:, 1], points[:, 0]))
    last_x: list[float] = []
    last_y: list[float] = []
    ranks = np.empty(len(points), dtype=int)
    for i in order:
        x, y = float(points[i, 0]), float(points[i, 1])
        front = bisect.bisect_left(last_y, y)
        # a last member level in the second objective dominates unless it is the same point
        while front < len(last_y) and last_y[front] == y and last_x[front] < x:
            front += 1
        if front == len(last_y):
            last_x.append(x)
            last_y.append(y)
        else:
            last_x[front], last_y[front] = x, y
        ranks[i] = front
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
    if k == 3:
        return _hypervolume_3d(front, ref)
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


def _hypervolume_3d(front: np.ndarray, ref: np.ndarray) -> float:
    """Three objectives in O(n log n) (the dimension sweep of Beume et al., "On the
    complexity of computing the hypervolume indicator", IEEE TEC 2009): in order of the third
    objective, each point joins a two-dimensional staircase whose area is kept up to date,
    and each slab between consecutive third values adds that area times its depth."""
    order = np.argsort(front[:, 2], kind="stable")
    xs: list[float] = []  # the staircase, by increasing first objective (decreasing second)
    ys: list[float] = []
    rx, ry = float(ref[0]), float(ref[1])
    area = total = 0.0
    for n, i in enumerate(order):
        x, y = float(front[i, 0]), float(front[i, 1])
        j = bisect.bisect_left(xs, x)
        covered = (j > 0 and ys[j - 1] <= y) or (j < len(xs) and xs[j] == x and ys[j] <= y)
        if not covered:
            end = j
            while end < len(xs) and ys[end] >= y:  # the steps the new point dominates
                end += 1
            right = xs[end] if end < len(xs) else rx
            # strips of the left neighbour and the removed steps, before and after
            before = 0.0
            seq_x = ([xs[j - 1]] if j > 0 else []) + xs[j:end]
            seq_y = ([ys[j - 1]] if j > 0 else []) + ys[j:end]
            for m, (sx, sy) in enumerate(zip(seq_x, seq_y, strict=True)):
                following = seq_x[m + 1] if m + 1 < len(seq_x) else right
                before += (following - sx) * (ry - sy)
            after = (right - x) * (ry - y)
            if j > 0:
                after += (x - xs[j - 1]) * (ry - ys[j - 1])
            area += after - before
            xs[j:end], ys[j:end] = [x], [y]
        following_z = float(front[order[n + 1], 2]) if n + 1 < len(order) else float(ref[2])
        total += area * (following_z - float(front[i, 2]))
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
    if points.shape[1] == 2:
        return _contributions_2d(points, ref)
    total = _hypervolume(_inside(points, ref), ref)
    contributions = np.zeros(len(points))
    candidates = np.flatnonzero(pareto_mask(points) & np.all(points < ref, axis=1))
    for i in candidates:
        others = np.delete(points, i, axis=0)
        contributions[i] = total - _hypervolume(_inside(others, ref), ref)
    return np.maximum(contributions, 0.0)


def _contributions_2d(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`hypervolume_contributions` for two objectives: along the front sorted by the first
    objective, a point alone holds the rectangle between its neighbours, less what the
    other points inside that rectangle (dominated ones, twins) still dominate there."""
    contributions = np.zeros(len(points))
    inside = np.flatnonzero(pareto_mask(points) & np.all(points < ref, axis=1))
    if not inside.size:
        return contributions
    order = inside[np.lexsort((points[inside, 1], points[inside, 0]))]
    x, f2 = points[order, 0], points[order, 1]
    right = np.append(x[1:], ref[0])
    above = np.insert(f2[:-1], 0, ref[1])
    known = points[_known(points)]
    for j, i in enumerate(order):
        corner = np.array([right[j], above[j]])
        held = (corner[0] - x[j]) * (corner[1] - f2[j])
        if held <= 0:  # a twin on the front: its rectangle is empty
            continue
        within = known[np.all(known >= points[i], axis=1) & np.all(known < corner, axis=1)]
        # the point itself is among them: drop one copy, keep any twin
        within = np.delete(within, int(np.flatnonzero(np.all(within == points[i], axis=1))[0]),
                           axis=0)
        if len(within):
            held -= _hypervolume_2d(within[_front_of(within)], corner)
        contributions[i] = held
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


def improvement_boxes(y: np.ndarray | list,
                      reference: np.ndarray | list) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint boxes (lower (b, k), upper (b, k)) covering the region below `reference`
    that no row of y dominates: a new point p adds sum_b prod_j max(0, upper_bj -
    max(p_j, lower_bj)) to the hypervolume (lower bounds may be -inf).

    Cells of the grid the rows' coordinates draw over the first k - 1 objectives, each
    reaching in the last objective up to the lowest value of the rows dominating the cell's
    lower corner; neighbouring cells of equal height along the (k - 1)-th objective merge.
    (n + 1)^(k - 1) cells for a front of n rows: meant for two or three objectives.
    """
    points = _points(y)
    k = points.shape[1]
    ref = _reference(reference, k)
    front = _inside(points, ref)
    front = front[_front_of(front)] if len(front) else front
    if k == 1:
        top = front[:, 0].min() if len(front) else ref[0]
        return np.array([[-np.inf]]), np.array([[top]])
    cuts = [np.concatenate([[-np.inf], np.unique(front[:, j]), [ref[j]]]) for j in range(k - 1)]
    lowers, uppers = [], []
    for outer in np.ndindex(*(len(c) - 1 for c in cuts[:-1])):
        lo_outer = np.array([cuts[j][i] for j, i in enumerate(outer)])
        hi_outer = np.array([cuts[j][i + 1] for j, i in enumerate(outer)])
        below = np.all(front[:, : k - 2] <= lo_outer, axis=1)
        last = cuts[-1]
        heights = np.array([min(front[below & (front[:, k - 2] <= c), k - 1], default=ref[-1])
                            for c in last[:-1]])
        start = 0
        for i in range(1, len(heights) + 1):  # runs of equal height merge into one box
            if i == len(heights) or heights[i] != heights[start]:
                lowers.append([*lo_outer, last[start], -np.inf])
                uppers.append([*hi_outer, last[i], heights[start]])
                start = i
    return np.array(lowers, dtype=float), np.array(uppers, dtype=float)


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
