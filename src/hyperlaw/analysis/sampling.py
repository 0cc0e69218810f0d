"""Server-side reduction of large studies: which trials to draw, and curves thinned to a budget.

A page never receives every trial of a 100,000-trial study. These functions pick a bounded
set that keeps what a person looks for: the best trials, the running ones, the extremes, and
an even spread of the rest.
"""

from __future__ import annotations

import numpy as np


def spread(candidates: np.ndarray, k: int) -> np.ndarray:
    """`k` elements of `candidates` evenly spaced over its order (all when it is short)."""
    if len(candidates) <= k:
        return candidates
    if k <= 0:
        return candidates[:0]
    picks = np.unique(np.linspace(0, len(candidates) - 1, k).round().astype(np.int64))
    return candidates[picks]


def best_and_spread(numbers: np.ndarray, scores: np.ndarray, limit: int,
                    best_share: float = 0.25) -> np.ndarray:
    """At most `limit` of `numbers`: the lowest `scores` first, then an even spread of the rest.

    Returns trial numbers in ascending order.
    """
    if len(numbers) <= limit:
        return np.sort(numbers)
    order = np.argsort(scores, kind="stable")
    n_best = int(limit * best_share)
    best = numbers[order[:n_best]]
    rest = np.sort(numbers[order[n_best:]])
    return np.sort(np.concatenate([best, spread(rest, limit - n_best)]))


def min_max_bins(x: np.ndarray, y: np.ndarray, limit: int) -> np.ndarray:
    """Indices of at most `limit` points of a series that keep its envelope: the lowest and
    highest y of each of `limit // 2` consecutive chunks (x is assumed sorted)."""
    n = len(x)
    if n <= limit:
        return np.arange(n)
    bins = max(limit // 2, 1)
    starts = np.linspace(0, n, bins + 1).round().astype(np.int64)
    keep = np.empty(2 * bins, dtype=np.int64)
    for b in range(bins):
        lo, hi = starts[b], starts[b + 1]
        chunk = y[lo:hi]
        keep[2 * b] = lo + int(np.argmin(chunk))
        keep[2 * b + 1] = lo + int(np.argmax(chunk))
    return np.unique(keep)


def thin_curve(steps: np.ndarray, values: np.ndarray,
               limit: int) -> tuple[np.ndarray, np.ndarray]:
    """A curve reduced to at most `limit` points, first and last kept."""
    if len(steps) <= limit:
        return steps, values
    picks = np.unique(np.linspace(0, len(steps) - 1, limit).round().astype(np.int64))
    return steps[picks], values[picks]
