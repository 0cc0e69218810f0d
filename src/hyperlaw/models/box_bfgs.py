"""Many small box-constrained minimizations at once: projected BFGS in lockstep.

Each problem keeps its own inverse-Hessian approximation, line search and stopping test, as
if it ran alone; every round evaluates the problems still running in one batched call. The
objectives here (an acquisition at a few points) cost about as much for ten rows as for one,
so a problem that converges early costs nothing more, and none waits for a shared line
search, as happens when the sum of the objectives is minimized as one problem.

Directions are those of projected quasi-Newton (Bertsekas 1982): coordinates at or within a
small margin of a bound that their gradient pushes against are held, and take a scaled
gradient step (onto the bound, by the projection); the others take the Newton step of the
BFGS Hessian approximation restricted to them. The step is projected onto the box and accepted
on sufficient decrease along the projected path (Armijo, with backtracking by quadratic
interpolation). A step that shows no positive curvature leaves the approximation as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: values (m,) and gradients (m, k) at points (m, k) of the problems `rows` (m,)
BatchObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_ARMIJO = 1e-4  # the fraction of the predicted decrease a step must achieve
_MAX_BACKTRACKS = 20


@dataclass
class BatchResult:
    """Solutions (b, k), their values (b,), and the batched objective calls made."""

    x: np.ndarray
    fun: np.ndarray
    calls: int


def minimize_batch(fun: BatchObjective, x0: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray, *, max_iter: int = 100, gtol: float = 1e-5,
                   ftol: float = 1e-9, same: np.ndarray | None = None,
                   merge_within: float = 0.0, trail_by: float = np.inf,
                   trail_after: int = 0, settled_trail_by: float = np.inf,
                   settled_reach: float = 0.0) -> BatchResult:
    """Minimize b independent problems from the rows of x0 (b, k) within lower <= x <= upper
    (k,). A problem stops when its projected gradient is below `gtol` everywhere, when an
    iteration improves its value by less than `ftol` relatively, when no step along its
    direction decreases it by more than that, or after `max_iter` iterations.

    Every round tries one step of each running problem: the next iterate, or a shorter step
    of a line search under way, so rounds never wait for each other. With `same` (labels of
    the problems; equal labels: one objective) and `merge_within` > 0, a problem stops once
    within that distance of one of its kind with a lower value (see `_caught_up`). With a
    finite `trail_by`, the problems race (one objective from several starts, or objectives on
    one scale): after `trail_after` rounds, a problem stops once its value exceeds the lowest
    value of all problems by more than `trail_by`. Once the problem with the lowest value has
    stopped, a problem that trails it by more than `settled_trail_by` stops too unless
    `settled_reach` times the decrease its next full step promises (to first order) would
    close the gap: a climb that far behind and that slow no longer ends on top.

    The bookkeeping works on all b rows with masks (b is small: whole-array operations cost
    less than gathers), except the directions: a solve costs per matrix, so only the rows
    that moved get new ones."""
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    x = np.minimum(np.maximum(np.array(x0, dtype=float), lower), upper)
    b, k = x.shape
    f, g = fun(x, np.arange(b))
    calls = 1
    running = np.isfinite(f) & np.isfinite(g).all(axis=1)
    f = np.where(running, f, np.inf)
    g = np.where(running[:, None], g, 0.0)
    # the first step is at most one unit long (a unit is one lengthscale for the acquisition)
    hess = np.eye(k)[None, :, :] * np.maximum(np.linalg.norm(g, axis=1), 1.0)[:, None, None]
    first = np.ones(b, dtype=bool)  # not yet scaled by an observed curvature
    d = np.zeros((b, k))
    running[_renew_directions(d, x, g, hess, first, running, lower, upper, gtol)] = False
    step = np.ones(b)
    iterations = np.zeros(b, dtype=np.int64)
    backtracks = np.zeros(b, dtype=np.int64)
    merging = merge_within > 0 and same is not None and b > 1
    if merging:  # [i, j]: i and j search one objective, and j comes first
        kin = (np.asarray(same)[:, None] == np.asarray(same)[None, :])
        kin_before = kin & np.tri(b, k=-1, dtype=bool)
    while True:
        rows = np.flatnonzero(running)
        if not len(rows):
            break
        trial = x + step[:, None] * d
        np.maximum(trial, lower, out=trial)
        np.minimum(trial, upper, out=trial)
        move = trial - x
        predicted = (move * g).sum(axis=1)  # < 0 along a descent direction
        if len(rows) == b:
            value, grad = fun(trial, rows)
        else:
            value, grad = np.full(b, np.inf), np.zeros((b, k))
            value[rows], grad[rows] = fun(trial[rows], rows)
        calls += 1
        finite = np.isfinite(value) & np.isfinite(grad).all(axis=1)
        accept = running & finite & (predicted < 0) & (value <= f + _ARMIJO * predicted)
        accepted = np.count_nonzero(accept)
        tiny = ftol * np.maximum(np.abs(f), 1.0)
        if accepted < len(rows):  # some running rows rejected their step
            reject = running ^ accept
            # a shorter step: the minimum of the quadratic through f, the slope and the
            # value found, kept within [0.1, 0.5] of the step (0.1 of it where not a number);
            # a row gives up once its step promises less than ftol (round-off decides there)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                shorter = -predicted * step / (2.0 * (value - f - predicted))
            shorter = np.minimum(np.fmax(shorter, 0.1 * step), 0.5 * step)
            step = np.where(reject, shorter, step)
            backtracks += reject
            running &= ~reject | ((predicted < -tiny) & (backtracks <= _MAX_BACKTRACKS))
        if accepted:
            gain = np.subtract(f, value, out=np.zeros(b), where=accept)  # (inf - inf elsewhere)
            _update_hessian(hess, first, accept, move, grad - g)
            x = np.where(accept[:, None], trial, x)
            f, g = np.where(accept, value, f), np.where(accept[:, None], grad, g)
            iterations += accept
            running &= ~accept | ((gain > tiny) & (iterations < max_iter))
            step[accept], backtracks[accept] = 1.0, 0
            if merging:
                running &= ~_caught_up(x, f, running, kin, kin_before, merge_within)
            running[_renew_directions(d, x, g, hess, first, accept & running, lower, upper,
                                      gtol)] = False
        if trail_by < np.inf and calls > trail_after:
            running &= f <= f.min() + trail_by
        if settled_trail_by < np.inf:
            leader = int(np.argmin(f))
            if not running[leader] and running.any():
                behind = f - f[leader]
                promised = -(g * d).sum(axis=1)
                running &= (behind <= settled_trail_by) | (settled_reach * promised >= behind)
    return BatchResult(x, f, calls)


def _caught_up(x: np.ndarray, f: np.ndarray, running: np.ndarray, kin: np.ndarray,
               kin_before: np.ndarray, radius: float) -> np.ndarray:
    """Running problems within `radius` of another problem of the same objective (`kin`,
    pairs of one objective; `kin_before`, those whose second member comes first) whose value
    is lower, or equal with a lower index: searches of one function from different starts
    that reached one basin, where one of them is enough."""
    # kin_before lies within kin: a lower value, or an equal one that comes first
    ahead = np.where(kin_before, f[None, :] <= f[:, None], (f[None, :] < f[:, None]) & kin)
    candidates = running & ahead.any(axis=1)
    if not candidates.any():
        return candidates
    diff = x[:, None, :] - x[None, :, :]
    close = np.einsum("ijk,ijk->ij", diff, diff) < radius * radius
    return candidates & (close & ahead).any(axis=1)


def _renew_directions(d: np.ndarray, x: np.ndarray, g: np.ndarray, hess: np.ndarray,
                      first: np.ndarray, rows: np.ndarray, lower: np.ndarray,
                      upper: np.ndarray, gtol: float) -> np.ndarray:
    """New projected quasi-Newton directions d (in place) of the problems `rows` (a mask)
    whose projected gradient exceeds gtol; returns the indices of the others (they are
    done). Where round-off lost the descent, a fresh approximation and a gradient step."""
    index = np.flatnonzero(rows)
    if not len(index):
        return index
    every = len(index) == len(x)  # then no gathers
    xs, gs, hs = (x, g, hess) if every else (x[index], g[index], hess[index])
    projected = xs - np.minimum(np.maximum(xs - gs, lower), upper)
    active = np.abs(projected).max(axis=1) > gtol
    direction = _direction(xs, gs, hs, projected, lower, upper)
    lost = active & ~((gs * direction).sum(axis=1) < 0)
    if lost.any():
        scale = np.maximum(np.linalg.norm(gs[lost], axis=1), 1.0)
        hess[index[lost]] = np.eye(x.shape[1])[None] * scale[:, None, None]
        first[index[lost]] = True
        direction[lost] = -gs[lost] / scale[:, None]
    d[index[active]] = direction[active]
    return index[~active]


def _direction(x: np.ndarray, g: np.ndarray, hess: np.ndarray, projected: np.ndarray,
               lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Projected quasi-Newton directions at x, given the gradients g, the Hessian
    approximations and the projected gradients x - P(x - g)."""
    k = x.shape[1]
    # the margin within which a bound counts as reached (it shrinks near a stationary point;
    # at most 1e-3, so that rows farther from every bound hold nothing)
    margin = np.minimum(np.sqrt((projected * projected).sum(axis=1)), 1e-3)[:, None]
    held = ((x <= lower + margin) & (g > 0)) | ((x >= upper - margin) & (g < 0))
    if held.any():  # the Newton step on the free coordinates: their block of the Hessian
        diagonal = np.einsum("bii->bi", hess)
        reduced = np.where(held[:, :, None] | held[:, None, :], 0.0, hess)
        reduced.reshape(len(x), k * k)[:, :: k + 1] = np.where(held, 1.0, diagonal)
        try:
            direction = -np.linalg.solve(reduced, np.where(held, 0.0, g)[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:  # a singular approximation: gradient steps this round
            direction = -g / diagonal
        return np.where(held, -g / diagonal, direction)
    try:
        return -np.linalg.solve(hess, g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        return -g / np.einsum("bii->bi", hess)


def _update_hessian(hess: np.ndarray, first: np.ndarray, rows: np.ndarray, s: np.ndarray,
                    y: np.ndarray) -> None:
    """BFGS update of the Hessian approximations hess[rows] (a mask) by steps s and gradient
    changes y, in place: B + y y' / y's - B s s' B / s'Bs. Rows whose step shows no positive
    curvature keep theirs. The first update starts from the identity scaled by y.y / s.y
    (the usual initial scaling)."""
    sy = (s * y).sum(axis=1)
    yy = (y * y).sum(axis=1)
    update = rows & (sy > 1e-10 * np.sqrt((s * s).sum(axis=1) * yy))
    if not update.any():
        return
    scale = update & first
    if scale.any():
        hess[scale] = np.eye(s.shape[1])[None] * (yy[scale] / sy[scale])[:, None, None]
        first[scale] = False
    bs = (hess @ s[:, :, None])[:, :, 0]
    sbs = (s * bs).sum(axis=1)
    update &= sbs > 0
    a = update / np.where(update, sy, 1.0)  # 1 / sy where updated, else 0
    c = update / np.where(update, sbs, 1.0)
    hess += a[:, None, None] * y[:, :, None] * y[:, None, :]
    hess -= c[:, None, None] * bs[:, :, None] * bs[:, None, :]
