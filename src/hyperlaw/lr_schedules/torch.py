"""PyTorch adapter: drive an optimizer's learning rate with a hyperlaw schedule.

Importing this module does not import torch; `lr_scheduler` does, when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperlaw.errors import ScheduleError
from hyperlaw.lr_schedules.base import Schedule


@dataclass(frozen=True)
class LRMultiplier:
    """A picklable `lr_lambda`: the schedule's rate at a step divided by its peak."""

    schedule: Schedule

    def __call__(self, step: int) -> float:
        return float(self.schedule(step)) / self.schedule.peak_lr


def lr_scheduler(optimizer: Any, schedule: Schedule, last_epoch: int = -1) -> Any:
    """A `torch.optim.lr_scheduler.LambdaLR` that follows `schedule`.

    Each parameter group's learning rate is set to the schedule's peak times the group's
    `"lr_scale"` (1 when it has none) before the scheduler is built, so the rate at step t is
    exactly `schedule(t) * lr_scale`: `hyperlaw.scaling.mup.mup_param_groups` gives each group
    its scale. Groups with different rates and no `"lr_scale"` are refused rather than all set
    to the schedule's rate. Call `scheduler.step()` after each `optimizer.step()`.
    """
    from torch.optim.lr_scheduler import LambdaLR

    if last_epoch == -1:
        groups = optimizer.param_groups
        rates = {group["lr"] for group in groups}
        if len(rates) > 1 and not any("lr_scale" in group for group in groups):
            raise ScheduleError(
                f"lr_scheduler: the optimizer's parameter groups have different learning rates "
                f"({', '.join(f'{r:g}' for r in sorted(rates))}), and the schedule sets every "
                f"group's rate; give each group an 'lr_scale' (its rate divided by the "
                f"schedule's), e.g. {{'params': ..., 'lr_scale': 0.1}}")
        for group in groups:
            group["lr"] = schedule.peak_lr * group.get("lr_scale", 1.0)
    return LambdaLR(optimizer, LRMultiplier(schedule), last_epoch=last_epoch)
