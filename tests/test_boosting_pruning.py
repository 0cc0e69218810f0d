"""XGBoost and LightGBM pruning callbacks with real boosters, studies and schedulers."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import hyperlaw as hl
from hyperlaw.integrations.lightgbm import LightGBMPruningCallback
from hyperlaw.integrations.xgboost import XGBoostPruningCallback

ROUNDS = 30


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    X, y = load_breast_cancer(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0))


def _xgb_study(data: tuple, scheduler: hl.schedulers.Scheduler, n_trials: int,
               report_every: int = 1) -> hl.Study:
    X_train, X_valid, y_train, y_valid = data
    dtrain, dvalid = xgb.DMatrix(X_train, y_train), xgb.DMatrix(X_valid, y_valid)

    def objective(trial: hl.Trial) -> float:
        params = {"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1,
                  "eta": trial.suggest_float("eta", 1e-3, 0.5, log=True), "max_depth": 2}
        log: dict = {}
        callback = XGBoostPruningCallback(trial, "validation-logloss",
                                          report_every=report_every)
        xgb.train(params, dtrain, num_boost_round=ROUNDS, evals=[(dvalid, "validation")],
                  callbacks=[callback], evals_result=log, verbose_eval=False)
        curve = log["validation"]["logloss"]
        trial.set_user_attr("curve", curve)
        return curve[-1]

    study = hl.create_study(sampler="sobol", scheduler=scheduler, seed=0)
    study.optimize(objective, n_trials=n_trials)
    return study


def test_xgboost_reports_each_round_and_asha_stops_boosters(data: tuple) -> None:
    asha = hl.schedulers.ASHA(min_budget=3, max_budget=ROUNDS, reduction_factor=3)
    study = _xgb_study(data, asha, n_trials=8)
    states = [t.state for t in study.trials]
    assert hl.TrialState.PRUNED in states and hl.TrialState.COMPLETE in states
    for trial in study.trials:
        if trial.state is hl.TrialState.COMPLETE:  # every round, as XGBoost logged it
            assert sorted(trial.intermediate) == list(range(1, ROUNDS + 1))
            assert [trial.intermediate[s] for s in range(1, ROUNDS + 1)] == pytest.approx(
                trial.user_attrs["curve"])
        else:  # training stopped at a rung
            assert trial.state is hl.TrialState.PRUNED and trial.last_step < ROUNDS
            assert "curve" not in trial.user_attrs  # xgb.train did not return


def test_xgboost_every_k_rounds_with_median_stopping(data: tuple) -> None:
    study = _xgb_study(data, hl.schedulers.MedianStopping(n_startup_trials=2), n_trials=6,
                       report_every=5)
    assert any(t.state is hl.TrialState.PRUNED for t in study.trials)
    for trial in study.trials:
        assert set(trial.intermediate) <= {5, 10, 15, 20, 25, 30}


def test_xgboost_cv_and_the_sklearn_api(data: tuple) -> None:
    X_train, X_valid, y_train, y_valid = data
    study = hl.create_study()
    trial = study.ask()
    history = xgb.cv({"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1},
                     xgb.DMatrix(X_train, y_train), num_boost_round=4, nfold=3, seed=0,
                     callbacks=[XGBoostPruningCallback(trial, "test-logloss")])
    study.tell(trial, float(history["test-logloss-mean"].iloc[-1]))
    reported = study.trials[0].intermediate
    assert [reported[s] for s in (1, 2, 3, 4)] == pytest.approx(
        list(history["test-logloss-mean"]))

    trial = study.ask()
    model = xgb.XGBClassifier(n_estimators=3, eval_metric="logloss", n_jobs=1,
                              callbacks=[XGBoostPruningCallback(trial, "validation_0-logloss")])
    copy = clone(model)  # deep-copies the callbacks: the copy reports to the same trial
    assert copy.callbacks[0].trial is trial
    copy.fit(X_train, y_train, eval_set=[(X_valid, y_valid)], verbose=False)
    study.tell(trial, 0.5)
    assert sorted(study.trials[1].intermediate) == [1, 2, 3]

    trial = study.ask()
    with pytest.raises(hl.HyperlawError, match=r"'validation-logloss'\]"):
        xgb.train({"eval_metric": "logloss", "objective": "binary:logistic"},
                  xgb.DMatrix(X_train, y_train), num_boost_round=2,
                  evals=[(xgb.DMatrix(X_valid, y_valid), "validation")], verbose_eval=False,
                  callbacks=[XGBoostPruningCallback(trial, "valid-auc")])


def _lgb_objective(data: tuple, report_every: int = 1):  # type: ignore[no-untyped-def]
    X_train, X_valid, y_train, y_valid = data

    def objective(trial: hl.Trial) -> float:
        params = {"objective": "binary", "metric": "binary_logloss", "verbosity": -1,
                  "num_threads": 1, "num_leaves": 4,
                  "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.5, log=True)}
        log: dict = {}
        booster = lgb.train(
            params, lgb.Dataset(X_train, y_train), num_boost_round=ROUNDS,
            valid_sets=[lgb.Dataset(X_valid, y_valid)],
            callbacks=[LightGBMPruningCallback(trial, "binary_logloss",
                                               report_every=report_every),
                       lgb.record_evaluation(log)])
        trial.set_user_attr("curve", log["valid_0"]["binary_logloss"])
        return booster.best_score["valid_0"]["binary_logloss"]

    return objective


def test_lightgbm_reports_each_round_and_median_stops_boosters(data: tuple) -> None:
    study = hl.create_study(sampler="sobol", seed=0,
                            scheduler=hl.schedulers.MedianStopping(n_startup_trials=2))
    study.optimize(_lgb_objective(data), n_trials=6)
    states = [t.state for t in study.trials]
    assert hl.TrialState.PRUNED in states and hl.TrialState.COMPLETE in states
    for trial in study.trials:
        if trial.state is hl.TrialState.COMPLETE:
            assert [trial.intermediate[s] for s in range(1, ROUNDS + 1)] == pytest.approx(
                trial.user_attrs["curve"])
        else:
            assert trial.last_step < ROUNDS and "curve" not in trial.user_attrs

    asha = hl.create_study(sampler="sobol", seed=0, scheduler=hl.schedulers.ASHA(
        min_budget=5, max_budget=ROUNDS, reduction_factor=2))
    asha.optimize(_lgb_objective(data, report_every=5), n_trials=6)
    assert any(t.state is hl.TrialState.PRUNED for t in asha.trials)
    assert all(set(t.intermediate) <= {5, 10, 15, 20, 25, 30} for t in asha.trials)


def test_lightgbm_cv_direction_and_names(data: tuple) -> None:
    X_train, X_valid, y_train, y_valid = data
    train = lgb.Dataset(X_train, y_train)
    study = hl.create_study()
    trial = study.ask()
    params = {"objective": "binary", "metric": "binary_logloss", "verbosity": -1,
              "num_threads": 1}
    history = lgb.cv(params, train, num_boost_round=4, nfold=3, seed=0,
                     callbacks=[LightGBMPruningCallback(trial, "binary_logloss")])
    study.tell(trial, history["valid binary_logloss-mean"][-1])
    reported = study.trials[0].intermediate
    assert [reported[s] for s in (1, 2, 3, 4)] == pytest.approx(
        history["valid binary_logloss-mean"])

    auc = {**params, "metric": "auc"}
    with pytest.raises(hl.HyperlawError, match="direction='maximize'"):
        lgb.train(auc, train, num_boost_round=2, valid_sets=[lgb.Dataset(X_valid, y_valid)],
                  callbacks=[LightGBMPruningCallback(study.ask(), "auc")])
    with pytest.raises(hl.HyperlawError, match="no 'auc' on 'valid_0'"):
        lgb.train(params, train, num_boost_round=2, valid_sets=[lgb.Dataset(X_valid, y_valid)],
                  callbacks=[LightGBMPruningCallback(study.ask(), "auc")])
