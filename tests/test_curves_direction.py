"""hyperlaw.curves.extrapolate told the way the metric improves: a curve that worsened over the
steps seen is forecast around its last value instead of along its trend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_curves_bounds import random_curve

import hyperlaw as hl
from hyperlaw.curves import extrapolate
from hyperlaw.schedulers import CurveStopping

LCDB = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "lcdb.npz"
LEVELS = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])


@pytest.mark.parametrize("values", [[0.421, 1.61, 0.568], [1.375, 0.665, 2.348],
                                    [0.182, 0.161, 0.246, 0.25, 0.3]])
def test_a_loss_that_rose_is_forecast_around_its_last_value(values: list[float]) -> None:
    steps = np.arange(1, len(values) + 1, dtype=float)
    told = extrapolate(steps, values, 27, bounds=(0.0, None), direction="minimize")
    assert told.median == pytest.approx(values[-1], rel=1e-3)
    quantiles = np.asarray(told.quantiles(LEVELS))
    assert np.all(quantiles >= 0.0) and np.all(np.diff(quantiles) > 0)
    # not told, the model carries the rise on (the forecasts these cases had before)
    blind = extrapolate(steps, values, 27, bounds=(0.0, None))
    assert blind.median > 1.5 * values[-1]


def test_an_accuracy_that_fell_is_forecast_around_its_last_value_inside_its_range() -> None:
    steps, values = [1, 2, 3, 4], [0.62, 0.60, 0.55, 0.51]
    told = extrapolate(steps, values, 40, bounds=(0.0, 1.0), direction="maximize")
    assert told.median == pytest.approx(0.51, rel=1e-3)
    quantiles = np.asarray(told.quantiles(LEVELS))
    assert np.all((quantiles > 0.0) & (quantiles < 1.0))


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_an_improving_curve_is_predicted_as_without_the_direction(direction: str) -> None:
    steps = np.arange(1, 9, dtype=float)
    falling = 0.1 + 0.7 * steps**-0.6
    values = falling if direction == "minimize" else 1.0 - falling
    told = extrapolate(steps, values, 60, bounds=(0.0, 1.0), direction=direction)  # type: ignore[arg-type]
    blind = extrapolate(steps, values, 60, bounds=(0.0, 1.0))
    assert np.array_equal(np.asarray(told.quantiles(LEVELS)), np.asarray(blind.quantiles(LEVELS)))


@pytest.mark.parametrize("values", [[0.9, 0.6, 0.5, 0.45], [0.5, 0.55, 0.6, 0.7],
                                    [0.5, 0.4, 0.6, 0.5], [0.5, 0.5, 0.5, 0.5]])
def test_maximizing_a_curve_mirrors_minimizing_its_negative(values: list[float]) -> None:
    """Unbounded, a curve told "maximize" is the mirror image of its negative told "minimize",
    whether it improved, worsened, or ended where it started (not a worsening)."""
    v = np.asarray(values)
    up = extrapolate([1, 2, 3, 4], v, 30, bounds=None, direction="maximize")
    down = extrapolate([1, 2, 3, 4], -v, 30, bounds=None, direction="minimize")
    assert np.allclose(np.asarray(up.quantiles(LEVELS)),
                       -np.asarray(down.quantiles(1.0 - LEVELS)), atol=1e-9)


def test_a_bad_direction_names_the_argument_and_the_choices() -> None:
    with pytest.raises(hl.HyperlawError, match=r"direction='down'.*'minimize'.*'maximize'"):
        extrapolate([1, 2, 3], [0.3, 0.2, 0.1], 10, direction="down")  # type: ignore[arg-type]


def test_real_error_rates_that_rose_are_forecast_better_told_the_direction() -> None:
    """On the LCDB datasets held out from calibration (the odd ones), the curves whose error
    rate rose over their first 10% or 20%: told that error rates fall, the median's error is
    far below the forecast along the rise (0.083 against 0.19 when measured)."""
    data = np.load(LCDB)
    names = sorted({key.split("/")[0] for key in data.files},
                   key=lambda name: int(name.removeprefix("openml")))
    told, blind = [], []
    for name in names[1::2]:
        steps, curves = data[f"{name}/steps"], data[f"{name}/curves"].astype(float)
        for fraction in (0.1, 0.2):
            seen = max(3, round(fraction * len(steps)))
            for curve in curves[curves[:, seen - 1] > curves[:, 0]]:
                args = (steps[:seen], curve[:seen], float(steps[-1]))
                told.append(abs(extrapolate(*args, bounds=(0.0, 1.0), direction="minimize")
                                .median - curve[-1]))
                blind.append(abs(extrapolate(*args, bounds=(0.0, 1.0)).median - curve[-1]))
    assert len(told) >= 40
    assert np.median(told) < 0.7 * np.median(blind)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_curve_stopping_tells_the_model_the_study_direction(direction: str) -> None:
    """A trial whose loss rose but still sits below the best complete value keeps better than
    even odds of beating it (along the rise it had about a third)."""
    sign = -1.0 if direction == "maximize" else 1.0
    study = hl.create_study(space={"q": hl.Float(0.0, 1.0)}, direction=direction)
    done = study.ask({"q": 0.0})
    for step in range(1, 17):
        done.report(sign * (0.30 + 0.5 / step), step)
    study.tell(done, sign * (0.30 + 0.5 / 16))
    rising = study.ask({"q": 0.5})
    for step, value in enumerate([0.20, 0.22, 0.25, 0.28], start=1):
        rising.report(sign * value, step)
    history = study._history.refresh()
    record = next(t for t in history.trials if t.number == rising.number)
    chance = CurveStopping(max_budget=16).probability_of_improvement(record, history)
    assert chance is not None and chance > 0.5


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.0, None), "auto", None])
def test_noisy_curves_either_way_keep_finite_ordered_quantiles_inside_the_bounds(
        direction: str, bounds: object) -> None:
    """Random noisy curves, about half of them heading the wrong way for `direction`."""
    rng = np.random.default_rng(11)
    low, high = (0.0, None) if bounds in ("auto", None) else bounds
    for _ in range(40):
        steps, values = random_curve(rng, low, high)
        prediction = extrapolate(steps, values, float(steps[-1] * rng.uniform(1.0, 50.0)),
                                 bounds=bounds, direction=direction)  # type: ignore[arg-type]
        quantiles = np.asarray(prediction.quantiles(LEVELS))
        assert np.all(np.isfinite(quantiles)) and np.all(np.diff(quantiles) >= 0)
        if bounds is not None:
            assert np.all(quantiles >= low)
            assert high is None or np.all(quantiles <= high)
