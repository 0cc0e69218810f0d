"""The lockstep box-constrained BFGS that maximizes acquisitions (`models/box_bfgs.py`)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from hyperlaw.models.box_bfgs import BatchObjective, minimize_batch


def _quadratics(seed: int, b: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """b random positive definite quadratics 0.5 x'Ax - c'x, badly conditioned."""
    rng = np.random.default_rng(seed)
    q = np.linalg.qr(rng.standard_normal((b, k, k)))[0]
    a = q @ (np.logspace(0, 3, k)[None, :, None] * np.transpose(q, (0, 2, 1)))
    return a, rng.standard_normal((b, k)) * 20


def test_bounded_quadratics_reach_the_same_minima_as_scipy() -> None:
    a, c = _quadratics(0, 6, 5)

    def fun(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ax = np.einsum("bij,bj->bi", a[rows], x)
        return 0.5 * np.einsum("bi,bi->b", x, ax) - np.einsum("bi,bi->b", c[rows], x), \
            ax - c[rows]

    lower, upper = np.full(5, -0.2), np.full(5, 0.3)
    res = minimize_batch(fun, np.zeros((6, 5)), lower, upper)
    for i in range(6):
        ref = minimize(lambda x, i=i: (0.5 * x @ a[i] @ x - c[i] @ x, a[i] @ x - c[i]),
                       np.zeros(5), jac=True, method="L-BFGS-B",
                       bounds=list(zip(lower, upper, strict=True)),
                       options={"ftol": 1e-14, "gtol": 1e-10})
        np.testing.assert_allclose(res.fun[i], ref.fun, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(res.x[i], ref.x, atol=1e-4)
    # some coordinates end on the bounds: the box was binding
    assert np.any(np.isclose(res.x, lower) | np.isclose(res.x, upper))


def _rosenbrock(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u, v = x[:, 0], x[:, 1]
    value = (1 - u) ** 2 + 100 * (v - u * u) ** 2
    grad = np.column_stack([-2 * (1 - u) - 400 * u * (v - u * u), 200 * (v - u * u)])
    return value, grad


def _bowl_and_valley() -> tuple[BatchObjective, np.ndarray, np.ndarray, np.ndarray]:
    """Two problems, their starts and bounds: problem 0 a bowl whose bottom (-5) it reaches
    in a few steps, below all of problem 1, Rosenbrock's long and slow valley (bottom 0)."""

    def fun(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bowl = ((x - 0.5) ** 2).sum(axis=1) - 5.0, 2.0 * (x - 0.5)
        value, grad = _rosenbrock(x, rows)
        first = (rows == 0)[:, None]
        return np.where(first[:, 0], bowl[0], value), np.where(first, bowl[1], grad)

    return fun, np.array([[0.0, 0.0], [-1.2, 1.0]]), np.full(2, -2.0), np.full(2, 2.0)


def test_each_problem_runs_as_if_alone() -> None:
    starts = np.array([[-1.5, 2.0], [0.0, 0.0], [1.8, -1.0], [-0.5, -1.5]])
    lower, upper = np.full(2, -2.0), np.full(2, 2.0)
    together = minimize_batch(_rosenbrock, starts, lower, upper, gtol=1e-8)
    np.testing.assert_allclose(together.x, 1.0, atol=1e-4)  # the valley's end, from each
    for i, start in enumerate(starts):
        alone = minimize_batch(_rosenbrock, start[None, :], lower, upper, gtol=1e-8)
        np.testing.assert_array_equal(alone.x[0], together.x[i])
        assert alone.calls <= together.calls  # the batch costs its slowest problem's calls


def test_points_where_the_objective_is_not_finite_are_stepped_back_from() -> None:
    def fun(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = _rosenbrock(x, rows)
        outside = x[:, 0] < -0.5  # undefined there, as a log of a vanishing EI can be
        return np.where(outside, np.nan, value), np.where(outside[:, None], np.inf, grad)

    res = minimize_batch(fun, np.array([[0.0, 1.5], [1.5, 0.0]]), np.full(2, -2.0),
                         np.full(2, 2.0), gtol=1e-8)
    assert np.all(np.isfinite(res.fun)) and np.all(res.x[:, 0] >= -0.5)
    np.testing.assert_allclose(res.x, 1.0, atol=1e-3)


def test_a_start_where_the_objective_is_not_finite_stays_where_it_is() -> None:
    def fun(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        value, grad = _rosenbrock(x, rows)
        return np.where(rows == 0, np.inf, value), grad

    res = minimize_batch(fun, np.array([[0.2, 0.2], [0.3, 0.3]]), np.full(2, -2.0),
                         np.full(2, 2.0))
    np.testing.assert_array_equal(res.x[0], [0.2, 0.2])
    assert res.fun[0] == np.inf and res.fun[1] < 1e-6


def test_a_search_that_catches_up_with_a_better_one_of_the_same_function_stops() -> None:
    starts = np.array([[-1.2, 1.0], [-1.19, 1.01], [1.8, -1.0]])
    lower, upper = np.full(2, -2.0), np.full(2, 2.0)
    apart = minimize_batch(_rosenbrock, starts, lower, upper, gtol=1e-8)
    merged = minimize_batch(_rosenbrock, starts, lower, upper, gtol=1e-8,
                            same=np.array([0, 0, 0]), merge_within=0.05)
    # the two neighbouring starts share a basin: the worse stops where it started, the
    # other searches on (or stops in turn for a better one), and the valley's end is found
    np.testing.assert_array_equal(merged.x[0], starts[0])
    assert np.min(merged.fun) < 1e-12 and np.min(apart.fun) < 1e-12
    assert merged.calls < apart.calls
    # labelled as different functions, neither stops for the other
    labelled = minimize_batch(_rosenbrock, starts, lower, upper, gtol=1e-8,
                              same=np.array([0, 1, 2]), merge_within=0.05)
    np.testing.assert_array_equal(labelled.x, apart.x)


def test_a_problem_whose_projected_gradient_vanishes_stops_there() -> None:
    def fun(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x * x).sum(axis=1), 2.0 * x

    # the first step lands on the minimum, where the gradient is exactly 0: no further call
    res = minimize_batch(fun, np.array([[1.0]]), np.full(1, -2.0), np.full(1, 2.0))
    np.testing.assert_array_equal(res.x, [[0.0]])
    assert res.calls == 2
    # on the bound, with the gradient pushing outward: the projected gradient is 0 too
    res = minimize_batch(fun, np.array([[1.0]]), np.full(1, 0.5), np.full(1, 2.0))
    np.testing.assert_array_equal(res.x, [[0.5]])
    assert res.calls == 2


def test_a_problem_that_trails_the_best_by_the_margin_stops_once_the_race_is_on() -> None:
    fun, starts, lower, upper = _bowl_and_valley()
    apart = minimize_batch(fun, starts, lower, upper, gtol=1e-8)
    raced = minimize_batch(fun, starts, lower, upper, gtol=1e-8, trail_by=1.0, trail_after=3)
    assert apart.fun[1] < 1e-12  # alone, Rosenbrock's valley is followed to its end
    # raced, the trailing search stops after round 3; the leader's result is unchanged
    np.testing.assert_array_equal(raced.x[0], apart.x[0])
    assert raced.fun[1] > 1.0 and raced.calls < apart.calls
    # before `trail_after` rounds nothing stops: a race that starts late changes nothing
    late = minimize_batch(fun, starts, lower, upper, gtol=1e-8, trail_by=1.0,
                          trail_after=apart.calls)
    np.testing.assert_array_equal(late.x, apart.x)
    assert late.calls == apart.calls


def test_once_the_leader_has_converged_a_slow_search_far_behind_stops() -> None:
    fun, starts, lower, upper = _bowl_and_valley()
    apart = minimize_batch(fun, starts, lower, upper, gtol=1e-8)
    settled = minimize_batch(fun, starts, lower, upper, gtol=1e-8, settled_trail_by=0.25,
                             settled_reach=4.0)
    assert apart.fun[1] < 1e-12  # alone, Rosenbrock's valley is followed to its end
    # the leader's result is unchanged; the valley's search stops once the bowl's has
    # converged and its own steps promise too little to catch up
    np.testing.assert_array_equal(settled.x[0], apart.x[0])
    assert settled.fun[1] > 1e-6 and settled.calls < apart.calls
    # a search whose next steps promise enough to close the gap goes on
    reaching = minimize_batch(fun, starts, lower, upper, gtol=1e-8, settled_trail_by=0.25,
                              settled_reach=1e12)
    np.testing.assert_array_equal(reaching.x, apart.x)
    # and so does one within the margin: the valley starts 29.2 above the bowl's bottom
    near = minimize_batch(fun, starts, lower, upper, gtol=1e-8, settled_trail_by=30.0,
                          settled_reach=4.0)
    np.testing.assert_array_equal(near.x, apart.x)
