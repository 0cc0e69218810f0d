"""`optuna.logging` on hyperlaw's logger: `set_verbosity(WARNING)` and friends.

Optuna's logger is named "optuna"; here every call acts on the "hyperlaw" logger, which
is where hyperlaw reports (trial failures, stale trials, notes of this compatibility layer).
"""

from __future__ import annotations

import logging as _logging

CRITICAL = _logging.CRITICAL
FATAL = _logging.FATAL
ERROR = _logging.ERROR
WARNING = _logging.WARNING
WARN = _logging.WARN
INFO = _logging.INFO
DEBUG = _logging.DEBUG

_LOGGER = _logging.getLogger("hyperlaw")
_HANDLER = _logging.StreamHandler()
_HANDLER.setFormatter(_logging.Formatter("[%(levelname).1s %(asctime)s] %(message)s"))

__all__ = ["CRITICAL", "DEBUG", "ERROR", "FATAL", "INFO", "WARN", "WARNING",
           "disable_default_handler", "disable_propagation", "enable_default_handler",
           "enable_propagation", "get_logger", "get_verbosity", "set_verbosity"]


def get_logger(name: str) -> _logging.Logger:
    """The logger `name`; Optuna's names ("optuna", "optuna.study") map to hyperlaw's."""
    if name == "optuna" or name.startswith("optuna."):
        name = "hyperlaw" + name[len("optuna"):]
    return _logging.getLogger(name)


def set_verbosity(verbosity: int) -> None:
    """Set the level of hyperlaw's logger (e.g. `set_verbosity(WARNING)`)."""
    _LOGGER.setLevel(verbosity)


def get_verbosity() -> int:
    """The effective level of hyperlaw's logger."""
    return _LOGGER.getEffectiveLevel()


def enable_default_handler() -> None:
    """Print hyperlaw's log records to stderr."""
    if _HANDLER not in _LOGGER.handlers:
        _LOGGER.addHandler(_HANDLER)


def disable_default_handler() -> None:
    """Stop printing hyperlaw's log records to stderr (see `enable_default_handler`)."""
    _LOGGER.removeHandler(_HANDLER)


def enable_propagation() -> None:
    """Pass hyperlaw's log records on to the root logger (the default)."""
    _LOGGER.propagate = True


def disable_propagation() -> None:
    """Keep hyperlaw's log records from the root logger's handlers."""
    _LOGGER.propagate = False
