"""TPE: it learns, it is reproducible, it handles conditional, pruned, failed and pending trials."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.history.observations import observations
from hyperlaw.samplers import TPESampler

SPACE_2D = {"x": hl.Float(-5.0, 5.0), "y": hl.Float(-5.0, 5.0)}


def sphere(trial: hl.Trial) -> float:
    return (trial.params["x"] - 1.3) ** 2 + (trial.params["y"] + 2.1) ** 2


def best_after(sampler: str, seed: int, n: int = 60) -> float:
    study = hl.create_study(space=SPACE_2D, sampler=sampler, seed=seed)
    study.optimize(sphere, n_trials=n, show_progress=False)
    return study.best_value


def test_tpe_beats_random_search() -> None:
    tpe = [best_after("tpe", s) for s in range(4)]
    rnd = [best_after("random", s) for s in range(4)]
    assert np.median(tpe) < 0.5 * np.median(rnd)
    assert max(tpe) < 0.5


def test_same_seed_same_suggestions() -> None:
    runs = []
    for _ in range(2):
        study = hl.create_study(space=SPACE_2D, sampler=TPESampler(seed=7))
        study.optimize(sphere, n_trials=25, show_progress=False)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    other = hl.create_study(space=SPACE_2D, sampler=TPESampler(seed=8))
    other.optimize(sphere, n_trials=25, show_progress=False)
    assert [t.params for t in other.trials] != runs[0]


def test_conditional_space_is_respected_and_optimized() -> None:
    space = hl.Space(
        optimizer=hl.Choice(["sgd", "adam"]),
        momentum=hl.Float(0.0, 1.0, when={"optimizer": "sgd"}),
        beta2=hl.Float(0.9, 0.9999, when={"optimizer": "adam"}),
        layers=hl.Int(1, 8),
        lr=hl.Float(1e-5, 1.0, log=True),
    )

    def objective(trial: hl.Trial) -> float:
        p = trial.params
        branch = abs(p["momentum"] - 0.9) if p["optimizer"] == "sgd" else 0.5
        return (math.log10(p["lr"]) + 3) ** 2 + branch + 0.1 * abs(p["layers"] - 3)

    bests, branches = [], []
    for seed in range(3):
        study = hl.create_study(space=space, sampler="tpe", seed=seed)
        study.optimize(objective, n_trials=80, show_progress=False)
        for t in study.trials:
            assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
            assert ("beta2" in t.params) == (t.params["optimizer"] == "adam")
        bests.append(study.best_value)
        branches.append(study.best_params["optimizer"])
        late = [t.params["optimizer"] for t in study.trials[40:]]
        assert late.count("sgd") > late.count("adam")
    assert branches.count("sgd") >= 2
    assert np.median(bests) < 0.15  # random search: 0.28 median over six seeds


def test_define_by_run_with_python_conditionals() -> None:
    def objective(trial: hl.Trial) -> float:
        kind = trial.suggest_categorical("kind", ["a", "b"])
        if kind == "a":
            return (trial.suggest_float("u", 0, 1) - 0.2) ** 2
        return 0.3 + trial.suggest_int("k", 0, 10) / 10

    study = hl.create_study(sampler="tpe", seed=0)
    study.optimize(objective, n_trials=50, show_progress=False)
    assert study.best_params["kind"] == "a"
    assert study.best_value < 0.01
    late = [t.params["kind"] for t in study.trials[25:]]
    assert late.count("a") >= 18


def test_split_ranks_complete_then_pruned_by_step_then_failed_and_running() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1)}, sampler="random", seed=0)
    for value in [3.0, 1.0, 2.0]:
        study.tell(study.ask(), value)
    for steps in ([0.5], [0.4, 0.9]):  # pruned: the one that got further ranks first
        trial = study.ask()
        for i, v in enumerate(steps):
            trial.report(v, step=i)
        study.tell(trial, state="pruned")
    study.tell(study.ask(), state="failed")
    study.ask()  # left running
    obs = observations(study.space, study._history.refresh())
    sampler = TPESampler(seed=0)
    assert list(sampler.rank(obs)) == [1, 2, 0, 4, 3]
    good, bad = sampler.split(obs)
    assert list(good) == [1]  # gamma(5) = 1: the best complete trial
    assert list(bad) == [0, 2, 3, 4, 5, 6]
    assert list(TPESampler(seed=0, constant_liar=False).split(obs)[1]) == [0, 2, 3, 4, 5]


def test_pruned_trials_steer_the_search() -> None:
    def objective(trial: hl.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        loss = (x - 0.7) ** 2
        for step in range(3):
            trial.report(loss + 0.3 / (step + 1), step)
            if x < 0.4 and step == 0:
                raise hl.TrialPruned()
        return loss

    study = hl.create_study(sampler="tpe", seed=1)
    study.optimize(objective, n_trials=50, show_progress=False)
    pruned_late = sum(t.state is hl.TrialState.PRUNED for t in study.trials[25:])
    pruned_early = sum(t.state is hl.TrialState.PRUNED for t in study.trials[:25])
    assert pruned_late < pruned_early
    assert abs(study.best_params["x"] - 0.7) < 0.05


def test_failed_region_is_avoided() -> None:
    def objective(trial: hl.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if x > 0.6:
            raise RuntimeError("diverged")
        return (x - 0.3) ** 2

    study = hl.create_study(sampler="tpe", seed=2)
    study.optimize(objective, n_trials=60, show_progress=False, max_consecutive_failures=None)
    early_failed = sum(t.state is hl.TrialState.FAILED for t in study.trials[:30])
    late_failed = sum(t.state is hl.TrialState.FAILED for t in study.trials[30:])
    assert late_failed < early_failed / 2
    assert study.best_value < 1e-3


def test_pending_trials_get_distinct_suggestions() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1), "c": hl.Choice(["a", "b"])},
                            sampler="tpe", seed=0)
    study.optimize(lambda t: (t.params["x"] - 0.5) ** 2, n_trials=20, show_progress=False)
    pending = [study.ask() for _ in range(8)]
    xs = [t.params["x"] for t in pending]
    assert len(set(xs)) == 8
    known = {t.params["x"] for t in study.trials[:20]}
    assert not known & set(xs)


@pytest.mark.parametrize("multivariate", [True, False])
def test_integer_and_choice_values_stay_in_the_space(multivariate: bool) -> None:
    space = hl.Space(n=hl.Int(1, 64, log=True), act=hl.Choice(["relu", "gelu", "tanh"]),
                     drop=hl.Float(0.0, 0.5, step=0.1))

    def objective(trial: hl.Trial) -> float:
        p = trial.params
        return abs(math.log2(p["n"]) - 4) + (p["act"] != "gelu") + abs(p["drop"] - 0.2)

    study = hl.create_study(space=space, sampler=TPESampler(seed=4, multivariate=multivariate))
    study.optimize(objective, n_trials=60, show_progress=False)
    for t in study.trials:
        assert space.validate_params(t.params) == t.params
    assert study.best_value < 1.0
    assert study.best_params["act"] == "gelu"


def test_options_survive_a_reload(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    hl.create_study("s", storage=url, space=SPACE_2D,
                    sampler=TPESampler(seed=5, n_startup_trials=4, multivariate=False))
    sampler = hl.load_study("s", url).sampler
    assert isinstance(sampler, TPESampler)
    assert (sampler.seed, sampler.n_startup_trials, sampler.multivariate) == (5, 4, False)


def test_small_discrete_space_gets_no_repeats_until_exhausted() -> None:
    space = {"k": hl.Int(1, 6), "w": hl.Choice(["a", "b"])}  # 12 configurations

    def objective(trial: hl.Trial) -> float:
        return abs(trial.params["k"] - 3) + (trial.params["w"] == "b")

    study = hl.create_study(space=space, sampler=TPESampler(seed=0, n_startup_trials=3))
    study.optimize(objective, n_trials=12, show_progress=False)
    keys = {(t.params["k"], t.params["w"]) for t in study.trials}
    assert len(keys) == 12


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_model_based_samplers_reach_every_value_of_a_log_integer(sampler: str) -> None:
    """Log-scaled integers are not evenly spaced on the unit cube: snapping proposals to
    equal-width cells made values such as 68 of Int(16, 128, log=True) unreachable."""
    study = hl.create_study(space={"w": hl.Int(16, 128, log=True)}, sampler=sampler, seed=0)
    for w in (16, 17, 18, 19, 20, 120, 122, 124, 126, 128):  # the start, far from 68
        study.enqueue({"w": w})
    study.optimize(lambda t: float(abs(t.params["w"] - 68)), n_trials=50,
                   show_progress=False)
    assert study.best_params == {"w": 68}


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_model_based_samplers_try_every_configuration_of_a_finite_space_before_repeating(
        sampler: str) -> None:
    space = {"k": hl.Int(1, 15), "weights": hl.Choice(["uniform", "distance"]),
             "p": hl.Int(1, 2)}  # 60 configurations, like a k-NN grid
    study = hl.create_study(space=space, sampler=sampler, seed=3)
    for _ in range(15):  # 4 trials at a time, as 4 workers would hold them
        trials = [study.ask() for _ in range(4)]
        for trial in trials:
            p = trial.params
            study.tell(trial, abs(p["k"] - 7) + (p["weights"] == "uniform") + p["p"])
    keys = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(keys) == 60
