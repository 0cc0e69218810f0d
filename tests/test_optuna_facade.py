"""`import hyperlaw.optuna as optuna`: Optuna scripts run on hyperlaw with one import changed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import hyperlaw as hl
import hyperlaw.optuna as optuna
from hyperlaw.optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from hyperlaw.optuna.samplers import GridSampler, PartialFixedSampler, TPESampler
from hyperlaw.optuna.study import MaxTrialsCallback, StudyDirection
from hyperlaw.optuna.trial import FrozenTrial, TrialState


def _curve_objective(trial: optuna.Trial) -> float:
    """An Optuna-style objective: learning-curve reports, pruning by should_prune."""
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 8, 64, step=8)
    act = trial.suggest_categorical("act", ["relu", "tanh"])
    trial.suggest_float("dropout", 0.0, 0.5, step=0.1)
    trial.suggest_int("layers", 1, 8, log=True)
    trial.suggest_uniform("u", 0.0, 1.0)
    trial.suggest_loguniform("lu", 1e-3, 1.0)
    trial.suggest_discrete_uniform("du", 0.0, 1.0, 0.25)
    trial.set_user_attr("act_is_relu", act == "relu")
    loss = 1.0
    for epoch in range(6):
        loss = abs(math.log10(lr) + 2.5) + 1.0 / (epoch + 1) + 0.001 * width
        trial.report(loss, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return loss


def test_a_typical_optuna_script_runs_with_one_import_changed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'example.db'}"
    seen: list[FrozenTrial] = []
    study = optuna.create_study(study_name="mlp", storage=url, direction="minimize",
                                sampler=TPESampler(seed=0, n_startup_trials=5),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    study.enqueue_trial({"lr": 3e-3, "width": 16})
    study.optimize(_curve_objective, n_trials=20, callbacks=[lambda s, t: seen.append(t)])

    assert study.study_name == "mlp" and study.direction == StudyDirection.MINIMIZE
    trials = study.trials
    assert len(trials) == 20 and [t.number for t in seen] == list(range(20))
    assert trials[0].params["lr"] == 3e-3 and trials[0].params["width"] == 16  # enqueued
    pruned = study.get_trials(deepcopy=False, states=[TrialState.PRUNED])
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert pruned and complete and len(pruned) + len(complete) == 20
    best = study.best_trial
    assert best.state is TrialState.COMPLETE and best.value == study.best_value
    assert study.best_params == best.params and best.params["du"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert best.intermediate_values[5] == best.value and best.last_step == 5
    # a finished trial carries both datetimes, and its duration is the span between them
    assert best.datetime_start is not None and best.datetime_complete is not None
    assert best.duration == best.datetime_complete - best.datetime_start
    assert best.user_attrs["act_is_relu"] == (best.params["act"] == "relu")
    assert best.distributions["lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert best.distributions["width"] == IntDistribution(8, 64, step=8)
    assert best.distributions["act"] == CategoricalDistribution(["relu", "tanh"])
    assert _curve_objective(best) == best.value  # a FrozenTrial re-runs the configuration

    frame = study.trials_dataframe()
    assert list(frame.columns[:5]) == ["number", "value", "datetime_start", "datetime_complete",
                                       "duration"]
    assert {"params_lr", "params_act", "user_attrs_act_is_relu", "state"} <= set(frame.columns)
    assert set(frame["state"]) == {"COMPLETE", "PRUNED"}

    again = optuna.load_study(study_name="mlp", storage=url)
    assert len(again.trials) == 20 and again.best_value == study.best_value
    assert isinstance(again.pruner, hl.schedulers.MedianStopping)  # rebuilt from the store
    assert hl.load_study("mlp", url).best_value == study.best_value  # a hyperlaw study too
    assert optuna.study.get_all_study_names(url) == ["mlp"]
    optuna.delete_study(study_name="mlp", storage=url)
    assert optuna.study.get_all_study_names(url) == []


def test_load_if_exists_continues_and_duplicates_raise_optunas_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(study_name="s", storage=url).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(optuna.exceptions.DuplicatedStudyError):
        optuna.create_study(study_name="s", storage=url)
    study = optuna.create_study(study_name="s", storage=url, load_if_exists=True)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(study.trials) == 3
    with pytest.raises(KeyError):
        optuna.load_study(study_name="missing", storage=url)


@pytest.mark.parametrize(("pruner", "expect"), [
    (lambda: optuna.pruners.MedianPruner(n_startup_trials=2), hl.schedulers.MedianStopping),
    (lambda: optuna.pruners.PercentilePruner(25.0, n_startup_trials=2),
     hl.schedulers.PercentileStopping),
    (lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=2),
     hl.schedulers.ASHA),
    (lambda: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9,
                                            reduction_factor=3), hl.schedulers.Hyperband),
    (lambda: optuna.pruners.ThresholdPruner(upper=2.0), hl.schedulers.ThresholdStopping),
    (lambda: optuna.pruners.PatientPruner(None, patience=1),
     hl.schedulers.PatienceStopping),
])
def test_pruners_prune_bad_trials(pruner: Any, expect: type) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        value = 0.0
        for step in range(10):
            # good trials (small x) improve every step; bad ones stall at a high value
            value = x * 3 + (1.0 / (step + 1) if x < 0.5 else 1.0)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1),
                                pruner=pruner())
    assert isinstance(study.pruner, expect)
    for x in (0.1, 0.2, 0.05, 0.3):  # good trials first, so every rule has a reference
        study.enqueue_trial({"x": x})
    study.optimize(objective, n_trials=24)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "the pruner pruned nothing"
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    best = min(t.params["x"] for t in complete)  # the best configuration is never pruned
    assert best <= 0.05 and all(t.params["x"] > best for t in pruned)
    assert all(t.value == t.intermediate_values[t.last_step] for t in pruned)


def test_nop_pruner_and_no_reports_prune_nothing() -> None:
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        trial.report(x, 0)
        trial.report(x, 0)  # a repeated step is ignored with a warning, as in Optuna
        assert not trial.should_prune()
        return x

    with pytest.warns(UserWarning, match="already reported"):
        study.optimize(objective, n_trials=3)
    assert {t.state for t in study.trials} == {TrialState.COMPLETE}


def test_real_optuna_trial_pruned_prunes_a_facade_trial() -> None:
    real_optuna = pytest.importorskip("optuna")
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())

    def objective(trial: optuna.Trial) -> float:
        trial.report(trial.suggest_float("x", 0, 1), 0)
        raise real_optuna.TrialPruned()

    study.optimize(objective, n_trials=2)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2


def test_catch_fails_and_stops_as_optuna_does() -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number == 1:
            raise ValueError("boom")
        if trial.number == 2:
            return None  # type: ignore[return-value]  # a failed trial, the study goes on
        return x

    study = optuna.create_study()
    with pytest.raises(ValueError, match="boom"):
        study.optimize(objective, n_trials=5)  # catch=() by default: the error stops it
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    study.optimize(objective, n_trials=3, catch=(ValueError,))
    assert [t.state for t in study.trials][2:] == [TrialState.FAIL, TrialState.COMPLETE,
                                                   TrialState.COMPLETE]


def test_worker_processes_with_n_jobs(tmp_path: Path) -> None:
    numbers: list[int] = []
    for storage in (None, f"sqlite:///{tmp_path / 'jobs.db'}"):
        study = optuna.create_study(storage=storage, direction="maximize",
                                    sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(_curve_objective, n_trials=8, n_jobs=2,
                       callbacks=[lambda s, t: numbers.append(t.number)])
        assert len(study.trials) == 8
        assert all(t.state.is_finished() for t in study.trials)
        workers = {t.system_attrs.get("worker") for t in study.trials}
        # worker processes ran every trial (how many of the two got one depends on the load)
        assert None not in workers and 1 <= len(workers) <= 2
    assert sorted(numbers) == sorted(list(range(8)) * 2)


def test_ask_tell_grid_partial_fixed_max_trials_and_stop() -> None:
    study = optuna.create_study(direction="maximize")
    trial = study.ask({"x": FloatDistribution(0, 1), "k": IntDistribution(1, 3)})
    assert set(trial.params) == {"x", "k"}
    frozen = study.tell(trial, trial.params["x"])
    assert frozen.state is TrialState.COMPLETE and frozen.value == trial.params["x"]
    pruned = study.ask()
    pruned.report(0.5, 1)
    assert study.tell(pruned, state=TrialState.PRUNED).value == 0.5
    # the added trial's value is above any x the unseeded ask can draw: it must be the best
    study.add_trial(optuna.create_trial(params={"x": 0.9, "k": 2}, value=1.5,
                                        distributions={"x": FloatDistribution(0, 1),
                                                       "k": IntDistribution(1, 3)}))
    assert study.best_value == 1.5

    grid = optuna.create_study(sampler=GridSampler({"a": [1, 2, 3], "b": ["x", "y"]}, seed=0))
    grid.optimize(lambda t: t.suggest_int("a", 1, 3) + len(t.suggest_categorical(
        "b", ["x", "y"])), n_trials=50)
    assert sorted((t.params["a"], t.params["b"]) for t in grid.trials) == [
        (a, b) for a in (1, 2, 3) for b in ("x", "y")]  # every point once, then it stops

    fixed = optuna.create_study(sampler=PartialFixedSampler({"y": 0.25}, TPESampler(seed=0)))
    fixed.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_float("y", 0, 1),
                   n_trials=4, callbacks=[MaxTrialsCallback(3)])
    assert len(fixed.trials) == 3 and {t.params["y"] for t in fixed.trials} == {0.25}

    stopped = optuna.create_study()
    stopped.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=10,
                     callbacks=[lambda s, t: s.stop() if t.number == 1 else None])
    assert len(stopped.trials) == 2


def test_samplers_by_their_optuna_names() -> None:
    s = optuna.samplers
    assert isinstance(s.TPESampler(seed=1), hl.samplers.TPESampler)
    assert isinstance(s.RandomSampler(seed=1), hl.samplers.RandomSampler)
    assert isinstance(s.GPSampler(seed=1), hl.samplers.GPSampler)
    assert isinstance(s.QMCSampler(seed=1), hl.samplers.SobolSampler)
    assert isinstance(s.CmaEsSampler(seed=1), hl.samplers.AutoSampler)
    assert isinstance(s.GridSampler({"x": [1, 2]}), hl.samplers.GridSampler)
    assert isinstance(s.NSGAIISampler(seed=1), hl.samplers.Sampler)
    study = optuna.create_study(sampler=s.CmaEsSampler(seed=0))
    study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.5) ** 2, n_trials=12)
    assert study.best_value < 0.25


def test_constraints_func_values_are_recorded_as_optuna_records_them() -> None:
    def constraints(trial: FrozenTrial) -> tuple[float, float]:
        return trial.params["x"] - 0.5, -1.0

    study = optuna.create_study(sampler=TPESampler(seed=0, constraints_func=constraints))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    for trial in study.trials:
        assert trial.system_attrs["constraints"] == [trial.params["x"] - 0.5, -1.0]
        assert trial.constraints == {"c0": trial.params["x"] - 0.5, "c1": -1.0}


def test_logging_and_integration_names() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert optuna.logging.get_verbosity() == optuna.logging.WARNING
    assert optuna.logging.get_logger("optuna").name == "hyperlaw"
    assert optuna.exceptions.TrialPruned is hl.TrialPruned is optuna.TrialPruned
    assert callable(optuna.integration.LightGBMPruningCallback)


def test_xgboost_and_lightgbm_pruning_callbacks_prune() -> None:
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + 0.3 * rng.normal(size=200) > 0).astype(int)

    def xgb_objective(trial: optuna.Trial) -> float:
        eta = trial.suggest_float("eta", 1e-6, 1.0, log=True)
        dtrain = xgb.DMatrix(x[:150], label=y[:150])
        dvalid = xgb.DMatrix(x[150:], label=y[150:])
        callback = optuna.integration.XGBoostPruningCallback(trial, "validation-logloss")
        booster = xgb.train({"objective": "binary:logistic", "eta": eta,
                             "eval_metric": "logloss", "max_depth": 2}, dtrain,
                            num_boost_round=12, evals=[(dvalid, "validation")],
                            callbacks=[callback], verbose_eval=False)
        return float(booster.eval(dvalid).split(":")[1])

    def lgb_objective(trial: optuna.Trial) -> float:
        rate = trial.suggest_float("learning_rate", 1e-6, 1.0, log=True)
        callback = optuna.integration.LightGBMPruningCallback(trial, "binary_logloss")
        booster = lgb.train({"objective": "binary", "learning_rate": rate, "verbosity": -1,
                             "metric": "binary_logloss", "num_leaves": 4},
                            lgb.Dataset(x[:150], label=y[:150]), num_boost_round=12,
                            valid_sets=[lgb.Dataset(x[150:], label=y[150:])],
                            callbacks=[callback])
        return float(booster.best_score["valid_0"]["binary_logloss"])

    for objective in (xgb_objective, lgb_objective):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
        for rate in (0.5, 0.3):
            study.enqueue_trial({"eta": rate, "learning_rate": rate})
        study.optimize(objective, n_trials=10)
        states = [t.state for t in study.trials]
        assert TrialState.FAIL not in states
        assert TrialState.PRUNED in states  # tiny learning rates stall and are pruned
        assert all(len(t.intermediate_values) >= 1 for t in study.trials)


def test_several_objectives_directions_best_trials_and_constraints() -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", -10, 10)
        y = trial.suggest_categorical("y", [-1, 0, 1])
        trial.set_constraint("y_small", y - 0.5)  # feasible when y <= 0.5
        return x**2 + y, -((x - 2) ** 2 + y)

    def constraints(trial: FrozenTrial) -> list[float]:
        return [trial.params["x"] - 5.0]  # feasible when x <= 5

    study = optuna.create_study(directions=["minimize", "maximize"],
                                sampler=optuna.samplers.NSGAIISampler(
                                    seed=0, constraints_func=constraints))
    assert study.directions == [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE]
    with pytest.raises(RuntimeError, match="directions"):
        _ = study.direction
    with pytest.raises(RuntimeError, match="best_trials"):
        _ = study.best_trial
    assert study.best_trials == []
    study.optimize(objective, n_trials=30)
    front = study.best_trials
    assert front and all(len(t.values) == 2 for t in front)
    for t in front:  # feasible and not dominated by another feasible trial
        assert t.constraints == {"y_small": t.params["y"] - 0.5, "c0": t.params["x"] - 5.0}
        assert t.params["x"] <= 5.0 and t.params["y"] <= 0.5
        assert not any(o.values[0] <= t.values[0] and o.values[1] >= t.values[1]
                       and o.values != t.values for o in study.trials
                       if o.state is TrialState.COMPLETE and o.params["x"] <= 5.0
                       and o.params["y"] <= 0.5)
    with pytest.raises(RuntimeError, match="values"):
        _ = front[0].value
    frame = study.trials_dataframe()
    assert {"values_0", "values_1"} <= set(frame.columns) and "value" not in frame.columns
