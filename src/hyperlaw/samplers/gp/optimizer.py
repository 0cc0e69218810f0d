"""Maximize an acquisition over the unit cube with mixed dimensions.

Many random and local candidates are scored in one batch; the best few start L-BFGS-B over
the continuous and integer coordinates (finite-difference gradients evaluated as one batch);
unordered choices are then improved by a sweep over their values. Integer coordinates are
snapped to their bin centres at the end.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Acquisition = Callable[[np.ndarray], np.ndarray]


def snap(x: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Move coordinates of discrete dimensions to the centre of their bin."""
    disc = bins > 0
    if disc.any():
        k = bins[disc]
        x = x.copy()
        x[..., disc] = (np.minimum(np.floor(x[..., disc] * k), k - 1) + 0.5) / k
    return x


def maximize(acq: Acquisition, d: int, cat: np.ndarray, bins: np.ndarray,
             incumbents: np.ndarray, rng: np.random.Generator, *, n_random: int = 1024,
             n_local: int = 256, n_starts: int = 4, max_iter: int = 25) -> np.ndarray:
    """Points (best first) found by multi-start maximization of `acq`; shape (n_starts, d)."""
    from scipy.optimize import minimize

    pool = [rng.random((n_random, d))]
    if len(incumbents):
        centres = incumbents[rng.integers(len(incumbents), size=n_local)]
        local = centres + rng.normal(scale=rng.choice([0.01, 0.05, 0.15], size=(n_local, 1)),
                                     size=(n_local, d))
        flip = rng.random((n_local, d)) < 1.0 / max(d, 1)  # change a few choices too
        local = np.where(flip & cat, rng.random((n_local, d)), local)
        pool.append(np.clip(local, 0.0, 1.0))
    candidates = snap(np.vstack(pool), bins)
    scores = acq(candidates)
    order = np.argsort(-scores)[:n_starts]
    cont = np.flatnonzero(~cat)
    h = 1e-5
    results: list[tuple[float, np.ndarray]] = []
    for start in candidates[order]:
        x = start.copy()
        if len(cont):

            def objective(z: np.ndarray, base: np.ndarray = x) -> tuple[float, np.ndarray]:
                batch = np.repeat(base[None, :], len(z) + 1, axis=0)
                batch[:, cont] = z
                batch[np.arange(1, len(z) + 1), cont] = np.minimum(z + h, 1.0)
                values = acq(batch)
                steps = np.minimum(z + h, 1.0) - z
                grad = (values[1:] - values[0]) / np.where(steps > 0, steps, -h)
                return -float(values[0]), -grad

            res = minimize(objective, x[cont], jac=True, method="L-BFGS-B",
                           bounds=[(0.0, 1.0)] * len(cont), options={"maxiter": max_iter})
            if np.all(np.isfinite(res.x)):
                x[cont] = res.x
        x = snap(x, bins)
        x = _sweep_choices(acq, x, cat, bins)
        results.append((float(acq(x[None, :])[0]), x))
    results.sort(key=lambda item: -item[0])
    return np.array([x for _, x in results])


def _sweep_choices(acq: Acquisition, x: np.ndarray, cat: np.ndarray,
                   bins: np.ndarray) -> np.ndarray:
    """Coordinate ascent over each unordered choice, one pass."""
    for j in np.flatnonzero(cat):
        k = int(bins[j])
        options = np.repeat(x[None, :], k, axis=0)
        options[:, j] = (np.arange(k) + 0.5) / k
        x = options[int(np.argmax(acq(options)))]
    return x
