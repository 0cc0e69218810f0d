"""The GP with noisy observations: the learned noise level, noisy expected improvement's
incumbent, and fits on degenerate data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.history.observations import observations
from hyperlaw.models.gp import GaussianProcess, fit_hyper, fit_map, neg_log_posterior, sq_dists
from hyperlaw.models.targets import transform_targets
from hyperlaw.samplers import GPSampler
from hyperlaw.samplers import gp as gp_sampler

SPACE = {"x": hl.Float(0.0, 1.0), "y": hl.Float(0.0, 1.0)}


def _smooth(x: np.ndarray) -> np.ndarray:
    return np.sin(5 * x[:, 0]) + (x[:, 1] - 0.4) ** 2


def _noise_ratio(sd: float) -> float:
    """Learned noise variance over signal variance on 40 points with noise sd added."""
    rng = np.random.default_rng(3)
    x = rng.random((40, 2))
    y = transform_targets(_smooth(x) + sd * rng.standard_normal(40))
    cat = np.zeros(2, dtype=bool)
    hyper = fit_hyper(x, y, cat, None, max_iter=200)
    return math.exp(hyper.log_noise - hyper.log_scale)


def test_the_learned_noise_level_grows_with_the_injected_noise() -> None:
    ratios = [_noise_ratio(sd) for sd in (0.0, 0.1, 0.3)]
    assert ratios[0] < ratios[1] < ratios[2]
    assert ratios[0] < 1e-2 < ratios[2]


def _noisy_study(lucky_drop: float, sampler: GPSampler | None = None) -> hl.Study:
    """A smooth bowl (bottom 0 at (0.3, 0.3)) observed with noise of sd 0.05 at 30 random
    points and 5 around (0.8, 0.8), where it is 0.5; the last of those reports a value
    `lucky_drop` below its true one."""
    rng = np.random.default_rng(0)
    study = hl.create_study(space=SPACE, sampler=sampler or GPSampler(seed=0))
    points = np.vstack([rng.random((30, 2)), 0.8 + rng.uniform(-0.03, 0.03, (5, 2))])
    for i, (x, y) in enumerate(points):
        value = (x - 0.3) ** 2 + (y - 0.3) ** 2 + 0.05 * rng.standard_normal()
        study.enqueue({"x": float(x), "y": float(y)})
        trial = study.ask()
        study.tell(trial, value - (lucky_drop if i == len(points) - 1 else 0.0))
    return study


def test_noisy_ei_takes_its_incumbent_from_the_model_not_a_lucky_observation() -> None:
    study = _noisy_study(lucky_drop=0.6)
    sampler = study.sampler
    assert isinstance(sampler, GPSampler)
    space, history = hl.Space(SPACE), study._history.refresh()
    obs = observations(space, history)
    worlds, x, bests, _ = sampler.model(space, history, obs, np.random.default_rng(0))
    assert sampler.noisy(worlds.hyper)
    assert bests.shape == (32,) and np.all(np.isfinite(bests))
    y = transform_targets(np.array([t.value for t in study.trials]))
    lucky = y[-1]
    assert lucky == y.min()  # the lucky value is the best observation...
    # ...but the worlds' incumbents are drawn latent values at the best posterior means, and
    # the lucky point's mean lies well above its observation (its neighbours tell)
    assert np.mean(bests > lucky) > 0.9 and np.median(bests) > lucky + 0.25
    # and the incumbent sits at the bowl's bottom, not at the lucky point
    mean = worlds.predict(x)[0].mean(axis=1)
    assert np.linalg.norm(x[np.argmin(mean)] - 0.3) < 0.25


def test_noisy_ei_proposes_no_point_next_to_the_lucky_observation() -> None:
    study = _noisy_study(lucky_drop=0.6)
    proposals = [study.ask().params for _ in range(3)]
    assert all(math.hypot(p["x"] - 0.8, p["y"] - 0.8) > 0.2 for p in proposals)


def test_a_deterministic_objective_keeps_plain_ei() -> None:
    study = _noisy_study(lucky_drop=0.6)
    sampler = GPSampler(seed=0, deterministic_objective=True)
    space, history = hl.Space(SPACE), study._history.refresh()
    gp, _, bests, _ = sampler.model(space, history, observations(space, history),
                                    np.random.default_rng(0))
    assert not sampler.noisy(gp.hyper) and gp.alpha.ndim == 1 and bests.shape == (1,)


def test_fantasy_averages_climb_only_to_their_own_resolution(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An acquisition averaged over fantasy worlds (noisy EI, or EI with running trials) is an
    estimate: its local searches stop at the coarser tolerance; plain EI (a deterministic
    objective, nothing running) keeps the default one."""
    tolerances: list[float | None] = []
    maximize = gp_sampler.maximize

    def recording(*args: Any, **kwargs: Any) -> np.ndarray:  # the real search, its tolerance noted
        tolerances.append(kwargs.get("ftol"))
        return maximize(*args, **kwargs)

    monkeypatch.setattr(gp_sampler, "maximize", recording)
    _noisy_study(lucky_drop=0.0).ask()
    assert tolerances == [gp_sampler._FANTASY_FTOL]
    study = _noisy_study(0.0, GPSampler(seed=0, deterministic_objective=True))
    study.ask()
    assert tolerances[1:] == [None]
    study.ask()  # one trial running: worlds with its value drawn
    assert tolerances[2:] == [gp_sampler._FANTASY_FTOL]


def test_a_fit_reports_the_negative_log_posterior_where_it_ends() -> None:
    rng = np.random.default_rng(5)
    cat = np.zeros(2, dtype=bool)
    for n, start in ((12, None), (40, None), (40, fit_hyper(*_bowl(40, rng), cat, None, 60))):
        x, loss = _bowl(n, rng)
        y, d2 = transform_targets(loss), sq_dists(x, x, cat)
        hyper, value = fit_map(x, y, cat, start, max_iter=15, d2=d2)
        assert value == neg_log_posterior(hyper.vector(), d2, y)[0]
        again = fit_hyper(x, y, cat, start, max_iter=15, d2=d2)
        assert np.array_equal(hyper.vector(), again.vector())


def _bowl(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.random((n, 2))
    return x, _smooth(x) + 0.1 * rng.standard_normal(n)


def test_fits_stay_finite_on_equal_values_and_duplicate_points() -> None:
    cat = np.zeros(2, dtype=bool)
    x = np.repeat(np.array([[0.2, 0.7], [0.5, 0.5]]), 6, axis=0)  # each point six times
    for loss in (np.zeros(len(x)), np.where(np.arange(len(x)) < 6, 1.0, 2.0)):
        y = transform_targets(loss)
        hyper = fit_hyper(x, y, cat, None, max_iter=100, d2=sq_dists(x, x, cat))
        assert np.all(np.isfinite(hyper.vector()))
        mean, std = GaussianProcess(x, y, cat, hyper).predict(np.array([[0.3, 0.3]]))
        assert np.isfinite(mean).all() and np.isfinite(std).all() and std[0] > 0


def test_the_sampler_proposes_valid_points_on_degenerate_histories() -> None:
    for value in (lambda i: 1.0, lambda i: float(i % 2)):  # all equal; two values
        study = hl.create_study(space=SPACE, sampler=GPSampler(seed=1, n_startup_trials=4))
        for i in range(12):
            study.enqueue({"x": 0.25, "y": 0.75} if i % 2 else {"x": 0.6, "y": 0.1})
            study.tell(study.ask(), value(i))
        for _ in range(3):
            params = study.ask().params
            assert 0.0 <= params["x"] <= 1.0 and 0.0 <= params["y"] <= 1.0
