"""ScalingStudy: tune small (N, D) cells, fit how the optimum moves, recommend for a big run.

    scaling = ScalingStudy(train, cells=[(1e5, 1e7), (4e5, 1e7), (1e5, 4e7)], space=space,
                           storage="sqlite:///scaling.db")
    scaling.run()                                   # one study per cell, in the storage
    scaling.recommend(n_params=1e7, n_tokens=1e9)   # {"lr": Prediction(value, low, high)}

`train(config, n_params, n_tokens) -> final loss`; if it takes a `trial` argument it is given
the trial too (to report intermediate losses to a scheduler).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hyperlaw.errors import HyperlawError
from hyperlaw.samplers.base import Sampler
from hyperlaw.scaling.exponent_prior import check_sd, named_prior
from hyperlaw.scaling.fit import (
    CELL_COLUMNS,
    DEFAULT_BOOTSTRAP,
    DEFAULT_METHOD,
    DEFAULT_PRIOR_SD,
    DEFAULT_TOLERANCE,
    Interval,
    Method,
    PowerLaw,
    Prediction,
    ScalingFitError,
    ScalingWarning,
    default_features,
    fit,
    fit_laws,
)
from hyperlaw.schedulers.base import Scheduler
from hyperlaw.space import Float, Int, Param, Space
from hyperlaw.store import Store, open_store
from hyperlaw.study import Study, create_study, load_study
from hyperlaw.trial import Trial, TrialState

ATTR_GROUP = "scaling.group"
ATTR_N = "scaling.n_params"
ATTR_D = "scaling.n_tokens"


def cell_study_name(group: str, n_params: float, n_tokens: float) -> str:
    """The name of the study that tunes one cell of a scaling study."""
    return f"{group}/N={n_params:.4g},D={n_tokens:.4g}"


def scaling_records(storage: str | Store, group: str,
                    loss: str = "loss") -> list[dict[str, Any]]:
    """Every complete trial of a scaling study's cells as a record for `fit`."""
    store = open_store(storage, mode="read")
    rows: list[dict[str, Any]] = []
    for summary in store.list_studies():
        if not summary.name.startswith(f"{group}/"):
            continue
        study = load_study(summary.name, store)
        attrs = study.user_attrs
        if attrs.get(ATTR_GROUP) != group:
            continue
        for trial in study.get_trials([TrialState.COMPLETE]):
            assert trial.value is not None  # a complete trial has a value
            rows.append({CELL_COLUMNS[0]: float(attrs[ATTR_N]),
                         CELL_COLUMNS[1]: float(attrs[ATTR_D]),
                         **trial.params, loss: float(trial.value)})
    return rows


class ScalingStudy:
    """Tune each small (N, D) cell, fit power laws of the optimal parameters, recommend."""

    def __init__(self, train: Callable[..., float], cells: Sequence[tuple[float, float]],
                 space: Space | Mapping[str, Param], *, storage: str | Store | None = None,
                 name: str = "scaling", targets: Sequence[str] = ("lr",),
                 features: Mapping[str, Sequence[str]] | None = None, n_trials: int = 20,
                 n_trials_warm: int | None = None, sampler: str | Sampler | None = None,
                 scheduler: str | Scheduler | None = None, seed: int | None = 0,
                 method: Method = DEFAULT_METHOD, tolerance: float = DEFAULT_TOLERANCE,
                 interval: Interval = "prediction", n_bootstrap: int = DEFAULT_BOOTSTRAP,
                 prior: str | Mapping[str, float] | None = "steplaw",
                 prior_sd: float = DEFAULT_PRIOR_SD, n_workers: int = 1) -> None:
        self.space = space if isinstance(space, Space) else Space(space)
        missing = [t for t in targets if t not in self.space]
        if missing:
            raise HyperlawError(f"ScalingStudy: targets {missing} are not parameters of the "
                                f"space {list(self.space)}; add them or drop them from targets")
        if not cells:
            raise HyperlawError("ScalingStudy: no cells; pass cells=[(n_params, n_tokens), ...]")
        for n, d in cells:
            if not (n > 0 and d > 0):
                raise HyperlawError(f"ScalingStudy: cell ({n}, {d}) must have positive "
                                    "n_params and n_tokens")
        self.train = train
        self.cells = sorted(((float(n), float(d)) for n, d in cells), key=lambda c: c[0] * c[1])
        self.store = open_store(storage)
        self.name = name
        self.targets = tuple(targets)
        self.features = {t: tuple(features[t]) if features and t in features
                         else default_features(t, self._varying()) for t in self.targets}
        self.n_trials = n_trials
        self.n_trials_warm = n_trials_warm if n_trials_warm is not None else max(
            3, n_trials // 2)
        self.sampler, self.scheduler, self.seed = sampler, scheduler, seed
        self.method, self.tolerance, self.n_bootstrap = method, tolerance, n_bootstrap
        self.interval = interval
        if isinstance(prior, str):
            named_prior(prior)  # an unknown name fails here, not at the first fit
        self.prior, self.prior_sd = prior, check_sd(prior_sd)
        self.n_workers = n_workers

    def _varying(self) -> tuple[str, ...]:
        ns = {n for n, _ in self.cells}
        ds = {d for _, d in self.cells}
        return tuple(col for col, values in zip(CELL_COLUMNS, (ns, ds), strict=True)
                     if len(values) > 1)

    def cell_study(self, n_params: float, n_tokens: float) -> Study:
        """The study of one cell (created on first use)."""
        study = create_study(cell_study_name(self.name, n_params, n_tokens), storage=self.store,
                             space=self.space, sampler=self.sampler, scheduler=self.scheduler,
                             seed=self.seed, load_if_exists=True)
        if study.user_attrs.get(ATTR_GROUP) != self.name:
            study.set_user_attr(ATTR_GROUP, self.name)
            study.set_user_attr(ATTR_N, n_params)
            study.set_user_attr(ATTR_D, n_tokens)
        return study

    def run(self) -> dict[str, PowerLaw]:
        """Tune every cell (smallest first, later ones warm-started) and fit the laws."""
        for index, (n, d) in enumerate(self.cells):
            study = self.cell_study(n, d)
            done = len(study.get_trials([TrialState.COMPLETE, TrialState.PRUNED]))
            budget = self.n_trials if index == 0 else self.n_trials_warm
            if index > 0 and done == 0:
                for config in self._warm_start(n, d):
                    study.enqueue(config, user_attrs={"scaling.warm_start": True})
            if budget > done:
                study.optimize(self._objective(n, d), n_trials=budget - done,
                               n_workers=self.n_workers, show_progress=False)
        return self.fit()

    def _objective(self, n_params: float, n_tokens: float) -> Callable[[Trial], float]:
        train = self.train
        wants_trial = "trial" in inspect.signature(train).parameters
        return _CellObjective(train, n_params, n_tokens, wants_trial)

    def _warm_start(self, n_params: float, n_tokens: float) -> list[dict[str, Any]]:
        """Configurations the laws fitted so far recommend: value, then interval bounds."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ScalingWarning)
                predictions = self._predict_so_far(n_params, n_tokens)
        except ScalingFitError:
            return []
        configs = []
        for key in ("value", "low", "high"):
            config = {t: _clip(self.space[t], getattr(p, key)) for t, p in predictions.items()}
            if config not in configs:
                configs.append(config)
        return configs

    def _predict_so_far(self, n_params: float, n_tokens: float) -> dict[str, Prediction]:
        records = self.records()
        out = {}
        for target in self.targets:
            features = self.features[target]
            try:
                law = self._fit_one(records, target, features)
                out[target] = law.predict(**_cell_features(features, n_params, n_tokens))
            except ScalingFitError:  # too few cells for the full law: the nearest cell's optimum
                law = self._fit_one(records, target, ())
                out[target] = law.predict()
        return out

    def _fit_one(self, records: list[dict[str, Any]], target: str,
                 features: Sequence[str]) -> PowerLaw:
        return fit(records, target=target, features=features, **self._settings())

    def _settings(self) -> dict[str, Any]:
        return {"method": self.method, "tolerance": self.tolerance, "interval": self.interval,
                "n_bootstrap": self.n_bootstrap, "seed": self.seed, "prior": self.prior,
                "prior_sd": self.prior_sd}

    def records(self) -> list[dict[str, Any]]:
        """Every complete trial of this study's cells, with its cell's n_params and n_tokens."""
        return scaling_records(self.store, self.name)

    def fit(self) -> dict[str, PowerLaw]:
        """One fitted law per target, on the trials recorded so far."""
        return fit_laws(self.records(), self.targets, self.features, **self._settings())

    def recommend(self, n_params: float, n_tokens: float) -> dict[str, Prediction]:
        """Each target's predicted optimum (with its interval) for a run of this size."""
        return {t: law.predict(**_cell_features(law.features, n_params, n_tokens))
                for t, law in self.fit().items()}


class _CellObjective:
    """The objective of one cell: the user's train function at that cell's size."""

    def __init__(self, train: Callable[..., float], n_params: float, n_tokens: float,
                 wants_trial: bool) -> None:
        self.train, self.n_params, self.n_tokens = train, n_params, n_tokens
        self.wants_trial = wants_trial

    def __call__(self, trial: Trial) -> float:
        extra = {"trial": trial} if self.wants_trial else {}
        return self.train(dict(trial.params), self.n_params, self.n_tokens, **extra)


def _cell_features(features: Sequence[str], n_params: float, n_tokens: float) -> dict[str, float]:
    values = {CELL_COLUMNS[0]: n_params, CELL_COLUMNS[1]: n_tokens}
    unknown = [f for f in features if f not in values]
    if unknown:
        raise ScalingFitError(f"features {unknown} are not n_params or n_tokens; fit such laws "
                              "with hyperlaw.scaling.fit on your own records")
    return {f: values[f] for f in features}


def _clip(param: Param, value: float) -> Any:
    """The value of `param` nearest to `value` (in log distance for choices)."""
    if isinstance(param, Float | Int):
        value = min(max(value, param.low), param.high)
        return param.canonical(round(value) if isinstance(param, Int) else value)
    numbers = [c for c in param.grid() if isinstance(c, int | float) and c > 0]
    if not numbers:
        raise HyperlawError(f"cannot warm-start {param!r} from a law; scaling targets must be "
                            "numeric parameters")
    return min(numbers, key=lambda c: abs(math.log(c / value)))


__all__ = ["ScalingStudy", "cell_study_name", "scaling_records"]
