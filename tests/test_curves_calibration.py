"""The recalibration of the curve models (ensemble.Calibration): its fit, the monotone maps it
ships, the bounds it keeps, and the coverage it restores on curves of a known family."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hyperlaw.curves import ensemble, extrapolate, pfn
from hyperlaw.errors import HyperlawError

SHIPPED = {"ensemble": ensemble.CALIBRATION, "pfn": pfn.CALIBRATION}


def predict(model: str, steps: np.ndarray, values: np.ndarray, at_step: float,
            bounds: Any, calibration: ensemble.Calibration | None) -> Any:
    if model == "pfn":
        return pfn.predict(steps, values, at_step, bounds=bounds, calibration=calibration)
    return extrapolate(steps, values, at_step, bounds=bounds, calibration=calibration)


@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_the_shipped_maps_run_from_zero_to_one_and_increase(model: str) -> None:
    calibration = SHIPPED[model]
    assert len(calibration.pits) == len(calibration.stages)
    for stage in np.linspace(0.0, 1.0, 21):
        for rising in (False, True):
            probs, calibrated = calibration.knots(float(stage), rising)
            assert probs[0] == calibrated[0] == 0.0 and probs[-1] == calibrated[-1] == 1.0
            assert np.all(np.diff(probs) > 0) and np.all(np.diff(calibrated) > 0)


def test_fit_reads_the_pit_quantiles_per_stage_and_weighs_cases() -> None:
    rng = np.random.default_rng(0)
    early, late = rng.uniform(size=400) ** 3, rng.uniform(size=400)  # early: misses low
    fitted = ensemble.Calibration.fit(np.r_[np.full(400, 0.1), np.full(400, 0.9)],
                                      np.r_[early, late])
    probs, calibrated = fitted.knots(0.1)
    assert np.interp(0.5, calibrated, probs) == pytest.approx(0.5**3, abs=0.05)
    probs, calibrated = fitted.knots(0.9)
    assert np.interp(0.5, calibrated, probs) == pytest.approx(0.5, abs=0.08)
    # weights: 10 cases near 0 weighing as much as 400 near 1 pull the median to the middle
    pits = np.r_[np.full(10, 0.01), np.full(400, 0.99)]
    weights = np.r_[np.full(10, 1 / 10), np.full(400, 1 / 400)]
    probs, calibrated = ensemble.Calibration.fit(np.full(410, 0.5), pits, weights).knots(0.5)
    assert 0.01 <= np.interp(0.5, calibrated, probs) <= 0.99
    assert np.interp(0.25, calibrated, probs) == pytest.approx(0.01, abs=1e-6)


@pytest.mark.parametrize("pits, words", [([0.5] * 5, "at least"), ([1.5] * 30, "[0, 1]")])
def test_fit_names_bad_cases(pits: list[float], words: str) -> None:
    with pytest.raises(HyperlawError, match=words.replace("[", r"\[").replace("]", r"\]")):
        ensemble.Calibration.fit(np.zeros(len(pits)), pits)


def noisy_exponential_curves(rng: np.random.Generator, count: int, bounds: tuple
                             ) -> np.ndarray:
    """Curves of 30 points of a known family the models do not fit exactly: an exponential
    decay to a floor, with noise proportional to the gap; error rates for bounds (0, 1)."""
    t = np.arange(1, 31, dtype=float)[None, :]
    floor = rng.uniform(0.02, 0.3, (count, 1))
    start = floor + rng.uniform(0.2, 0.6, (count, 1))
    rate = rng.uniform(0.03, 0.3, (count, 1))
    gap = (start - floor) * np.exp(-rate * (t - 1))
    curves = floor + gap * (1 + 0.3 * rng.standard_normal((count, 30)))
    return np.clip(curves, 1e-4, 1.0 if bounds[1] is not None else None)


@pytest.mark.parametrize("model", sorted(SHIPPED))
def test_refitted_recalibration_covers_fresh_curves_of_the_same_family(model: str) -> None:
    rng = np.random.default_rng([2026, 19])
    bounds = (0.0, 1.0)
    steps, seen = np.arange(1, 31, dtype=float), 6
    count = 150

    def pits_and_stages(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pits, stages = [], []
        for curve in curves:
            raw = predict(model, steps[:seen], curve[:seen], 30.0, bounds, None)
            pits.append(float(raw.cdf(curve[-1])))  # falling curves: the CDF is the PIT
            stages.append(ensemble.stage_of(steps[:seen], 30.0))
        return np.clip(pits, 0.0, 1.0), np.array(stages)

    pits, stages = pits_and_stages(noisy_exponential_curves(rng, count, bounds))
    fitted = ensemble.Calibration.fit(stages, pits)
    fresh = noisy_exponential_curves(rng, count, bounds)
    hits = []
    for curve in fresh:
        prediction = predict(model, steps[:seen], curve[:seen], 30.0, bounds, fitted)
        low, high = prediction.interval(0.8)
        assert 0.0 <= low <= high <= 1.0
        hits.append(low <= curve[-1] <= high)
    assert 0.7 <= np.mean(hits) <= 0.9, np.mean(hits)


@pytest.mark.parametrize("model", sorted(SHIPPED))
@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.0, None), "auto"])
@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.3, 0.5])
def test_recalibrated_quantiles_increase_and_stay_inside_the_bounds(
        model: str, bounds: object, fraction: float) -> None:
    rng = np.random.default_rng(7)
    steps = np.arange(1, 41, dtype=float)
    curve = 0.05 + 0.6 * steps**-0.7 + 0.02 * rng.standard_normal(40)
    curve = np.clip(curve, 0.0, 1.0)
    seen = max(3, round(fraction * 40))
    for values in (curve, 1.0 - curve):  # a falling error rate and a rising accuracy
        prediction = predict(model, steps[:seen], values[:seen], 40.0, bounds, SHIPPED[model])
        q = np.asarray(prediction.quantiles(np.linspace(0.01, 0.99, 99)))
        assert np.all(np.diff(q) >= -1e-12)
        assert q[0] >= 0.0
        if bounds == (0.0, 1.0):
            assert q[-1] <= 1.0
        assert 0.0 <= prediction.mean <= (1.0 if bounds == (0.0, 1.0) else np.inf)
