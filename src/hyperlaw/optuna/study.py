"""Optuna's `Study` and its module functions on a hyperlaw study.

Every call goes to a `hyperlaw.Study` (`study.hyperlaw_study`), so a study made here is an
ordinary hyperlaw study: the dashboard, the CLI and `hl.load_study` open it as any other.
Where the two differ:

- `n_jobs` runs trials in worker processes (Optuna uses threads): the objective is sent to
  them with cloudpickle, and a study without storage runs through a temporary SQLite file.
- without `sampler=` the study uses hyperlaw's default sampler ("auto": Sobol', then GP or
  TPE); without `pruner=` it uses Optuna's default, the median rule.
- `catch` and failures behave as in Optuna: an exception outside `catch` fails the trial
  and stops `optimize`; a trial whose objective returns None or a value that is not finite
  fails and the study goes on.
"""

from __future__ import annotations

import enum
import gc
import os
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import HyperlawError, NoCompleteTrialError
from hyperlaw.optuna.distributions import BaseDistribution
from hyperlaw.optuna.samplers import CONSTRAINTS_ATTR
from hyperlaw.optuna.trial import FrozenTrial, Trial, TrialState
from hyperlaw.samplers import Sampler
from hyperlaw.schedulers import MedianStopping, NeverStop, Scheduler
from hyperlaw.store import Store
from hyperlaw.study import Study as _HlStudy
from hyperlaw.study import create_study as _hl_create_study
from hyperlaw.study import delete_study as _hl_delete_study
from hyperlaw.study import list_studies as _hl_list_studies
from hyperlaw.study import load_study as _hl_load_study
from hyperlaw.trial import Trial as _HlTrial
from hyperlaw.trial import TrialRecord

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MaxTrialsCallback", "Study", "StudyDirection", "copy_study", "create_study",
           "delete_study", "get_all_study_names", "load_study"]

ObjectiveFuncType = Callable[[Trial], "float | Sequence[float] | None"]
ConstraintsFunc = Callable[[FrozenTrial], Sequence[float]]
_DEFAULT_ATTRS = ("number", "value", "datetime_start", "datetime_complete", "duration",
                  "params", "user_attrs", "system_attrs", "state")


class StudyDirection(enum.IntEnum):
    """A study's direction, with Optuna's names and numbers."""

    NOT_SET = 0
    MINIMIZE = 1
    MAXIMIZE = 2

    def __repr__(self) -> str:
        return f"<StudyDirection.{self.name}: {self.value}>"


def _direction_name(direction: str | StudyDirection) -> str:
    if isinstance(direction, StudyDirection):
        return direction.name.lower()
    if isinstance(direction, str) and direction.lower() in ("minimize", "maximize"):
        return direction.lower()
    raise ValueError(f"direction must be 'minimize' or 'maximize', got {direction!r}")


def _storage_url(storage: Any) -> str | Store | None:
    """A URL or Store from what Optuna scripts pass (a URL, None, or an RDBStorage)."""
    if storage is None or isinstance(storage, str | Store):
        return storage
    url = getattr(storage, "url", None)
    if isinstance(url, str):
        return url
    raise HyperlawError(f"hyperlaw.optuna takes storage as a URL ('sqlite:///study.db', "
                        f"'postgresql://...') or None, got {type(storage).__name__}")


class _Objective:
    """The Optuna objective as a hyperlaw objective (picklable for worker processes)."""

    def __init__(self, func: ObjectiveFuncType, gc_after_trial: bool) -> None:
        self.func = func
        self.gc_after_trial = gc_after_trial

    def __call__(self, trial: _HlTrial) -> Any:
        try:
            return _as_value(self.func(Trial(trial)), len(trial.study.directions))
        finally:
            if self.gc_after_trial:
                gc.collect()


class _FrozenConstraints:
    """Optuna's `constraints_func(frozen_trial)` as hyperlaw's study-level constraints
    (`constraints(record)`; each value is recorded as constraint "c<i>", met when <= 0)."""

    def __init__(self, func: ConstraintsFunc) -> None:
        self.func = func
        self.__name__ = getattr(func, "__name__", repr(func))

    def __call__(self, record: TrialRecord) -> Sequence[float]:
        return self.func(FrozenTrial.from_record(record))


def _constraints_of(sampler: Sampler | None) -> _FrozenConstraints | None:
    """The study-level constraints of a sampler built with Optuna's `constraints_func`."""
    func = getattr(sampler, CONSTRAINTS_ATTR, None)
    return None if func is None else _FrozenConstraints(func)


def _as_value(value: Any, n_objectives: int) -> Any:
    """What Optuna accepts as an objective value, in hyperlaw's form: one float, or a
    sequence of them for several objectives (None and non-numbers fail the trial)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if n_objectives == 1 and len(value) == 1:
            return _as_value(value[0], 1)
        return tuple(_as_value(v, 1) for v in value)
    if value is None or isinstance(value, bool | str):
        return value
    try:
        return float(value)  # numpy scalars, 0-d arrays and tensors, as Optuna's float()
    except (TypeError, ValueError):
        return value


class _Callback:
    """An Optuna callback `callback(study, frozen_trial)` as a hyperlaw one."""

    def __init__(self, study: Study, callback: Callable[[Study, FrozenTrial], None]) -> None:
        self.study = study
        self.callback = callback

    def __call__(self, _: _HlStudy, record: TrialRecord) -> None:
        self.callback(self.study, FrozenTrial.from_record(record, self.study._study.space))


class Study:
    """An Optuna-style study on a hyperlaw study (see the module docstring)."""

    def __init__(self, study: _HlStudy) -> None:
        self._study = study

    def __repr__(self) -> str:
        return f"Study(study_name={self.study_name!r}, storage={self._study.storage!r})"

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a Study holds a database connection and is not pickled; open it in "
                        "the other process with load_study(study_name=..., storage=...)")

    # --- identity ------------------------------------------------------------------------
    @property
    def hyperlaw_study(self) -> _HlStudy:
        """The hyperlaw study underneath."""
        return self._study

    @property
    def study_name(self) -> str:
        return self._study.name

    @property
    def _study_id(self) -> int:
        return self._study.id

    @property
    def direction(self) -> StudyDirection:
        """The direction of the one objective (`directions` for several)."""
        if self._multi:
            raise RuntimeError("this study has several objectives; use `directions`")
        return StudyDirection[self._study.direction.upper()]

    @property
    def directions(self) -> list[StudyDirection]:
        return [StudyDirection[d.upper()] for d in self._study.directions]

    @property
    def _multi(self) -> bool:
        return self._study.is_multi_objective

    @property
    def sampler(self) -> Sampler:
        return self._study.sampler

    @sampler.setter
    def sampler(self, sampler: Sampler) -> None:
        self._study.sampler = sampler

    @property
    def pruner(self) -> Scheduler:
        return self._study.scheduler

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self._study.user_attrs

    @property
    def system_attrs(self) -> dict[str, Any]:
        return {}

    def set_user_attr(self, key: str, value: Any) -> None:
        self._study.set_user_attr(key, value)

    def set_system_attr(self, key: str, value: Any) -> None:
        """Deprecated in Optuna; stored as a user attribute here."""
        self._study.set_user_attr(key, value)

    @property
    def metric_names(self) -> list[str] | None:
        names = self._study.objective_names
        return None if names is None else list(names)

    # --- trials ----------------------------------------------------------------------------
    def _frozen(self, record: TrialRecord) -> FrozenTrial:
        return FrozenTrial.from_record(record, self._study.space)

    @property
    def trials(self) -> list[FrozenTrial]:
        """Every trial, by number."""
        return self.get_trials()

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        """The trials, those in `states` only when given."""
        records = self._study.trials
        trials = [self._frozen(r) for r in records]
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return trials

    @property
    def best_trial(self) -> FrozenTrial:
        """The complete trial with the best value."""
        if self._multi:
            raise RuntimeError("a study of several objectives has no single best trial; use "
                               "best_trials")
        try:
            return self._frozen(self._study.best_trial)
        except NoCompleteTrialError as exc:
            raise ValueError(str(exc)) from None

    @property
    def best_value(self) -> float:
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The Pareto front (for one objective, the best trial)."""
        if not self._multi:
            try:
                return [self.best_trial]
            except ValueError:
                return []
        try:
            return [self._frozen(r) for r in self._study.best_trials]
        except NoCompleteTrialError:
            return []

    def trials_dataframe(self, attrs: tuple[str, ...] = _DEFAULT_ATTRS,
                         multi_index: bool = False) -> pd.DataFrame:
        """One row per trial, with Optuna's columns (`params_x`, `user_attrs_k`, ...)."""
        import pandas as pd

        rows = [_row(t, attrs, self.metric_names) for t in self.trials]
        keys: list[tuple[str, str]] = []
        for attr in attrs:
            found = sorted({k for row in rows for k in row if k[0] in _columns(attr)})
            keys.extend(found)
        if multi_index:
            return pd.DataFrame([[row.get(k) for k in keys] for row in rows],
                                columns=pd.MultiIndex.from_tuples(keys))
        names = [a if not sub else f"{a}_{sub}" for a, sub in keys]
        return pd.DataFrame([[row.get(k) for k in keys] for row in rows], columns=names)

    # --- running -------------------------------------------------------------------------
    def optimize(self, func: ObjectiveFuncType, n_trials: int | None = None,
                 timeout: float | None = None, n_jobs: int = 1,
                 catch: Iterable[type[Exception]] | type[Exception] = (),
                 callbacks: Iterable[Callable[[Study, FrozenTrial], None]] | None = None,
                 gc_after_trial: bool = False, show_progress_bar: bool = False) -> None:
        """Run `func` on new trials until `n_trials` ran or `timeout` seconds passed;
        `n_jobs` worker processes (-1: one per CPU)."""
        workers = (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)
        if workers < 1:
            raise ValueError(f"n_jobs must be a positive int or -1, got {n_jobs!r}")
        caught = (catch,) if isinstance(catch, type) else tuple(catch)
        self._study.optimize(
            _Objective(func, gc_after_trial), n_trials, timeout=timeout, n_workers=workers,
            catch=caught, show_progress=show_progress_bar,
            callbacks=[_Callback(self, c) for c in callbacks or ()],
            max_consecutive_failures=None)

    def ask(self, fixed_distributions: Mapping[str, BaseDistribution] | None = None) -> Trial:
        """Start a trial (its parameters come from its suggest calls)."""
        trial = Trial(self._study.ask())
        for name, distribution in (fixed_distributions or {}).items():
            distribution._suggest(trial, name)
        return trial

    def tell(self, trial: Trial | int, values: float | Sequence[float] | None = None,
             state: TrialState | None = None, skip_if_finished: bool = False) -> FrozenTrial:
        """Finish a trial: complete with `values`, or pruned or failed (`state`)."""
        number = trial.number if isinstance(trial, Trial) else int(trial)
        target: _HlTrial | int = trial._trial if isinstance(trial, Trial) else number
        if skip_if_finished:
            current = self._study.store.get_trial(self._study.id, number)
            if current.state.is_finished:
                return self._frozen(current)
        if state is None:
            state = TrialState.FAIL if values is None else TrialState.COMPLETE
        if state is TrialState.COMPLETE:
            record = self._study.tell(target, _as_value(values, len(self.directions)))
        elif state in (TrialState.PRUNED, TrialState.FAIL):
            record = self._study.tell(target, state=state.to_hyperlaw())
        else:
            raise ValueError(f"tell takes state COMPLETE, PRUNED or FAIL, got {state!r}")
        return self._frozen(record)

    def enqueue_trial(self, params: dict[str, Any], user_attrs: dict[str, Any] | None = None,
                      skip_if_exists: bool = False) -> None:
        """Queue a configuration to try next (missing parameters are sampled)."""
        if skip_if_exists and any(t.params == params for t in self._study.trials):
            return
        self._study.enqueue(params, user_attrs=user_attrs)

    def add_trial(self, trial: FrozenTrial) -> None:
        """Record a finished trial made with `create_trial`."""
        started = Trial(self._study.ask(fixed=trial.params))
        for step, value in sorted(trial.intermediate_values.items()):
            started.report(value, step)
        for key, value in trial.user_attrs.items():
            started.set_user_attr(key, value)
        values = trial.values if trial.state is TrialState.COMPLETE else None
        self.tell(started, values, trial.state)

    def add_trials(self, trials: Iterable[FrozenTrial]) -> None:
        for trial in trials:
            self.add_trial(trial)

    def stop(self) -> None:
        """Start no new trial in the running `optimize` (e.g. from a callback)."""
        self._study.stop()


def _columns(attr: str) -> tuple[str, ...]:
    """The first level of the dataframe columns of `attr` (several objectives: values)."""
    return ("value", "values") if attr == "value" else (attr,)


def _row(trial: FrozenTrial, attrs: Sequence[str],
         metric_names: list[str] | None) -> dict[tuple[str, str], Any]:
    """One trials_dataframe row keyed by (column, sub-column)."""
    row: dict[tuple[str, str], Any] = {}
    for attr in attrs:
        if attr == "value":
            values = trial.values
            if values is not None and len(values) > 1:
                names = metric_names or [str(i) for i in range(len(values))]
                row.update({("values", n): v for n, v in zip(names, values, strict=False)})
            else:
                row[("value", "")] = None if values is None else values[0]
        elif attr in ("params", "user_attrs", "system_attrs", "intermediate_values",
                      "distributions"):
            mapping = getattr(trial, attr)
            row.update({(attr, str(k)): v for k, v in mapping.items()})
        elif attr == "state":
            row[("state", "")] = trial.state.name
        else:
            row[(attr, "")] = getattr(trial, attr)
    return row


# --- module functions ----------------------------------------------------------------------
def create_study(*, storage: Any = None, sampler: Sampler | None = None,
                 pruner: Scheduler | None = None, study_name: str | None = None,
                 direction: str | StudyDirection | None = None, load_if_exists: bool = False,
                 directions: Sequence[str | StudyDirection] | None = None) -> Study:
    """Create a study (or, with `load_if_exists`, continue the one of that name)."""
    if direction is not None and directions is not None:
        raise ValueError("pass direction= or directions=, not both")
    names = [_direction_name(d) for d in (directions or [direction or "minimize"])]
    kwargs: dict[str, Any] = ({"direction": names[0]} if len(names) == 1
                              else {"directions": names})
    if pruner is None:
        pruner = MedianStopping() if len(names) == 1 else NeverStop()
    study = _hl_create_study(study_name, storage=_storage_url(storage), sampler=sampler,
                             scheduler=pruner, load_if_exists=load_if_exists,
                             constraints=_constraints_of(sampler), **kwargs)
    return Study(study)


def load_study(*, study_name: str | None, storage: Any, sampler: Sampler | None = None,
               pruner: Scheduler | None = None) -> Study:
    """Open an existing study (its stored sampler and pruner unless others are given)."""
    url = _storage_url(storage)
    if url is None:
        raise ValueError("load_study needs storage=, the URL the study lives in")
    if study_name is None:
        names = get_all_study_names(url)
        if len(names) != 1:
            raise ValueError(f"study_name is needed: the storage holds {len(names)} studies")
        study_name = names[0]
    return Study(_hl_load_study(study_name, url, sampler=sampler, scheduler=pruner,
                                constraints=_constraints_of(sampler)))


def delete_study(*, study_name: str, storage: Any) -> None:
    """Delete a study and its trials."""
    url = _storage_url(storage)
    if url is None:
        raise ValueError("delete_study needs storage=")
    _hl_delete_study(study_name, url)


def get_all_study_names(storage: Any) -> list[str]:
    """The names of the studies in `storage`."""
    url = _storage_url(storage)
    if url is None:
        return []
    return [s.name for s in _hl_list_studies(url)]


def copy_study(*, from_study_name: str, from_storage: Any, to_storage: Any,
               to_study_name: str | None = None) -> None:
    """Copy a study with all its trials to another storage."""
    from hyperlaw.store import open_store
    from hyperlaw.transfer import copy_study as _copy

    _copy(open_store(_storage_url(from_storage), mode="read"), from_study_name,
          open_store(_storage_url(to_storage)), to_study_name)


class MaxTrialsCallback:
    """Stop `optimize` once the study has `n_trials` trials in `states` (default: finished
    ones, as Optuna's)."""

    def __init__(self, n_trials: int, states: Container[TrialState] | None = (
            TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)) -> None:
        self._n_trials = n_trials
        self._states = states

    def __call__(self, study: Study, trial: FrozenTrial) -> None:
        if len(study.get_trials(deepcopy=False, states=self._states)) >= self._n_trials:
            study.stop()
