"""A store that lives in this process: fast, shared by threads, gone when the process ends."""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hyperlaw.errors import DuplicateStudyError, StorageError
from hyperlaw.lineage import STALE
from hyperlaw.store.base import (
    Changes,
    ParamsFiller,
    ParamsOrMaker,
    Report,
    Store,
    StudyInfo,
    StudySummary,
)
from hyperlaw.store.common import (
    best_of,
    missing_study_error,
    not_running_error,
    owned,
    ranked_value,
    retry_attrs,
)
from hyperlaw.trial import TrialExtras, TrialRecord, TrialState

_RUNNING = TrialState.RUNNING
_WAITING = TrialState.WAITING


@dataclass(slots=True)
class _Best:
    """The best trial of a study in one direction (`best_of`'s answer), kept as trials are
    stored so that `best_trial` does not scan the study. A change it cannot settle from the
    best alone (the best trial got worse, a NaN value) marks it unknown: the next read
    scans once."""

    maximize: bool
    number: int | None = None  # None: no trial can be best yet
    value: float = math.nan
    known: bool = True

    def update(self, record: TrialRecord) -> None:
        """Account for `record`, the new version of its trial."""
        if not self.known:
            return
        value = ranked_value(record)
        if record.number == self.number:  # the best changed: still best if no worse
            self.known = value is not None and self._improves(value, record.number)
            self.value = self.value if value is None else value
        elif value is not None and (self.number is None or math.isnan(value)
                                    or self._improves(value, record.number)):
            self.known = not math.isnan(value)
            self.number, self.value = record.number, value

    def _improves(self, value: float, number: int) -> bool:
        """Whether a trial valued `value` ranks at least as well as the best (no NaN)."""
        if math.isnan(value) or math.isnan(self.value):
            return False
        if value == self.value:
            return number <= (self.number if self.number is not None else number)
        return value > self.value if self.maximize else value < self.value

    def get(self, trials: Sequence[TrialRecord]) -> TrialRecord | None:
        """The best trial among `trials` (the study's current versions)."""
        if not self.known:
            best = best_of(trials, self.maximize)
            self.number = None if best is None else best.number
            self.value = math.nan if best is None or best.value is None else best.value
            self.known = not math.isnan(self.value) or best is None
        return None if self.number is None else trials[self.number]


@dataclass(slots=True)
class _StudyData:
    info: StudyInfo
    trials: list[TrialRecord] = field(default_factory=list)
    reports: dict[int, dict[int, float]] = field(default_factory=dict)
    #: number -> step -> every objective's value (reports of several objectives only)
    report_values: dict[int, dict[int, tuple[float, ...]]] = field(default_factory=dict)
    heartbeats: dict[int, float] = field(default_factory=dict)
    # the change log: a trial record (its new version) or a Report, in sequence order
    log: list[TrialRecord | Report] = field(default_factory=list)
    # a heap of the numbers of WAITING trials, so that a claim never walks the study; an
    # entry whose trial left WAITING since is dropped when it reaches the top
    waiting: list[int] = field(default_factory=list)
    #: the best trial, when minimizing (False) and maximizing (True)
    best: dict[bool, _Best] = field(
        default_factory=lambda: {False: _Best(False), True: _Best(True)})

    def keep(self, record: TrialRecord) -> None:
        """Store `record` as the current version of its trial (appended when it is new)."""
        number = record.number
        was_waiting = number < len(self.trials) and self.trials[number].state is _WAITING
        if number == len(self.trials):
            self.trials.append(record)
        else:
            self.trials[number] = record
        if record.state is _WAITING and not was_waiting:
            heapq.heappush(self.waiting, number)
        for best in self.best.values():
            best.update(record)

    def oldest_waiting(self) -> TrialRecord | None:
        """The WAITING trial with the lowest number, or None."""
        while self.waiting:
            record = self.trials[self.waiting[0]]
            if record.state is _WAITING:
                return record
            heapq.heappop(self.waiting)
        return None


class MemoryStore(Store):
    """In-memory store. The cursor is the length of the study's change log.

    The records it keeps never leave it: readers get copies with an intermediate dict of their
    own, which a History fills with reports (as a record read from SQL is filled).
    """

    url = "memory"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._studies: dict[str, _StudyData] = {}
        self._by_id: dict[int, _StudyData] = {}

    # --- studies -------------------------------------------------------------------------
    def create_study(self, name: str, direction: str, space_json: str | None,
                     system_attrs: Mapping[str, Any], *,
                     directions: Sequence[str] | None = None,
                     objective_names: Sequence[str] | None = None) -> StudyInfo:
        with self._lock:
            if name in self._studies:
                raise DuplicateStudyError(
                    f"study {name!r} already exists in storage 'memory'; pass "
                    "load_if_exists=True to continue it, or choose another name"
                )
            info = StudyInfo(id=len(self._by_id) + 1, name=name, direction=direction,
                             space_json=space_json, system_attrs=dict(system_attrs),
                             created_at=time.time(), directions=tuple(directions or ()),
                             objective_names=None if objective_names is None
                             else tuple(objective_names))
            data = _StudyData(info)
            self._studies[name] = data
            self._by_id[info.id] = data
            return info

    def get_study(self, name: str) -> StudyInfo:
        with self._lock:
            data = self._studies.get(name)
            if data is None:
                raise missing_study_error(name, self.url, list(self._studies))
            return data.info

    def list_studies(self) -> list[StudySummary]:
        with self._lock:
            out = []
            for data in self._studies.values():
                counts = {s: 0 for s in TrialState}
                last = None
                for t in data.trials:
                    counts[t.state] += 1
                    stamp = t.finished_at or t.started_at or t.created_at
                    if stamp is not None and (last is None or stamp > last):
                        last = stamp
                best = data.best[data.info.direction == "maximize"].get(data.trials)
                several = len(data.info.directions) > 1
                out.append(StudySummary(data.info.name, data.info.direction,
                                        data.info.created_at, counts,
                                        None if best is None or several else best.value, last,
                                        data.info.directions))
            return out

    def delete_study(self, name: str) -> None:
        with self._lock:
            data = self._studies.pop(name, None)
            if data is None:
                raise missing_study_error(name, self.url, list(self._studies))
            del self._by_id[data.info.id]

    def update_space(self, study_id: int, merge: Callable[[str | None], str]) -> str:
        with self._lock:
            data = self._study(study_id)
            merged = merge(data.info.space_json)
            data.info = _replace_info(data.info, space_json=merged)
            return merged

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        with self._lock:
            data = self._study(study_id)
            data.info = _replace_info(data.info, user_attrs={**data.info.user_attrs, key: value})

    # --- trials --------------------------------------------------------------------------
    def create_trial(self, study_id: int, state: TrialState, params: ParamsOrMaker, *,
                     user_attrs: Mapping[str, Any] | None = None,
                     system_attrs: Mapping[str, Any] | None = None,
                     heartbeat: bool = False) -> TrialRecord:
        now = time.time()
        with self._lock:
            data = self._study(study_id)
            number = len(data.trials)
            values = params(number) if callable(params) else params
            attrs = owned(system_attrs, self.owner if state is _RUNNING else None)
            record = TrialRecord(number, state, dict(values), None, {},
                                 dict(user_attrs or {}), attrs, None, now,
                                 now if state is _RUNNING else None, None)
            data.keep(record)
            data.log.append(record)
            if heartbeat:
                data.heartbeats[number] = now
            return _handed_out(record)

    def claim_waiting(self, study_id: int,
                      fill: ParamsFiller | None = None,
                      heartbeat: bool = False) -> TrialRecord | None:
        with self._lock:
            data = self._study(study_id)
            old = data.oldest_waiting()
            if old is None:
                return None
            params = fill(old.number, old.params) if fill else old.params
            now = time.time()
            if heartbeat:
                data.heartbeats[old.number] = now
            return self._put(data, old, state=_RUNNING, started_at=now, params=dict(params),
                             system_attrs=owned(old.system_attrs, self.owner))

    def report(self, study_id: int, number: int, step: int, value: float,
               params: Mapping[str, Any] | None = None,
               values: Sequence[float] | None = None) -> None:
        several = None if values is None else tuple(values)
        with self._lock:
            data = self._study(study_id)
            old = self._running(data, number, "report to")
            if params:
                self._put(data, old, params={**old.params, **params})
            data.reports.setdefault(number, {})[step] = value
            if several is not None:
                data.report_values.setdefault(number, {})[step] = several
            data.log.append(Report(number, step, value, several))

    def set_trial_user_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        self._set_trial_attr(study_id, number, "user_attrs", key, value)

    def set_trial_system_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        self._set_trial_attr(study_id, number, "system_attrs", key, value)

    def _set_trial_attr(self, study_id: int, number: int, column: str, key: str,
                        value: Any) -> None:
        with self._lock:
            data = self._study(study_id)
            old = self._trial(data, number)
            self._put(data, old, **{column: {**getattr(old, column), key: value}})

    def finish_trial(self, study_id: int, number: int, state: TrialState, value: float | None,
                     *, error: str | None = None, params: Mapping[str, Any] | None = None,
                     system_attrs: Mapping[str, Any] | None = None,
                     extras: TrialExtras | None = None) -> TrialRecord:
        more: dict[str, Any] = {}
        if extras:
            more = {"values": extras.values, "constraints": dict(extras.constraints),
                    "cost": dict(extras.cost)}
        with self._lock:
            data = self._study(study_id)
            old = self._running(data, number, "finish")
            return self._put(
                data, old, state=state, value=value, error=error, **more,
                params={**old.params, **params} if params else old.params,
                system_attrs={**old.system_attrs, **system_attrs} if system_attrs
                else old.system_attrs,
                finished_at=time.time())

    def heartbeat(self, study_id: int, numbers: Sequence[int]) -> None:
        now = time.time()
        with self._lock:
            data = self._study(study_id)
            for n in numbers:
                data.heartbeats[n] = now

    def fail_stale(self, study_id: int, *, reason: str, retry_limit: int,
                   stale_before: float | None = None,
                   numbers: Sequence[int] | None = None) -> list[int]:
        with self._lock:
            data = self._study(study_id)
            wanted = set(numbers) if numbers is not None else None
            failed = []
            for old in list(data.trials):
                if old.state is not _RUNNING:
                    continue
                beat = data.heartbeats.get(old.number)
                if wanted is not None and old.number not in wanted:
                    continue
                if wanted is None and (beat is None or stale_before is None
                                       or beat >= stale_before):
                    continue
                self._put(data, old, state=TrialState.FAILED, error=reason,
                          system_attrs={**old.system_attrs, STALE: True},
                          finished_at=time.time())
                failed.append(old.number)
                retry = retry_attrs(old, retry_limit)
                if retry is not None:
                    self.create_trial(study_id, _WAITING, old.params, system_attrs=retry)
            return failed

    def import_trial(self, study_id: int, record: TrialRecord) -> None:
        with self._lock:
            data = self._study(study_id)
            if record.number > len(data.trials):
                raise StorageError(
                    f"cannot import trial #{record.number} into study {data.info.name!r}: "
                    f"it has only {len(data.trials)} trials; import trials in number order"
                )
            bare = _with_intermediate(record, {})
            data.keep(bare)
            data.log.append(bare)
            data.reports[record.number] = dict(record.intermediate)
            data.report_values[record.number] = dict(record.intermediate_values)
            for step, value in record.intermediate.items():
                data.log.append(Report(record.number, step, value,
                                       record.intermediate_values.get(step)))

    # --- reading -------------------------------------------------------------------------
    def changes_since(self, study_id: int, cursor: int) -> Changes:
        with self._lock:
            log = self._study(study_id).log
            new = log[cursor:]
            end = len(log)
        trials: list[TrialRecord] = []
        reports: list[Report] = []
        for item in new:
            if isinstance(item, Report):
                reports.append(item)
            else:
                trials.append(_handed_out(item))
        return Changes(trials, reports, end)

    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        with self._lock:
            data = self._study(study_id)
            record = self._trial(data, number)
            return _with_reports(data, record)

    def best_trial(self, study_id: int, maximize: bool) -> TrialRecord | None:
        with self._lock:
            data = self._study(study_id)
            best = data.best[maximize].get(data.trials)
            return None if best is None else _with_reports(data, best)

    # --- helpers -------------------------------------------------------------------------
    def _study(self, study_id: int) -> _StudyData:
        data = self._by_id.get(study_id)
        if data is None:
            raise StorageError(f"study id {study_id} was deleted from storage 'memory'")
        return data

    def _trial(self, data: _StudyData, number: int) -> TrialRecord:
        if not 0 <= number < len(data.trials):
            raise StorageError(
                f"study {data.info.name!r} has no trial #{number}; "
                f"its trials are numbered 0..{len(data.trials) - 1}"
            )
        return data.trials[number]

    def _running(self, data: _StudyData, number: int, action: str) -> TrialRecord:
        record = self._trial(data, number)
        if record.state is not _RUNNING:
            raise not_running_error(data.info.name, record, action)
        return record

    @staticmethod
    def _put(data: _StudyData, old: TrialRecord, **changes: Any) -> TrialRecord:
        value = changes.get("value", old.value)
        new = TrialRecord(
            old.number, changes.get("state", old.state), changes.get("params", old.params),
            value, {}, changes.get("user_attrs", old.user_attrs),
            changes.get("system_attrs", old.system_attrs), changes.get("error", old.error),
            old.created_at, changes.get("started_at", old.started_at),
            changes.get("finished_at", old.finished_at),
            changes.get("values", None if "value" in changes else old.values), {},
            changes.get("constraints", old.constraints), changes.get("cost", old.cost))
        data.keep(new)
        data.log.append(new)
        return _handed_out(new)


def _replace_info(info: StudyInfo, **changes: Any) -> StudyInfo:
    fields = {f: getattr(info, f) for f in StudyInfo.__slots__}
    fields.update(changes)
    return StudyInfo(**fields)


def _with_intermediate(record: TrialRecord, intermediate: dict[int, float],
                       intermediate_values: dict[int, tuple[float, ...]] | None = None,
                       ) -> TrialRecord:
    return TrialRecord(record.number, record.state, record.params, record.value,
                       dict(intermediate), record.user_attrs, record.system_attrs, record.error,
                       record.created_at, record.started_at, record.finished_at,
                       record.values, dict(intermediate_values or {}), record.constraints,
                       record.cost)


def _with_reports(data: _StudyData, record: TrialRecord) -> TrialRecord:
    """A copy of `record` with every report it made."""
    return _with_intermediate(record, data.reports.get(record.number, {}),
                              data.report_values.get(record.number))


def _handed_out(record: TrialRecord) -> TrialRecord:
    """A copy of a kept record for a reader, which may write reports into its intermediate."""
    return _with_intermediate(record, {})
