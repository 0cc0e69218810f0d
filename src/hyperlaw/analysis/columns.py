"""A study's trials as numpy columns, kept current from the store's change log.

Plots, importance and the dashboard read trials column-wise (values, one parameter, every
intermediate report) over studies of 100,000 trials; columns make those reads vector
operations and keep a large study in tens of megabytes instead of millions of objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, TypeVar

import numpy as np

from hyperlaw.space import Choice, Param, Space
from hyperlaw.store.base import Store
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


class StudyColumns:
    """Trials of one study by number, plus every intermediate report, as numpy columns."""

    def __init__(self, direction: str, space: Space | None = None) -> None:
        self.maximize = direction == "maximize"
        self.direction = direction
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
        self._memo: dict[Any, Any] = {}
        self._memo_version = -1

    # --- building --------------------------------------------------------------------------
    @classmethod
    def from_store(cls, store: Store, study_name: str) -> StudyColumns:
        info = store.get_study(study_name)
        space = Space.from_json(info.space_json) if info.space_json else None
        columns = cls(info.direction, space)
        columns.name, columns.study_id = info.name, info.id
        columns.refresh(store)
        return columns

    @classmethod
    def from_trials(cls, trials: Iterable[TrialRecord], direction: str,
                    space: Space | None = None) -> StudyColumns:
        columns = cls(direction, space)
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
        columns = ((self._state, [STATE_CODE[r.state] for r in records]),
                   (self._value, [nan if r.value is None else r.value for r in records]),
                   (self._created, [nan if r.created_at is None else r.created_at
                                    for r in records]),
                   (self._started, [nan if r.started_at is None else r.started_at
                                    for r in records]),
                   (self._finished, [nan if r.finished_at is None else r.finished_at
                                     for r in records]))
        for column, values in columns:
            column.reserve(self.n)
            column.view[numbers] = values
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
        """Numbers of complete trials with a value."""
        return np.flatnonzero((self.state == COMPLETE) & ~np.isnan(self.value))

    def sign(self) -> float:
        """+1 when lower is better, -1 when higher is better."""
        return -1.0 if self.maximize else 1.0

    def best_number(self) -> int | None:
        done = self.complete()
        if not len(done):
            return None
        return int(done[np.argmin(self.sign() * self.value[done])])

    def row(self, number: int) -> dict[str, Any]:
        """A table row of one trial: number, state, value, params, times, last step."""
        value = float(self.value[number])
        started, finished = float(self.started_at[number]), float(self.finished_at[number])
        last = int(self.last_step[number])
        return {
            "number": number, "state": STATES[int(self.state[number])].value,
            "value": None if math.isnan(value) else value,
            "params": {name: column.display(column.values(self.n)[number])
                       for name, column in self.params.items()
                       if column.display(column.values(self.n)[number]) is not None},
            "duration": None if math.isnan(finished) or math.isnan(started)
            else finished - started,
            "last_step": None if last < 0 else last,
        }

