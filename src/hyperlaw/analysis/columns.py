"""A study's trials as numpy columns, kept current from the store's change log.

Plots, importance and the dashboard read trials column-wise (values, one parameter, every
intermediate report) over studies of 100,000 trials; columns make those reads vector
operations and keep a large study in tens of megabytes instead of millions of objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, pairwise
from typing import Any, TypeVar

import numpy as np

from hyperlaw import pareto
from hyperlaw.space import Choice, Param, Space
from hyperlaw.store.base import Store, StudyInfo
from hyperlaw.trial import TrialRecord, TrialState

T = TypeVar("T")

#: trial states in code order: `StudyColumns.state` holds indices into this tuple
STATES: tuple[TrialState, ...] = tuple(TrialState)
STATE_CODE: dict[TrialState, int] = {s: i for i, s in enumerate(STATES)}
COMPLETE = STATE_CODE[TrialState.COMPLETE]
PRUNED = STATE_CODE[TrialState.PRUNED]
RUNNING = STATE_CODE[TrialState.RUNNING]
FAILED = STATE_CODE[TrialState.FAILED]


class _Growing:
    """A 1-d numpy array that grows by doubling; `view` is the filled part."""

    __slots__ = ("_data", "fill", "size")

    def __init__(self, dtype: Any, fill: Any) -> None:
        self.fill = fill
        self._data = np.full(64, fill, dtype=dtype)
        self.size = 0

    def reserve(self, size: int) -> None:
        if size > len(self._data):
            grown = np.full(max(size, 2 * len(self._data)), self.fill, dtype=self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self.size = max(self.size, size)

    def set(self, index: int, value: Any) -> None:
        self.reserve(index + 1)
        self._data[index] = value

    def append_many(self, values: np.ndarray) -> None:
        start = self.size
        self.reserve(start + len(values))
        self._data[start: start + len(values)] = values

    @property
    def view(self) -> np.ndarray:
        return self._data[: self.size]


def label_of(value: Any) -> str:
    """The text shown for a categorical value (JSON spelling, strings unquoted)."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class ParamColumn:
    """One parameter over all trials: numbers (NaN where inactive), or category codes."""

    name: str
    categorical: bool
    log: bool = False
    integer: bool = False
    labels: list[str] = field(default_factory=list)
    _codes: dict[str, int] = field(default_factory=dict)
    _values: _Growing = field(default_factory=lambda: _Growing(np.float64, np.nan))

    @classmethod
    def for_param(cls, name: str, param: Param | None, example: Any) -> ParamColumn:
        if param is not None:
            if isinstance(param, Choice):
                column = cls(name, categorical=True)
                for choice in param.values:
                    column.code(choice)
                return column
            return cls(name, categorical=param.kind not in ("float", "int"),
                       log=bool(getattr(param, "log", False)), integer=param.kind == "int")
        numeric = isinstance(example, int | float) and not isinstance(example, bool)
        return cls(name, categorical=not numeric, integer=isinstance(example, int))

    def code(self, value: Any) -> int:
        label = label_of(value)
        index = self._codes.get(label)
        if index is None:
            index = self._codes[label] = len(self.labels)
            self.labels.append(label)
        return index

    def set(self, number: int, value: Any) -> None:
        if self.categorical:
            self._values.set(number, self.code(value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._values.set(number, float(value))
        else:  # a categorical value in a column seen as numeric so far: become categorical
            self.become_categorical()
            self._values.set(number, self.code(value))

    def set_many(self, numbers: np.ndarray, values: list[Any]) -> None:
        """`set` for many trials at once (vectorized when the values are plain numbers)."""
        if not self.categorical and all(
                type(v) is float or (type(v) is int) for v in values):
            self._values.reserve(int(numbers.max()) + 1)
            self._values.view[numbers] = np.asarray(values, np.float64)
        elif self.categorical:
            self._values.reserve(int(numbers.max()) + 1)
            self._values.view[numbers] = [self.code(v) for v in values]
        else:
            for number, value in zip(numbers.tolist(), values, strict=True):
                self.set(number, value)

    def become_categorical(self) -> None:
        old = self._values.view.copy()
        self.categorical, self.log = True, False
        for i, x in enumerate(old):
            if not math.isnan(x):
                self._values.set(i, self.code(int(x) if self.integer else float(x)))

    def values(self, n: int) -> np.ndarray:
        """Numbers (or codes) of trials 0..n-1, NaN where the parameter is inactive."""
        self._values.reserve(n)
        return self._values.view[:n]

    def display(self, x: float) -> Any:
        """The value (or label) a number of this column stands for."""
        if math.isnan(x):
            return None
        if self.categorical:
            return self.labels[int(x)]
        return int(x) if self.integer else float(x)


def _value_of(record: TrialRecord, j: int) -> float:
    """Objective `j` of a trial (NaN when unknown)."""
    values = record.values
    return float(values[j]) if values is not None and len(values) > j else math.nan


def _violation_of(record: TrialRecord) -> float:
    """A trial's total constraint violation (NaN when it has no constraints)."""
    violation = record.violation
    return math.nan if violation is None else float(violation)


def _by_name(records: list[TrialRecord], attribute: str,
             absent: Any) -> dict[str, list[Any]]:
    """A mapping attribute of records (constraints, cost) as one list per key, aligned with
    `records` (`absent` where a record lacks the key)."""
    mappings = [getattr(record, attribute) for record in records]
    names = dict.fromkeys(chain.from_iterable(mappings))
    return {name: [m.get(name, absent) for m in mappings] for name in names}


#: a constraint a trial did not report: no value, no limits
_NO_LIMITS = (math.nan, math.nan, math.nan)


class _Constraint:
    """One constraint over all trials: its value and limits (NaN where absent)."""

    __slots__ = ("high", "low", "value")

    def __init__(self) -> None:
        self.value = _Growing(np.float64, np.nan)
        self.low = _Growing(np.float64, np.nan)
        self.high = _Growing(np.float64, np.nan)


class StudyColumns:
    """Trials of one study by number, plus every intermediate report, as numpy columns.

    With several objectives, `value` is the first one's and `objectives` holds them all;
    constraints (value and limits per trial), the total violation and each kind of cost are
    columns too.
    """

    def __init__(self, direction: str, space: Space | None = None, *,
                 directions: Sequence[str] | None = None,
                 objective_names: Sequence[str] | None = None) -> None:
        self.directions: tuple[str, ...] = tuple(directions) if directions else (direction,)
        self.objective_names = tuple(objective_names) if objective_names else None
        self.maximize = self.directions[0] == "maximize"
        self.direction = self.directions[0]
        self.space = space
        #: the study's name, when known (figures of several studies label their lines by it)
        self.name: str | None = None
        #: the store's id of the study, when the columns follow a store
        self.study_id: int | None = None
        self.n = 0
        self.cursor = 0
        self.version = 0
        self._state = _Growing(np.int8, STATE_CODE[TrialState.WAITING])
        self._value = _Growing(np.float64, np.nan)
        self._created = _Growing(np.float64, np.nan)
        self._started = _Growing(np.float64, np.nan)
        self._finished = _Growing(np.float64, np.nan)
        self._last_step = _Growing(np.int64, -1)
        self.params: dict[str, ParamColumn] = {}
        self._report_number = _Growing(np.int32, 0)
        self._report_step = _Growing(np.int64, 0)
        self._report_value = _Growing(np.float64, np.nan)
        #: objectives 2..k (the first is `_value`)
        self._more_values = [_Growing(np.float64, np.nan) for _ in self.directions[1:]]
        self._constraints: dict[str, _Constraint] = {}
        self._violation = _Growing(np.float64, np.nan)
        self._cost: dict[str, _Growing] = {}
        self._memo: dict[Any, Any] = {}
        self._memo_version = -1

    # --- building --------------------------------------------------------------------------
    @classmethod
    def from_store(cls, store: Store, study_name: str) -> StudyColumns:
        columns = cls.for_study(store.get_study(study_name))
        columns.refresh(store)
        return columns

    @classmethod
    def for_study(cls, info: StudyInfo) -> StudyColumns:
        """Empty columns for a stored study (its objectives, space, name and id); `refresh`
        fills them."""
        space = Space.from_json(info.space_json) if info.space_json else None
        columns = cls(info.direction, space, directions=info.directions,
                      objective_names=info.objective_names)
        columns.name, columns.study_id = info.name, info.id
        return columns

    @classmethod
    def from_trials(cls, trials: Iterable[TrialRecord], direction: str,
                    space: Space | None = None, *, directions: Sequence[str] | None = None,
                    objective_names: Sequence[str] | None = None) -> StudyColumns:
        """Columns of some trials (no store behind them)."""
        columns = cls(direction, space, directions=directions,
                      objective_names=objective_names)
        numbers: list[int] = []
        steps: list[int] = []
        values: list[float] = []
        trials = list(trials)
        columns.put_many(trials)
        for record in trials:
            numbers.extend([record.number] * len(record.intermediate))
            steps.extend(record.intermediate)
            values.extend(record.intermediate.values())
        columns.add_reports(numbers, steps, values)
        return columns

    def refresh(self, store: Store) -> bool:
        """Read what changed since the last read; True when anything did."""
        if self.study_id is None:
            raise ValueError("these columns were built from trials, not from a store")
        changes = store.changes_since_columnar(self.study_id, self.cursor)
        self.cursor = max(self.cursor, changes.cursor)
        if not changes.trials and not len(changes.report_numbers):
            return False
        self.put_many(changes.trials)
        self.add_reports(changes.report_numbers, changes.report_steps, changes.report_values)
        return True

    def put_many(self, records: list[TrialRecord]) -> None:
        """`put` for many trials at once: one numpy assignment per column."""
        if not records:
            return
        count = len(records)
        numbers = np.fromiter((r.number for r in records), np.int64, count)
        self.n = max(self.n, int(numbers.max()) + 1)
        nan = math.nan
        columns: list[tuple[_Growing, list[Any]]] = [
            (self._state, [STATE_CODE[r.state] for r in records]),
            (self._value, [nan if r.value is None else r.value for r in records]),
            (self._created, [nan if r.created_at is None else r.created_at for r in records]),
            (self._started, [nan if r.started_at is None else r.started_at for r in records]),
            (self._finished, [nan if r.finished_at is None else r.finished_at
                              for r in records])]
        columns += [(column, [_value_of(r, j) for r in records])
                    for j, column in enumerate(self._more_values, 1)]
        for column, values in columns:
            column.reserve(self.n)
            column.view[numbers] = values
        self._put_constraints_and_cost(records)
        self._last_step.reserve(self.n)
        by_name: dict[str, tuple[list[int], list[Any]]] = {}
        for record in records:
            for name, value in record.params.items():
                entry = by_name.get(name)
                if entry is None:
                    entry = by_name[name] = ([], [])
                entry[0].append(record.number)
                entry[1].append(value)
        for name, (indices, values) in by_name.items():
            param_column = self.params.get(name)
            if param_column is None:
                param = self.space.get(name) if self.space is not None else None
                param_column = self.params[name] = ParamColumn.for_param(name, param, values[0])
            param_column.set_many(np.asarray(indices, np.int64), values)
        self.version += 1

    def _put_constraints_and_cost(self, records: list[TrialRecord]) -> None:
        """Constraints (value and limits), the violation and each kind of cost, one numpy
        assignment per column; a record without them costs two attribute reads."""
        constrained = [r for r in records if r.constraints]
        if constrained:
            numbers = [r.number for r in constrained]
            self._violation.reserve(self.n)
            self._violation.view[numbers] = [_violation_of(r) for r in constrained]
            for name, triples in _by_name(constrained, "constraints", _NO_LIMITS).items():
                constraint = self._constraints.setdefault(name, _Constraint())
                table = np.array(triples, dtype=np.float64)  # an absent limit (None) is NaN
                for k, column in enumerate((constraint.value, constraint.low, constraint.high)):
                    column.reserve(self.n)
                    column.view[numbers] = table[:, k]
        costed = [r for r in records if r.cost]
        if costed:
            numbers = [r.number for r in costed]
            for name, amounts in _by_name(costed, "cost", math.nan).items():
                column = self._cost.setdefault(name, _Growing(np.float64, np.nan))
                column.reserve(self.n)
                column.view[numbers] = amounts

    def put(self, record: TrialRecord) -> None:
        """Insert or replace a trial's row (its reports arrive through `add_reports`)."""
        self.put_many([record])

    def update_space(self, space: Space | None) -> None:
        """Adopt a newer space: parameters it declares are drawn as it declares them."""
        self.space = space
        for name, column in self.params.items():
            param = space.get(name) if space is not None else None
            if param is None:
                continue
            if isinstance(param, Choice) and not column.categorical:
                column.become_categorical()
            elif not column.categorical:
                column.log = bool(getattr(param, "log", False))
                column.integer = param.kind == "int"
        self.version += 1

    def add_reports(self, numbers: Any, steps: Any, values: Any) -> None:
        numbers = np.asarray(numbers, np.int32)
        steps = np.asarray(steps, np.int64)
        self._report_number.append_many(numbers)
        self._report_step.append_many(steps)
        self._report_value.append_many(np.asarray(values, np.float64))
        if len(numbers):
            self._last_step.reserve(int(numbers.max()) + 1)
            np.maximum.at(self._last_step.view, numbers, steps)
        self.version += 1

    def memo(self, key: Any, make: Callable[[], T]) -> T:
        """`make()`, computed once per version of the columns."""
        if self._memo_version != self.version:
            self._memo.clear()
            self._memo_version = self.version
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def curves_of(self, numbers: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The learning curves of some trials: number -> (steps, values), by step, keeping
        the latest report of a step reported twice."""
        wanted = np.zeros(self.n, dtype=bool)
        wanted[numbers] = True
        all_numbers, all_steps, all_values = self.reports
        picked = np.flatnonzero(wanted[all_numbers])
        trial, steps, values = all_numbers[picked], all_steps[picked], all_values[picked]
        order = np.lexsort((picked, steps, trial))
        trial, steps, values = trial[order], steps[order], values[order]
        last = np.ones(len(trial), dtype=bool)
        last[:-1] = (trial[1:] != trial[:-1]) | (steps[1:] != steps[:-1])
        trial, steps, values = trial[last], steps[last], values[last]
        bounds = np.flatnonzero(np.r_[True, trial[1:] != trial[:-1], True])
        return {int(trial[a]): (steps[a:b], values[a:b])
                for a, b in pairwise(bounds.tolist()) if a < b}

    # --- columns ---------------------------------------------------------------------------
    @property
    def state(self) -> np.ndarray:
        return self._state.view[: self.n]

    @property
    def value(self) -> np.ndarray:
        return self._value.view[: self.n]

    @property
    def n_objectives(self) -> int:
        return len(self.directions)

    @property
    def is_multi_objective(self) -> bool:
        return len(self.directions) > 1

    def objective_labels(self) -> list[str]:
        """The objectives' names, or "objective 1", "objective 2", ... (one: "objective")."""
        if self.objective_names is not None:
            return list(self.objective_names)
        if not self.is_multi_objective:
            return ["objective"]
        return [f"objective {j + 1}" for j in range(self.n_objectives)]

    @property
    def objectives(self) -> np.ndarray:
        """Every objective's value, shape (n, k); NaN where unknown."""
        more = [self._fit(column) for column in self._more_values]
        return np.column_stack([self.value, *more])

    def objective_signs(self) -> np.ndarray:
        """+1 for each minimized objective, -1 for each maximized one."""
        return np.array([-1.0 if d == "maximize" else 1.0 for d in self.directions])

    def signed_objectives(self) -> np.ndarray:
        """`objectives` with maximized columns negated: lower is better in every column."""
        return self.objectives * self.objective_signs()

    @property
    def violation(self) -> np.ndarray:
        """Each trial's total constraint violation: 0 feasible, > 0 not, NaN without any."""
        return self._fit(self._violation)

    def feasible(self) -> np.ndarray:
        """Per trial: whether it meets its constraints (True for trials without any)."""
        violation = self.violation
        return np.isnan(violation) | (violation <= 0)

    def constraint_names(self) -> list[str]:
        return list(self._constraints)

    def constraint(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, min, max) of a constraint per trial, NaN where absent or unbounded."""
        column = self._constraints[name]
        return self._fit(column.value), self._fit(column.low), self._fit(column.high)

    def cost_names(self) -> list[str]:
        return list(self._cost)

    def cost(self, name: str) -> np.ndarray:
        """A kind of cost ("seconds", "tokens", ...) per trial, NaN where not recorded."""
        return self._fit(self._cost[name])

    def front(self) -> np.ndarray:
        """Numbers of the Pareto front of the complete feasible trials (for one objective,
        the best trials)."""
        return self.memo("front", self._front)

    def _front(self) -> np.ndarray:
        done = self.complete()
        done = done[self.feasible()[done]]
        return done[pareto.pareto_mask(self.signed_objectives()[done])]

    def _fit(self, column: _Growing) -> np.ndarray:
        column.reserve(self.n)
        return column.view[: self.n]

    @property
    def created_at(self) -> np.ndarray:
        return self._created.view[: self.n]

    @property
    def started_at(self) -> np.ndarray:
        return self._started.view[: self.n]

    @property
    def finished_at(self) -> np.ndarray:
        return self._finished.view[: self.n]

    @property
    def last_step(self) -> np.ndarray:
        self._last_step.reserve(self.n)
        return self._last_step.view[: self.n]

    @property
    def reports(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(trial numbers, steps, values) of every intermediate report, in arrival order."""
        return self._report_number.view, self._report_step.view, self._report_value.view

    def param(self, name: str) -> np.ndarray:
        return self.params[name].values(self.n)

    def param_names(self) -> list[str]:
        """Parameters in space order first, then any others in the order first seen."""
        names = [n for n in (self.space or {}) if n in self.params]
        return names + [n for n in self.params if n not in names]

    def counts(self) -> dict[str, int]:
        tally = np.bincount(self.state, minlength=len(STATES))
        return {s.value: int(tally[i]) for i, s in enumerate(STATES)}

    def complete(self) -> np.ndarray:
        """Numbers of complete trials with a value (with every value, for several)."""
        known = ~np.isnan(self.objectives).any(axis=1) if self.is_multi_objective else \
            ~np.isnan(self.value)
        return np.flatnonzero((self.state == COMPLETE) & known)

    def sign(self) -> float:
        """+1 when lower is better, -1 when higher is better."""
        return -1.0 if self.maximize else 1.0

    def best_number(self) -> int | None:
        done = self.complete()
        if not len(done):
            return None
        return int(done[np.argmin(self.sign() * self.value[done])])

    def row(self, number: int) -> dict[str, Any]:
        """A table row of one trial: number, state, value, params, times, last step (and
        every objective's value, the constraint violation, when the study has them)."""
        value = float(self.value[number])
        started, finished = float(self.started_at[number]), float(self.finished_at[number])
        last = int(self.last_step[number])
        row: dict[str, Any] = {
            "number": number, "state": STATES[int(self.state[number])].value,
            "value": None if math.isnan(value) else value,
            "params": {name: column.display(column.values(self.n)[number])
                       for name, column in self.params.items()
                       if column.display(column.values(self.n)[number]) is not None},
            "duration": None if math.isnan(finished) or math.isnan(started)
            else finished - started,
            "last_step": None if last < 0 else last,
        }
        if self.is_multi_objective:
            row["values"] = [_number(x) for x in self.objectives[number].tolist()]
        if self._constraints:
            row["violation"] = _number(float(self.violation[number]))
        return row


def _number(x: float) -> float | None:
    return None if math.isnan(x) else x

