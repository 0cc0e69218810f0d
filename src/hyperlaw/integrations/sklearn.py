"""scikit-learn: `HyperlawSearchCV`, a cross-validated hyperparameter search with the estimator
API (like `RandomizedSearchCV`), whose trials are a hyperlaw study's.

    from hyperlaw.integrations.sklearn import HyperlawSearchCV

    search = HyperlawSearchCV(SVC(), {"C": hl.Float(1e-2, 1e2, log=True),
                                      "kernel": hl.Choice(["rbf", "linear"])},
                              n_trials=30, cv=5, random_state=0)
    search.fit(X, y)
    search.best_params_, search.best_score_, search.predict(X_test)

One trial cross-validates the estimator with one configuration; its value is the mean test
score (scikit-learn's scores are greater-is-better, so the study maximizes). With
`enable_pruning`, the study's scheduler may stop a trial early: after each fold (its steps
count the folds done, its reports the running mean test score) or, for an estimator with
`partial_fit`, after each pass over the folds' training sets (steps count the passes).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import check_random_state, get_tags, indexable
from sklearn.utils.metaestimators import _safe_split, available_if
from sklearn.utils.validation import _check_method_params, check_is_fitted

from hyperlaw.errors import HyperlawError, NoCompleteTrialError
from hyperlaw.space import Choice, Const, Float, Int, Param, Space
from hyperlaw.study import Study, create_study
from hyperlaw.trial import Trial, TrialRecord, TrialState

__all__ = ["CV_ATTR", "HyperlawSearchCV"]

#: the trial user attribute that holds its cross-validation results (per-fold scores, times)
CV_ATTR = "sklearn_cv"


class HyperlawSearchCV(MetaEstimatorMixin, BaseEstimator):
    """Hyperparameter search with cross-validation, run as a hyperlaw study.

    `param_distributions` is a `hyperlaw.Space` or a dict of parameter name (nested names
    such as ``"clf__C"`` work) to a hyperlaw parameter (`Float`, `Int`, `Choice`, `Const`)
    or a list of values (a `Choice`). `n_trials` configurations are tried (fewer when
    `timeout` seconds pass first), each cross-validated with `cv` (an int, a splitter or an
    iterable of (train, test) indices; default 5 folds, stratified for classifiers) and
    scored by `scoring` (a scorer name or callable; default the estimator's `score`).

    The study: `study` (one that maximizes), or one created in `storage` (default: in
    memory) named `study_name` (continued if it exists), with `sampler`, `scheduler` and
    `random_state` as its seed. `n_workers` (or `n_jobs`, scikit-learn's name; -1 for one
    per core) runs trials in that many worker processes. `callbacks` are passed to
    `Study.optimize` (e.g. the experiment trackers of `hyperlaw.integrations`).

    `enable_pruning` reports each trial's running mean test score after each fold (or, for
    estimators with `partial_fit`, after each of `max_iter` passes), so that the study's
    scheduler (default "median") can stop it. `error_score`: "raise" stops the search at the
    first fit that fails; NaN (the default) fails that trial and goes on; a number is used
    as the score of a fold whose fit failed (with a FitFailedWarning).

    After `fit`: `best_params_`, `best_score_`, `best_index_`, `best_trial_`, `cv_results_`
    (scikit-learn's layout, one row per finished trial of the study, by trial number, plus
    `number` and `state` columns), `n_splits_`, `scorer_`, `study_`, `trials_`, and with
    `refit` the `best_estimator_` (refit on all data, in `refit_time_` seconds) behind
    `predict`, `predict_proba`, `decision_function`, `transform` and `score`.
    `sklearn.base.clone` gives a search that shares `study` (so its fits add trials to it)
    and `callbacks`.
    """

    def __init__(self, estimator: Any, param_distributions: Space | Mapping[str, Any], *,
                 n_trials: int = 10, cv: Any = None,
                 scoring: str | Callable[..., float] | None = None,
                 refit: bool = True, study: Study | None = None, storage: str | None = None,
                 study_name: str | None = None, sampler: Any = None, scheduler: Any = None,
                 n_workers: int = 1, n_jobs: int | None = None, timeout: float | None = None,
                 random_state: Any = None, return_train_score: bool = False,
                 enable_pruning: bool = False, max_iter: int = 1000,
                 error_score: float | str = np.nan,
                 callbacks: Sequence[Callable[[Study, TrialRecord], None]] | None = None,
                 show_progress: bool = False) -> None:
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.study = study
        self.storage = storage
        self.study_name = study_name
        self.sampler = sampler
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.n_jobs = n_jobs
        self.timeout = timeout
        self.random_state = random_state
        self.return_train_score = return_train_score
        self.enable_pruning = enable_pruning
        self.max_iter = max_iter
        self.error_score = error_score
        self.callbacks = callbacks
        self.show_progress = show_progress

    def __sklearn_clone__(self) -> HyperlawSearchCV:
        """`sklearn.base.clone`: the parameters copied as scikit-learn copies them, except
        `study` and `callbacks`, which the clone shares (they are handles on a storage and on
        trackers, not values)."""
        params = self.get_params(deep=False)
        shared = {name: params.pop(name) for name in ("study", "callbacks")}
        return type(self)(**{name: clone(value, safe=False) for name, value in params.items()},
                          **shared)

    # --- fitting ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, groups: Any = None,
            **fit_params: Any) -> HyperlawSearchCV:
        """Run the search on (X, y), then refit the best configuration on all of it.

        `groups` goes to the splitter; `fit_params` to the estimator's `fit` (or
        `partial_fit`), indexed per fold when they have one entry per sample."""
        space = _as_space(self.param_distributions)
        self._check_settings()
        X, y, groups = indexable(X, y, groups)
        cv = check_cv(self.cv, y, classifier=is_classifier(self.estimator))
        splits = [(np.asarray(train), np.asarray(test)) for train, test in cv.split(X, y, groups)]
        self.n_splits_ = len(splits)
        self.scorer_ = check_scoring(self.estimator, scoring=self.scoring)
        self.multimetric_ = False
        study = self._study(space)
        objective = _CrossValidation(
            self.estimator, space, X, y, splits, self.scorer_, fit_params,
            self.return_train_score, self._pruning_mode(), self.max_iter, self.error_score)
        study.optimize(objective, n_trials=self.n_trials, timeout=self.timeout,
                       n_workers=self._workers(),
                       catch=() if self.error_score == "raise" else (Exception,),
                       callbacks=list(self.callbacks or ()), show_progress=self.show_progress)
        self.study_ = study
        self.trials_ = [t for t in study.trials if t.state.is_finished]
        self.cv_results_ = _cv_results(self.trials_, space, self.n_splits_,
                                       self.return_train_score)
        self.best_index_ = _best_index(study, self.trials_)
        self.best_trial_ = self.trials_[self.best_index_]
        self.best_params_ = _estimator_params(space, self.best_trial_.params)
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        if self.refit:
            start = time.perf_counter()
            self.best_estimator_ = objective.refit(self.best_params_)
            self.refit_time_ = time.perf_counter() - start
        return self

    def _check_settings(self) -> None:
        if isinstance(self.scoring, list | tuple | set | dict):
            raise HyperlawError(
                f"HyperlawSearchCV scores with one metric, got scoring={self.scoring!r}; pass "
                "one scorer name or callable (the study maximizes its mean over the folds)")
        if not isinstance(self.refit, bool):
            raise HyperlawError(f"refit must be True or False, got {self.refit!r}")
        if self.enable_pruning and (isinstance(self.max_iter, bool) or
                                    not isinstance(self.max_iter, int) or self.max_iter < 1):
            raise HyperlawError(f"max_iter must be an int >= 1, got {self.max_iter!r}")
        if not (self.error_score == "raise" or isinstance(self.error_score, int | float)):
            raise HyperlawError(
                f"error_score must be 'raise' or a number (NaN fails the trial), got "
                f"{self.error_score!r}")

    def _pruning_mode(self) -> str | None:
        """None (no reports), "folds" or "partial_fit"."""
        if not self.enable_pruning:
            return None
        return "partial_fit" if hasattr(self.estimator, "partial_fit") else "folds"

    def _workers(self) -> int:
        if self.n_jobs is None:
            return self.n_workers
        n_jobs = self.n_jobs
        if n_jobs < 0:  # scikit-learn's convention: -1 all cores, -2 all but one...
            n_jobs = max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        if n_jobs == 0 or self.n_workers not in (1, n_jobs):
            raise HyperlawError(
                f"n_jobs={self.n_jobs!r} and n_workers={self.n_workers!r} disagree; pass one "
                "of them (n_jobs is scikit-learn's name for n_workers)")
        return n_jobs

    def _study(self, space: Space) -> Study:
        if self.study is None:
            scheduler = self.scheduler
            if scheduler is None and self.enable_pruning:
                scheduler = "median"
            return create_study(self.study_name, storage=self.storage, space=space,
                                direction="maximize", sampler=self.sampler,
                                scheduler=scheduler, seed=_seed(self.random_state),
                                load_if_exists=self.study_name is not None)
        given = {name: getattr(self, name) for name in ("storage", "study_name", "sampler",
                                                        "scheduler", "random_state")
                 if getattr(self, name) is not None}
        if given:
            raise HyperlawError(
                f"HyperlawSearchCV got study= and {sorted(given)}, which configure the study it "
                "creates without one; set them on the study you pass instead")
        if self.study.direction != "maximize":
            raise HyperlawError(
                f"study {self.study.name!r} minimizes, but scikit-learn scores are greater-is-"
                "better; create it with direction='maximize'")
        return self.study

    # --- the refit estimator --------------------------------------------------------------
    def _refitted(self) -> Any:
        check_is_fitted(self, "best_index_")
        if not self.refit:
            raise AttributeError(
                "this HyperlawSearchCV was created with refit=False, so it has no best_estimator_;"
                " create it with refit=True to predict with the best configuration")
        return self.best_estimator_

    @available_if(lambda self: _has(self, "predict"))
    def predict(self, X: Any) -> Any:
        """The best estimator's predictions."""
        return self._refitted().predict(X)

    @available_if(lambda self: _has(self, "predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        """The best estimator's class probabilities."""
        return self._refitted().predict_proba(X)

    @available_if(lambda self: _has(self, "predict_log_proba"))
    def predict_log_proba(self, X: Any) -> Any:
        """The best estimator's log class probabilities."""
        return self._refitted().predict_log_proba(X)

    @available_if(lambda self: _has(self, "decision_function"))
    def decision_function(self, X: Any) -> Any:
        """The best estimator's decision function."""
        return self._refitted().decision_function(X)

    @available_if(lambda self: _has(self, "transform"))
    def transform(self, X: Any) -> Any:
        """X transformed by the best estimator."""
        return self._refitted().transform(X)

    @available_if(lambda self: _has(self, "inverse_transform"))
    def inverse_transform(self, X: Any) -> Any:
        """The best estimator's inverse transform."""
        return self._refitted().inverse_transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The search's scorer on (X, y) with the best estimator."""
        return float(self.scorer_(self._refitted(), X, y))

    @property
    def classes_(self) -> Any:
        """The best estimator's class labels."""
        return self._refitted().classes_

    @property
    def n_features_in_(self) -> int:
        """The number of features the best estimator was fitted on."""
        return int(self._refitted().n_features_in_)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.input_tags.pairwise = inner.input_tags.pairwise
        tags.input_tags.sparse = inner.input_tags.sparse
        return tags


def _has(search: HyperlawSearchCV, method: str) -> bool:
    """Whether the search offers `method`: its (best) estimator has it (an AttributeError
    naming the method otherwise, as `available_if` expects)."""
    inner = getattr(search, "best_estimator_", search.estimator)
    getattr(inner, method)
    return True


class _CrossValidation:
    """The objective of a search: cross-validate the estimator with the trial's parameters.

    A trial's per-fold test (and train) scores and fit and score times are recorded in its
    user attribute `CV_ATTR`, also when the scheduler stops it."""

    def __init__(self, estimator: Any, space: Space, X: Any, y: Any,
                 splits: list[tuple[np.ndarray, np.ndarray]], scorer: Any,
                 fit_params: dict[str, Any], return_train_score: bool, pruning: str | None,
                 max_iter: int, error_score: float | str) -> None:
        self.estimator = estimator
        self.space = space
        self.X, self.y = X, y
        self.splits = splits
        self.scorer = scorer
        self.fit_params = fit_params
        self.return_train_score = return_train_score
        self.pruning = pruning
        self.max_iter = max_iter
        self.error_score = error_score
        self.classes = np.unique(y) if y is not None and is_classifier(estimator) else None

    def __call__(self, trial: Trial) -> float:
        params = _trial_params(trial, self.space)
        folds = _Folds(len(self.splits), self.return_train_score)
        try:
            if self.pruning == "partial_fit":
                return self._partial_fits(trial, params, folds)
            return self._folds(trial, params, folds)
        finally:
            trial.set_user_attr(CV_ATTR, folds.to_json())

    def _split(self, estimator: Any, index: int) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        train, test = self.splits[index]
        X_train, y_train = _safe_split(estimator, self.X, self.y, train)
        X_test, y_test = _safe_split(estimator, self.X, self.y, test, train)
        return X_train, y_train, X_test, y_test, _check_method_params(self.X, self.fit_params,
                                                                      train)

    def _folds(self, trial: Trial, params: dict[str, Any], folds: _Folds) -> float:
        for i in range(len(self.splits)):
            estimator = clone(self.estimator).set_params(**params)
            X_train, y_train, X_test, y_test, fit_params = self._split(estimator, i)
            start = time.perf_counter()
            fitted = self._fit(estimator.fit, X_train, y_train, fit_params, trial, i)
            folds.fit_time[i] = time.perf_counter() - start
            self._score(folds, i, estimator if fitted else None, X_test, y_test, X_train, y_train)
            if self.pruning:
                trial.report(folds.running_mean(), step=i + 1)
        return folds.mean()

    def _partial_fits(self, trial: Trial, params: dict[str, Any], folds: _Folds) -> float:
        n = len(self.splits)
        estimators = [clone(self.estimator).set_params(**params) for _ in range(n)]
        data = [self._split(estimators[i], i) for i in range(n)]
        failed = [False] * n
        folds.fit_time = [0.0] * n
        for iteration in range(self.max_iter):
            for i, (X_train, y_train, X_test, y_test, fit_params) in enumerate(data):
                if failed[i]:
                    continue
                start = time.perf_counter()
                failed[i] = not self._fit(estimators[i].partial_fit, X_train, y_train,
                                          self._with_classes(fit_params, iteration), trial, i)
                folds.fit_time[i] = (folds.fit_time[i] or 0.0) + time.perf_counter() - start
                self._score(folds, i, None if failed[i] else estimators[i], X_test, y_test,
                            X_train, y_train)
            trial.report(folds.mean(), step=iteration + 1)
        return folds.mean()

    def _with_classes(self, fit_params: dict[str, Any], iteration: int) -> dict[str, Any]:
        """partial_fit of a classifier is told every class on its first call."""
        if iteration or self.classes is None:
            return fit_params
        return {"classes": self.classes, **fit_params}

    def _fit(self, fit: Callable[..., Any], X: Any, y: Any, fit_params: dict[str, Any],
             trial: Trial, fold: int) -> bool:
        """Fit; a failure propagates (it fails the trial) unless `error_score` is a number,
        which then stands for the fold's scores (False)."""
        try:
            if y is None:
                fit(X, **fit_params)
            else:
                fit(X, y, **fit_params)
        except Exception as exc:
            if self.error_score == "raise" or math.isnan(float(self.error_score)):
                raise
            warnings.warn(f"trial #{trial.number}: fitting fold {fold} failed, so its score is "
                          f"error_score={self.error_score!r}: {type(exc).__name__}: {exc}",
                          FitFailedWarning, stacklevel=2)
            return False
        return True

    def _score(self, folds: _Folds, i: int, estimator: Any, X_test: Any, y_test: Any,
               X_train: Any, y_train: Any) -> None:
        """Score fold `i` (`estimator` None: its fit failed, the scores are error_score)."""
        if estimator is None:
            folds.test[i] = float(self.error_score)
            if folds.train is not None:
                folds.train[i] = float(self.error_score)
            return
        start = time.perf_counter()
        folds.test[i] = float(self.scorer(estimator, X_test, y_test))
        folds.score_time[i] = time.perf_counter() - start
        if folds.train is not None:
            folds.train[i] = float(self.scorer(estimator, X_train, y_train))

    def refit(self, params: dict[str, Any]) -> Any:
        """The estimator with `params`, fitted on all the data the way the folds were."""
        estimator = clone(self.estimator).set_params(**params)
        fit_params = self.fit_params
        if self.pruning != "partial_fit":
            if self.y is None:
                return estimator.fit(self.X, **fit_params)
            return estimator.fit(self.X, self.y, **fit_params)
        for iteration in range(self.max_iter):
            estimator.partial_fit(self.X, self.y, **self._with_classes(fit_params, iteration))
        return estimator


class _Folds:
    """A trial's per-fold results; None for a fold not run."""

    def __init__(self, n: int, train: bool) -> None:
        self.test: list[float | None] = [None] * n
        self.train: list[float | None] | None = [None] * n if train else None
        self.fit_time: list[float | None] = [None] * n
        self.score_time: list[float | None] = [None] * n

    def running_mean(self) -> float:
        return float(np.mean([s for s in self.test if s is not None]))

    def mean(self) -> float:
        return float(np.mean([np.nan if s is None else s for s in self.test]))

    def to_json(self) -> dict[str, Any]:
        out = {"test": self.test, "fit_time": self.fit_time, "score_time": self.score_time}
        if self.train is not None:
            out["train"] = self.train
        return {k: [None if v is None or not math.isfinite(v) else v for v in values]
                for k, values in out.items()}


def _as_space(distributions: Any) -> Space:
    """`param_distributions` as a Space: Space, or a dict of parameters or lists of values."""
    if isinstance(distributions, Space):
        return distributions
    if not isinstance(distributions, Mapping):
        raise HyperlawError(
            f"param_distributions must be a hyperlaw Space or a dict of parameter name to "
            f"hyperlaw parameter, got {type(distributions).__name__}")
    params: dict[str, Param] = {}
    for name, param in distributions.items():
        if isinstance(param, Param):
            params[name] = param
        elif isinstance(param, list | tuple):
            params[name] = Choice(list(param))
        else:
            raise HyperlawError(
                f"param_distributions[{name!r}] is {param!r}; give a hyperlaw parameter "
                "(hl.Float(1e-3, 1e3, log=True), hl.Int(1, 10), hl.Choice([...]), "
                "hl.Const(value)) or a list of values")
    return Space(params)


def _trial_params(trial: Trial, space: Space) -> dict[str, Any]:
    """The estimator's parameters for `trial`: its own, or in a study without a declared
    space, suggested now from `space`."""
    for name, param in space.items():
        if name in trial.params or isinstance(param, Const):
            continue
        if param.when is not None:
            raise HyperlawError(
                f"parameter {name!r} is conditional, which a study without a declared space "
                "cannot suggest; create the study with space=param_distributions")
        if isinstance(param, Float):
            trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, Int):
            trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
        elif isinstance(param, Choice):
            trial.suggest_categorical(name, list(param.values))
    return _estimator_params(space, trial.params)


def _estimator_params(space: Space, params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` with the space's unconditional constants (a declared space records them)."""
    constants = {name: p.value for name, p in space.items()
                 if isinstance(p, Const) and p.when is None}
    return {**constants, **params}


def _seed(random_state: Any) -> int | None:
    """An int seed from scikit-learn's `random_state` (None, an int or a RandomState)."""
    if random_state is None or isinstance(random_state, int):
        return random_state
    return int(check_random_state(random_state).randint(2**31 - 1))


def _best_index(study: Study, trials: list[TrialRecord]) -> int:
    complete = [i for i, t in enumerate(trials) if t.state is TrialState.COMPLETE]
    if not complete:
        failed = [t for t in trials if t.state is TrialState.FAILED and t.error]
        last = failed[-1].error.strip().splitlines()[-1] if failed and failed[-1].error else ""
        why = f"; the last error: {last}" if last else ""
        raise NoCompleteTrialError(
            f"no trial of study {study.name!r} completed its cross-validation "
            f"({len(trials)} finished: pruned or failed){why}; check the estimator and the "
            "parameter ranges, or raise n_trials")
    return max(complete, key=lambda i: float(trials[i].value))  # type: ignore[arg-type]


def _cv_results(trials: list[TrialRecord], space: Space, n_splits: int,
                train: bool) -> dict[str, Any]:
    """scikit-learn's `cv_results_` for `trials`: one row per trial."""
    attrs = [t.user_attrs.get(CV_ATTR) or {} for t in trials]

    def matrix(key: str) -> np.ndarray:
        out = np.full((len(trials), n_splits), np.nan)
        for row, attr in enumerate(attrs):
            for col, v in enumerate((attr.get(key) or [])[:n_splits]):
                out[row, col] = np.nan if v is None else v
        return out

    results: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows of trials that ran no fold
        for key in ("fit_time", "score_time"):
            times = matrix(key)
            results[f"mean_{key}"] = np.nanmean(times, axis=1)
            results[f"std_{key}"] = np.nanstd(times, axis=1)
    complete = np.array([t.state is TrialState.COMPLETE for t in trials], dtype=bool)
    for kind in ("test", "train") if train else ("test",):
        scores = matrix(kind)
        for i in range(n_splits):
            results[f"split{i}_{kind}_score"] = scores[:, i]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.where(complete, np.nanmean(scores, axis=1), np.nan)
            results[f"std_{kind}_score"] = np.where(complete, np.nanstd(scores, axis=1), np.nan)
        if kind == "test":  # a complete trial's value is its mean test score
            mean = np.array([t.value if c and t.value is not None else m
                             for t, c, m in zip(trials, complete, mean, strict=True)])
            results["rank_test_score"] = rankdata(
                -np.where(np.isnan(mean), -np.inf, mean), method="min").astype(np.int32)
        results[f"mean_{kind}_score"] = mean
    for name in space:
        values = [t.params.get(name) for t in trials]
        missing = [name not in t.params for t in trials]
        results[f"param_{name}"] = np.ma.MaskedArray(np.array(values, dtype=object),
                                                     mask=missing)
    results["params"] = [_estimator_params(space, t.params) for t in trials]
    results["number"] = np.array([t.number for t in trials], dtype=np.int64)
    results["state"] = np.array([t.state.value for t in trials], dtype=object)
    return results
