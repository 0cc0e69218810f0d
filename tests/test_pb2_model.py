"""PB2's time-varying GP bandit: kernel, likelihood fit, window, UCB selection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from hyperlaw.models.linalg import single_threaded_blas
from hyperlaw.models.pb2 import (
    TVGaussianProcess,
    TVHyper,
    fit_tv_hyper,
    neg_log_marginal_likelihood,
    pb2_select,
    select_window,
    standardize,
    tv_kernel,
    ucb_beta,
)


def quadratic_rows(seed: int, n: int = 40, per_interval: int = 8,
                   noise: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of (t, x, y) where the reward change is -(x - 0.7)^2 plus noise, in 1-D."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1))
    times = (np.arange(n) // per_interval).astype(float)
    y = -(x[:, 0] - 0.7) ** 2 + noise * rng.normal(size=n)
    return times, x, y


def test_kernel_matches_the_formula_by_hand() -> None:
    hyper = TVHyper(epsilon=0.2, variance=1.5, lengthscale=0.4, noise=1e-3)
    ta, xa = np.array([0.0, 3.0]), np.array([[0.1, 0.2], [0.5, 0.9]])
    tb, xb = np.array([1.0]), np.array([[0.3, 0.2]])
    k = tv_kernel(ta, xa, tb, xb, hyper)
    # (1 - eps)^(|t - t'|/2) * sigma^2 * exp(-||x - x'||^2 / l)
    expected = [0.8 ** 0.5 * 1.5 * math.exp(-0.04 / 0.4),
                0.8 ** 1.0 * 1.5 * math.exp(-(0.04 + 0.49) / 0.4)]
    np.testing.assert_allclose(k[:, 0], expected, rtol=1e-12)
    same = tv_kernel(ta, xa, ta, xa, hyper)
    np.testing.assert_allclose(np.diag(same), 1.5)
    np.testing.assert_allclose(same, same.T)


def test_likelihood_gradient_matches_finite_differences() -> None:
    times, x, y = quadratic_rows(0, n=30)
    x = np.hstack([x, np.random.default_rng(1).random((30, 1))])
    dt = np.abs(times[:, None] - times[None, :])
    dx2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    ys = standardize(y)
    for log_h in (np.log([0.1, 1.0, 0.5, 1e-2]), np.log([0.4, 3.0, 0.05, 0.2])):
        value, grad = neg_log_marginal_likelihood(log_h, dt, dx2, ys)
        numeric = approx_fprime(log_h, lambda h: neg_log_marginal_likelihood(h, dt, dx2, ys)[0],
                                1e-6)
        assert math.isfinite(value)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_standardize_clips_and_handles_constants() -> None:
    y = np.array([0.0] * 20 + [100.0])
    z = standardize(y)
    assert z.max() == 2.0 and abs(z[0]) < 0.5
    np.testing.assert_array_equal(standardize(np.full(5, 3.7)), np.zeros(5))
    assert ucb_beta(200) == pytest.approx(0.2 * math.log(0.4 * 200))
    assert 0.0 < ucb_beta(1) == ucb_beta(2) < ucb_beta(10)


def test_time_decay_makes_the_mean_follow_recent_data() -> None:
    """Old rows say reward grows with x, recent rows say it falls: the fit decays old data."""
    rng = np.random.default_rng(3)
    x = rng.random((60, 1))
    times = (np.arange(60) // 6).astype(float)  # intervals 0..9
    slope = np.where(times < 5, 1.0, -1.0)
    y = slope * (x[:, 0] - 0.5) + 0.02 * rng.normal(size=60)
    ys = standardize(y)
    hyper, _ = fit_tv_hyper(times, x, ys, rng)
    assert hyper.epsilon > 0.05  # contradicting data is explained by decay
    model = TVGaussianProcess(times, x, ys, hyper)
    grid = np.array([[0.1], [0.9]])
    mean_now, _ = model.predict(10.0, grid)
    mean_then, _ = model.predict(0.0, grid)
    assert mean_now[0] > mean_now[1] + 0.5  # today: low x is better
    assert mean_then[0] < mean_then[1] - 0.5  # at the start: high x was better
    # without decay the same data would average out to a much flatter mean
    flat = TVGaussianProcess(times, x, ys, TVHyper(1e-5, hyper.variance, hyper.lengthscale,
                                                   hyper.noise))
    flat_now, _ = flat.predict(10.0, grid)
    assert abs(flat_now[0] - flat_now[1]) < 0.5 * (mean_now[0] - mean_now[1])


def test_selection_finds_the_best_hyperparameter_on_a_toy() -> None:
    hits = 0
    for seed in range(6):
        times, x, y = quadratic_rows(seed)
        point = pb2_select(times, x, y, np.empty((0, 1)), times[-1] + 1.0,
                           np.random.default_rng(seed))
        assert point.shape == (1,)
        hits += abs(point[0] - 0.7) < 0.1
    assert hits >= 5


def test_running_points_shrink_the_spread_and_repel_the_selection() -> None:
    times = np.repeat(np.arange(4.0), 2)
    x = np.full((8, 1), 0.5)
    y = np.zeros(8)  # a flat mean: only the spread decides
    running = np.array([[0.85], [0.92], [1.0]])
    alone = pb2_select(times, x, y, np.empty((0, 1)), 4.0, np.random.default_rng(0))
    crowded = [pb2_select(times, x, y, running, 4.0, np.random.default_rng(s))[0]
               for s in range(4)]
    assert alone[0] < 0.15 or alone[0] > 0.85  # as far from the data as possible
    assert all(p < 0.15 for p in crowded)  # ... and now also far from the running points

    hyper = TVHyper(0.1, 1.0, 0.2, 1e-3)
    without = TVGaussianProcess(times, x, y, hyper)
    with_running = TVGaussianProcess(np.concatenate([times, np.full(3, 4.0)]),
                                     np.vstack([x, running]), np.zeros(11), hyper)
    _, s_without = without.predict(4.0, running)
    _, s_with = with_running.predict(4.0, running)
    assert np.all(s_with < 0.5 * s_without)


@pytest.mark.parametrize("case", ["one_row", "constant", "duplicates", "bounds", "large_t",
                                  "five_dims", "same_time"])
def test_output_is_finite_and_inside_the_unit_cube(case: str) -> None:
    rng = np.random.default_rng(7)
    d, n = (5, 50) if case == "five_dims" else (2, 30)
    times = np.arange(n, dtype=float) // 5
    x = rng.random((n, d))
    y = rng.normal(size=n)
    if case == "one_row":
        times, x, y = times[:1], x[:1], y[:1]
    elif case == "constant":
        y = np.full(n, 2.5)
    elif case == "duplicates":
        x, y, times = np.tile(x[:2], (n // 2, 1)), np.tile(y[:2], n // 2), np.zeros(n)
    elif case == "bounds":
        x = (x > 0.5).astype(float)
        y = x.sum(axis=1) * 10.0
    elif case == "large_t":
        times = times * 1e6
    elif case == "same_time":
        times = np.zeros(n)
    running = rng.random((4, d))
    for seed in range(2):
        point = pb2_select(times, x, y, running, float(times.max()) + 1.0,
                           np.random.default_rng(seed))
        assert point.shape == (d,)
        assert np.all(np.isfinite(point)) and np.all((point >= 0.0) & (point <= 1.0))
    if case == "bounds":  # reward grows with both coordinates: go to the top corner
        assert np.all(point > 0.7)


def test_empty_data_gives_a_reproducible_random_point() -> None:
    a = pb2_select(np.empty(0), np.empty((0, 3)), np.empty(0), np.empty((0, 3)), 0.0,
                   np.random.default_rng(5))
    b = pb2_select(np.empty(0), np.empty((0, 3)), np.empty(0), np.empty(0), 0.0,
                   np.random.default_rng(5))
    assert a.shape == (3,) and np.array_equal(a, b)


def test_large_data_uses_a_recent_window() -> None:
    """450 rows: the first 150 are noise from an old regime, the rest follow the toy."""
    rng = np.random.default_rng(11)
    n = 450
    x = rng.random((n, 1))
    times = (np.arange(n) // 10).astype(float)
    y = np.where(np.arange(n) < 150, 0.3 * rng.normal(size=n), -(x[:, 0] - 0.7) ** 2)
    with single_threaded_blas():
        length, hyper = select_window(times, x, y, rng)
    assert length % 10 == 0 and 200 <= length <= 300  # never reaches back into the old regime
    assert 0.0 < hyper.epsilon <= 0.5
    point = pb2_select(times, x, y, np.empty((0, 1)), times[-1] + 1.0, rng)
    assert abs(point[0] - 0.7) < 0.1


def test_bad_input_names_the_problem() -> None:
    x, y, t = np.full((3, 2), 0.5), np.zeros(3), np.arange(3.0)
    none = np.empty((0, 2))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="one entry per row"):
        pb2_select(t[:2], x, y, none, 3.0, rng)
    with pytest.raises(ValueError, match=r"normalized to \[0, 1\]"):
        pb2_select(t, x * 3, y, none, 3.0, rng)
    with pytest.raises(ValueError, match="y contains NaN"):
        pb2_select(t, x, np.array([0.0, np.nan, 1.0]), none, 3.0, rng)
    with pytest.raises(ValueError, match="running must have shape"):
        pb2_select(t, x, y, np.full((2, 3), 0.5), 3.0, rng)
    with pytest.raises(ValueError, match="now must be a finite time"):
        pb2_select(t, x, y, none, math.nan, rng)
    with pytest.raises(ValueError, match="2-D array"):
        pb2_select(t, np.full(3, 0.5), y, none, 3.0, rng)
