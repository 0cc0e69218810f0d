"""Hugging Face Transformers: a pruning `TrainerCallback` and `hyperlaw_search`, hyperlaw as a
`Trainer.hyperparameter_search` backend.

    from hyperlaw.integrations.transformers import hyperlaw_search

    trainer = Trainer(model_init=lambda trial: build_model(trial), args=args,
                      train_dataset=train, eval_dataset=valid)     # eval_strategy="epoch"
    best = hyperlaw_search(trainer, space={"learning_rate": hl.Float(1e-5, 1e-3, log=True)},
                           n_trials=20, storage="sqlite:///hf.db", scheduler="asha")
    best.hyperparameters, best.objective                            # a transformers BestRun

As with the built-in backends, every trial re-creates the model with `model_init` (given the
hyperlaw trial when it takes an argument), sets the trial's parameters that name
`TrainingArguments` fields, trains, and reports each evaluation's objective to the study, whose
scheduler may stop the trial: the callback then sets `control.should_training_stop`, and once
`Trainer.train` has returned the trial ends as pruned. Checkpoints go to `run-<trial number>`
under the trainer's `output_dir`, as with the built-in backends; one saved at an evaluation's
step is handed to the study with the report, so the promotion variants of ASHA and Hyperband
pause trials there and continue them from it (`train(resume_from_checkpoint=...)`).

transformers has no way to register a backend from outside (`hyperparameter_search` accepts
only the members of its `HPSearchBackend` enum), so `hyperlaw_search(trainer, ...)` takes the
place of `trainer.hyperparameter_search(backend=...)`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, BestRun, default_compute_objective

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.integrations._common import (
    adopt_settings,
    exploited,
    process_group_broadcast,
    report_on_rank_zero,
)
from hyperlaw.space import Param, Space
from hyperlaw.study import Study, create_study
from hyperlaw.trial import Trial

Objective = Callable[[dict[str, float]], float]


class HyperlawTrainerCallback(TrainerCallback):
    """Report each evaluation's objective to `trial` at the global step; stop training when
    the scheduler stops or pauses the trial. Call `check_pruned()` after `trainer.train()`.

    The objective is `compute_objective(metrics)` (default: transformers' own, the evaluation
    loss when no other metric is computed, else the sum of the metrics), or `metrics[monitor]`
    with `monitor` (e.g. ``"eval_accuracy"``). When the Trainer saves a checkpoint at the
    evaluation's step (`save_strategy` as `eval_strategy`), the report waits for it and hands
    the checkpoint directory to the study (unless `checkpoints=False`), so the promotion
    variants of ASHA and Hyperband can pause the trial and `resume_checkpoint(trial)` gives
    `train(resume_from_checkpoint=...)` its start. In a distributed run only the process of
    world rank zero reports (`trial` may be None on the others) and all follow its decision.
    """

    def __init__(self, trial: Trial | None, monitor: str | None = None, *,
                 compute_objective: Objective | None = None, checkpoints: bool = True) -> None:
        if monitor is not None and compute_objective is not None:
            raise HyperlawError("pass monitor= or compute_objective=, not both")
        self.trial = trial
        self.compute_objective: Objective = compute_objective or (
            default_compute_objective if monitor is None else _monitored(monitor))
        self.checkpoints = checkpoints
        #: the scheduler's decision to stop or pause the trial, raised by `check_pruned`
        self.stopped: TrialPruned | None = None
        #: (global step, objective) of the last evaluation
        self.last: tuple[int, float] | None = None
        self._pending: tuple[int, float] | None = None  # waits for the checkpoint of its step

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, **kwargs: Any) -> None:
        """A PBT child restored from another member's checkpoint trains with its own
        learning rate and weight decay (its TrainingArguments), not the donor's that the
        restored optimizer and LR scheduler hold; the rate keeps its place in the schedule."""
        optimizer = kwargs.get("optimizer")
        send = process_group_broadcast()
        explored = exploited(self.trial) if state.is_world_process_zero else False
        if send is not None:
            explored = bool(send(int(explored)))
        if optimizer is None or not explored:
            return
        settings = [{"lr": args.learning_rate, "initial_lr": args.learning_rate,
                     **({"weight_decay": args.weight_decay} if group.get("weight_decay")
                        else {})} for group in optimizer.param_groups]
        scheduler = kwargs.get("lr_scheduler")
        adopt_settings(optimizer, settings, [] if scheduler is None else [scheduler])

    def on_evaluate(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, metrics: dict[str, float] | None = None,
                    **kwargs: Any) -> None:
        """Report the evaluation's objective (world rank zero; the other processes of a
        distributed run follow its decision), or wait for the checkpoint the Trainer saves
        next at this step; stop training if the scheduler says so."""
        if self.stopped is not None or not metrics:
            return
        if self.last is not None and self.last[0] == state.global_step:
            return  # the evaluation after training, at a step already reported
        self._flush(state, control)
        value = float(self.compute_objective(dict(metrics)))
        self.last = (state.global_step, value)
        if self.checkpoints and control.should_save and args.save_strategy != "best":
            self._pending = self.last  # the Trainer saves right after the evaluation
        else:
            self._report(state, control, value, None)

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        """Report the waiting evaluation with the checkpoint just saved at its step."""
        pending = self._pending
        if pending is None or pending[0] != state.global_step:
            return
        self._pending = None
        path = os.path.join(args.output_dir or ".", f"{PREFIX_CHECKPOINT_DIR}-{pending[0]}")
        self._report(state, control, pending[1], path if os.path.isdir(path) else None)

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        """Report an evaluation still waiting for a checkpoint that was not saved."""
        self._flush(state, control)

    def _flush(self, state: TrainerState, control: TrainerControl) -> None:
        if self._pending is not None and self.stopped is None:
            pending, self._pending = self._pending, None
            self._report(state, control, pending[1], None, pending[0])

    def _report(self, state: TrainerState, control: TrainerControl, value: float,
                checkpoint: str | None, step: int | None = None) -> None:
        self.stopped = report_on_rank_zero(
            self.trial, lambda: value, state.global_step if step is None else step, checkpoint,
            rank_zero=state.is_world_process_zero, broadcast=process_group_broadcast())
        if self.stopped is not None:
            control.should_training_stop = True

    def check_pruned(self) -> None:
        """Raise `hyperlaw.TrialPruned` if the scheduler stopped or paused the trial."""
        if self.stopped is not None:
            raise self.stopped


def resume_checkpoint(trial: Trial | None) -> str | None:
    """The Trainer checkpoint directory `trial` continues from (a promoted, retried or PBT
    trial), for `trainer.train(resume_from_checkpoint=...)`; None for a fresh start."""
    if trial is None:
        return None
    state = trial.load_checkpoint()
    if state is None:
        return None
    if not isinstance(state, str) or not os.path.isfile(os.path.join(state, TRAINER_STATE_NAME)):
        raise HyperlawError(
            f"trial #{trial.number}: its checkpoint is not a Trainer checkpoint directory "
            f"(no {TRAINER_STATE_NAME}) saved through HyperlawTrainerCallback; resume it with "
            "trial.load_checkpoint() instead")
    return state


def _monitored(monitor: str) -> Objective:
    def objective(metrics: dict[str, float]) -> float:
        if monitor not in metrics:
            raise HyperlawError(
                f"the monitored metric {monitor!r} is not among the evaluation's metrics "
                f"{sorted(metrics)}; pass monitor= one of those (with its 'eval_' prefix)")
        return metrics[monitor]
    return objective


def default_space() -> Space:
    """The space transformers' built-in backends search by default."""
    from hyperlaw.space import Choice, Float, Int

    return Space({"learning_rate": Float(1e-6, 1e-4, log=True),
                  "num_train_epochs": Int(1, 5), "seed": Int(1, 40),
                  "per_device_train_batch_size": Choice([4, 8, 16, 32, 64])})


def hyperlaw_search(trainer: Trainer,
                    hp_space: Callable[[Trial], Mapping[str, Any]] | None = None,
                    compute_objective: Objective | None = None, n_trials: int | None = 20,
                    direction: str = "minimize", hp_name: Callable[[Trial], str] | None = None,
                    *, space: Space | Mapping[str, Param] | None = None,
                    study: Study | None = None, storage: str | None = None,
                    study_name: str | None = None, sampler: Any = None, scheduler: Any = None,
                    seed: int | None = None, load_if_exists: bool = False,
                    timeout: float | None = None, **study_options: Any) -> BestRun:
    """Search `trainer`'s hyperparameters with a hyperlaw study; the best run, as
    `Trainer.hyperparameter_search` returns it (`run_summary` is the study).

    The space is `space` (a hyperlaw Space or mapping), else the parameters `hp_space(trial)`
    suggests (an Optuna-style function calling `trial.suggest_float(...)`; it returns the
    values to apply), else transformers' default space. `direction`, `n_trials`, `timeout`,
    `compute_objective` and `hp_name` (the run directory's name) mean what they mean there;
    the study is `study`, or one created with `storage`, `study_name`, `sampler`,
    `scheduler`, `seed`, `load_if_exists` and `study_options` (see `hyperlaw.create_study`).
    """
    if trainer.model_init is None:
        raise HyperlawError(
            "hyperlaw_search needs a Trainer created with model_init= (a function that builds "
            "a fresh model, given the trial if it takes an argument): every trial trains a "
            "new model")
    if direction not in ("minimize", "maximize"):
        raise HyperlawError(
            f"direction must be 'minimize' or 'maximize', got {direction!r}; hyperlaw_search "
            "optimizes one objective (combine several in compute_objective)")
    if space is None and hp_space is None:
        space = default_space()
    if study is None:
        study = create_study(study_name, storage=storage, space=space,
                             direction="maximize" if direction == "maximize" else "minimize",
                             sampler=sampler, scheduler=scheduler, seed=seed,
                             load_if_exists=load_if_exists, **study_options)
    run = _Runs(trainer, hp_space, compute_objective or default_compute_objective, hp_name)
    study.optimize(run, n_trials=n_trials, timeout=timeout, show_progress=False)
    best = study.best_trial
    return BestRun(str(best.number), study.best_value, dict(best.params), study)


class _Runs:
    """The objective of `hyperlaw_search`: one training run of the trainer per trial."""

    def __init__(self, trainer: Trainer, hp_space: Callable[[Trial], Mapping[str, Any]] | None,
                 compute_objective: Objective, hp_name: Callable[[Trial], str] | None) -> None:
        self.trainer = trainer
        self.hp_space = hp_space
        self.compute_objective = compute_objective
        self.hp_name = hp_name

    def __call__(self, trial: Trial) -> float:
        trainer = self.trainer
        params = dict(self.hp_space(trial)) if self.hp_space is not None else dict(trial.params)
        name = self.hp_name(trial) if self.hp_name is not None else f"run-{trial.number}"
        restore = _apply(trainer, {**params, "output_dir": os.path.join(
            trainer.args.output_dir or ".", name)})
        model_init = trainer.model_init
        trainer.model_init = lambda: _call_model_init(model_init, trial)
        callback = HyperlawTrainerCallback(trial, compute_objective=self.compute_objective)
        trainer.add_callback(callback)
        try:
            trainer.train(resume_from_checkpoint=resume_checkpoint(trial))
            callback.check_pruned()
            last = callback.last
            if last is not None and last[0] == trainer.state.global_step:
                return last[1]
            return float(self.compute_objective(trainer.evaluate()))
        finally:
            trainer.remove_callback(callback)
            trainer.model_init = model_init
            _apply(trainer, restore)


def _call_model_init(model_init: Any, trial: Trial) -> Any:
    """`model_init(trial)`, or `model_init()` when it takes no argument (as Trainer does)."""
    import inspect

    arguments = len(inspect.signature(model_init).parameters)
    if arguments > 1:
        raise HyperlawError(f"model_init takes {arguments} arguments; it takes none or the trial")
    return model_init(trial) if arguments == 1 else model_init()


def _apply(trainer: Trainer, params: Mapping[str, Any]) -> dict[str, Any]:
    """Set the `params` that name TrainingArguments fields (cast to the field's type, as
    transformers does; the others are for model_init) and rebuild what depends on them; the
    previous values, to undo it."""
    args = trainer.args
    previous: dict[str, Any] = {}
    for key, value in params.items():
        if not hasattr(args, key):
            continue
        old = getattr(args, key)
        previous[key] = old
        setattr(args, key, type(old)(value) if old is not None else value)
    if previous:
        trainer._train_batch_size = args.train_batch_size
        trainer.create_accelerator_and_postprocess()
    return previous
