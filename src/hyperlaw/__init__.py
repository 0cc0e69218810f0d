"""hyperlaw: hyperparameter optimization for neural-network training.

    import hyperlaw as hl
    space = hl.Space({"lr": hl.Float(1e-5, 1e-1, log=True), "width": hl.Int(16, 512, log=True)})
    study = hl.create_study("mlp", storage="sqlite:///hyperlaw.db", space=space)
    study.optimize(objective, n_trials=50)
"""

from __future__ import annotations

import importlib
from typing import Any

from hyperlaw import curves, lr_schedules, plot, samplers, scaling, schedulers
from hyperlaw.errors import (
    CheckpointCorruptError,
    CheckpointError,
    ConditionError,
    DuplicateStudyError,
    HyperlawError,
    InvalidValueError,
    NoCompleteTrialError,
    NoFeasibleTrialError,
    SchemaVersionError,
    SearchExhaustedError,
    SpaceError,
    SpaceMismatchError,
    StorageError,
    StudyNotFoundError,
    TrialPruned,
    TrialStateError,
    UnsupportedStorageError,
    WorkerError,
)
from hyperlaw.optuna_import import from_optuna
from hyperlaw.space import Choice, Const, Float, Int, Params, Repeat, Space, nest
from hyperlaw.study import (
    Study,
    create_study,
    delete_study,
    list_studies,
    load_study,
)
from hyperlaw.trial import Trial, TrialRecord, TrialState

__version__ = "0.1.0"

__all__ = [
    "CheckpointCorruptError",
    "CheckpointError",
    "Choice",
    "ConditionError",
    "Const",
    "DuplicateStudyError",
    "Float",
    "HyperlawError",
    "Int",
    "InvalidValueError",
    "NoCompleteTrialError",
    "NoFeasibleTrialError",
    "Params",
    "Repeat",
    "SchemaVersionError",
    "SearchExhaustedError",
    "Space",
    "SpaceError",
    "SpaceMismatchError",
    "StorageError",
    "Study",
    "StudyNotFoundError",
    "Trial",
    "TrialPruned",
    "TrialRecord",
    "TrialState",
    "TrialStateError",
    "UnsupportedStorageError",
    "WorkerError",
    "__version__",
    "create_study",
    "curves",
    "delete_study",
    "from_optuna",
    "list_studies",
    "load_study",
    "lr_schedules",
    "nest",
    "plot",
    "samplers",
    "scaling",
    "schedulers",
]


def __getattr__(name: str) -> Any:
    """`hl.schedules`: the deprecated name of `hl.lr_schedules` (importing it warns)."""
    if name == "schedules":
        return importlib.import_module("hyperlaw.schedules")
    raise AttributeError(f"module 'hyperlaw' has no attribute {name!r}")
