"""The GP's targets: standardized, or warped (Yeo-Johnson) where the model's evidence on the
losses' own scale says so."""

from __future__ import annotations

import math

import numpy as np

from hyperlaw.models.gp import matern52, sq_dists
from hyperlaw.models.targets import (
    _yj_transform,
    fit_targets,
    target_candidates,
    transform_targets,
    warp_penalty,
    yj_log_slope,
)


def _branin(u: np.ndarray) -> np.ndarray:
    x0, x1 = u[:, 0] * 15 - 5, u[:, 1] * 15
    return ((x1 - 5.1 / (4 * math.pi**2) * x0**2 + 5 / math.pi * x0 - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * np.cos(x0) + 10)


def test_the_log_jacobians_are_those_of_the_maps_to_the_targets() -> None:
    loss = np.exp(3 * np.random.default_rng(1).random(30))
    (plain, plain_log_j), (warped, warped_log_j) = target_candidates(loss)
    # plain: an affine map, slope 1 / sd(loss)
    assert math.isclose(plain_log_j, -len(loss) * math.log(loss.std()), rel_tol=1e-9)
    np.testing.assert_allclose(plain, (loss - loss.mean()) / loss.std(), atol=1e-12)
    # warped: the slope of each target in its own loss, the other constants held
    assert warped.std() > 0 and warped_log_j != plain_log_j
    for lam in (-1.0, 0.0, 0.5, 2.0, 3.0):
        y = np.linspace(-3, 3, 13)
        h = 1e-6
        slope = (_yj_transform(y + h, np.array([lam]))[0]
                 - _yj_transform(y - h, np.array([lam]))[0]) / (2 * h)
        np.testing.assert_allclose(yj_log_slope(y, lam), np.log(slope), atol=1e-6)


def test_the_warp_is_kept_only_where_it_explains_the_losses_better() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    cat = np.zeros(3, dtype=bool)
    bowl = ((x - 0.3) ** 2).sum(axis=1)
    for loss, warped in ((np.exp(6 * bowl), True), (_branin(x), False)):
        assert len(target_candidates(loss)) == 2  # both are skewed enough to be warped
        _, y, choice, fits = fit_targets(x, loss, cat, {}, max_iter=60, warp=False)
        assert set(fits) == {(0, False), (1, False)}  # each kept to warm-start the next fit
        assert choice == (1 if warped else 0, False)
        expected = transform_targets(loss) if warped else (loss - loss.mean()) / loss.std()
        np.testing.assert_allclose(y, expected, atol=1e-9)


def test_losses_without_spread_give_zero_targets() -> None:
    (y, log_j), = target_candidates(np.full(5, 2.5))
    assert np.all(y == 0) and log_j == 0.0


def test_a_rival_far_behind_keeps_its_last_fit_and_a_close_one_is_refitted() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    cat = np.zeros(3, dtype=bool)
    loss = np.exp(6 * ((x - 0.3) ** 2).sum(axis=1))  # the warp wins by far
    _, y, choice, fits = fit_targets(x, loss, cat, {}, max_iter=60, warp=False)
    assert choice == (1, False)
    again = fit_targets(x, loss, cat, fits, max_iter=60, chosen=choice, warp=False)
    assert again[3][0, False] is fits[0, False]  # the plain targets lose by far: kept
    assert again[3][1, False] is not fits[1, False] and again[2] == (1, False)  # refitted
    np.testing.assert_array_equal(again[1], y)
    # without the last choice every candidate is refitted
    assert fit_targets(x, loss, cat, fits, max_iter=60, warp=False)[3][0, False] is not fits[
        0, False]
    # a rival ahead of the named choice is refitted, and wins
    swapped = fit_targets(x, loss, cat, fits, max_iter=60, chosen=(0, False), warp=False)
    assert swapped[2] == (1, False) and swapped[3][0, False] is not fits[0, False]


def test_warped_inputs_are_chosen_only_when_they_gain_more_than_their_price() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((80, 2))
    cat = np.zeros(2, dtype=bool)
    # a drop over the last 2% of x1's range: the warp explains it by far
    cliff = np.sin(3 * x[:, 0]) - 2.0 * np.clip((x[:, 1] - 0.98) / 0.02, 0.0, 1.0) ** 2
    x[:20, 1] = 1.0 - 0.02 * rng.random(20)
    cliff = np.sin(3 * x[:, 0]) - 2.0 * np.clip((x[:, 1] - 0.98) / 0.02, 0.0, 1.0) ** 2
    (_, warp), _, choice, fits = fit_targets(x, cliff, cat, {}, max_iter=100)
    assert choice[1] and not warp.is_identity()
    assert set(fits) == {(i, w) for i in range(len(target_candidates(cliff)))
                         for w in (False, True)}
    # a draw from a stationary GP: no warp earns its price, (k / 2) log n = 2 log 80 = 8.8 nats
    kernel = matern52(np.sqrt(sq_dists(x, x, cat).sum(axis=2)) / 0.3)
    draw = np.linalg.cholesky(kernel + 1e-6 * np.eye(80)) @ rng.standard_normal(80)
    (_, warp), _, choice, _ = fit_targets(x, draw, cat, {}, max_iter=100)
    assert not choice[1] and warp.is_identity()
    assert warp_penalty(4, 80) == 2 * math.log(80)
