"""Schedulers decide when a running trial continues or stops."""

from __future__ import annotations

from typing import Any

from hyperlaw.errors import HyperlawError
from hyperlaw.schedulers.base import Decision, NeverStop, Scheduler
from hyperlaw.schedulers.median import MedianStopping

SCHEDULERS: dict[str, type[Scheduler]] = {
    "fifo": NeverStop,
    "none": NeverStop,
    "median": MedianStopping,
}

__all__ = ["SCHEDULERS", "Decision", "MedianStopping", "NeverStop", "Scheduler",
           "make_scheduler"]


def make_scheduler(scheduler: str | Scheduler | None,
                   spec: dict[str, Any] | None = None) -> Scheduler:
    """A scheduler from a name or an instance; `spec` (as stored with a study) fills the gaps."""
    if isinstance(scheduler, Scheduler):
        return scheduler
    options: dict[str, Any] = {}
    if scheduler is None and spec:
        scheduler = spec.get("name")
        options = {k: v for k, v in spec.items() if k != "name"}
    name = scheduler or "fifo"
    cls = SCHEDULERS.get(name)
    if cls is None:
        raise HyperlawError(
            f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)} or pass a "
            "hyperlaw.schedulers.Scheduler instance"
        )
    return cls(**options)
