"""Log expected hypervolume improvement: its boxes, its values and its slopes."""

from __future__ import annotations

import numpy as np
import pytest

from hyperlaw.models.ehvi import log_ehvi
from hyperlaw.pareto import hypervolume, improvement_boxes
from hyperlaw.samplers import GPSampler

FRONT = np.array([[0.1, 0.9], [0.4, 0.5], [0.8, 0.2]])
REFERENCE = np.array([1.1, 1.1])


def improvement(point: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    return float(np.sum(np.prod(np.clip(upper - np.maximum(point, lower), 0.0, None), axis=1)))


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("n", [0, 1, 7, 25])
def test_boxes_give_the_exact_hypervolume_improvement(k: int, n: int) -> None:
    rng = np.random.default_rng(10 * k + n)
    front = rng.random((n, k))
    reference = np.full(k, 1.1)
    lower, upper = improvement_boxes(front, reference)
    before = hypervolume(front, reference) if n else 0.0
    for point in rng.random((30, k)) * 1.3 - 0.1:
        after = hypervolume(np.vstack([front, point]), reference)
        assert improvement(point, lower, upper) == pytest.approx(after - before, abs=1e-9)


@pytest.mark.parametrize("k", [2, 3])
def test_the_closed_form_matches_monte_carlo(k: int) -> None:
    rng = np.random.default_rng(k)
    lower, upper = improvement_boxes(rng.random((8, k)), np.full(k, 1.1))
    mean, std = rng.random((4, k)), rng.random((4, k)) * 0.3 + 0.05
    noise = rng.standard_normal((4, 50_000, 1, k))
    draws = mean[:, None, None, :] + std[:, None, None, :] * noise
    sampled = np.prod(np.clip(upper - np.maximum(draws, lower), 0.0, None), axis=3).sum(axis=2)
    exact = np.exp(log_ehvi(mean, std, lower, upper))
    np.testing.assert_allclose(exact, sampled.mean(axis=1), rtol=0.05, atol=1e-4)


def score(mean: np.ndarray, std: float = 0.05) -> np.ndarray:
    lower, upper = improvement_boxes(FRONT, REFERENCE)
    mean = np.atleast_2d(mean)
    return np.asarray(log_ehvi(mean, np.full_like(mean, std), lower, upper))


def test_a_point_dominating_the_front_scores_higher_than_a_dominated_one() -> None:
    dominating, on_front, dominated = score(np.array([[0.05, 0.15], [0.4, 0.5], [0.6, 0.7]]))
    assert dominating > on_front > dominated


def test_values_stay_finite_and_ordered_far_from_the_front() -> None:
    far, farther = score(np.array([[5.0, 5.0], [50.0, 50.0]]), std=0.01)
    assert np.isfinite([far, farther]).all()
    assert far > farther
    # a point just behind the front still has a slope towards it
    assert score(np.array([0.45, 0.55]), std=1e-4) < score(np.array([0.42, 0.52]), std=1e-4)


def test_more_uncertainty_scores_higher_behind_the_front() -> None:
    assert score(np.array([0.6, 0.7]), std=0.3) > score(np.array([0.6, 0.7]), std=0.01)


@pytest.mark.parametrize("k", [2, 3])
def test_gradients_match_finite_differences(k: int) -> None:
    rng = np.random.default_rng(k)
    lower, upper = improvement_boxes(rng.random((6, k)), np.full(k, 1.1))
    mean, std = rng.random((5, k)) * 1.2 - 0.1, rng.random((5, k)) * 0.2 + 0.05
    _, d_mean, d_std = log_ehvi(mean, std, lower, upper, grad=True)
    step = 1e-6
    for j in range(k):
        shift = np.zeros_like(mean)
        shift[:, j] = step
        numeric_mean = (log_ehvi(mean + shift, std, lower, upper)
                        - log_ehvi(mean - shift, std, lower, upper)) / (2 * step)
        numeric_std = (log_ehvi(mean, std + shift, lower, upper)
                       - log_ehvi(mean, std - shift, lower, upper)) / (2 * step)
        np.testing.assert_allclose(d_mean[:, j], numeric_mean, rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(d_std[:, j], numeric_std, rtol=1e-3, atol=1e-3)


def test_an_unknown_acquisition_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'auto', 'ehvi'.*'parego'"):
        GPSampler(multi_objective="hvi")  # type: ignore[arg-type]


def test_a_study_with_running_trials_and_three_objectives_gets_distinct_points() -> None:
    import hyperlaw as hl

    space = {f"x{i}": hl.Float(0.0, 1.0) for i in range(3)}
    study = hl.create_study(space=space, directions=["minimize"] * 3,
                            sampler=GPSampler(seed=0, n_startup_trials=5,
                                              multi_objective="ehvi"))
    for _ in range(8):
        trial = study.ask()
        x = np.array([trial.params[f"x{i}"] for i in range(3)])
        study.tell(trial, (float(x[0]), float(x[1]), float(2.0 - x[0] - x[1] + x[2])))
    running = [study.ask() for _ in range(3)]  # the later ones see the earlier as running
    points = {tuple(sorted(t.params.items())) for t in running}
    assert len(points) == 3
    assert all(0.0 <= v <= 1.0 for t in running for v in t.params.values())
