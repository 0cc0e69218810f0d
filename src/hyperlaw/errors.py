"""One exception hierarchy. Every message names the thing that is wrong and how to fix it."""

from __future__ import annotations

from typing import Any


class HyperlawError(Exception):
    """Base class of every error raised by hyperlaw."""


class SpaceError(HyperlawError, ValueError):
    """A search space or a parameter definition is invalid."""


class SpaceMismatchError(SpaceError):
    """A define-by-run suggest call disagrees with the space the study already has."""


class ConditionError(SpaceError):
    """A `when` condition can never (or almost never) hold, e.g. on a continuous parent."""


class StorageError(HyperlawError):
    """The storage cannot be opened, read or written."""


class UnsupportedStorageError(StorageError):
    """The storage URL names a database hyperlaw cannot run on (only SQLite and PostgreSQL)."""


class SchemaVersionError(StorageError):
    """The database was written by a newer (or unknown) version of hyperlaw."""


class StudyNotFoundError(HyperlawError, KeyError):
    """No study of that name exists in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateStudyError(HyperlawError):
    """A study of that name already exists and `load_if_exists` was not set."""


class TrialStateError(HyperlawError):
    """An operation is not allowed in the trial's current state (e.g. `tell` twice)."""


class InvalidValueError(HyperlawError, ValueError):
    """An objective value is not a finite number."""


class SearchExhaustedError(HyperlawError):
    """The sampler has nothing left to try (every grid point is taken)."""


class CheckpointError(HyperlawError):
    """A checkpoint could not be written or read."""


class CheckpointCorruptError(CheckpointError):
    """A recorded checkpoint file is there but cannot be read back (truncated, garbled, or
    written by code this process cannot import)."""


class WorkerError(HyperlawError):
    """Worker processes failed in a way that stopped the study."""


class NoCompleteTrialError(HyperlawError, ValueError):
    """The study has no complete trial, so it has no best one."""


class NoFeasibleTrialError(NoCompleteTrialError):
    """Every complete trial misses a constraint; `least_violating` holds the closest ones
    (TrialRecords, least violation first)."""

    def __init__(self, message: str, least_violating: list[Any] | None = None) -> None:
        super().__init__(message)
        self.least_violating = list(least_violating or [])


class ScheduleError(HyperlawError, ValueError):
    """A learning-rate schedule was given invalid parameters."""


class HypergradientConfigError(HyperlawError, ValueError):
    """A hypergradient optimizer was given an invalid setting."""


class AutoLRSError(HyperlawError, ValueError):
    """AutoLRS was given an invalid setting or too small a budget."""


class ScalingFitError(HyperlawError, ValueError):
    """Records cannot be fitted as asked (missing columns, too few cells, bad values)."""


class AnnealingFitError(HyperlawError, ValueError):
    """Loss curves cannot be fitted (too short, mismatched lengths, non-positive losses)."""


class TrialPruned(Exception):
    """Raised by `Trial.report` when the scheduler stops the trial; let it propagate."""


class CommandError(HyperlawError):
    """A trial's shell command could not run, failed, or printed no value of the metric."""


def is_pruned(exc: BaseException) -> bool:
    """Whether `exc` says "prune this trial": hyperlaw's TrialPruned, or Optuna's
    (`optuna.TrialPruned`, `optuna.exceptions.TrialPruned`), so that objectives written for
    Optuna run unchanged. Optuna is recognized by its class's name and module anywhere in the
    exception's class hierarchy, without importing Optuna."""
    if isinstance(exc, TrialPruned):
        return True
    return any(cls.__name__ == "TrialPruned" and cls.__module__.split(".", 1)[0] == "optuna"
               for cls in type(exc).__mro__)
