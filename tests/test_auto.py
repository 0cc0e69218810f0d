"""The default "auto" sampler, parallel workers without duplicates, and noise-aware reporting."""

from __future__ import annotations

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.errors import HyperlawError
from hyperlaw.samplers import AutoSampler, GPSampler, TPESampler


def quadratic(trial: hl.Trial) -> float:
    return sum((v - 0.3) ** 2 for k, v in trial.params.items() if isinstance(v, float))


def filled(space: dict, n: int, seed: int = 0) -> hl.Study:
    study = hl.create_study(space=space, sampler="random", seed=seed)
    study.optimize(quadratic, n_trials=n, show_progress=False)
    return study


def test_auto_is_the_default_sampler() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1)}, seed=0)
    assert isinstance(study.sampler, AutoSampler)
    assert study.sampler.spec()["name"] == "auto"


def test_rule_startup_then_gp_for_small_continuous_histories() -> None:
    space = {"x": hl.Float(0, 1), "y": hl.Float(0, 1)}
    auto = AutoSampler(seed=0)
    study = filled(space, 5)
    assert auto.choose(study.space, study._history.refresh()) is auto.tpe  # startup phase
    study = filled(space, 20)
    assert auto.choose(study.space, study._history.refresh()) is auto.gp
    small = AutoSampler(seed=0, gp_max_trials=15)
    assert small.choose(study.space, study._history.refresh()) is small.tpe


def test_rule_tpe_for_categorical_or_conditional_spaces() -> None:
    auto = AutoSampler(seed=0)
    categorical = {"a": hl.Choice(["p", "q"]), "b": hl.Choice([1, 2, 3]), "x": hl.Float(0, 1)}
    study = filled(categorical, 20)
    assert auto.choose(study.space, study._history.refresh()) is auto.tpe
    conditional = hl.Space(opt=hl.Choice(["sgd", "adam"]), x=hl.Float(0, 1), y=hl.Float(0, 1),
                           m=hl.Float(0, 1, when={"opt": "sgd"}))
    study = filled(conditional, 20)
    assert auto.choose(study.space, study._history.refresh()) is auto.tpe


def test_rule_tpe_when_define_by_run_parameters_are_sometimes_absent() -> None:
    def objective(trial: hl.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if x > 0.5:
            return trial.suggest_float("y", 0, 1)
        return x

    study = hl.create_study(sampler="random", seed=0)
    study.optimize(objective, n_trials=20, show_progress=False)
    auto = AutoSampler(seed=0)
    assert auto.choose(study.space, study._history.refresh()) is auto.tpe


def test_auto_optimizes_and_its_options_survive_a_reload(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = hl.create_study("a", storage=url, space={"x": hl.Float(0, 1), "y": hl.Float(0, 1)},
                            sampler=AutoSampler(seed=4, gp_max_trials=100))
    study.optimize(quadratic, n_trials=25, show_progress=False)
    assert study.best_value < 0.01
    again = hl.load_study("a", url).sampler
    assert isinstance(again, AutoSampler)
    assert (again.seed, again.gp_max_trials) == (4, 100)


def test_parallel_workers_never_receive_duplicates(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    space = {"x": hl.Float(0, 1), "n": hl.Int(1, 4), "c": hl.Choice(["a", "b"])}
    study = hl.create_study("p", storage=url, space=space, sampler="auto", seed=0)

    def objective(trial: hl.Trial) -> float:
        import time

        time.sleep(0.02)
        return (trial.params["x"] - 0.4) ** 2 + trial.params["n"] / 10

    study.optimize(objective, n_trials=24, n_workers=3, show_progress=False)
    done = study.get_trials(["complete"])
    assert len(done) == 24
    keys = {repr(sorted(t.params.items())) for t in done}
    assert len(keys) == 24


def test_unpickled_copies_draw_different_points() -> None:
    import pickle

    study = hl.create_study(space={"x": hl.Float(0, 1)}, sampler="random", seed=0)
    for sampler in (TPESampler(seed=1), GPSampler(seed=1)):
        copies = [pickle.loads(pickle.dumps(sampler)) for _ in range(3)]
        history = study._history.refresh()
        first = [c.suggest(study.space, history, len(history)) for c in copies]
        assert len({p["x"] for p in first}) == 3


def noisy(trial: hl.Trial) -> float:
    x = trial.suggest_float("x", -1.0, 1.0)
    seed = trial.user_attrs.get("seed", 0)
    rng = np.random.default_rng([seed, int(abs(x) * 1e9)])
    return x * x + float(rng.normal(0.0, 0.5))


def test_model_mean_picks_truly_better_configurations_than_the_luckiest_value() -> None:
    by_value, by_mean = [], []
    for seed in range(8):
        study = hl.create_study(space={"x": hl.Float(-1.0, 1.0)}, sampler="random", seed=seed)
        study.optimize(noisy, n_trials=40, show_progress=False)
        by_value.append(study.best("value").params["x"] ** 2)  # true value x^2, noise-free
        by_mean.append(study.best("model_mean").params["x"] ** 2)
    assert study.best("value").number == study.best_trial.number
    assert np.mean(by_mean) < 0.9 * np.mean(by_value)
    with pytest.raises(HyperlawError, match="model_mean"):
        study.best("median")  # type: ignore[arg-type]


def test_reevaluate_runs_top_k_on_fresh_seeds_in_a_sibling_study(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'n.db'}"
    study = hl.create_study("n", storage=url, seed=0)
    study.optimize(noisy, n_trials=20, show_progress=False)
    results = study.reevaluate(noisy, top_k=3, seeds=range(100, 104))
    assert len(results) == 3
    assert all(r.seeds == (100, 101, 102, 103) and len(r.values) == 4 for r in results)
    assert [r.mean for r in results] == sorted(r.mean for r in results)
    assert len(study.trials) == 20  # the tuning history is untouched
    sibling = hl.load_study("n.reevaluation", url)
    assert len(sibling.get_trials(["complete"])) == 12
    top = {r.source_trial for r in results}
    assert top == {t.number for t in sorted(study.trials, key=lambda t: t.value)[:3]}


def test_reevaluate_refuses_tuning_seeds() -> None:
    study = hl.create_study(space={"x": hl.Float(-1.0, 1.0)}, seed=0)
    trial = study.ask()
    trial.set_user_attr("seed", 7)
    study.tell(trial, 0.5)
    with pytest.raises(HyperlawError, match="already used for tuning"):
        study.reevaluate(noisy, top_k=1, seeds=[7, 8])


def test_rule_tpe_when_most_trials_are_pruned() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1), "y": hl.Float(0, 1)},
                            sampler="random", seed=0)
    for i in range(24):
        trial = study.ask()
        trial.report(float(i), step=0)
        if i % 3:
            study.tell(trial, state="pruned")
        else:
            study.tell(trial, float(i))
    auto = AutoSampler(seed=0)
    assert auto.choose(study.space, study._history.refresh()) is auto.tpe
