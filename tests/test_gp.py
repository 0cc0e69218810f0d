"""GP Bayesian optimization: the model, log-EI, the acquisition optimizer and the sampler."""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy.stats import norm

import hyperlaw as hl
from hyperlaw.history.observations import observations, params_key
from hyperlaw.models.acquisition import (
    fantasy_log_expected_improvement,
    log_expected_improvement,
    log_h,
)
from hyperlaw.models.gp import (
    GaussianProcess,
    Hyper,
    fit_hyper,
    neg_log_posterior,
    sq_dists,
)
from hyperlaw.models.optimizer import maximize
from hyperlaw.samplers import GPSampler
from hyperlaw.samplers.gp import fantasize, still_fresh


def branin(trial: hl.Trial) -> float:
    x, y = trial.params["x"], trial.params["y"]
    return ((y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
            + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


BRANIN_SPACE = {"x": hl.Float(-5.0, 10.0), "y": hl.Float(0.0, 15.0)}
BRANIN_MIN = 0.397887


def test_log_h_matches_the_closed_form_and_stays_finite_in_the_tail() -> None:
    z = np.array([4.0, 1.0, 0.0, -0.5, -1.5, -3.0, -8.0])
    direct = np.log(norm.pdf(z) + z * norm.cdf(z))
    np.testing.assert_allclose(log_h(z), direct, rtol=1e-9)
    tail = log_h(np.array([-30.0, -300.0, -3e4, -3e6]))
    assert np.all(np.isfinite(tail))
    assert np.all(np.diff(tail) < 0)
    # asymptotically log h(z) ~ -z^2/2 - log(sqrt(2 pi)) - 2 log|z|
    np.testing.assert_allclose(tail[1], -0.5 * 300.0**2 - 0.5 * math.log(2 * math.pi)
                               - 2 * math.log(300.0), rtol=1e-6)


def test_the_slope_of_log_h_is_phi_over_h_on_both_branches_and_far_out() -> None:
    from scipy.special import log_ndtr

    from hyperlaw.models.acquisition import _log_h_and_slope

    z = np.array([3.0, 0.2, -0.99, -1.01, -6.0, -40.0, -2e3, -5e4])
    for part in (z, z[:3], z[3:]):  # mixed, all near, all in the tail
        value, slope = _log_h_and_slope(part)
        np.testing.assert_allclose(value, log_h(part), rtol=1e-12)
        np.testing.assert_allclose(slope, np.exp(log_ndtr(part) - value), rtol=1e-6)
    step = 1e-5
    near = z[np.abs(z) < 100]
    numeric = (log_h(near + step) - log_h(near - step)) / (2 * step)
    np.testing.assert_allclose(_log_h_and_slope(near)[1], numeric, rtol=1e-5)


def test_log_ei_prefers_low_mean_and_high_uncertainty() -> None:
    values = log_expected_improvement(np.array([0.0, -1.0, 0.0]), np.array([1.0, 1.0, 2.0]),
                                      best=0.0)
    assert values[1] > values[0] and values[2] > values[0]


def test_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((30, 3))
    x[:, 2] = (np.floor(x[:, 2] * 3) + 0.5) / 3
    cat = np.array([False, False, True])
    d2 = sq_dists(x, x, cat)
    y = rng.standard_normal(30)
    h = np.array([-0.3, 0.2, 0.5, 0.1, -3.0])
    _, grad = neg_log_posterior(h, d2, y)
    eps = 1e-5
    numeric = [(neg_log_posterior(h + eps * e, d2, y)[0]
                - neg_log_posterior(h - eps * e, d2, y)[0]) / (2 * eps) for e in np.eye(5)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)


def test_fit_learns_relevance_and_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((60, 2))
    clean = np.sin(6 * x[:, 0])  # the second input is irrelevant
    cat = np.zeros(2, dtype=bool)
    smooth = fit_hyper(x, clean, cat, None, max_iter=100)
    noisy = fit_hyper(x, clean + 0.5 * rng.standard_normal(60), cat, None, max_iter=100)
    assert smooth.log_ls[0] < smooth.log_ls[1]
    assert noisy.log_noise > smooth.log_noise + 2.0
    gp = GaussianProcess(x, clean, cat, smooth)
    mean, std = gp.predict(np.array([[0.25, 0.5]]))
    assert abs(mean[0] - math.sin(1.5)) < 0.05 and std[0] < 0.1


def test_acquisition_optimizer_finds_the_peak_with_mixed_dimensions() -> None:
    cat = np.array([False, False, True])
    bins = np.array([0, 5, 3])

    def acq(points: np.ndarray) -> np.ndarray:
        choice_bonus = np.where(np.floor(points[:, 2] * 3) == 1, 0.0, -1.0)
        return -((points[:, 0] - 0.37) ** 2) - (points[:, 1] - 0.5) ** 2 + choice_bonus

    best = maximize(acq, 3, cat, bins, np.empty((0, 3)), np.random.default_rng(0))[0]
    assert abs(best[0] - 0.37) < 1e-3
    assert best[1] == 0.5  # integer bin centre
    assert best[2] == 0.5  # the middle of three choices


def test_unevenly_spaced_levels_are_the_only_points_scored_and_proposed() -> None:
    levels = {0: np.array([0.05, 0.2, 0.55, 0.9])}
    scored: list[np.ndarray] = []

    def acq(points: np.ndarray) -> np.ndarray:
        scored.append(points[:, 0].copy())
        return -((points[:, 0] - 0.4) ** 2) - (points[:, 1] - 0.3) ** 2  # peak between levels

    found = maximize(acq, 2, np.array([False, False]), np.array([0, 0]), np.empty((0, 2)),
                     np.random.default_rng(0), levels=levels)
    assert set(np.concatenate(scored).tolist()) <= set(levels[0].tolist())
    assert found[0][0] == 0.55 and abs(found[0][1] - 0.3) < 1e-3  # the nearer level wins
    assert set(found[:, 0].tolist()) <= set(levels[0].tolist())


def test_log_integers_are_scored_where_they_round_to() -> None:
    # the GP's candidates hold its log-scaled integers at their values' positions, so the
    # acquisition that ranks them is the acquisition of the configuration that will run
    space = hl.Space(leaves=hl.Int(2, 64, log=True), rate=hl.Float(1e-3, 1.0, log=True),
                     min_leaf=hl.Int(1, 50, log=True))

    def objective(trial: hl.Trial) -> float:
        p = trial.params
        return (math.log(p["leaves"] / 9.4) ** 2 + math.log(p["min_leaf"] / 3.3) ** 2
                + math.log(p["rate"] / 0.1) ** 2)

    sampler = GPSampler(seed=0)
    study = hl.create_study(space=space, sampler=sampler)
    study.optimize(objective, n_trials=12, show_progress=False)
    for _ in range(6):
        history = study._history.refresh()
        candidates = sampler.propose(space, history, observations(space, history),
                                     np.random.default_rng(0))[:9]  # the local searches'
        on_values = np.array([space.encode(space.decode(c)) for c in candidates])
        assert candidates[:, [0, 2]].tolist() == on_values[:, [0, 2]].tolist()
        study.optimize(objective, n_trials=1, show_progress=False)


def test_gp_reaches_the_branin_optimum() -> None:
    study = hl.create_study(space=BRANIN_SPACE, sampler="gp", seed=0)
    study.optimize(branin, n_trials=35, show_progress=False)
    assert study.best_value - BRANIN_MIN < 0.05


def test_same_seed_same_suggestions() -> None:
    runs = []
    for _ in range(2):
        study = hl.create_study(space=BRANIN_SPACE, sampler=GPSampler(seed=3))
        study.optimize(branin, n_trials=14, show_progress=False)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_pending_trials_are_fantasized_into_a_diverse_batch() -> None:
    study = hl.create_study(space=BRANIN_SPACE, sampler="gp", seed=1)
    study.optimize(branin, n_trials=15, show_progress=False)
    batch = [study.ask() for _ in range(4)]
    points = np.array([[t.params["x"] / 15, t.params["y"] / 15] for t in batch])
    gaps = [np.linalg.norm(points[i] - points[j]) for i in range(4) for j in range(i)]
    assert min(gaps) > 0.01


def test_large_histories_use_a_bounded_subset() -> None:
    sampler = GPSampler(seed=0, max_points=40)
    rng = np.random.default_rng(0)
    x = rng.random((200, 2))
    loss = np.sum((x - 0.3) ** 2, axis=1)
    keep = sampler.subset(x, loss, rng)
    assert len(keep) == 40 and len(set(keep)) == 40
    assert int(np.argmin(loss)) in keep
    study = hl.create_study(space={"a": hl.Float(0, 1), "b": hl.Float(0, 1)}, sampler=sampler)
    study.optimize(lambda t: (t.params["a"] - 0.3) ** 2 + (t.params["b"] - 0.3) ** 2,
                   n_trials=60, show_progress=False)
    assert study.best_value < 1e-3


def test_mixed_space_values_are_valid_and_learned() -> None:
    space = hl.Space(lr=hl.Float(1e-4, 1.0, log=True), width=hl.Int(8, 256, log=True),
                     act=hl.Choice(["relu", "tanh", "gelu"]))

    def objective(trial: hl.Trial) -> float:
        p = trial.params
        return ((math.log10(p["lr"]) + 2) ** 2 + (math.log2(p["width"]) - 6) ** 2 / 4
                + (0 if p["act"] == "tanh" else 1))

    study = hl.create_study(space=space, sampler="gp", seed=2)
    study.optimize(objective, n_trials=30, show_progress=False)
    for t in study.trials:
        assert space.validate_params(t.params) == t.params
    assert study.best_params["act"] == "tanh"
    assert study.best_value < 0.3


def test_initial_hyper_matches_dimension() -> None:
    assert len(Hyper.initial(7).log_ls) == 7


def test_scaled_distances_match_the_per_dimension_tensor() -> None:
    from hyperlaw.models.gp import scaled_sq_dists

    rng = np.random.default_rng(3)
    a, b = rng.random((7, 4)), rng.random((5, 4))
    a[:, 3] = (np.floor(a[:, 3] * 3) + 0.5) / 3
    b[:, 3] = (np.floor(b[:, 3] * 3) + 0.5) / 3
    cat = np.array([False, False, False, True])
    inv_ls2 = np.array([2.0, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(scaled_sq_dists(a, b, cat, inv_ls2),
                               sq_dists(a, b, cat) @ inv_ls2, atol=1e-12)


def test_posterior_and_log_ei_gradients_match_finite_differences() -> None:
    from hyperlaw.models.acquisition import log_expected_improvement_with_grad

    rng = np.random.default_rng(4)
    x = rng.random((25, 3))
    x[:, 2] = (np.floor(x[:, 2] * 3) + 0.5) / 3
    cat = np.array([False, False, True])
    gp = GaussianProcess(x, np.sin(5 * x[:, 0]) + x[:, 1], cat,
                         Hyper(np.array([-1.0, -0.5, 0.0]), 0.0, math.log(1e-4)))
    xs = rng.random((6, 3))
    xs[:, 2] = (np.floor(xs[:, 2] * 3) + 0.5) / 3
    mean, std, chain = gp.predict_with_grad(xs)
    np.testing.assert_allclose((mean, std), gp.predict(xs), atol=1e-10)
    np.testing.assert_allclose(gp.predict_mean(xs), mean, atol=1e-12)
    ones, zeros = np.ones(len(xs)), np.zeros(len(xs))
    for u_mean, u_std, value in ((ones, zeros, lambda p: gp.predict(p)[0]),
                                 (zeros, ones, lambda p: gp.predict(p)[1])):
        for k in (0, 1):  # the posterior's own gradients, through the chain rule
            step = np.zeros(3)
            step[k] = 1e-6
            numeric = (value(xs + step) - value(xs - step)) / 2e-6
            np.testing.assert_allclose(chain(u_mean, u_std)[:, k], numeric, rtol=1e-4,
                                       atol=1e-7)
    for best in (-0.5, -3.0):  # near and far in the tail of the improvement
        _, grad = log_expected_improvement_with_grad(mean, std, chain, best)
        eps = 1e-6
        for k in (0, 1):
            step = np.zeros(3)
            step[k] = eps
            numeric = (log_expected_improvement(*gp.predict(xs + step), best)
                       - log_expected_improvement(*gp.predict(xs - step), best)) / (2 * eps)
            np.testing.assert_allclose(grad[:, k], numeric, rtol=1e-4, atol=1e-6)
        assert np.all(grad[:, 2] == 0.0)  # choices are searched by sweeps, not gradients


def test_lengthscales_follow_how_fast_each_input_matters() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((50, 3))
    y = np.sin(12 * x[:, 0]) + 0.3 * x[:, 1]  # fast in x0, slow in x1, x2 irrelevant
    y = (y - y.mean()) / y.std()
    ls = np.exp(fit_hyper(x, y, np.zeros(3, dtype=bool), None, max_iter=200).log_ls)
    assert ls[0] < 0.3 < ls[1] <= ls[2]


def test_an_ordered_input_keeps_a_lengthscale_within_its_range() -> None:
    # x1 and the choice x2 do not matter: the choice may be called irrelevant (a long
    # lengthscale), the ordered input only as far as a lengthscale of its whole range, 1
    rng = np.random.default_rng(3)
    x = rng.random((40, 3))
    x[:, 2] = np.floor(x[:, 2] * 3) / 2
    y = np.sin(6 * x[:, 0])
    y = (y - y.mean()) / y.std()
    ls = np.exp(fit_hyper(x, y, np.array([False, False, True]), None, max_iter=200).log_ls)
    assert ls[0] < 0.5
    assert 0.5 < ls[1] <= 1.0 + 1e-9
    assert ls[2] > 2.0


def test_blas_is_single_threaded_for_scipy_too() -> None:
    from threadpoolctl import threadpool_info

    from hyperlaw.models.linalg import single_threaded_blas

    with single_threaded_blas():
        blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas)


def test_running_trials_are_never_proposed_again_in_a_small_discrete_space() -> None:
    space = {"k": hl.Int(1, 20), "kind": hl.Choice(["a", "b", "c"])}

    def objective(trial: hl.Trial) -> float:
        return (trial.params["k"] - 7) ** 2 / 10 + (trial.params["kind"] != "b")

    study = hl.create_study(space=space, sampler="gp", seed=0)
    study.optimize(objective, n_trials=16, show_progress=False)
    done = {(t.params["k"], t.params["kind"]) for t in study.trials}
    batch = [study.ask() for _ in range(6)]
    proposed = [(t.params["k"], t.params["kind"]) for t in batch]
    assert len(set(proposed)) == 6 and not set(proposed) & done
    # the ranked candidates hold many untried points, so no random fallback is needed
    sampler = study.sampler
    assert isinstance(sampler, GPSampler)
    history = study._history.refresh()
    obs = observations(study.space, history)
    candidates = sampler.propose(study.space, history, obs, np.random.default_rng(0))
    untried = {params_key(study.space.decode(x)) for x in candidates} - set(obs.keys)
    assert len(untried) >= 10


def test_fantasies_remove_the_improvement_at_running_points() -> None:
    study = hl.create_study(space=BRANIN_SPACE, sampler=GPSampler(seed=0))
    study.optimize(branin, n_trials=15, show_progress=False)
    sampler = study.sampler
    assert isinstance(sampler, GPSampler)
    running = study.ask()
    from hyperlaw.history.observations import observations

    space = study.space
    history = study._history.refresh()
    obs = observations(space, history)
    gp, _, best, _ = sampler.model(space, history, obs, np.random.default_rng(0))
    point = space.encode(running.params)[None, :]
    mean, std = gp.predict(point)
    assert std[0] < 1e-3 and fantasy_log_expected_improvement(mean, std, best)[0] < -8


def _fantasy_setup(n_worlds: int) -> tuple[GaussianProcess, np.ndarray, float, np.ndarray,
                                           GaussianProcess, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.random((20, 2))
    y = np.sin(6 * x[:, 0]) + np.cos(4 * x[:, 1])
    y = (y - y.mean()) / y.std()
    gp = GaussianProcess(x, y, np.zeros(2, dtype=bool),
                         Hyper(np.array([-1.0, -1.0]), 0.0, math.log(1e-3)))
    xp = np.array([[0.8, 0.2], [0.3, 0.9]])
    best = float(gp.predict(x)[0].min())
    worlds, bests = fantasize(gp, xp, best, n_worlds, np.random.default_rng(0))
    return gp, xp, best, rng.random((5, 2)), worlds, bests


def test_fantasy_ei_is_the_new_points_share_of_the_batch_expected_improvement() -> None:
    # E[max(best - min(f_pending, f_x), 0)] - E[max(best - min(f_pending), 0)], by brute force
    gp, xp, best, xs, worlds, bests = _fantasy_setup(1024)
    ours = np.exp(fantasy_log_expected_improvement(*worlds.predict(xs), bests))
    draws = np.random.default_rng(1).standard_normal((200_000, 3))
    for i, point in enumerate(xs):
        mean, cov = gp.posterior_covariance(np.vstack([xp, point]))
        f = mean + draws @ np.linalg.cholesky(cov + 1e-10 * np.eye(3)).T
        gain = (np.maximum(best - f.min(axis=1), 0.0)
                - np.maximum(best - f[:, :2].min(axis=1), 0.0)).mean()
        np.testing.assert_allclose(ours[i], gain, rtol=0.03, atol=1e-4)


def test_fantasy_ei_gradient_matches_finite_differences() -> None:
    from hyperlaw.models.acquisition import fantasy_log_expected_improvement_with_grad

    _, _, _, xs, worlds, bests = _fantasy_setup(32)
    values, grad = fantasy_log_expected_improvement_with_grad(
        *worlds.predict_with_grad(xs), bests)
    np.testing.assert_allclose(values, fantasy_log_expected_improvement(
        *worlds.predict(xs), bests))
    for k in (0, 1):
        step = np.zeros(2)
        step[k] = 1e-6
        numeric = (fantasy_log_expected_improvement(*worlds.predict(xs + step), bests)
                   - fantasy_log_expected_improvement(*worlds.predict(xs - step), bests)) / 2e-6
        np.testing.assert_allclose(grad[:, k], numeric, rtol=1e-4, atol=1e-6)


def test_parallel_batches_are_deterministic_and_avoid_running_points() -> None:
    batches = []
    for _ in range(2):
        study = hl.create_study(space=BRANIN_SPACE, sampler=GPSampler(seed=2))
        study.optimize(branin, n_trials=14, show_progress=False)
        batches.append([study.ask().params for _ in range(4)])
    assert batches[0] == batches[1]
    points = np.array([[p["x"] / 15, p["y"] / 15] for p in batches[0]])
    gaps = [np.linalg.norm(points[i] - points[j]) for i in range(4) for j in range(i)]
    assert min(gaps) > 0.02


def test_conditional_candidates_are_scored_as_they_will_be_decoded() -> None:
    space = hl.Space(kind=hl.Choice(["flat", "bowl"]),
                     depth=hl.Float(0.0, 1.0, when={"kind": "bowl"}), x=hl.Float(0.0, 1.0))

    def objective(trial: hl.Trial) -> float:
        p = trial.params
        return (p["x"] - 0.3) ** 2 + (0.5 if p["kind"] == "flat" else (p["depth"] - 0.8) ** 2)

    study = hl.create_study(space=space, sampler=GPSampler(seed=0))
    study.optimize(objective, n_trials=30, show_progress=False)
    for t in study.trials:
        assert space.validate_params(t.params) == t.params
    assert study.best_params["kind"] == "bowl" and study.best_value < 0.02


def test_running_trials_at_one_point_or_at_an_observed_point_are_fantasized() -> None:
    """Fantasy worlds need a square root of the posterior covariance at the running points;
    running trials at the same place (or where a trial was observed) make it singular."""
    study = hl.create_study(space={"x": hl.Float(0, 1), "y": hl.Float(0, 1)}, sampler="gp",
                            seed=1)
    for _ in range(12):
        trial = study.ask()
        study.tell(trial, (trial.params["x"] - 0.3) ** 2 + (trial.params["y"] - 0.6) ** 2)
    observed = dict(study.trials[0].params)
    for params in ({"x": 0.5, "y": 0.5}, {"x": 0.5, "y": 0.5}, {"x": 0.5, "y": 0.5},
                   observed):
        study.enqueue(params)
        study.ask()  # left running
    proposal = study.ask().params
    assert proposal not in ({"x": 0.5, "y": 0.5}, observed)
    assert 0.0 <= proposal["x"] <= 1.0 and 0.0 <= proposal["y"] <= 1.0


def test_feasibility_weighted_log_ei_gradient_matches_finite_differences() -> None:
    from hyperlaw.models.acquisition import log_expected_improvement_with_grad
    from hyperlaw.samplers.gp import with_feasibility

    rng = np.random.default_rng(7)
    x = rng.random((30, 2))
    cat = np.zeros(2, dtype=bool)
    hyper = Hyper(np.array([-1.0, -0.7]), 0.0, math.log(1e-4))
    objective = GaussianProcess(x, np.cos(4 * x[:, 0]) + x[:, 1], cat, hyper)
    violation = GaussianProcess(x, x[:, 0] - x[:, 1], cat, hyper)
    acq, acq_grad = with_feasibility(
        lambda p: log_expected_improvement(*objective.predict(p), -0.8),
        lambda p: log_expected_improvement_with_grad(*objective.predict_with_grad(p), -0.8),
        violation, 0.1)
    xs = rng.random((5, 2))
    values, grad = acq_grad(xs)
    np.testing.assert_allclose(values, acq(xs))
    for k in (0, 1):
        step = np.zeros(2)
        step[k] = 1e-6
        numeric = (acq(xs + step) - acq(xs - step)) / 2e-6
        np.testing.assert_allclose(grad[:, k], numeric, rtol=1e-4, atol=1e-6)


def test_hyperparameters_refit_every_trial_early_then_once_5_percent_new_trials_arrived() -> None:
    def refits(until: int) -> list[int]:
        fitted_at: list[int] = []
        memo: tuple[None, int] | None = None
        for n in range(1, until + 1):
            if not still_fresh(memo, n):
                memo = (None, n)
                fitted_at.append(n)
        return fitted_at

    fitted = refits(200)
    assert fitted[:39] == list(range(1, 40))  # every trial while the data are few
    gaps, later = np.diff(fitted), np.array(fitted[1:])
    assert set(gaps[(later >= 40) & (later < 60)]) == {2}
    assert all(gap >= n // 20 for gap, n in zip(gaps, later, strict=True))
    assert len(fitted) < 90  # against 200 refits, one a trial


def test_difference_gradients_on_the_upper_bound_look_backward() -> None:
    from hyperlaw.models.optimizer import _finite_difference

    def acq(points: np.ndarray) -> np.ndarray:
        return -((points[:, 0] - 0.8) ** 2) + points[:, 1]

    batch = np.array([[1.0, 1.0], [0.5, 0.0]])
    values, grad = _finite_difference(acq, batch, np.arange(2), np.ones(2))
    np.testing.assert_allclose(values, [0.04 - 1.0, 0.09])
    # gradients of -acq: 2 (x - 0.8) and -1, on the bound as inside it
    np.testing.assert_allclose(grad, [[0.4, -1.0], [-0.6, -1.0]], atol=1e-5)


def test_the_posterior_agrees_with_the_textbook_formulas() -> None:
    # the inverse of the Cholesky factor, the joint covariance by a triangular solve and the
    # variances by the cached inverse factor: all one posterior, k** - k*' K^-1 k*
    rng = np.random.default_rng(4)
    x = rng.random((60, 3))
    y = np.sin(5 * x[:, 0]) + x[:, 1] * x[:, 2]
    gp = GaussianProcess(x, (y - y.mean()) / y.std(), np.zeros(3, dtype=bool),
                         Hyper(np.array([-1.0, -0.5, 0.0]), 0.2, math.log(1e-3)))
    ks_train = gp.cross_kernel(x)
    k = ks_train + (math.exp(gp.hyper.log_noise) + 1e-9 * gp.scale) * np.eye(60)
    inverse_factor = gp.chol_inv()
    np.testing.assert_allclose(inverse_factor @ k @ inverse_factor.T, np.eye(60), atol=1e-8)
    xs = rng.random((7, 3))
    ks = gp.cross_kernel(xs)
    prior = gp.cross_kernel(xs) @ np.linalg.solve(k, ks.T)  # k*' K^-1 k*
    mean, cov = gp.posterior_covariance(xs)
    k_star = GaussianProcess(xs, np.zeros(7), gp.cat, gp.hyper).cross_kernel(xs)
    np.testing.assert_allclose(cov, k_star - prior, atol=1e-9)
    np.testing.assert_allclose(mean, ks @ np.linalg.solve(k, gp.y), atol=1e-9)
    np.testing.assert_allclose(gp.predict(xs)[1] ** 2, np.diag(cov), atol=1e-9)


def test_variances_keep_their_accuracy_where_trials_crowd_a_basin() -> None:
    # 40 trials within 1e-3 of one point and little noise: the kernel matrix's condition
    # number is about 4e7, and next to the crowd the variance is 1e-7 of the prior's. Taken
    # through an explicit K^-1 such variances were off by up to 7%, so that the log
    # acquisition near the incumbents was noise; exact values computed at 40 digits
    rng = np.random.default_rng(0)
    centre = np.array([0.6, 0.05])
    x = np.vstack([centre + rng.normal(scale=1e-3, size=(40, 2)), rng.random((20, 2))])
    y = np.sin(4 * x[:, 0]) + x[:, 1]
    gp = GaussianProcess(x, (y - y.mean()) / y.std(), np.zeros(2, dtype=bool),
                         Hyper(np.array([math.log(0.2), 0.0]), 0.0, math.log(1e-6)))
    xs = np.vstack([centre + rng.normal(scale=s, size=(5, 2)) for s in (1e-4, 1e-3, 1e-2)])
    mpmath.mp.dps = 40
    k = gp.cross_kernel(x) + np.eye(len(x)) * (1e-6 + 1e-9 * gp.scale)
    factor = mpmath.cholesky(mpmath.matrix(k.tolist()))
    exact = np.array([float(gp.scale - sum(z * z for z in mpmath.lu_solve(
        factor, mpmath.matrix(row.tolist())))) for row in gp.cross_kernel(xs)])
    assert exact[:10].max() < 1e-6 * gp.scale  # next to the crowd
    std = gp.predict(xs)[1]
    np.testing.assert_allclose(std**2, exact, rtol=1e-5)
    np.testing.assert_allclose(gp.predict_with_grad(xs)[1], std, rtol=1e-9)


def test_a_screen_scores_the_pool_and_the_searches_climb_the_acquisition() -> None:
    # the screen (a cheaper stand-in) prefers 0.2, the acquisition 0.8: the searches start
    # where the screen points and end at the acquisition's maximum; the fallbacks after them
    # are the pool's best by the screen
    def acq(points: np.ndarray) -> np.ndarray:
        return -((points[:, 0] - 0.8) ** 2)

    def screen(points: np.ndarray) -> np.ndarray:
        return -((points[:, 0] - 0.2) ** 2)

    points = maximize(acq, 1, np.zeros(1, dtype=bool), np.zeros(1, dtype=np.int64),
                      np.zeros((0, 1)), np.random.default_rng(0), n_starts=2, n_backup=4,
                      screen=screen)
    assert abs(points[0, 0] - 0.8) < 1e-3
    assert np.all(np.abs(points[-4:, 0] - 0.2) < 0.01)


def test_the_pool_is_the_given_spread_of_points_and_the_incumbents_perturbations() -> None:
    # the pool scored first is exactly `uniform`, then n_local perturbations of the incumbent
    # (and the incumbent itself); a narrow peak that only a given point lies on is found
    scored: list[np.ndarray] = []
    peak = np.array([0.123, 0.877])

    def acq(points: np.ndarray) -> np.ndarray:
        scored.append(points.copy())
        return -np.sum((points - peak) ** 2, axis=1) / 1e-4

    uniform = np.array([[0.9, 0.1], [0.124, 0.876], [0.5, 0.5]])
    incumbent = np.array([[0.4, 0.4]])
    cat, bins = np.zeros(2, dtype=bool), np.zeros(2, dtype=np.int64)
    best = maximize(acq, 2, cat, bins, incumbent, np.random.default_rng(0), uniform=uniform,
                    n_local=5)[0]
    pool = scored[0]
    assert len(pool) == len(uniform) + 5 + 1
    assert np.array_equal(pool[:3], uniform) and np.array_equal(pool[-1], incumbent[0])
    assert np.all(np.abs(pool[3:8] - incumbent[0]) < 1.0)
    assert np.allclose(best, peak, atol=1e-4)


def test_a_model_built_from_distances_keeps_its_kernel_for_the_training_inputs() -> None:
    # the kernel computed from `d2` serves the means at the training inputs and the
    # models conditioned on them (fantasy worlds), as the cross kernel would
    rng = np.random.default_rng(3)
    x = rng.random((30, 3))
    cat = np.array([False, False, True])
    x[:, 2] = np.floor(x[:, 2] * 3) / 3
    y = np.sin(4 * x[:, 0]) + x[:, 1]
    hyper = Hyper(np.log(np.array([0.3, 0.5, 1.0])), 0.0, math.log(1e-3))
    gp = GaussianProcess(x, (y - y.mean()) / y.std(), cat, hyper, d2=sq_dists(x, x, cat))
    assert np.allclose(gp.kernel_at_x, gp.cross_kernel(x), rtol=0, atol=1e-12)
    assert np.allclose(gp.predict_mean(x), gp.cross_kernel(x) @ gp.alpha, rtol=0, atol=1e-10)
    worlds, _ = fantasize(gp, np.zeros((0, 3)), 0.0, 4, rng, redraw=np.array([0, 1]))
    assert worlds.kernel_at_x is gp.kernel_at_x
