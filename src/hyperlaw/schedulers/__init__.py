"""Schedulers decide when a running trial continues or stops."""

from __future__ import annotations

from typing import Any

from hyperlaw.history.rungs import Rung
from hyperlaw.registry import resolve
from hyperlaw.schedulers.asha import ASHA, SuccessiveHalving
from hyperlaw.schedulers.base import Decision, NeverStop, Scheduler
from hyperlaw.schedulers.curve import CurveStopping
from hyperlaw.schedulers.freeze_thaw import FreezeThaw
from hyperlaw.schedulers.hyperband import Hyperband
from hyperlaw.schedulers.median import MedianStopping
from hyperlaw.schedulers.pbt import PBT, Segment, params_at, pbt_schedule
from hyperlaw.schedulers.rules import PatienceStopping, PercentileStopping, ThresholdStopping

SCHEDULERS: dict[str, type[Scheduler]] = {
    "fifo": NeverStop,
    "none": NeverStop,
    "median": MedianStopping,
    "percentile": PercentileStopping,
    "threshold": ThresholdStopping,
    "patience": PatienceStopping,
    "asha": ASHA,
    "successive_halving": SuccessiveHalving,
    "hyperband": Hyperband,
    "curve": CurveStopping,
    "freeze_thaw": FreezeThaw,
    "pbt": PBT,
}

__all__ = ["ASHA", "PBT", "SCHEDULERS", "CurveStopping", "Decision", "FreezeThaw", "Hyperband",
           "MedianStopping", "NeverStop", "PatienceStopping", "PercentileStopping", "Rung",
           "Scheduler", "Segment", "SuccessiveHalving", "ThresholdStopping", "make_scheduler",
           "params_at", "pbt_schedule"]



def make_scheduler(scheduler: str | Scheduler | None,
                   spec: dict[str, Any] | None = None) -> Scheduler:
    """A scheduler from a name or an instance; `spec` (as stored with a study) fills the gaps."""
    if isinstance(scheduler, Scheduler):
        return scheduler
    cls, options = resolve("scheduler", SCHEDULERS, scheduler, spec, "fifo")
    return cls(**options)
