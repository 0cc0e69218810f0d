"""Targets for a Gaussian process: losses standardized, heavy tails compressed first when the
model's evidence says so; and the choice, by the same evidence, of warped inputs."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from hyperlaw.models.gp import sq_dists
from hyperlaw.models.warp import Fit, fit_warped, neg_log_posterior_of


def transform_targets(loss: np.ndarray) -> np.ndarray:
    """Standardized losses; heavy upper tails are compressed first (Yeo-Johnson) so that a few
    very bad trials do not flatten the model where the good ones are (the last candidate of
    `target_candidates`, without asking the evidence)."""
    return target_candidates(loss)[-1][0]


def target_candidates(loss: np.ndarray, warped: bool = True) -> list[tuple[np.ndarray, float]]:
    """Standardized targets and the log Jacobian of the map from the losses to them: the
    standardized losses, then, when their skew exceeds 1 (and `warped`), the Yeo-Johnson
    warped ones. The GP's evidence plus the log Jacobian compares the two on the scale of the
    losses."""
    centred = loss - np.median(loss)
    spread = float(np.std(centred))
    if spread <= 0 or not np.isfinite(spread):
        return [(np.zeros_like(loss), 0.0)]
    n = len(loss)
    y = centred / spread
    plain = (y - y.mean()) / y.std()
    out = [(plain, -n * math.log(spread * float(y.std())))]
    if not warped:
        return out
    skew = float(np.mean(y**3) - 3 * np.mean(y) * np.var(y) - np.mean(y) ** 3)
    if abs(skew) > 1.0 and len(y) >= 8:
        t, lam = yeo_johnson(y)
        sd = float(t.std())
        if sd > 0:
            out.append(((t - t.mean()) / sd,
                        float(yj_log_slope(y, lam).sum()) - n * math.log(spread * sd)))
    return out


#: a candidate that lost the last fit is refitted only when its evidence at that fit comes
#: within this margin (nats) of the winner's new fit: over the refits of seven 200-evaluation
#: runs, none that this skipped would have won after refitting (the closest lost by 0.7)
RIVAL_MARGIN = 3.0


#: a model: (the index of its targets in `target_candidates`, whether its inputs are warped)
Choice = tuple[int, bool]


def warp_penalty(n_exponents: int, n: int) -> float:
    """What a warped model's evidence must gain to be chosen: the Bayesian information
    criterion's price of its exponents, (k / 2) log n for k exponents and n trials. The MAP
    fit's weak prior on them does not charge it: over the histories of 200-evaluation runs,
    warps gained 6-150 nats on multimodal functions where they cost regret (Rastrigin-10,
    Levy-6) and 64-150 nats on the elastic net's edge, where they remove a trap."""
    return 0.5 * n_exponents * math.log(max(n, 1))


def fit_targets(x: np.ndarray, loss: np.ndarray, cat: np.ndarray,
                starts: Mapping[Choice, Fit], max_iter: int, chosen: Choice | None = None,
                warp: bool = True) -> tuple[Fit, np.ndarray, Choice, dict[Choice, Fit]]:
    """The MAP fit (kernel hyperparameters and input warp, `models/warp.py`) and targets of
    the model that explains the losses best, its choice, and every model's fit. The models:
    each candidate of `target_candidates`, with plain inputs and (with `warp`) warped ones;
    each is scored by its log posterior plus the log Jacobian of its targets, less
    `warp_penalty` when warped. `starts[c]` warm-starts model c (a previous fit of it; a
    model without one starts from its targets' plain fit, or from any previous fit).

    With `chosen` (the model the previous fit chose), that one is refitted first, and a
    rival with a previous fit of its own is refitted only when its score there comes within
    `RIVAL_MARGIN` of the chosen one's; otherwise it keeps that fit.

    Warping the targets helps a GP where a few very bad trials would flatten it (Rosenbrock's
    tails) and hurts where the losses are near Gaussian already (Branin with noise); the
    evidence on the losses' own scale decides per fit instead of a fixed rule."""
    candidates = target_candidates(loss)
    order: list[Choice] = [(i, False) for i in range(len(candidates))]
    if warp:
        order += [(i, True) for i in range(len(candidates))]
    if chosen is not None and chosen in order:
        order.insert(0, order.pop(order.index(chosen)))
    penalty = warp_penalty(2 * int(np.sum(~cat)), len(loss))
    d2 = sq_dists(x, x, cat)  # the plain inputs', for every model without warp
    best: tuple[float, Fit, np.ndarray, Choice] | None = None
    fits: dict[Choice, Fit] = {}
    for choice in order:
        y, log_jacobian = candidates[choice[0]]
        prior_score = log_jacobian - (penalty if choice[1] else 0.0)
        start = starts.get(choice)
        if best is not None and chosen is not None and start is not None:
            score = prior_score - neg_log_posterior_of(x, y, cat, start, d2)
            if score < best[0] - RIVAL_MARGIN:
                fits[choice] = start
                continue
        if start is None:
            start = fits.get((choice[0], False)) or next(iter(starts.values()), None)
        fit, neg_log_post = fit_warped(x, y, cat, start, max_iter, choice[1], d2)
        fits[choice] = fit
        score = prior_score - neg_log_post
        if best is None or score > best[0]:
            best = (score, fit, y, choice)
    assert best is not None  # target_candidates returns at least one
    return best[1], best[2], best[3], fits


#: exponents tried by `yeo_johnson` (a 0.05 grid is finer than the fit can tell apart)
_YJ_LAMBDAS = np.linspace(-2.0, 4.0, 121)


def _yj_transform(y: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Yeo-Johnson transform of y (n,) for each exponent in lam (m,); shape (m, n)."""
    lam = lam[:, None]
    pos = y >= 0
    a = np.log1p(np.abs(y))[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        up = np.where(np.abs(lam) < 1e-8, a, np.expm1(lam * a) / lam)
        down = np.where(np.abs(lam - 2) < 1e-8, a, np.expm1((2 - lam) * a) / (2 - lam))
    return np.where(pos[None, :], up, -down)


def yj_log_slope(y: np.ndarray, lam: float) -> np.ndarray:
    """log d/dy of the Yeo-Johnson transform with exponent lam, elementwise."""
    a = np.log1p(np.abs(y))
    return np.where(y >= 0, (lam - 1.0) * a, (1.0 - lam) * a)


def yeo_johnson(y: np.ndarray) -> tuple[np.ndarray, float]:
    """y transformed by the Yeo-Johnson power of maximum likelihood, and that power (on a grid
    of exponents; one batch instead of scipy's scalar search, which costs tens of ms per
    call)."""
    t = _yj_transform(y, _YJ_LAMBDAS)
    var = t.var(axis=1)
    llf = np.where(var > 0, -0.5 * len(y) * np.log(np.where(var > 0, var, 1.0)), -np.inf)
    llf += (_YJ_LAMBDAS - 1.0) * float(np.sum(np.sign(y) * np.log1p(np.abs(y))))
    i = int(np.argmax(llf))
    return t[i], float(_YJ_LAMBDAS[i])
