"""PyTorch training loops with resumable trials in a few lines.

    def objective(trial):
        model = Net()
        optimizer = torch.optim.SGD(model.parameters(), lr=trial.params["lr"])
        loop = TrainingLoop(trial, model, optimizer)
        for epoch in loop.steps(20):          # starts after the checkpoint, if any
            train_one_epoch(model, optimizer)
            loss = validate(model)
            loop.report(loss, epoch)          # checkpoint, then report (may stop the trial)
        return loss

A trial that resumes (after its worker died, after a pause, or as a population-based
training child) gets the weights, optimizer state, LR-scheduler state and random-number
state of its checkpoint, and then its *own* hyperparameters are written into the optimizer's
parameter groups, so an exploited PBT member trains on with the explored values; under an LR
scheduler the learning rate keeps its place in the schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from hyperlaw.errors import HyperlawError
from hyperlaw.integrations._common import adopt_settings
from hyperlaw.trial import Trial


class TrainingLoop:
    """Checkpointing and reporting of one trial's PyTorch training loop.

    `hyperparams` maps trial parameter names to optimizer param-group keys; by default every
    trial parameter named like a param-group key (``lr``, ``weight_decay``, ``momentum``...)
    is applied. A checkpoint is saved every `every` steps (default: the PBT interval of the
    study's scheduler, else every step) and always before a report the scheduler may act on.
    """

    def __init__(self, trial: Trial, model: torch.nn.Module,
                 optimizer: torch.optim.Optimizer | None = None,
                 lr_scheduler: Any = None, *, hyperparams: Mapping[str, str] | None = None,
                 every: int | None = None) -> None:
        self.trial = trial
        self.model = model
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.every = every or int(getattr(trial.study.scheduler, "interval", 1))
        if self.every < 1:
            raise HyperlawError(f"every must be a positive number of steps, got {every!r}")
        self.hyperparams = dict(hyperparams) if hyperparams is not None else (
            _matching_keys(trial.params, optimizer))
        self.start = self._resume()

    def _resume(self) -> int:
        state = self.trial.load_checkpoint()
        checkpoint = self.trial.checkpoint  # the one that loaded (a damaged one is skipped)
        if state is not None:
            if not isinstance(state, dict) or "model" not in state:
                raise HyperlawError(
                    f"trial #{self.trial.number}: its checkpoint was not written by "
                    "TrainingLoop (no 'model' entry); resume it with trial.load_checkpoint()"
                )
            self.model.load_state_dict(state["model"])
            if self.optimizer is not None and state.get("optimizer") is not None:
                self.optimizer.load_state_dict(state["optimizer"])
            if self.lr_scheduler is not None and state.get("lr_scheduler") is not None:
                self.lr_scheduler.load_state_dict(state["lr_scheduler"])
            if state.get("rng") is not None:
                torch.set_rng_state(state["rng"])
        self._apply_hyperparams()
        return 0 if checkpoint is None else checkpoint.step + 1

    def _apply_hyperparams(self) -> None:
        """Write the trial's parameters into the param groups; a learning rate under the LR
        scheduler keeps its place in the schedule (the base rate changes, not the step)."""
        if self.optimizer is None or not self.hyperparams:
            return
        settings = []
        for group in self.optimizer.param_groups:
            values = {key: self.trial.params[name] for name, key in self.hyperparams.items()}
            if "lr" in values and "initial_lr" in group:
                values["initial_lr"] = values["lr"]
            settings.append(values)
        adopt_settings(self.optimizer, settings,
                       [] if self.lr_scheduler is None else [self.lr_scheduler])

    def steps(self, total: int) -> range:
        """The steps still to run: from after the checkpoint (or 0) to `total` - 1."""
        return range(self.start, total)

    def state(self) -> dict[str, Any]:
        """What a checkpoint holds: model, optimizer, LR scheduler and torch RNG states."""
        return {"model": self.model.state_dict(),
                "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
                "lr_scheduler": None if self.lr_scheduler is None
                else self.lr_scheduler.state_dict(),
                "rng": torch.get_rng_state()}

    def report(self, value: float, step: int) -> None:
        """Save a checkpoint when due, then report `value` (raises TrialPruned when the
        scheduler stops, pauses or replaces the trial)."""
        due = step % self.every == 0  # schedulers act at multiples of their interval
        self.trial.report(value, step, checkpoint=self.state() if due else None)


def _matching_keys(params: Mapping[str, Any],
                   optimizer: torch.optim.Optimizer | None) -> dict[str, str]:
    if optimizer is None or not optimizer.param_groups:
        return {}
    keys = optimizer.param_groups[0].keys() - {"params"}
    return {name: name for name in params if name in keys}
