"""hyperlaw.curves.extrapolate with bounds: predictions stay inside the metric's range."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.curves import ensemble, extrapolate
from hyperlaw.schedulers import CurveStopping

LEVELS = np.array([0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999])


def random_curve(rng: np.random.Generator, low: float, high: float | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A noisy falling or rising power law with random length and spacing, clipped into the
    bounds (values on a bound included)."""
    n = int(rng.integers(3, 40))
    steps = np.cumsum(rng.uniform(0.5, 5.0, n))
    top = 1.0 if high is None else high
    start, end = rng.uniform(low, top, 2)
    shape = (steps / steps[0]) ** -rng.uniform(0.1, 2.0)
    values = end + (start - end) * shape + rng.normal(0, rng.uniform(0, 0.2) * (top - low), n)
    return steps, np.clip(values, low, np.inf if high is None else high)


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.0, None), (-1.0, 2.0), "auto"])
def test_every_quantile_and_the_mean_stay_inside_the_bounds(bounds: object) -> None:
    rng = np.random.default_rng(7)
    low, high = (0.0, None) if bounds == "auto" else bounds
    for _ in range(60):
        steps, values = random_curve(rng, low, high)
        at = float(steps[-1] * rng.uniform(1.0, 50.0))
        prediction = extrapolate(steps, values, at, bounds=bounds)
        quantiles = np.asarray(prediction.quantiles(LEVELS))
        assert np.all(np.isfinite(quantiles)) and np.all(np.diff(quantiles) >= 0)
        assert np.all(quantiles >= low)
        assert low <= prediction.mean and np.isfinite(prediction.std)
        assert prediction.cdf(low - 1e-9) == 0.0
        if high is not None:
            assert np.all(quantiles <= high) and prediction.mean <= high
            assert prediction.cdf(high) == 1.0


def test_the_guide_example_has_a_sensible_interval() -> None:
    prediction = extrapolate([1, 2, 3, 4, 5], [1.9, 1.2, 0.9, 0.8, 0.72], at_step=30)
    low, high = prediction.interval(0.8)
    assert 0.0 <= low < prediction.mean < high < 1.9  # the first release: [-2.87, 4.00]
    assert prediction.quantiles(0.01) >= 0.0
    # most likely still falling: the last value seen, 0.72, lies high in the distribution
    assert prediction.cdf(0.72) > 0.8 and high < 0.9


@pytest.mark.parametrize("bounds", [(0.0, None), (0.0, 1.0)])
def test_a_noiseless_power_law_is_covered_narrowly(bounds: object) -> None:
    t = np.arange(1, 101, dtype=float)
    curve = 0.3 + 1.2 * t**-0.6 if bounds[1] is None else 0.05 + 0.6 * t**-0.6
    prediction = extrapolate(t[:20], curve[:20], at_step=100, bounds=bounds)
    low, high = prediction.interval(0.8)
    assert low <= curve[-1] <= high
    # narrow: a fraction of the first release's interval, and of what is left to fall
    old_low, old_high = extrapolate(t[:20], curve[:20], at_step=100,
                                    **ensemble.UNBOUNDED_UNCALIBRATED).interval(0.8)
    assert high - low < 0.15 * (old_high - old_low)


def test_the_far_tails_of_a_range_map_onto_its_ends_without_warnings() -> None:
    warp = ensemble.Warp(0.0, 1.0, 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exp(800) overflowed on the way to 0
        assert np.array_equal(warp.inverse(np.array([-800.0, 800.0])), [0.0, 1.0])


def test_bounds_keep_error_rates_near_zero_from_going_negative() -> None:
    t = np.arange(1, 11, dtype=float)
    error = 0.002 + 0.3 * t**-1.5  # a rate heading to almost nothing
    prediction = extrapolate(t, error, at_step=200, bounds=(0.0, 1.0))
    assert prediction.quantiles(0.001) >= 0.0
    unbounded = extrapolate(t, error, at_step=200, bounds=None, calibration=None)
    assert unbounded.quantiles(0.001) < 0.0  # what bounds are for


@pytest.mark.parametrize("bounds, words", [
    ((1.0, 0.0), "low >= high"),
    ((0.0,), "must be a pair"),
    ("loss", "not understood"),
    ((0.0, float("inf")), "None for an"),
    ((0.5, 1.0), "below 0.5"),
    ((0.0, 0.8), "above 0.8"),
])
def test_bad_bounds_name_the_problem_and_the_fix(bounds: object, words: str) -> None:
    with pytest.raises(hl.HyperlawError, match=words) as caught:
        extrapolate([1, 2, 3], [0.9, 0.6, 0.4], at_step=10, bounds=bounds)  # type: ignore[arg-type]
    assert "bounds" in str(caught.value)


@pytest.mark.parametrize("variance", [0.0, -1.0, float("nan"), float("inf")])
def test_a_bad_coefficient_variance_names_the_argument(variance: float) -> None:
    with pytest.raises(hl.HyperlawError, match="coefficient_variance must be a positive"):
        extrapolate([1, 2, 3], [0.9, 0.6, 0.4], at_step=10, coefficient_variance=variance)


def test_a_declared_range_reads_the_maps_of_a_range() -> None:
    steps, values = [1, 2, 3, 4, 5], [0.61, 0.42, 0.33, 0.29, 0.27]
    auto = extrapolate(steps, values, at_step=100, bounds=(0.0, 1.0))
    ranged = extrapolate(steps, values, at_step=100, bounds=(0.0, 1.0),
                         calibration=ensemble.RANGE_CALIBRATION)
    as_loss = extrapolate(steps, values, at_step=100, bounds=(0.0, 1.0),
                          calibration=ensemble.CALIBRATION)
    assert auto.median == ranged.median != as_loss.median


def test_negative_curves_are_unbounded_by_default() -> None:
    prediction = extrapolate([1, 2, 3, 4], [-0.1, -0.5, -0.7, -0.8], at_step=20)
    assert prediction.quantiles(0.5) < -0.8


def test_curve_stopping_takes_bounds_and_keeps_them_in_its_options() -> None:
    stopping = CurveStopping(max_budget=30, bounds=(0.0, 1.0))
    assert stopping.options()["bounds"] == [0.0, 1.0]
    again = CurveStopping(**stopping.options())
    assert again.bounds == (0.0, 1.0)
    assert CurveStopping().options()["bounds"] == "auto"
    with pytest.raises(hl.HyperlawError, match="CurveStopping: bounds"):
        CurveStopping(bounds=(1.0, 0.0))
