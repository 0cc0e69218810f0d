"""Learning-rate schedules: pure functions from step (or tokens seen) to learning rate.

    from hyperlaw.lr_schedules import WSD
    schedule = WSD(peak_lr=3e-3, warmup_steps=100, total_steps=10_000, decay_fraction=0.2,
                   cooldown="1-sqrt")
    schedule(5_000), schedule.values(10_000)

`hyperlaw.lr_schedules.torch.lr_scheduler(optimizer, schedule)` drives a PyTorch optimizer.
"""

from __future__ import annotations

from hyperlaw.lr_schedules.base import Schedule, ScheduleError
from hyperlaw.lr_schedules.families import (
    COOLDOWNS,
    FAMILIES,
    REX,
    WSD,
    Constant,
    Cosine,
    Infinite,
    InverseSqrt,
    Linear,
    Power,
)
from hyperlaw.lr_schedules.refined import Tabulated, refine_from_grad_norms
from hyperlaw.lr_schedules.search import SEARCHABLE, schedule_from_params, schedule_space

__all__ = [
    "COOLDOWNS",
    "FAMILIES",
    "REX",
    "SEARCHABLE",
    "WSD",
    "Constant",
    "Cosine",
    "Infinite",
    "InverseSqrt",
    "Linear",
    "Power",
    "Schedule",
    "ScheduleError",
    "Tabulated",
    "refine_from_grad_norms",
    "schedule_from_params",
    "schedule_space",
]
