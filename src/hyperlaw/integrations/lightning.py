"""PyTorch Lightning: report, stop or pause, and resume from Lightning's own checkpoints.

    from hyperlaw.integrations.lightning import HyperlawCallback, fit

    def objective(trial):
        model = LitNet(lr=trial.params["lr"])            # logs "val_loss" in validation_step
        trainer = L.Trainer(max_epochs=9, callbacks=[HyperlawCallback(trial, "val_loss")])
        fit(trainer, model, train_loader, val_loader)    # resumes a promoted or retried trial
        return trainer.callback_metrics["val_loss"].item()

After each validation the callback saves a Lightning checkpoint (`trainer.save_checkpoint`)
and reports the monitored metric with it at the epoch. When the scheduler stops the trial, or
pauses it (the promotion variants of ASHA and Hyperband), the callback sets
`trainer.should_stop`, Lightning ends the epoch and shuts down cleanly (loggers finalized as
a success, strategy torn down), and `fit` then raises `hyperlaw.TrialPruned`. A continued
trial starts from the checkpoint it inherited: `fit` passes it as `ckpt_path`, so Lightning
restores weights, optimizer, LR schedulers and the epoch and step counters. A PBT child that
starts from another member's checkpoint then gets its own explored optimizer settings back
(learning rate, momentum, weight decay...: what `configure_optimizers` set from its
parameters), its learning rate keeping its place in any LR schedule.

Several processes (`strategy="ddp"`, e.g. started by `hyperlaw.integrations.distributed.
run_processes`): only global rank 0 holds the trial (pass `trial=None` on the others); rank 0
reports and every rank follows its decision, sent with `trainer.strategy.broadcast`. The
other ranks cannot look the resume checkpoint up: give each `ckpt_path=resume_checkpoint(trial)`
as computed in the objective.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Literal

import lightning.pytorch as pl

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.integrations._common import (
    adopt_settings,
    checkpoint_interval,
    exploited,
    metric,
    optimizer_settings,
    report_on_rank_zero,
)
from hyperlaw.trial import Trial


class HyperlawCallback(pl.Callback):
    """Report `monitor` after each validation, checkpoint, and stop when the scheduler says.

    `trial` is the objective's trial (None on the ranks other than 0 of a multi-process run).
    `step` is what a report counts: ``"epoch"`` (the default; validate once per epoch) or
    ``"global_step"`` (for `val_check_interval` below one epoch). A Lightning checkpoint is
    saved with every `checkpoint_every`-th report (default: every report, or the PBT
    interval; 0: never, and then a paused trial cannot resume and is stopped instead).
    After `trainer.fit`, call `check_pruned()` (or use `fit`, which does).
    """

    def __init__(self, trial: Trial | None, monitor: str = "val_loss", *,
                 step: Literal["epoch", "global_step"] = "epoch",
                 checkpoint_every: int | None = None) -> None:
        if step not in ("epoch", "global_step"):
            raise HyperlawError(f"step must be 'epoch' or 'global_step', got {step!r}")
        self.trial = trial
        self.monitor = monitor
        self.step = step
        self.every = checkpoint_interval(trial, checkpoint_every)
        #: the scheduler's decision to stop or pause the trial, raised by `check_pruned`
        self.stopped: TrialPruned | None = None
        #: a PBT child's optimizer settings as configured, before the donor's restore
        self._configured: list[list[dict[str, Any]]] | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Keep a PBT child's optimizer settings as its parameters configured them: Lightning
        configures the optimizers before this hook and restores the checkpoint after it."""
        explored = trainer.strategy.broadcast(
            trainer.is_global_zero and exploited(self.trial), src=0)
        self._configured = ([optimizer_settings(o) for o in trainer.optimizers]
                            if explored else None)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Give a PBT child's restored optimizers its own (explored) settings back."""
        if self._configured is None:
            return
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        for optimizer, settings in zip(trainer.optimizers, self._configured, strict=True):
            adopt_settings(optimizer, settings, schedulers)
        self._configured = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Report the monitored metric (rank 0) and make every rank follow the decision."""
        if trainer.sanity_checking or self.stopped is not None:
            return
        step = trainer.current_epoch if self.step == "epoch" else trainer.global_step
        saved = self._save(trainer, step) if self.every and step % self.every == 0 else None
        where = f"epoch {trainer.current_epoch}" if self.trial is None else (
            f"trial #{self.trial.number}, epoch {trainer.current_epoch}")
        try:
            self.stopped = report_on_rank_zero(
                self.trial, lambda: metric(trainer.callback_metrics, self.monitor, where), step,
                saved, rank_zero=trainer.is_global_zero,
                broadcast=lambda code: trainer.strategy.broadcast(code, src=0))
        finally:
            if saved is not None:
                shutil.rmtree(os.path.dirname(saved), ignore_errors=True)
        if self.stopped is not None:
            trainer.should_stop = True

    def _save(self, trainer: pl.Trainer, step: int) -> str:
        """A Lightning checkpoint in a fresh temporary directory (every rank takes part; rank
        0 writes the file, which `Trial.report` copies into the study's directory)."""
        path = os.path.join(tempfile.mkdtemp(prefix="hyperlaw-lightning-"), f"step-{step}.ckpt")
        trainer.save_checkpoint(path)
        return path

    def check_pruned(self) -> None:
        """Raise `hyperlaw.TrialPruned` if the scheduler stopped or paused the trial; call it
        right after `trainer.fit` returns, so Lightning has shut down first."""
        if self.stopped is not None:
            raise self.stopped


def resume_checkpoint(trial: Trial | None) -> str | None:
    """The path of the Lightning checkpoint `trial` continues from (a promoted, retried or PBT
    trial), for `trainer.fit(..., ckpt_path=...)`; None for a trial that starts afresh."""
    if trial is None:
        return None
    state = trial.load_checkpoint()
    if state is None:
        return None
    if not isinstance(state, str) or not os.path.isfile(state):
        raise HyperlawError(
            f"trial #{trial.number}: its checkpoint is a {type(state).__name__}, not a "
            "Lightning checkpoint file saved by HyperlawCallback; resume it with "
            "trial.load_checkpoint() instead")
    return state


def fit(trainer: pl.Trainer, model: pl.LightningModule, *args: Any,
        ckpt_path: str | None = None, **kwargs: Any) -> None:
    """`trainer.fit(model, *args, **kwargs)` for a trainer with a HyperlawCallback: from the
    trial's resume checkpoint (unless `ckpt_path` is given), then raise TrialPruned if the
    scheduler stopped or paused the trial."""
    found = [c for c in trainer.callbacks if isinstance(c, HyperlawCallback)]  # type: ignore[attr-defined]
    if len(found) != 1:
        raise HyperlawError(
            f"fit needs a trainer with one HyperlawCallback, this one has {len(found)}; create "
            "it with pl.Trainer(callbacks=[HyperlawCallback(trial, monitor='val_loss')])")
    callback = found[0]
    if ckpt_path is None and trainer.is_global_zero:
        ckpt_path = resume_checkpoint(callback.trial)
    trainer.fit(model, *args, **{**kwargs, "ckpt_path": ckpt_path})
    callback.check_pruned()
