"""HyperlawSearchCV against real scikit-learn estimators and data sets (iris, digits)."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import estimator_checks

import hyperlaw as hl
from hyperlaw.integrations.sklearn import CV_ATTR, HyperlawSearchCV

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


SVC_SPACE = {"C": hl.Float(1e-3, 1e2, log=True), "kernel": ["rbf", "linear"],
             "gamma": hl.Const("scale")}


def test_search_fits_refits_and_reports_like_sklearn(iris: tuple) -> None:
    X, y = iris
    search = HyperlawSearchCV(SVC(), SVC_SPACE, n_trials=5, cv=3, random_state=0,
                              return_train_score=True).fit(X, y)
    assert len(search.trials_) == 5 and search.n_splits_ == 3
    reference = RandomizedSearchCV(SVC(), {"C": [1.0]}, n_iter=1, cv=3,
                                   return_train_score=True).fit(X, y)
    assert set(reference.cv_results_) <= set(search.cv_results_)  # sklearn's layout
    results = search.cv_results_
    for key, column in results.items():
        assert len(column) == 5, key
    means = results["mean_test_score"]
    assert search.best_index_ == int(np.argmax(means)) and results["rank_test_score"][
        search.best_index_] == 1
    assert search.best_score_ == pytest.approx(means.max())
    splits = np.array([results[f"split{i}_test_score"] for i in range(3)])
    assert np.allclose(splits.mean(axis=0), means)
    assert search.best_params_ == results["params"][search.best_index_]
    assert search.best_params_["gamma"] == "scale"  # the constant reaches the estimator
    assert search.best_estimator_.get_params()["C"] == search.best_params_["C"]
    assert search.refit_time_ >= 0 and search.study_.direction == "maximize"
    assert np.array_equal(search.predict(X), search.best_estimator_.predict(X))
    assert search.score(X, y) == pytest.approx(search.best_estimator_.score(X, y))
    assert list(search.classes_) == [0, 1, 2] and search.n_features_in_ == 4
    assert not hasattr(search, "predict_proba")  # SVC() has none either
    assert list(results["param_kernel"]) == [t.params["kernel"] for t in search.trials_]


def test_the_estimator_api_basics(iris: tuple) -> None:
    search = HyperlawSearchCV(LogisticRegression(), {"C": hl.Float(0.01, 10, log=True)},
                              n_trials=3, cv=2)
    copy = clone(search)
    assert copy.get_params()["n_trials"] == 3 and copy.estimator is not search.estimator
    assert "estimator__C" in search.get_params(deep=True)
    search.set_params(estimator__max_iter=500, n_trials=2)
    assert search.estimator.max_iter == 500 and search.n_trials == 2
    name = "HyperlawSearchCV"
    estimator_checks.check_no_attributes_set_in_init(name, search)
    estimator_checks.check_get_params_invariance(name, search)
    estimator_checks.check_set_params(name, search)
    with pytest.raises(AttributeError):  # NotFittedError is one
        search.predict(iris[0])
    search.fit(*iris)
    assert hasattr(search, "predict_proba") and search.predict_proba(iris[0]).shape == (150, 3)
    assert not hasattr(clone(search), "best_estimator_")
    assert clone(search).set_params(n_jobs=-1)._workers() == (os.cpu_count() or 1)
    with pytest.raises(hl.HyperlawError, match="n_jobs"):
        clone(search).set_params(n_jobs=2, n_workers=3)._workers()


def test_without_refit_there_is_no_best_estimator(iris: tuple) -> None:
    search = HyperlawSearchCV(LogisticRegression(), {"C": hl.Float(0.1, 10)}, n_trials=2,
                              cv=2, refit=False).fit(*iris)
    assert search.best_params_ and not hasattr(search, "best_estimator_")
    with pytest.raises(AttributeError, match="refit=False"):
        search.predict(iris[0])


def test_pruning_over_folds_stops_poor_trials(digits: tuple) -> None:
    X, y = digits
    scheduler = hl.schedulers.MedianStopping(n_startup_trials=2)
    search = HyperlawSearchCV(DecisionTreeClassifier(random_state=0),
                              {"max_depth": hl.Int(1, 12)}, n_trials=8, cv=4,
                              enable_pruning=True, scheduler=scheduler, random_state=1).fit(X, y)
    states = [t.state for t in search.trials_]
    assert hl.TrialState.PRUNED in states and hl.TrialState.COMPLETE in states
    results = search.cv_results_
    for row, trial in enumerate(search.trials_):
        folds = trial.user_attrs[CV_ATTR]["test"]
        run = [s for s in folds if s is not None]
        assert sorted(trial.intermediate) == list(range(1, len(run) + 1))  # folds done
        assert trial.intermediate[len(run)] == pytest.approx(np.mean(run))  # running mean
        if trial.state is hl.TrialState.PRUNED:
            assert len(run) < 4 and math.isnan(results["mean_test_score"][row])
            assert math.isnan(results[f"split{len(run)}_test_score"][row])
            assert results["rank_test_score"][row] == results["rank_test_score"].max()
        else:
            assert len(run) == 4
    assert search.best_trial_.state is hl.TrialState.COMPLETE


def test_pruning_over_partial_fit_passes(digits: tuple) -> None:
    X, y = digits
    search = HyperlawSearchCV(
        SGDClassifier(random_state=0), {"alpha": hl.Float(1e-5, 10.0, log=True)}, n_trials=6,
        cv=3, enable_pruning=True, max_iter=4, random_state=0,
        scheduler=hl.schedulers.ASHA(min_budget=1, max_budget=4, reduction_factor=2)).fit(X, y)
    complete = [t for t in search.trials_ if t.state is hl.TrialState.COMPLETE]
    assert complete and any(t.state is hl.TrialState.PRUNED for t in search.trials_)
    for trial in complete:
        assert sorted(trial.intermediate) == [1, 2, 3, 4]  # passes over the training folds
        assert trial.value == pytest.approx(trial.intermediate[4])
    refit = search.best_estimator_  # refit the way the folds were: 4 partial_fit passes
    assert refit.t_ == pytest.approx(4 * len(X) + 1)
    assert search.score(X, y) > 0.5


def test_two_worker_processes(tmp_path: Path, iris: tuple) -> None:
    X, y = iris
    space = {"C": hl.Float(0.01, 10, log=True)}
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    search = HyperlawSearchCV(pipe, {"logisticregression__" + k: v for k, v in space.items()},
                              n_trials=4, cv=3, n_workers=2, enable_pruning=True,
                              storage=f"sqlite:///{tmp_path}/search.db", study_name="iris")
    search.fit(X, y)
    assert len(search.trials_) == 4
    for trial in search.trials_:  # written by the worker processes
        assert len(trial.user_attrs[CV_ATTR]["test"]) == 3
        assert sorted(trial.intermediate)[-1] <= 3
    assert search.score(X, y) > 0.9
    again = HyperlawSearchCV(pipe, search.param_distributions, n_trials=2, cv=3,
                             storage=f"sqlite:///{tmp_path}/search.db", study_name="iris")
    assert len(again.fit(X, y).trials_) == 6  # a named study in a storage is continued


def test_a_given_study_without_a_space(iris: tuple) -> None:
    study = hl.create_study(direction="maximize", seed=0)
    search = HyperlawSearchCV(SVC(), SVC_SPACE, n_trials=3, cv=2, study=study).fit(*iris)
    assert search.study_ is study and set(study.space) == {"C", "kernel"}
    assert clone(search).study is study  # a handle on the study, not a copy of it
    assert search.best_params_["gamma"] == "scale" and len(study.trials) == 3
    with pytest.raises(hl.HyperlawError, match="direction='maximize'"):
        HyperlawSearchCV(SVC(), SVC_SPACE, study=hl.create_study()).fit(*iris)
    with pytest.raises(hl.HyperlawError, match="random_state"):
        HyperlawSearchCV(SVC(), SVC_SPACE, study=study, random_state=0).fit(*iris)


def test_failed_fits(iris: tuple) -> None:
    X, y = iris
    bad = {"C": hl.Float(-2.0, -1.0)}  # SVC refuses a negative C
    with pytest.warns(FitFailedWarning, match="error_score=0.0"):
        search = HyperlawSearchCV(SVC(), bad, n_trials=2, cv=2, error_score=0.0,
                                  refit=False).fit(X, y)
    assert search.best_score_ == 0.0
    with pytest.raises(ValueError, match="C"):
        HyperlawSearchCV(SVC(), bad, n_trials=2, cv=2, error_score="raise").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(hl.NoCompleteTrialError, match="the last error"):
            HyperlawSearchCV(SVC(), bad, n_trials=2, cv=2).fit(X, y)
    with pytest.raises(hl.HyperlawError, match="one metric"):
        HyperlawSearchCV(SVC(), SVC_SPACE, scoring=["accuracy", "f1_macro"]).fit(X, y)
    with pytest.raises(hl.HyperlawError, match="param_distributions"):
        HyperlawSearchCV(SVC(), {"C": 1.0}).fit(X, y)
