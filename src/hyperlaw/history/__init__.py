"""A study's trials as this process has read them, kept current incrementally from the store."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

from hyperlaw.store.base import Changes, Store
from hyperlaw.trial import TrialRecord, TrialState

_COMPLETE = TrialState.COMPLETE
_T = TypeVar("_T")


class History:
    """Trials indexed by number, plus an index of intermediate values by step.

    `refresh()` reads only what changed since the last read. `version` grows with every
    applied change, so samplers and schedulers can memoize derived data (encoded matrices,
    sorted values, rung indexes) in `memo` (see `memoized`). `rung_budgets` holds the rung
    budgets of the last rung decision a multi-fidelity scheduler took in this process, for
    samplers that fit at a rung's budget.
    """

    def __init__(self, store: Store, study_id: int, maximize: bool,
                 directions: tuple[str, ...] | None = None) -> None:
        self._store = store
        self._study_id = study_id
        self.maximize = maximize
        #: one entry per objective ("minimize" or "maximize"); `maximize` is the first's
        self.directions: tuple[str, ...] = directions or (
            "maximize" if maximize else "minimize",)
        self.trials: list[TrialRecord] = []
        self.cursor = 0
        self.version = 0
        #: step -> {trial number: value reported at that step}
        self.by_step: dict[int, dict[int, float]] = {}
        #: derived data kept by samplers and schedulers, by a str or tuple key of their own
        self.memo: dict[Hashable, Any] = {}
        #: the rung budgets of the study's multi-fidelity scheduler, for budget-aware samplers
        self.rung_budgets: list[float] = []
        self._waiting: set[int] = set()

    def refresh(self) -> History:
        changes = self._store.changes_since(self._study_id, self.cursor)
        if changes.trials or changes.reports:
            self.apply(changes)
        self.cursor = max(self.cursor, changes.cursor)
        return self

    def apply(self, changes: Changes) -> None:
        trials = self.trials
        for record in changes.trials:
            self.put(record)
        by_step = self.by_step
        for report in changes.reports:
            record = trials[report.number]
            record.intermediate[report.step] = report.value
            if report.values is not None:
                record.intermediate_values[report.step] = report.values
            by_step.setdefault(report.step, {})[report.number] = report.value
        self.version += 1

    def put(self, record: TrialRecord) -> None:
        """Insert or replace a trial (keeping its intermediate values)."""
        trials = self.trials
        number = record.number
        if record.state is TrialState.WAITING:
            self._waiting.add(number)
        else:
            self._waiting.discard(number)
        if number < len(trials):
            old = trials[number]
            if old.intermediate and not record.intermediate:
                record.intermediate.update(old.intermediate)
                record.intermediate_values.update(old.intermediate_values)
            trials[number] = record
        else:
            while len(trials) < number:  # never happens with a consistent store
                trials.append(TrialRecord(len(trials), TrialState.WAITING, {}))
            trials.append(record)
        self.version += 1

    def add_report(self, number: int, step: int, value: float,
                   values: tuple[float, ...] | None = None) -> None:
        record = self.trials[number]
        record.intermediate[step] = value
        if values is not None:
            record.intermediate_values[step] = values
        self.by_step.setdefault(step, {})[number] = value
        self.version += 1

    def memoized(self, key: Hashable, make: Callable[[], _T]) -> _T:
        """The object kept in `memo` under `key`, made by `make()` on first use."""
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = make()
        return found

    # --- views ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self) -> Iterator[TrialRecord]:
        return iter(self.trials)

    def with_state(self, *states: TrialState) -> list[TrialRecord]:
        return [t for t in self.trials if t.state in states]

    def completed(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state is _COMPLETE]

    def running(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.state is TrialState.RUNNING]

    def has_waiting(self) -> bool:
        return bool(self._waiting)

    def best(self) -> TrialRecord | None:
        from hyperlaw.store.common import best_of

        return best_of(self.trials, self.maximize)

    def sign(self) -> float:
        """+1 when lower is better, -1 when higher is better (multiply values to minimize)."""
        return -1.0 if self.maximize else 1.0

    def signs(self) -> tuple[float, ...]:
        """`sign` of each objective."""
        return tuple(-1.0 if d == "maximize" else 1.0 for d in self.directions)
