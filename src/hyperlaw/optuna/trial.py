"""Optuna's trial objects on hyperlaw: `Trial` (what the objective receives), `FrozenTrial`
(what callbacks, `study.trials` and `best_trial` give), `TrialState` with Optuna's names."""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import numbers
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import TrialPruned
from hyperlaw.optuna.distributions import BaseDistribution, CategoricalChoiceType, from_param
from hyperlaw.optuna_import import optuna_constraints
from hyperlaw.schedulers import ThresholdStopping
from hyperlaw.trial import Trial as _HlTrial
from hyperlaw.trial import TrialRecord
from hyperlaw.trial import TrialState as _HlState

if TYPE_CHECKING:
    from hyperlaw.optuna.study import Study
    from hyperlaw.space import Space

log = logging.getLogger("hyperlaw")

__all__ = ["BaseTrial", "FixedTrial", "FrozenTrial", "Trial", "TrialState", "create_trial"]


class TrialState(enum.IntEnum):
    """A trial's state, with Optuna's names and numbers."""

    RUNNING = 0
    COMPLETE = 1
    PRUNED = 2
    FAIL = 3
    WAITING = 4

    def __repr__(self) -> str:
        return f"<TrialState.{self.name}: {self.value}>"

    def __str__(self) -> str:
        return f"TrialState.{self.name}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def is_finished(self) -> bool:
        """Whether the trial is complete, pruned or failed."""
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

    @classmethod
    def of(cls, state: _HlState) -> TrialState:
        """The Optuna name of a hyperlaw state."""
        return _FROM_HL[state]

    def to_hyperlaw(self) -> _HlState:
        """The hyperlaw state of this one."""
        return _TO_HL[self]


_FROM_HL = {_HlState.RUNNING: TrialState.RUNNING, _HlState.COMPLETE: TrialState.COMPLETE,
            _HlState.PRUNED: TrialState.PRUNED, _HlState.FAILED: TrialState.FAIL,
            _HlState.WAITING: TrialState.WAITING}
_TO_HL = {v: k for k, v in _FROM_HL.items()}


def _excess(value: float, low: float | None, high: float | None) -> float:
    """A constraint `low <= value <= high` as Optuna's single number, <= 0 when met."""
    return max(value - high if high is not None else -math.inf,
               low - value if low is not None else -math.inf)


def _local(ts: float | None) -> datetime | None:
    """Optuna's datetimes are naive local times."""
    return None if ts is None else datetime.fromtimestamp(ts)


class BaseTrial:
    """What Trial and FrozenTrial share: the Optuna spellings of the suggest calls."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        raise NotImplementedError

    def suggest_int(self, name: str, low: int, high: int, step: int = 1,
                    log: bool = False) -> int:
        raise NotImplementedError

    def suggest_categorical(self, name: str,
                            choices: Sequence[CategoricalChoiceType]) -> Any:
        raise NotImplementedError

    def suggest_uniform(self, name: str, low: float, high: float) -> float:
        """Deprecated in Optuna: `suggest_float(name, low, high)`."""
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> float:
        """Deprecated in Optuna: `suggest_float(name, low, high, log=True)`."""
        return self.suggest_float(name, low, high, log=True)

    def suggest_discrete_uniform(self, name: str, low: float, high: float, q: float) -> float:
        """Deprecated in Optuna: `suggest_float(name, low, high, step=q)`."""
        return self.suggest_float(name, low, high, step=q)


class FrozenTrial(BaseTrial):
    """A finished (or running) trial as Optuna shows it. The suggest calls return the
    trial's parameters, so `objective(study.best_trial)` re-runs the best configuration."""

    def __init__(self, number: int, state: TrialState, value: float | None,
                 datetime_start: datetime | None, datetime_complete: datetime | None,
                 params: dict[str, Any], distributions: dict[str, BaseDistribution],
                 user_attrs: dict[str, Any], system_attrs: dict[str, Any],
                 intermediate_values: dict[int, float], trial_id: int, *,
                 values: Sequence[float] | None = None) -> None:
        self.number = number
        self.state = state
        if values is None and value is not None:
            values = [value]
        self._values = None if values is None else list(values)
        self.datetime_start = datetime_start
        self.datetime_complete = datetime_complete
        self.params = params
        self.distributions = distributions
        self.user_attrs = user_attrs
        self.system_attrs = system_attrs
        self.intermediate_values = intermediate_values
        self._trial_id = trial_id
        self._constraints: dict[str, float] | None = None

    @classmethod
    def from_record(cls, record: TrialRecord, space: Space | None = None) -> FrozenTrial:
        """The FrozenTrial of a hyperlaw record (`space` gives the distributions)."""
        distributions = {name: from_param(space[name]) for name in record.params
                         if space is not None and name in space}
        system_attrs = dict(record.system_attrs)
        if record.constraints:  # Optuna's form: one value per constraint, met when <= 0
            system_attrs["constraints"] = [_excess(*c) for c in record.constraints.values()]
        frozen = cls(record.number, TrialState.of(record.state), None,
                     _local(record.started_at), _local(record.finished_at),
                     dict(record.params), distributions, dict(record.user_attrs), system_attrs,
                     dict(record.intermediate), record.number,
                     values=None if record.values is None else list(record.values))
        frozen._constraints = {name: _excess(*c) for name, c in record.constraints.items()}
        return frozen

    def __repr__(self) -> str:
        return (f"FrozenTrial(number={self.number}, state={self.state!r}, "
                f"values={self._values}, params={self.params})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrozenTrial) and self.__dict__ == other.__dict__

    def __lt__(self, other: FrozenTrial) -> bool:
        return self.number < other.number

    __hash__ = None  # type: ignore[assignment]

    @property
    def value(self) -> float | None:
        """The objective value (one objective; `values` for several)."""
        if self._values is None:
            return None
        if len(self._values) > 1:
            raise RuntimeError("this trial has several objective values; use `values`")
        return self._values[0]

    @value.setter
    def value(self, value: float | None) -> None:
        self._values = None if value is None else [value]

    @property
    def values(self) -> list[float] | None:
        """Every objective value."""
        return self._values

    @values.setter
    def values(self, values: Sequence[float] | None) -> None:
        self._values = None if values is None else list(values)

    @property
    def trial_id(self) -> int:
        return self._trial_id

    @property
    def constraints(self) -> dict[str, float]:
        """Constraint values by name, each met when <= 0 (Optuna's form)."""
        if self._constraints is not None:
            return dict(self._constraints)
        return optuna_constraints(self.system_attrs)

    @property
    def duration(self) -> timedelta | None:
        """Time from start to end, or None while unfinished."""
        if self.datetime_start is None or self.datetime_complete is None:
            return None
        return self.datetime_complete - self.datetime_start

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate_values) if self.intermediate_values else None

    def _param(self, name: str) -> Any:
        if name not in self.params:
            raise ValueError(f"the value of parameter {name!r} is not in this trial's "
                             f"parameters {sorted(self.params)}")
        return self.params[name]

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return float(self._param(name))

    def suggest_int(self, name: str, low: int, high: int, step: int = 1,
                    log: bool = False) -> int:
        return int(self._param(name))

    def suggest_categorical(self, name: str,
                            choices: Sequence[CategoricalChoiceType]) -> Any:
        return self._param(name)

    def report(self, value: float, step: int) -> None:
        """A FrozenTrial records nothing (as in Optuna)."""

    def should_prune(self) -> bool:
        """Never: a FrozenTrial is not running."""
        return False

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value

    def set_system_attr(self, key: str, value: Any) -> None:
        self.system_attrs[key] = value


def create_trial(*, state: TrialState = TrialState.COMPLETE, value: float | None = None,
                 values: Sequence[float] | None = None, params: dict[str, Any] | None = None,
                 distributions: dict[str, BaseDistribution] | None = None,
                 user_attrs: dict[str, Any] | None = None,
                 system_attrs: dict[str, Any] | None = None,
                 intermediate_values: dict[int, float] | None = None) -> FrozenTrial:
    """A FrozenTrial to hand to `study.add_trial`."""
    now = datetime.now()
    return FrozenTrial(-1, state, value, now, now if state.is_finished() else None,
                       dict(params or {}), dict(distributions or {}), dict(user_attrs or {}),
                       dict(system_attrs or {}), dict(intermediate_values or {}), -1,
                       values=values)


class FixedTrial(FrozenTrial):
    """A trial with given parameters, for running an objective by hand (`objective(
    FixedTrial({"x": 1.0}))`)."""

    def __init__(self, params: dict[str, Any], number: int = 0) -> None:
        now = datetime.now()
        super().__init__(number, TrialState.RUNNING, None, now, None, dict(params), {}, {}, {},
                         {}, number)


class Trial(BaseTrial):
    """The trial an objective receives, as Optuna spells it, on a hyperlaw trial.

    `report` records the value and asks the study's pruner (a hyperlaw scheduler); it never
    raises TrialPruned itself: `should_prune()` gives the decision, as in Optuna.
    """

    def __init__(self, trial: _HlTrial) -> None:
        self._trial = trial
        self._reported: set[int] = set()
        self._prune_non_finite = False
        self._start = datetime.now()

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params})"

    @property
    def number(self) -> int:
        return self._trial.number

    @property
    def _trial_id(self) -> int:
        return self._trial.number

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._trial.params)

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        space = self._trial.study.space
        return {n: from_param(space[n]) for n in self._trial.params if n in space}

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._trial.user_attrs)

    @property
    def system_attrs(self) -> dict[str, Any]:
        return dict(self._trial.system_attrs)

    @property
    def relative_params(self) -> dict[str, Any]:
        return {}

    @property
    def datetime_start(self) -> datetime | None:
        return self._start

    @property
    def study(self) -> Study:
        """The study, as Optuna spells it."""
        from hyperlaw.optuna.study import Study

        return Study(self._trial.study)

    @property
    def hyperlaw_trial(self) -> _HlTrial:
        """The hyperlaw trial underneath (checkpoints, `trial.study` of hyperlaw)."""
        return self._trial

    # --- suggest ---------------------------------------------------------------------------
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        """A float in [low, high] (log-scaled with `log`, on a grid of `step`)."""
        if low == high:
            return self._constant(name, float(low))
        if step is not None:
            high = _on_grid(name, low, high, step)
        return self._trial.suggest_float(name, low, high, log=log, step=step)

    def suggest_int(self, name: str, low: int, high: int, step: int = 1,
                    log: bool = False) -> int:
        """An int in [low, high] (log-scaled with `log`, on a grid of `step`)."""
        if step != 1:
            high = int(_on_grid(name, low, high, step))
        return self._trial.suggest_int(name, int(low), int(high), step=int(step), log=log)

    def suggest_categorical(self, name: str,
                            choices: Sequence[CategoricalChoiceType]) -> Any:
        """One of `choices`."""
        return self._trial.suggest_categorical(name, list(choices))

    def _constant(self, name: str, value: float) -> float:
        """Optuna accepts low == high; hyperlaw's Float needs a range: a one-value choice."""
        return float(self._trial.suggest_categorical(name, [value]))

    # --- report and prune ----------------------------------------------------------------
    def report(self, value: float, step: int) -> None:
        """Record an intermediate value; ask `should_prune()` for the pruner's decision.

        As in Optuna, a step reported twice is ignored with a warning. hyperlaw records steps
        in increasing order, so a step below the last one is ignored too; a value that is
        not finite is not recorded (a ThresholdPruner prunes on it, as Optuna's does).
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"the step of a report must be an int, got {step!r}")
        if step < 0:
            raise ValueError(f"the step of a report must be non-negative, got {step}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"the reported value must be a float, got {value!r}") from None
        step = int(step)
        if step in self._reported:
            warnings.warn(f"the reported value is ignored because step {step} of trial "
                          f"{self.number} is already reported", stacklevel=2)
            return
        last = max(self._reported, default=-1)
        self._reported.add(step)
        if not math.isfinite(number):
            self._prune_non_finite = isinstance(self._trial.study.scheduler, ThresholdStopping)
            log.warning("trial #%d: the value %s reported at step %d is not recorded (not a "
                        "finite number)", self.number, number, step)
            return
        if step < last:
            warnings.warn(f"trial {self.number}: step {step} is reported after step {last}; "
                          "hyperlaw records steps in increasing order, so it is ignored",
                          stacklevel=2)
            return
        self._prune_non_finite = False
        with contextlib.suppress(TrialPruned):  # the decision is what should_prune() returns
            self._trial.report(number, step)

    def should_prune(self) -> bool:
        """Whether the pruner stops the trial at its last report."""
        return self._prune_non_finite or self._trial.should_prune()

    def set_constraint(self, key: str, value: float) -> None:
        """Record constraint `key`, met when `value` <= 0 (a trial that misses one is
        infeasible and never counts among the best)."""
        self._trial.constrain(key, float(value), max=0.0)

    # --- attributes ----------------------------------------------------------------------
    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-serializable attribute to the trial (stored at once)."""
        self._trial.set_user_attr(key, value)

    def set_system_attr(self, key: str, value: Any) -> None:
        """Deprecated in Optuna; stored as a user attribute here."""
        self._trial.set_user_attr(key, value)


def _on_grid(name: str, low: float, high: float, step: float) -> float:
    """`high` moved down onto the grid low + k·step, as Optuna does (with a warning)."""
    span = high - low
    k = math.floor(span / step + 1e-9)
    grid_high = low + k * step
    if isinstance(step, int) and isinstance(low, int):
        grid_high = int(grid_high)
    if abs(grid_high - high) > 1e-12 * max(1.0, abs(high)):
        warnings.warn(f"the range of parameter {name!r} is not divisible by step {step}; "
                      f"high is set to {grid_high} (as Optuna does)", stacklevel=3)
        return grid_high
    return high
