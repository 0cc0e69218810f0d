"""The GP's learned input warp: its gradients, what it learns, and the sampler using it."""

from __future__ import annotations

import numpy as np

import hyperlaw as hl
from hyperlaw.models.gp import GaussianProcess, Hyper, fit_hyper, neg_log_posterior, sq_dists
from hyperlaw.models.warp import (
    InputWarp,
    WarpedGP,
    fit_warped,
    neg_log_posterior_of,
    warped_objective,
)
from hyperlaw.samplers import GPSampler


def _edge_cliff(x: np.ndarray) -> np.ndarray:
    """Smooth in x0, flat in x1 except a drop over the last 2% of its range (the shape of an
    elastic net's loss next to the lasso's edge, l1_ratio = 1)."""
    return np.sin(3.0 * x[:, 0]) - 2.0 * np.clip((x[:, 1] - 0.98) / 0.02, 0.0, 1.0) ** 2


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    x[: n // 4, 1] = 1.0 - 0.02 * rng.random(n // 4)  # a quarter of the trials on the edge
    y = _edge_cliff(x)
    return x, (y - y.mean()) / y.std()


def test_the_fit_objective_has_the_gradient_of_its_value() -> None:
    x, y = _data(30, 0)
    x = np.column_stack([x, (np.arange(30) % 3) / 2.0])  # and an unordered choice
    cat = np.array([False, False, True])
    warp = InputWarp(np.array([0, 1]), np.array([0.3, -0.2]), np.array([-0.5, 0.4]))
    v = np.concatenate([Hyper(np.array([-1.0, -0.5, 0.2]), 0.1, -4.0).vector(),
                        warp.vector()])
    objective = warped_objective(x, y, cat, warp)
    _, grad = objective(v)
    step = 1e-6
    numeric = [(objective(v + e)[0] - objective(v - e)[0]) / (2 * step)
               for e in np.eye(len(v)) * step]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_the_warp_stretches_the_end_of_a_range_where_the_function_changes() -> None:
    x, y = _data(60, 1)
    cat = np.zeros(2, dtype=bool)
    plain = fit_hyper(x, y, cat, None, max_iter=100)
    (hyper, warp), _ = fit_warped(x, y, cat, None, max_iter=100)
    assert warp.log_b[1] < -0.5  # b < 1: the top of x1's range stretched
    assert abs(warp.log_a[0]) < 0.5 and abs(warp.log_b[0]) < 0.5  # x0 nearly as it is
    # and the warped model predicts the edge better than the plain one, at new points
    test, _ = _data(200, 2)
    truth = _edge_cliff(test)
    _, y_raw = _edge_cliff(x), y
    scale = np.std(_edge_cliff(x))
    centre = np.mean(_edge_cliff(x))
    plain_error = GaussianProcess(x, y_raw, cat, plain).predict(test)[0] * scale + centre - truth
    warped_error = (WarpedGP(GaussianProcess(warp.apply(x), y_raw, cat, hyper), warp)
                    .predict(test)[0] * scale + centre - truth)
    assert np.sqrt(np.mean(warped_error**2)) < 0.5 * np.sqrt(np.mean(plain_error**2))


def test_warped_predictions_have_the_gradient_of_their_values() -> None:
    x, y = _data(40, 3)
    cat = np.zeros(2, dtype=bool)
    warp = InputWarp(np.array([0, 1]), np.array([0.4, 0.9]), np.array([-0.3, -1.2]))
    gp = WarpedGP(GaussianProcess(warp.apply(x), y, cat, Hyper(np.array([-1.0, -1.5]), 0.0,
                                                                  -6.0)), warp)
    points = np.random.default_rng(4).random((5, 2)) * 0.9 + 0.05
    mean, std, chain = gp.predict_with_grad(points)
    u_mean, u_std = np.array([1.0, -0.5, 0.3, 2.0, 1.0]), np.array([0.2, 1.0, -1.0, 0.5, 1.0])
    grad = chain(u_mean, u_std)
    step = 1e-6
    for k in range(2):
        e = np.zeros(2)
        e[k] = step
        up, down = gp.predict(points + e), gp.predict(points - e)
        numeric = (u_mean * (up[0] - down[0]) + u_std * (up[1] - down[1])) / (2 * step)
        np.testing.assert_allclose(grad[:, k], numeric, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mean, gp.predict(points)[0])
    np.testing.assert_allclose(std, gp.predict(points)[1])


def test_the_sampler_warps_its_inputs_from_the_50th_trial_on() -> None:
    def objective(trial: hl.Trial) -> float:
        point = np.array([[trial.suggest_float("a", 0.0, 1.0),
                           trial.suggest_float("l1", 0.0, 1.0)]])
        return float(_edge_cliff(point)[0])

    def warp() -> InputWarp:
        (fit,) = [value[0] for key, value in study._history.memo.items()
                  if key[0] == "hl.gp.hyper"]
        return fit[1]

    study = hl.create_study(sampler=GPSampler(seed=0))
    study.optimize(objective, n_trials=49)
    assert warp().is_identity()  # too few trials for two exponents per input
    study.optimize(objective, n_trials=11)
    assert warp().log_b[1] < 0.0  # the top of l1's range stretched
    assert study.best_value < -1.9  # the edge's optimum, -2 + sin(3 a) near a = 0


def test_running_trials_are_fantasized_through_the_warp() -> None:
    def objective(trial: hl.Trial) -> float:
        point = np.array([[trial.suggest_float("a", 0.0, 1.0),
                           trial.suggest_float("l1", 0.0, 1.0)]])
        return float(_edge_cliff(point)[0])

    study = hl.create_study(sampler=GPSampler(seed=1))
    study.optimize(objective, n_trials=60)
    (fit,) = [value[0] for key, value in study._history.memo.items() if key[0] == "hl.gp.hyper"]
    assert not fit[1].is_identity()
    running = []
    for _ in range(4):  # each suggested while the ones before it run
        trial = study.ask()
        running.append((trial, objective(trial)))
    assert len({(t.params["a"], t.params["l1"]) for t, _ in running}) == 4
    for trial, value in running:
        study.tell(trial, value)
    assert len(study.trials) == 64


def test_a_model_without_warp_is_scored_on_its_plain_inputs() -> None:
    x, y = _data(30, 5)
    cat = np.zeros(2, dtype=bool)
    (hyper, warp), value = fit_warped(x, y, cat, None, max_iter=60, warped=False)
    assert warp.is_identity()
    # exactly the value the plain fit reports: rivals are compared on one footing
    assert neg_log_posterior_of(x, y, cat, (hyper, warp)) == value
    assert value == neg_log_posterior(hyper.vector(), sq_dists(x, x, cat), y)[0]
