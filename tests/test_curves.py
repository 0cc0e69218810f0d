"""hyperlaw.curves: the parametric families and the Bayesian extrapolation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.curves import FAMILIES, extrapolate

LCDB = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "lcdb.npz"


def test_families_match_their_formulas() -> None:
    t = np.array([1.0, 2.0, 10.0])
    assert np.allclose(FAMILIES["pow3"](t, 1.0, 0.5, 1.0), 1.0 - 0.5 / t)
    assert np.allclose(FAMILIES["ilog2"](t, 1.0, 0.5), 1.0 - 0.5 / np.log(t + 1))
    janoschek = FAMILIES["janoschek"](t, 0.9, 0.1, 0.5, 1.0)
    assert np.allclose(janoschek, 0.9 - 0.8 * np.exp(-0.5 * t))
    assert np.allclose(FAMILIES["mmf"](t, 0.9, 0.1, 1.0, 1.0), 0.9 - 0.8 / (1 + t))
    assert np.allclose(FAMILIES["weibull"](t, 0.9, 0.1, 0.5, 2.0),
                       0.9 - 0.8 * np.exp(-(0.5 * t) ** 2))
    assert np.allclose(FAMILIES["exp3"](t, 1.0, 1.0, 1.0), 1.0 - np.exp(-t))
    assert set(FAMILIES) >= {"pow3", "pow4", "ilog2", "janoschek", "weibull", "mmf", "vap",
                             "log_power", "exp4", "dr_hill", "loglog_linear"}
    for family in FAMILIES.values():  # each family is finite somewhere sensible
        params = [0.5] * len(family.parameters)
        assert np.all(np.isfinite(family(np.array([2.0, 5.0]), *params)))


def noisy_pow3(n: int, seed: int, falling: bool = True) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1, dtype=float)
    curve = 0.3 + 1.2 * t ** -0.6
    if not falling:
        curve = 1.0 - curve / 2
    return t, curve + rng.normal(0, 0.005, n)


@pytest.mark.parametrize("falling", [True, False])
def test_extrapolation_beats_the_last_value_and_covers_the_truth(falling: bool) -> None:
    t, y = noisy_pow3(100, 0, falling)
    # the rising curve is accuracy-like: its range is declared
    prediction = extrapolate(t[:25], y[:25], at_step=100,
                             bounds=(0.0, None) if falling else (0.0, 1.0))
    truth = y[-1]
    low, high = prediction.interval(0.9)
    assert low < truth < high
    assert abs(prediction.mean - truth) < abs(y[24] - truth)


def test_prediction_quantiles_and_cdf_agree() -> None:
    t, y = noisy_pow3(40, 1)
    prediction = extrapolate(t[:12], y[:12], at_step=40)
    qs = np.array([0.05, 0.1, 0.5, 0.9, 0.95])
    values = prediction.quantiles(qs)
    assert np.all(np.diff(values) > 0)
    assert np.allclose(prediction.cdf(values), qs, atol=1e-3)
    assert isinstance(prediction.quantiles(0.5), float)
    assert prediction.std > 0
    assert values[0] < prediction.mean < values[-1]


def test_prediction_is_invariant_to_the_step_unit() -> None:
    t, y = noisy_pow3(30, 2)
    in_epochs = extrapolate(t[:10], y[:10], at_step=30)
    in_tokens = extrapolate(t[:10] * 4096, y[:10], at_step=30 * 4096)
    assert in_epochs.mean == pytest.approx(in_tokens.mean)
    assert in_epochs.quantiles(0.9) == pytest.approx(in_tokens.quantiles(0.9))
    from_zero = extrapolate(t[:10] - 1, y[:10], at_step=29)  # epochs counted from 0
    assert from_zero.mean == pytest.approx(in_epochs.mean)


def test_wider_intervals_further_out() -> None:
    t, y = noisy_pow3(100, 3)
    near = extrapolate(t[:20], y[:20], at_step=25).interval(0.8)
    far = extrapolate(t[:20], y[:20], at_step=100).interval(0.8)
    assert far[1] - far[0] > near[1] - near[0]


def test_short_and_flat_curves() -> None:
    one = extrapolate([1], [0.7], at_step=10)
    assert one.mean == 0.7 and one.quantiles(0.1) < 0.7 < one.quantiles(0.9)
    flat = extrapolate([1, 2, 3, 4], [0.5] * 4, at_step=10)
    assert flat.mean == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("steps, values, at", [
    ([], [], 10),
    ([1, 2], [0.5], 10),
    ([2, 1, 3], [0.1, 0.2, 0.3], 10),
    ([1, 2, 3], [0.1, math.nan, 0.3], 10),
    ([1, 2, 3], [0.1, 0.2, 0.3], math.inf),
])
def test_bad_input_raises(steps: list, values: list, at: float) -> None:
    with pytest.raises(hl.HyperlawError):
        extrapolate(steps, values, at_step=at)
    with pytest.raises(hl.HyperlawError):
        extrapolate([1, 2, 3], [0.3, 0.2, 0.1], 10).quantiles(1.0)


def test_calibrated_on_real_curves_of_held_out_tasks() -> None:
    """The 80% interval from 30% of a real curve covers roughly 80% of the final values of the
    LCDB datasets held out from calibration (the odd ones, as in benchmarks/curves.py; 0.854
    when measured, just above the 0.75-0.85 goal: benchmarks/README.md), and the mean beats
    the last value seen by 20%."""
    data = np.load(LCDB)
    names = sorted({key.split("/")[0] for key in data.files},
                   key=lambda name: int(name.removeprefix("openml")))
    hits, errors, naive = [], [], []
    for name in names[1::2]:
        steps, curves = data[f"{name}/steps"], data[f"{name}/curves"].astype(float)
        seen = max(3, round(0.3 * len(steps)))
        for curve in curves:
            prediction = extrapolate(steps[:seen], curve[:seen], at_step=float(steps[-1]),
                                     bounds=(0.0, 1.0))
            low, high = prediction.interval(0.8)
            hits.append(low <= curve[-1] <= high)
            errors.append(abs(prediction.mean - curve[-1]))
            naive.append(abs(curve[seen - 1] - curve[-1]))
    coverage = float(np.mean(hits))
    assert 0.65 <= coverage <= 0.9, coverage
    assert np.median(errors) < 0.8 * np.median(naive)
