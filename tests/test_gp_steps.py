"""The GP on objectives whose values come in steps (error rates counted in misclassified
samples): exact repeats at distinct configurations make it fit them noise-free."""

from __future__ import annotations

import hashlib
import math

import numpy as np

import hyperlaw as hl
from hyperlaw.history.observations import COMPLETE, observations
from hyperlaw.models.gp import GaussianProcess, Hyper, scaled_sq_dists
from hyperlaw.models.warp import InputWarp, WarpedGP
from hyperlaw.samplers import GPSampler
from hyperlaw.samplers.gp import _RESOLUTION, resolvable, reveals_steps

SPACE = {"c": hl.Float(1e-3, 1e3, log=True), "gamma": hl.Float(1e-5, 10.0, log=True)}


def _error_rate(p: dict[str, float]) -> float:
    """A bowl in log C and log gamma with a rough ripple (how the folds happen to fall), read
    as an error rate on 120 samples: the number of misclassified samples is an integer, so
    the rate comes in steps of 1/120."""
    u, v = math.log10(p["c"]) - 0.5, math.log10(p["gamma"]) + 1.5
    rate = 0.04 + 0.02 * (u * u + 2.0 * v * v) + 0.01 * math.sin(40 * u) * math.cos(53 * v)
    return round(min(max(rate, 0.0), 0.37) * 120) / 120


def test_repeats_at_distinct_configurations_reveal_steps() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((40, 3))
    loss = np.round(np.sum((x - 0.5) ** 2, axis=1) * 20) / 20  # steps of 0.05
    assert reveals_steps(x, loss)
    noisy = np.sum((x - 0.5) ** 2, axis=1) + 0.05 * rng.standard_normal(40)
    assert not reveals_steps(x, noisy)


def test_repeats_that_are_not_steps_do_not_count() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((40, 3))
    loss = np.sum((x - 0.5) ** 2, axis=1)
    # near-duplicates of the better configurations repeating their values (a converged search)
    best = np.argsort(loss)[:15]
    near = x[best] + 1e-4
    assert not reveals_steps(np.vstack([x, near]), np.concatenate([loss, loss[best]]))
    # a plateau of equal values among the worse half only (bad corners, a failed fit's score)
    worst = np.argsort(loss)[20:]
    flat = loss.copy()
    flat[worst] = 10.0
    assert not reveals_steps(x, flat)
    assert not reveals_steps(x[:1], loss[:1])


def _stepped_model(n_trials: int) -> tuple[GaussianProcess, np.ndarray]:
    """The GP's model after `n_trials` of the stepped error rate (the study's own sampler)."""
    study = hl.create_study(space=SPACE, sampler=GPSampler(seed=0))
    study.optimize(lambda t: _error_rate(t.params), n_trials=n_trials, show_progress=False)
    space, history = hl.Space(SPACE), study._history.refresh()
    obs = observations(space, history)
    sampler = study.sampler
    assert isinstance(sampler, GPSampler)
    done = obs.of_state(COMPLETE)
    assert reveals_steps(obs.x[done], obs.loss[done])
    gp, _, bests, steps = sampler.model(space, history, obs, np.random.default_rng(0))
    assert steps == (n_trials >= 50)
    return gp, bests


def test_a_stepped_objective_is_fitted_noise_free_without_being_told() -> None:
    gp, bests = _stepped_model(60)
    # the ripple and the steps would be fitted as noise (a variance about 1e-3 of the
    # signal's); the noise is capped as for a told objective...
    assert gp.hyper.log_noise <= math.log(1e-5)
    assert gp.alpha.ndim == 1 and bests.shape == (1,)  # ...and EI is plain, not noisy EI


def test_the_first_trials_of_a_stepped_objective_keep_their_learned_noise() -> None:
    # the steps show already, but a smooth model spreads the early suggestions better
    gp, _ = _stepped_model(40)
    assert gp.hyper.log_noise > math.log(1e-5)


def test_candidates_within_the_resolution_of_a_tried_configuration_are_dropped() -> None:
    x = np.array([[0.2, 0.3, 0.0], [0.7, 0.7, 1.0]])  # the third input is a choice
    cat = np.array([False, False, True])
    hyper = Hyper(np.log([0.5, 0.1, 1.0]), 0.0, math.log(1e-5))
    gp = WarpedGP(GaussianProcess(x, np.array([0.0, 1.0]), cat, hyper),
                  InputWarp.identity(cat))
    step = 0.5 * _RESOLUTION  # half the resolution, in lengthscales
    points = np.array([[0.9, 0.1, 0.0],  # far from both
                       [0.2 + step * 0.5, 0.3, 0.0],  # within it along the first input
                       [0.7, 0.7 + 4 * step * 0.1, 1.0],  # beyond it along the second
                       [0.7, 0.7, 0.0],  # the same ordered inputs, another choice
                       [0.7, 0.7 + step * 0.1, 1.0]])  # within it along the second
    kept = resolvable(points, x, gp)
    assert np.array_equal(kept, points[[0, 2, 3]])
    assert resolvable(points[:0], x, gp).shape == (0, 3)
    assert np.array_equal(resolvable(points, x[:0], gp), points)


def _chaotic_error_rate(p: dict[str, float]) -> float:
    """A stepped error rate that also jumps by a step, up or down, at any change of the
    configuration however small (how a fold's split turns on a learning rate's last digit)."""
    u, v = math.log10(p["c"]) - 0.5, math.log10(p["gamma"]) + 1.5
    rate = 0.04 + 0.02 * (u * u + 2.0 * v * v)
    jump = hashlib.sha256(repr((p["c"], p["gamma"])).encode()).digest()[0] % 3 - 1
    return round(min(max(rate, 0.0), 0.37) * 120 + jump) / 120


def test_steps_that_jump_at_every_digit_do_not_crowd_the_search() -> None:
    # fitted noise-free, jumps between near-duplicates bend the mean below every observed
    # value there, and the search kept coming back: before the resolution, trials after the
    # 50th came 4-40 times within 1e-4 lengthscales of another (seeds 0-3)
    study = hl.create_study(space=SPACE, sampler=GPSampler(seed=0))
    study.optimize(lambda t: _chaotic_error_rate(t.params), n_trials=100, show_progress=False)
    space, history = hl.Space(SPACE), study._history.refresh()
    obs = observations(space, history)
    sampler = study.sampler
    assert isinstance(sampler, GPSampler)
    gp, _, _, steps = sampler.model(space, history, obs, np.random.default_rng(0))
    assert steps
    r2 = scaled_sq_dists(gp.warp.apply(obs.x), gp.warp.apply(obs.x), gp.gp.cat,
                         np.exp(-2.0 * gp.hyper.log_ls))
    np.fill_diagonal(r2, np.inf)
    assert r2[50:].min() > (0.1 * _RESOLUTION) ** 2
