"""Recalibration of unbounded predictions (bounds=None, or "auto" on a curve with a negative
value): the maps fitted on warped predictions must not drag the median of a clean curve away
from it; unbounded predictions get maps of their own that keep the model's median."""

from __future__ import annotations

import numpy as np
import pytest

from hyperlaw.curves import ensemble, extrapolate
from hyperlaw.errors import HyperlawError

T8 = np.arange(1.0, 9.0)
T100 = np.arange(1.0, 101.0)

#: name: (steps seen, values seen, at_step, bounds, truth at at_step), noise-free curves
CLEAN = {
    "power law, bounds=None": (T8, 0.3 + 1 / T8, 24.0, None, 0.3 + 1 / 24),
    "longer power law, bounds=None": (T100[:20], 0.3 + 1.2 * T100[:20] ** -0.6, 100.0, None,
                                      0.3 + 1.2 * 100**-0.6),
    "power law through zero, auto": (T8, 1 / T8 - 0.5, 24.0, "auto", 1 / 24 - 0.5),
    "rising negative curve, auto": (T8, -(0.3 + 1 / T8), 24.0, "auto", -(0.3 + 1 / 24)),
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_the_median_of_a_clean_unbounded_curve_stays_near_the_truth(name: str) -> None:
    steps, values, at_step, bounds, truth = CLEAN[name]
    prediction = extrapolate(steps, values, at_step, bounds=bounds)
    change = abs(values[-1] - values[0])
    # the bounded geometry's maps put it a quarter of the observed change or more away
    assert abs(prediction.median - truth) < 0.1 * change
    low, high = prediction.interval(0.8)
    assert low <= truth <= high


def test_a_rising_negative_curve_seen_three_times_keeps_rising_towards_the_truth() -> None:
    steps, values = T8[:3], -(0.3 + 1 / T8[:3])
    truth = -(0.3 + 1 / 24)
    prediction = extrapolate(steps, values, at_step=24.0)
    # the bounded geometry's maps sent it to about +0.38, past zero, the far side of the truth
    assert values[-1] < prediction.median < 0.0
    assert abs(prediction.median - truth) < 0.3 * abs(values[-1] - values[0])
    low, high = prediction.interval(0.8)
    assert low <= truth <= high


def test_bounded_predictions_keep_the_maps_of_their_kind() -> None:
    t = np.arange(1.0, 11.0)
    for bounds, maps in (((0.0, None), ensemble.CALIBRATION),
                         ((0.0, 1.0), ensemble.RANGE_CALIBRATION), ("auto", ensemble.CALIBRATION)):
        auto = extrapolate(t, 0.2 + 0.5 * t**-0.7, 60.0, bounds=bounds)
        shipped = extrapolate(t, 0.2 + 0.5 * t**-0.7, 60.0, bounds=bounds, calibration=maps)
        np.testing.assert_allclose(auto.quantiles([0.1, 0.5, 0.9]),
                                   shipped.quantiles([0.1, 0.5, 0.9]))
    unbounded = extrapolate(t, 0.2 + 0.5 * t**-0.7, 60.0, bounds=None)
    raw = extrapolate(t, 0.2 + 0.5 * t**-0.7, 60.0, bounds=None, calibration=None)
    assert unbounded.median == pytest.approx(raw.median, rel=1e-2)  # the maps keep it


def test_fit_keep_median_maps_one_half_to_one_half_and_covers_central_intervals() -> None:
    rng = np.random.default_rng(1)
    pits = rng.uniform(size=2000) ** 3  # truths mostly below the model's median, as on curves
    fitted = ensemble.Calibration.fit(np.full(pits.size, 0.5), pits, keep_median=True)
    probs, levels = fitted.knots(0.5)
    assert np.interp(0.5, levels, probs) == pytest.approx(0.5)
    assert np.all(np.diff(probs) > 0)
    for level in (0.5, 0.8, 0.9):
        low, high = np.interp([(1 - level) / 2, (1 + level) / 2], levels, probs)
        assert high >= (1 + level) / 2  # never narrower than the model on the far side
        assert np.mean((low <= pits) & (pits <= high)) == pytest.approx(level, abs=0.03)


def test_keep_median_keeps_it_where_most_truths_lie_above_the_median() -> None:
    rng = np.random.default_rng(2)
    pits = 1.0 - rng.uniform(size=2000) ** 4  # truths far above the model's median
    fitted = ensemble.Calibration.fit(np.full(pits.size, 0.5), pits, keep_median=True)
    probs, levels = fitted.knots(0.5)
    # the lower ends of the central intervals would lie above 1/2; they stop below it
    assert np.interp(0.5, levels, probs) == pytest.approx(0.5, abs=1e-9)
    assert np.all(np.diff(probs) > 0)


def test_keep_median_and_a_bad_calibration_name_the_problem() -> None:
    with pytest.raises(HyperlawError, match="symmetric about 1/2"):
        ensemble.Calibration.fit(np.full(40, 0.5), np.linspace(0, 1, 40),
                                 levels=(0.0, 0.3, 1.0), keep_median=True)
    with pytest.raises(HyperlawError, match="calibration='shipped' is not understood"):
        extrapolate(T8, 1 / T8, 24.0, calibration="shipped")  # type: ignore[arg-type]
