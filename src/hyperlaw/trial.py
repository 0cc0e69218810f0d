"""Trial states, the frozen record of a trial, and the handle an objective receives."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperlaw.errors import InvalidValueError, SpaceMismatchError, TrialPruned, TrialStateError
from hyperlaw.space import Choice, Float, Int, Param, param_context, param_matches

if TYPE_CHECKING:
    from hyperlaw.lineage import Checkpoint
    from hyperlaw.study import Study


class TrialState(enum.StrEnum):
    """Lifecycle of a trial: waiting (enqueued) -> running -> complete | pruned | failed."""

    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED})


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """What the store knows about one trial. Times are POSIX seconds.

    `intermediate` maps step -> reported value; for a running trial it is the
    snapshot at the moment the record was read.
    """

    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None = None
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def last_step(self) -> int | None:
        return max(self.intermediate) if self.intermediate else None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def datetime_start(self) -> datetime | None:
        return None if self.started_at is None else datetime.fromtimestamp(self.started_at, UTC)

    @property
    def datetime_complete(self) -> datetime | None:
        return None if self.finished_at is None else datetime.fromtimestamp(self.finished_at, UTC)


#: the largest step a store can hold (a signed 64-bit integer)
MAX_STEP = 2**63 - 1


def check_step(step: Any, where: str, what: str = "step") -> int:
    """`step` as an int if it is an integer (numpy's too) in [0, MAX_STEP], else raise
    InvalidValueError."""
    if isinstance(step, numbers.Integral) and not isinstance(step, bool | np.bool_):
        number = int(step)
        if 0 <= number <= MAX_STEP:
            return number
        if number > MAX_STEP:
            raise InvalidValueError(
                f"{where}: {what} is an int of {number.bit_length()} bits, above the largest "
                "a store holds (2**63 - 1); count steps in coarser units")
    raise InvalidValueError(
        f"{where}: {what} must be a non-negative int up to 2**63 - 1, got {step!r}; pass "
        "the epoch, iteration or token count as an int"
    )


def check_value(value: Any, where: str) -> float:
    """Return `value` as a finite float or raise InvalidValueError naming `where` and the fix."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            import numpy as np

            if isinstance(value, np.generic) and np.ndim(value) == 0:
                return check_value(value.item(), where)
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        raise InvalidValueError(
            f"{where}: the objective value must be a finite number, got {value!r} "
            f"({type(value).__name__}); return a float (for example the validation loss)"
        )
    try:
        number = float(value)
    except OverflowError:
        raise InvalidValueError(
            f"{where}: the objective value is an int of {int(value).bit_length()} bits, too large "
            "for a float; return the value as a float of a sensible scale"
        ) from None
    if not math.isfinite(number):
        raise InvalidValueError(
            f"{where}: the objective value is {number}, not a finite number; the trial is "
            "recorded as failed. Guard the training against divergence (e.g. a lower learning "
            "rate bound or gradient clipping) or raise hyperlaw.TrialPruned to stop it early"
        )
    return number


class Trial:
    """The handle an objective receives: parameters, reports, attributes.

    `trial.params` holds only the active parameters. Define-by-run calls
    (`suggest_float`, `suggest_int`, `suggest_categorical`) return the value the
    sampler chose, and teach the study its space when none was declared.
    """

    __slots__ = ("_finished", "_last_report", "_pending_params", "_proposal", "_resumed_from",
                 "_stopped", "_study", "number", "params", "system_attrs", "user_attrs")

    def __init__(self, study: Study, number: int, params: dict[str, Any],
                 user_attrs: dict[str, Any] | None = None,
                 system_attrs: dict[str, Any] | None = None) -> None:
        self._study = study
        self.number = number
        self.params = params
        self.user_attrs = dict(user_attrs or {})
        #: what hyperlaw records about the trial (checkpoints, retries, PBT lineage); read-only
        self.system_attrs = dict(system_attrs or {})
        self._pending_params: dict[str, Any] = {}
        self._proposal: dict[str, Any] = {}
        self._finished = False
        self._last_report: tuple[int, float] | None = None
        self._stopped = False  # the scheduler's decision at the last report
        #: the checkpoint `load_checkpoint` loaded, until the trial saves another
        self._resumed_from: Checkpoint | None = None

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params})"

    @property
    def study(self) -> Study:
        return self._study

    # --- define-by-run -------------------------------------------------------------------
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False,
                      step: float | None = None) -> float:
        with param_context(name):
            param = Float(low, high, log=log, step=step)
        return self._suggest(name, param)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int:
        with param_context(name):
            param = Int(low, high, log=log, step=step)
        return self._suggest(name, param)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        with param_context(name):
            param = Choice(choices)
        return self._suggest(name, param)

    def _suggest(self, name: str, param: Param) -> Any:
        declared = self._study.space.get(name)
        if declared is not None and not param_matches(declared, param):
            raise SpaceMismatchError(
                f"parameter {name!r}: the objective asks for {param!r} but the study's space "
                f"declares {declared!r}; make the suggest call match the declared space, or "
                "create the study without `space=` to let the objective define it"
            )
        if name in self.params:
            return self.params[name]
        value = self._study._suggest(self, name, param)
        self.params[name] = value
        self._pending_params[name] = value
        return value

    # --- reporting -----------------------------------------------------------------------
    def report(self, value: float, step: int, *, checkpoint: Any = None) -> None:
        """Record an intermediate value; raise TrialPruned if the scheduler stops the trial.

        With `checkpoint` (what `save_checkpoint` takes), the state at `step` is saved first,
        so that a trial the scheduler pauses or a population member that is copied resumes
        from exactly this step.
        """
        if self._finished:
            raise TrialStateError(
                f"trial #{self.number} is finished; report before returning from the objective"
            )
        where = f"trial #{self.number} of study {self._study.name!r}"
        step = check_step(step, where)
        if self._last_report is not None and step <= self._last_report[0]:
            raise InvalidValueError(
                f"{where}: report at step {step} after step {self._last_report[0]}; steps "
                "must increase, once each (report the epoch, iteration or token count reached)"
            )
        number = check_value(value, f"{where} report at step {step}")
        previous, self._last_report = self._last_report, (step, number)
        try:
            if checkpoint is not None:
                self._study._save_checkpoint(self, checkpoint, step)
            stop = self._study._report(self, step, number)
        except BaseException:
            self._last_report = previous  # not recorded: the same step may be reported again
            raise
        self._stopped = stop
        if stop:
            raise TrialPruned(f"trial #{self.number} stopped by the scheduler at step {step}")

    def should_prune(self) -> bool:
        """Whether the scheduler stopped this trial at its last report.

        `report` already raises TrialPruned when it does, so in an objective written for
        hyperlaw this is False wherever it is reached; it lets objectives written for Optuna
        (`report`, then `if trial.should_prune(): raise TrialPruned()`) run unchanged, and
        tells code that caught the TrialPruned what the decision was.
        """
        return self._stopped

    # --- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, state: Any, *, step: int | None = None) -> Checkpoint:
        """Save `state` (a picklable object such as a dict of state dicts, or the path of a
        file or directory) as this trial's checkpoint at `step` (default: the last reported
        step). It is durable before it is recorded; old ones are pruned by the study's
        retention policy (`keep_last_checkpoints`, `keep_best_checkpoints`)."""
        if self._finished:
            raise TrialStateError(
                f"trial #{self.number} is finished; save checkpoints before returning from "
                "the objective"
            )
        if step is None:
            step = self._last_report[0] if self._last_report else 0
        else:
            step = check_step(step, f"trial #{self.number} of study {self._study.name!r}",
                              "checkpoint step")
        return self._study._save_checkpoint(self, state, step)

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint this trial continues from (its own newest; for a retried, promoted
        or PBT-exploited trial the one it inherited), or None for a fresh start. Once
        `load_checkpoint` has skipped a damaged checkpoint, the older one it loaded."""
        if self._resumed_from is not None:
            return self._resumed_from
        return self._study._resume_point(self)

    def load_checkpoint(self) -> Any:
        """The state of the newest checkpoint this trial can continue from that loads (an
        object, or a local path for a saved file or directory), or None when the trial starts
        from scratch. A damaged checkpoint is skipped with a warning naming it and the one
        used; CheckpointCorruptError (naming the trial, steps and files) when none loads.
        Training continues after `trial.checkpoint.step`, read after this call."""
        if self._resumed_from is not None:
            return self._study.checkpoints.load(self._resumed_from)
        checkpoint, state = self._study._load_resume_point(self)
        self._resumed_from = checkpoint
        return state

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-serializable attribute to the trial; it is stored at once."""
        self._study._set_trial_user_attr(self, key, value)
        self.user_attrs[key] = value

    def _take_pending_params(self) -> dict[str, Any]:
        pending, self._pending_params = self._pending_params, {}
        return pending

