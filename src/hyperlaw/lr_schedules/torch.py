"""PyTorch adapter: drive an optimizer's learning rate with a hyperlaw schedule.

Importing this module does not import torch; `lr_scheduler` does, when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperlaw.lr_schedules.base import Schedule


@dataclass(frozen=True)
class LRMultiplier:
    """A picklable `lr_lambda`: the schedule's rate at a step divided by its peak."""

    schedule: Schedule

    def __call__(self, step: int) -> float:
        return float(self.schedule(step)) / self.schedule.peak_lr


def lr_scheduler(optimizer: Any, schedule: Schedule, last_epoch: int = -1) -> Any:
    """A `torch.optim.lr_scheduler.LambdaLR` that follows `schedule`.

    Each parameter group's learning rate is set to the schedule's peak before the scheduler
    is built, so the rate at step t is exactly `schedule(t)`. Call `scheduler.step()` after
    each `optimizer.step()`.
    """
    from torch.optim.lr_scheduler import LambdaLR

    if last_epoch == -1:
        for group in optimizer.param_groups:
            group["lr"] = schedule.peak_lr
    return LambdaLR(optimizer, LRMultiplier(schedule), last_epoch=last_epoch)
