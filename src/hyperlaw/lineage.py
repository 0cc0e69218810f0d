"""A trial's lineage: the system attributes that tie trials together, the checkpoint record,
and the rules of where a trial resumes. Pure data and rules: no file or store I/O.

Every key below is written by one part (the store, the study, a scheduler) and read by
others; they are named here once so that renaming one cannot silently break retries,
promotion or population-based training.

- a retry of a trial whose worker died: `RETRY_OF` (the first trial of the retried chain),
  `RETRIES` (how many retries so far), and the keys in `RETRY_KEEPS` copied from the dead
  trial; the dead trial itself is marked `STALE` (True).
- `WORKER`: the worker that started the trial (see `Store.owner`).
- `PROPOSAL`: the configuration proposed when a define-by-run trial was asked.
- checkpoints: `CHECKPOINTS` lists the trial's retained checkpoints (`Checkpoint.to_json`),
  `RESUME` names the one a new trial starts from (a PBT child, a promoted trial).
- promotion (ASHA): a paused trial gets `SUSPENDED` ({"score": value}); the trial that
  continues it gets `PROMOTED_FROM` (the paused trial's number).
- population-based training: a child gets `PBT` (`PbtLink.to_json`); the trial it continues
  or replaces gets `CONTINUED_BY` ({"trial": child number, "kind": "pause" or "exploit"}).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hyperlaw.trial import TrialRecord

#: trial system attribute of a retry: the number of the first trial of the chain it retries
RETRY_OF = "retry_of"
#: trial system attribute of a retry: how many times the chain was retried
RETRIES = "retries"
#: trial system attribute (True) of a trial marked failed because its heartbeat stopped
STALE = "stale"
#: trial system attribute of a trial completed with an equivalent trial's result (dedup, see
#: `hyperlaw.canonical`): the number of the trial that ran; it spent none of that cost
REUSED_FROM = "reused_from"
#: trial system attribute naming the worker that started the trial (see `Store.owner`)
WORKER = "worker"
#: trial system attribute of a define-by-run trial: the configuration proposed when it was
#: asked, so that other processes see what a running trial holds before its suggest calls
#: are stored
PROPOSAL = "proposal"
#: trial system attribute listing the trial's retained checkpoints, oldest first
CHECKPOINTS = "checkpoints"
#: trial system attribute naming the checkpoint a new trial starts from (PBT, promotion)
RESUME = "resume"
#: trial system attribute of a trial paused at a rung to be promoted later: {"score": value}
SUSPENDED = "suspended"
#: trial system attribute of a trial that continues a paused one: the paused trial's number
PROMOTED_FROM = "promoted_from"
#: trial system attribute with a PBT child's lineage (`PbtLink`)
PBT = "pbt"
#: trial system attribute of a PBT member's trial that a child continues or replaces
CONTINUED_BY = "continued_by"
#: system attributes a retry keeps: where the trial started from and its PBT lineage
RETRY_KEEPS = (RESUME, PBT)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A recorded checkpoint: whose, at which step, where (relative to the study's directory)
    and how it was written: ``torch``/``pickle`` for objects, ``file``/``dir`` for paths."""

    trial: int
    step: int
    path: str
    kind: str
    value: float | None = None
    saved_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(int(data["trial"]), int(data["step"]), str(data["path"]), str(data["kind"]),
                   data.get("value"), float(data.get("saved_at", 0.0)))


@dataclass(frozen=True, slots=True)
class PbtLink:
    """A PBT child's lineage: the population member it continues, the trial whose checkpoint
    (at `step`) it starts from, that member's score there, whether the member paused or was
    exploited (`kind`) and the trial that handed off (`source`)."""

    member: int
    parent: int
    step: int
    score: float
    kind: str
    source: int | None = None

    def to_json(self) -> dict[str, Any]:
        score = None if math.isnan(self.score) else self.score  # JSON has no NaN
        return {"member": self.member, "parent": self.parent, "step": self.step,
                "score": score, "kind": self.kind, "from": self.source}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PbtLink:
        score = math.nan if data["score"] is None else float(data["score"])
        return cls(int(data["member"]), int(data["parent"]), int(data["step"]), score,
                   str(data["kind"]),
                   None if data.get("from") is None else int(data["from"]))


def pbt_link(system_attrs: Mapping[str, Any]) -> PbtLink | None:
    """The PBT lineage of a trial with these system attributes (None: not a PBT child)."""
    data = system_attrs.get(PBT)
    return PbtLink.from_json(data) if data else None


def recorded_checkpoints(system_attrs: Mapping[str, Any]) -> list[Checkpoint]:
    """The checkpoints listed in a trial's system attributes, oldest first."""
    return [Checkpoint.from_json(c) for c in system_attrs.get(CHECKPOINTS, ())]


def recorded(record: TrialRecord) -> list[Checkpoint]:
    """The checkpoints the store lists for a trial, oldest first."""
    return recorded_checkpoints(record.system_attrs)


def resume_point(number: int, system_attrs: Mapping[str, Any],
                 trials: Sequence[TrialRecord]) -> Checkpoint | None:
    """The checkpoint trial `number` continues from: its own newest one; else, for a retry
    of a trial that died, the newest of the trials it retries; else the one it was started
    from (a PBT child or a promoted trial)."""
    candidates = resume_candidates(number, system_attrs, trials)
    return candidates[0] if candidates else None


def resume_candidates(number: int, system_attrs: Mapping[str, Any],
                      trials: Sequence[TrialRecord]) -> list[Checkpoint]:
    """Every checkpoint trial `number` could continue from, the preferred first: its own,
    newest first; then those of the trials it retries, newest first; then the one it was
    started from. A trial resumes from the first of them that loads. `trials` is needed only
    for a retry (with `RETRY_OF`)."""
    own = recorded_checkpoints(system_attrs)[::-1]
    found = [c for t in retried_trials(number, system_attrs, trials) for c in recorded(t)]
    own += sorted(found, key=lambda c: (c.step, c.saved_at), reverse=True)
    start = system_attrs.get(RESUME)
    return [*own, Checkpoint.from_json(start)] if start else own


def retried_trials(number: int, system_attrs: Mapping[str, Any],
                   trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """For a retry (with `RETRY_OF`), the trials whose workers died that it retries, oldest
    first; else nothing."""
    origin = system_attrs.get(RETRY_OF)
    if origin is None:
        return []
    return [t for t in trials if t.number != number and (
        t.number == origin or t.system_attrs.get(RETRY_OF) == origin)]


def is_retry(system_attrs: Mapping[str, Any]) -> bool:
    """Whether the trial retries one whose worker died."""
    return RETRY_OF in system_attrs
