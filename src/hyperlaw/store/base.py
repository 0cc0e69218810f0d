"""The store contract: every fact about a study is written here, and readers catch up by cursor.

Each change to a study (a trial created, claimed, finished, failed as stale, an attribute set)
stamps the changed trial row with the study's next sequence number; each intermediate report is
appended with one. Sequence numbers are allocated under the study's write lock, so they are
committed in order: a reader that remembers the largest number it has seen (its cursor) gets
exactly the changes it has not seen with `changes_since(cursor)`, and never re-reads history.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperlaw.trial import TrialExtras, TrialRecord, TrialState

#: params, or a function of the allocated trial number that returns them (called inside the
#: write transaction, so that seeded samplers can key their draws on the number)
ParamsOrMaker = Mapping[str, Any] | Callable[[int], Mapping[str, Any]]
#: completes the params of an enqueued trial when it is claimed: (number, params) -> params
ParamsFiller = Callable[[int, Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class StudyInfo:
    """A study's identity and settings as stored. `direction` is the first objective's;
    `directions` has one entry per objective, `objective_names` their names (or None)."""

    id: int
    name: str
    direction: str
    space_json: str | None
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    directions: tuple[str, ...] = ()
    objective_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not self.directions:
            object.__setattr__(self, "directions", (self.direction,))

    @property
    def objectives_json(self) -> str | None:
        """The stored form of several or named objectives (None for one unnamed one)."""
        if len(self.directions) == 1 and self.objective_names is None:
            return None
        return json.dumps({"directions": list(self.directions),
                           "names": None if self.objective_names is None
                           else list(self.objective_names)})


def objectives_from_json(raw: str | None, direction: str,
                         ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(directions, names) from the stored form (`StudyInfo.objectives_json`)."""
    if not raw:
        return (direction,), None
    data = json.loads(raw)
    names = data.get("names")
    return tuple(data["directions"]), None if names is None else tuple(names)


@dataclass(frozen=True, slots=True)
class StudySummary:
    """One line of a study listing."""

    name: str
    direction: str
    created_at: float
    counts: dict[TrialState, int]
    best_value: float | None
    last_activity: float | None
    directions: tuple[str, ...] = ()

    @property
    def n_trials(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Report:
    """One intermediate value of a trial (`values`: of every objective, when several)."""

    number: int
    step: int
    value: float
    values: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed in a study after a cursor: trial rows (without intermediate values,
    which arrive as `reports`) and the new cursor."""

    trials: list[TrialRecord]
    reports: list[Report]
    cursor: int


@dataclass(frozen=True, slots=True)
class ColumnarChanges:
    """`Changes` with the reports as parallel numpy arrays (trial numbers, steps, values in
    stamp order): the form readers of large studies want. `report_objective_values` holds
    every objective's value (one row per report, NaN where a report has fewer), or None
    when no report has several."""

    trials: list[TrialRecord]
    report_numbers: np.ndarray
    report_steps: np.ndarray
    report_values: np.ndarray
    cursor: int
    report_objective_values: np.ndarray | None = None


class Store(ABC):
    """Persistent (or in-memory) home of studies and trials. Safe to share between threads;
    SQL stores are also safe to share between processes and machines."""

    #: the storage URL with any password hidden, for messages and logs
    url: str = "memory"
    #: who starts trials through this store object (a worker process sets it): each trial it
    #: starts RUNNING (created, claimed, or started by `finish_and_start`) records it as
    #: `system_attrs[lineage.WORKER]` in the same write, so the trial of a worker killed before
    #: it announced it can be found
    owner: str | None = None

    # --- studies -------------------------------------------------------------------------
    @abstractmethod
    def create_study(self, name: str, direction: str, space_json: str | None,
                     system_attrs: Mapping[str, Any], *,
                     directions: Sequence[str] | None = None,
                     objective_names: Sequence[str] | None = None) -> StudyInfo:
        """Create a study; raise DuplicateStudyError if the name is taken. `directions` and
        `objective_names` describe several (or named) objectives; `direction` is the
        first's."""

    @abstractmethod
    def get_study(self, name: str) -> StudyInfo:
        """Return a study; raise StudyNotFoundError naming the known studies if it is missing."""

    @abstractmethod
    def list_studies(self) -> list[StudySummary]:
        """All studies with trial counts by state, best value and last activity."""

    @abstractmethod
    def delete_study(self, name: str) -> None:
        """Delete a study and all its trials; raise StudyNotFoundError if it is missing."""

    @abstractmethod
    def update_space(self, study_id: int, merge: Callable[[str | None], str]) -> str:
        """Replace the stored space JSON by `merge(current)` atomically; return the result."""

    @abstractmethod
    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        """Attach a JSON-serializable attribute to the study."""

    # --- trials --------------------------------------------------------------------------
    @abstractmethod
    def create_trial(self, study_id: int, state: TrialState, params: ParamsOrMaker, *,
                     user_attrs: Mapping[str, Any] | None = None,
                     system_attrs: Mapping[str, Any] | None = None,
                     heartbeat: bool = False) -> TrialRecord:
        """Create a trial (RUNNING or WAITING) with the next gap-free number of the study.
        With `heartbeat` its heartbeat starts now (a worker will keep it beating); trials
        without one never go stale."""

    @abstractmethod
    def claim_waiting(self, study_id: int,
                      fill: ParamsFiller | None = None,
                      heartbeat: bool = False) -> TrialRecord | None:
        """Atomically move the oldest WAITING trial to RUNNING, completing its params with
        `fill`, and return it (or None)."""

    def start_trial(self, study_id: int, params: ParamsOrMaker, fill: ParamsFiller,
                    *, heartbeat: bool = False) -> tuple[TrialRecord, bool]:
        """Claim the oldest WAITING trial (as `claim_waiting`) or, when none waits, create a
        RUNNING one with `params`; True when it was created. SQL stores do both in one
        transaction, so a worker starts a trial in one round of writes and no read."""
        claimed = self.claim_waiting(study_id, fill, heartbeat)
        if claimed is not None:
            return claimed, False
        return self.create_trial(study_id, TrialState.RUNNING, params, heartbeat=heartbeat), True

    def finish_and_start(self, study_id: int, number: int, state: TrialState,
                         value: float | None, *, error: str | None = None,
                         params: Mapping[str, Any] | None = None, start: ParamsOrMaker,
                         fill: ParamsFiller, heartbeat: bool = False,
                         extras: TrialExtras | None = None,
                         ) -> tuple[TrialRecord, TrialRecord, bool]:
        """`finish_trial` of trial `number`, then `start_trial`; SQL stores do both in one
        transaction (nothing is started when the finish fails)."""
        finished = self.finish_trial(study_id, number, state, value, error=error,
                                     params=params, extras=extras)
        started, created = self.start_trial(study_id, start, fill, heartbeat=heartbeat)
        return finished, started, created

    @abstractmethod
    def report(self, study_id: int, number: int, step: int, value: float,
               params: Mapping[str, Any] | None = None,
               values: Sequence[float] | None = None) -> None:
        """Append an intermediate value (and merge newly suggested params) of a RUNNING trial;
        raise TrialStateError if the trial is not running any more. `values` holds every
        objective's value when there are several (`value` is the first)."""

    @abstractmethod
    def set_trial_user_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        """Attach a JSON-serializable attribute to a trial."""

    @abstractmethod
    def set_trial_system_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        """Attach an attribute hyperlaw itself keeps (checkpoints, lineage) to a trial of any
        state."""

    @abstractmethod
    def finish_trial(self, study_id: int, number: int, state: TrialState, value: float | None,
                     *, error: str | None = None, params: Mapping[str, Any] | None = None,
                     system_attrs: Mapping[str, Any] | None = None,
                     extras: TrialExtras | None = None) -> TrialRecord:
        """Move a RUNNING trial to a finished state, with its `extras` (all objective values,
        constraints, cost) when it has any; raise TrialStateError if it is not running
        (finished already, or failed as stale) and StorageError if it is missing."""

    @abstractmethod
    def heartbeat(self, study_id: int, numbers: Sequence[int]) -> None:
        """Mark RUNNING trials as alive now."""

    @abstractmethod
    def fail_stale(self, study_id: int, *, reason: str, retry_limit: int,
                   stale_before: float | None = None,
                   numbers: Sequence[int] | None = None) -> list[int]:
        """Fail RUNNING trials whose heartbeat is older than `stale_before` (or the listed
        `numbers`), and enqueue a retry of each that was retried fewer than `retry_limit`
        times, in one transaction. Return the failed trial numbers."""

    @abstractmethod
    def import_trial(self, study_id: int, record: TrialRecord) -> None:
        """Write a trial exactly as given (number, state, values, reports, attributes),
        replacing any trial of that number; used to copy studies between stores."""

    # --- reading -------------------------------------------------------------------------
    @abstractmethod
    def changes_since(self, study_id: int, cursor: int) -> Changes:
        """Everything that changed after `cursor` (0 reads all)."""

    @abstractmethod
    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        """One trial with its intermediate values."""

    @abstractmethod
    def best_trial(self, study_id: int, maximize: bool) -> TrialRecord | None:
        """The complete trial with the best value (lowest number on ties), without scanning."""

    def worker_url(self) -> str | None:
        """The full URL (credentials included) other processes open to share this store,
        or None when the store lives only in this process. Never log it."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError(
            f"{type(self).__name__} cannot be sent to another process; pass the storage URL "
            "and open it there"
        )

    # --- bulk reading (for analysis and the dashboard) ------------------------------------
    def changes_since_columnar(self, study_id: int, cursor: int) -> ColumnarChanges:
        """What `changes_since` returns, with the reports as arrays. Stores may override it
        to skip building one object per report."""
        changes = self.changes_since(study_id, cursor)
        count = len(changes.reports)
        values = np.fromiter((r.value for r in changes.reports), np.float64, count)
        return ColumnarChanges(
            changes.trials,
            np.fromiter((r.number for r in changes.reports), np.int64, count),
            np.fromiter((r.step for r in changes.reports), np.int64, count),
            values, changes.cursor,
            objective_matrix([r.values for r in changes.reports], values))


def objective_matrix(rows: Sequence[Sequence[float] | None],
                     first: np.ndarray) -> np.ndarray | None:
    """Per-report objective values as an (n, k) array (a report of one value, `first[i]`,
    fills column 0 and leaves NaN); None when no report has several values."""
    k = max((len(r) for r in rows if r is not None), default=0)
    if k == 0:
        return None
    out = np.full((len(rows), k), np.nan)
    out[:, 0] = first
    for i, row in enumerate(rows):
        if row is not None:
            out[i, :len(row)] = row
    return out
