"""Optuna's exception names, bound to hyperlaw's own classes, so that `except` clauses
written for Optuna catch what hyperlaw raises."""

from __future__ import annotations

from hyperlaw.errors import DuplicateStudyError, HyperlawError, StorageError, TrialPruned
from hyperlaw.errors import TrialStateError as UpdateFinishedTrialError

OptunaError = HyperlawError
DuplicatedStudyError = DuplicateStudyError
StorageInternalError = StorageError


class ExperimentalWarning(Warning):
    """Optuna's warning for experimental features (hyperlaw raises none)."""


class CLIUsageError(HyperlawError):
    """Optuna's command-line usage error (hyperlaw's command line uses click's)."""


__all__ = ["CLIUsageError", "DuplicatedStudyError", "ExperimentalWarning", "OptunaError",
           "StorageInternalError", "TrialPruned", "UpdateFinishedTrialError"]
