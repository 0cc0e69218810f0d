"""What the framework callbacks share: report without raising, and when to checkpoint."""

from __future__ import annotations

from typing import Any

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.trial import Trial


def report(trial: Trial, value: float, step: int,
           checkpoint: Any = None) -> TrialPruned | None:
    """`trial.report`, returning the scheduler's TrialPruned (stop or pause) instead of raising
    it, so a callback can let its framework shut down first and raise it afterwards."""
    try:
        trial.report(value, step, checkpoint=checkpoint)
    except TrialPruned as stop:
        return stop
    return None


def checkpoint_interval(trial: Trial | None, every: int | None) -> int:
    """Save a checkpoint every this many reports: `every` (0 turns checkpoints off), else the
    PBT interval of the study's scheduler, else every report (what the promotion variants of
    ASHA and Hyperband need to pause a trial at a rung, and a retried trial to resume)."""
    if every is None:
        if trial is None:
            return 1
        return int(getattr(trial.study.scheduler, "interval", 1))
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise HyperlawError(
            f"checkpoint_every must be an int >= 0 (0: no checkpoints), got {every!r}")
    return every


def metric(logs: Any, monitor: str, where: str) -> float:
    """The float value of `logs[monitor]` (a number, numpy scalar or one-element tensor), or
    an error naming the metric, what was logged and the fix."""
    value = logs.get(monitor) if logs is not None else None
    if value is None:
        logged = sorted(logs) if logs else []
        raise HyperlawError(
            f"{where}: the monitored metric {monitor!r} was not logged (logged: {logged}); "
            f"log it during validation or pass monitor= one of those")
    return float(value.item() if hasattr(value, "item") else value)
