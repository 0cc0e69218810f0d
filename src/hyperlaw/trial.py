"""Trial states, the frozen record of a trial, and the handle an objective receives."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperlaw.errors import InvalidValueError, SpaceMismatchError, TrialPruned, TrialStateError
from hyperlaw.space import Choice, Float, Int, Param, Params, param_context, param_matches

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
        """Whether the state is final: complete, pruned or failed."""
        return self in _FINISHED


_FINISHED = frozenset({TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED})


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """What the store knows about one trial, as read at one moment (frozen).

    Attributes:
        number: The trial's number in its study, from 0, unique and gap-free.
        state: Its state when the record was read.
        params: The active parameters.
        value: The final value (complete), the last reported value (pruned), else None; with
            several objectives, the first objective's.
        values: Every objective's value, in the study's order (one objective: `(value,)`).
        intermediate: Reported values by step (the first objective's); for a running trial,
            those reported so far.
        intermediate_values: Per-objective reports by step (several objectives only).
        user_attrs: Attributes set with `Trial.set_user_attr`.
        system_attrs: What hyperlaw records (checkpoints, retries, PBT lineage).
        error: The traceback or message of a failed trial.
        created_at: When the trial was created (POSIX seconds).
        started_at: When it started running (POSIX seconds).
        finished_at: When it finished (POSIX seconds).
        constraints: Constraint name -> (value, min, max).
        cost: "seconds" (the trial's wall time, from its start and finish when it was not
            given) and whatever the objective added with `Trial.add_cost`.
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
    values: tuple[float, ...] | None = None
    intermediate_values: dict[int, tuple[float, ...]] = field(default_factory=dict)
    constraints: dict[str, tuple[float, float | None, float | None]] = field(
        default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:  # a few hundred ns: records are read by the million
        if self.values is None and self.value is not None:
            _set(self, "values", (self.value,))
        finished, started, cost = self.finished_at, self.started_at, self.cost
        if finished is not None and started is not None and "seconds" not in cost:
            seconds = finished - started
            _set(self, "cost", {**cost, "seconds": seconds} if cost else {"seconds": seconds})

    @property
    def violation(self) -> float | None:
        """How far the trial is from meeting its constraints: the sum over constraints of
        max(0, value - max) + max(0, min - value); 0.0 when feasible, None without any."""
        return violation_of(self.constraints)

    @property
    def feasible(self) -> bool:
        """Whether the trial meets all its constraints (True when it has none)."""
        violation = violation_of(self.constraints)
        return violation is None or violation == 0.0

    @property
    def last_step(self) -> int | None:
        """The largest step reported, or None before any report."""
        return max(self.intermediate) if self.intermediate else None

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, or None while it has not finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def datetime_start(self) -> datetime | None:
        """`started_at` as a timezone-aware UTC datetime, or None."""
        return None if self.started_at is None else datetime.fromtimestamp(self.started_at, UTC)

    @property
    def datetime_complete(self) -> datetime | None:
        """`finished_at` as a timezone-aware UTC datetime, or None."""
        return None if self.finished_at is None else datetime.fromtimestamp(self.finished_at, UTC)


_set = object.__setattr__


def violation_of(constraints: Mapping[str, tuple[float, float | None, float | None]],
                 ) -> float | None:
    """The total violation of `constraints` (name -> (value, min, max)); None when empty."""
    if not constraints:
        return None
    total = 0.0
    for value, low, high in constraints.values():
        if high is not None and value > high:
            total += value - high
        if low is not None and value < low:
            total += low - value
    return total


@dataclass(frozen=True, slots=True)
class TrialExtras:
    """What a finished trial records besides its first value, written only when used: all
    objective values (several objectives), constraints and cost the objective reported."""

    values: tuple[float, ...] | None = None
    constraints: dict[str, tuple[float, float | None, float | None]] = field(
        default_factory=dict)
    cost: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.values is not None or bool(self.constraints) or bool(self.cost)


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

    Attributes:
        number: The trial's number in its study.
        params: The active parameters chosen so far.
        user_attrs: Attributes set with `set_user_attr` (and given at `enqueue`).
        system_attrs: What hyperlaw records about the trial; read-only.

    Example:
        >>> import hyperlaw as hl
        >>> study = hl.create_study(seed=0)
        >>> trial = study.ask()
        >>> lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        >>> trial.params == {"lr": lr}
        True
        >>> trial.report(0.5, step=1)
        >>> study.tell(trial, 0.4).state
        <TrialState.COMPLETE: 'complete'>
    """

    __slots__ = ("_constraints", "_cost", "_finished", "_last_report", "_last_values",
                 "_pending_params", "_proposal", "_resumed", "_resumed_from", "_stopped",
                 "_study",
                 "number", "params", "system_attrs", "user_attrs")

    def __init__(self, study: Study, number: int, params: dict[str, Any],
                 user_attrs: dict[str, Any] | None = None,
                 system_attrs: dict[str, Any] | None = None) -> None:
        self._study = study
        self.number = number
        #: the configuration: flat names, and nested groups by name (see `hyperlaw.Params`)
        self.params = Params(params)
        self.user_attrs = dict(user_attrs or {})
        #: what hyperlaw records about the trial (checkpoints, retries, PBT lineage); read-only
        self.system_attrs = dict(system_attrs or {})
        self._pending_params: dict[str, Any] = {}
        self._proposal: dict[str, Any] = {}
        self._finished = False
        self._last_report: tuple[int, float] | None = None
        self._stopped = False  # the scheduler's decision at the last report
        #: the last report's values of all objectives (several objectives only)
        self._last_values: tuple[float, ...] | None = None
        self._constraints: dict[str, tuple[float, float | None, float | None]] = {}
        self._cost: dict[str, float] = {}
        #: the checkpoint `load_checkpoint` loaded (None: a fresh start), until the trial
        #: saves another; `_resumed` says whether it was loaded
        self._resumed_from: Checkpoint | None = None
        self._resumed = False

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params})"

    @property
    def seed(self) -> int | None:
        """The random seed this run trains with: one of the tuning seeds in each run of a
        multi-seed trial (`optimize(seeds_per_config=k)`), the test seed in a run of
        `Study.reevaluate`, else None (the objective picks its own)."""
        seed = self.user_attrs.get("seed")
        return None if seed is None else int(seed)

    @property
    def study(self) -> Study:
        """The study the trial belongs to."""
        return self._study

    # --- define-by-run -------------------------------------------------------------------
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False,
                      step: float | None = None) -> float:
        """The value of a real parameter in [low, high], chosen by the sampler.

        Args:
            name: The parameter's name; asked again, it returns the same value.
            low: Lower bound (included).
            high: Upper bound (included).
            log: Sample on a log scale (needs `low > 0`).
            step: Sample on a grid `low, low + step, ...`.

        Raises:
            SpaceMismatchError: The study declares or learned `name` with other bounds.
        """
        with param_context(name):
            param = Float(low, high, log=log, step=step)
        return self._suggest(name, param)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1,
                    log: bool = False) -> int:
        """The value of an integer parameter in [low, high], chosen by the sampler.

        Args:
            name: The parameter's name; asked again, it returns the same value.
            low: Lower bound (included).
            high: Upper bound (included).
            step: Distance between the values.
            log: Sample on a log scale (needs `low > 0` and `step=1`).

        Raises:
            SpaceMismatchError: The study declares or learned `name` with other bounds.
        """
        with param_context(name):
            param = Int(low, high, log=log, step=step)
        return self._suggest(name, param)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        """One of `choices` (JSON scalars: str, int, float, bool or None), chosen by the
        sampler.

        Args:
            name: The parameter's name; asked again, it returns the same value.
            choices: The values, in a fixed order.

        Raises:
            SpaceMismatchError: The study declares or learned `name` with other choices.
        """
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
    def report(self, value: float | Sequence[float] | Mapping[str, float], step: int, *,
               checkpoint: Any = None) -> None:
        """Record an intermediate value; raise TrialPruned if the scheduler stops the trial.

        Args:
            value: A finite number, e.g. the validation loss after this epoch; with several
                objectives, a tuple (in the study's order) or a dict keyed by the objective
                names (schedulers of one objective read the first).
            step: The epoch, iteration or token count reached; it must increase from one
                report to the next.
            checkpoint: What `save_checkpoint` takes: the state at `step` is saved first, so
                that a trial the scheduler pauses or a population member that is copied
                resumes from exactly this step.

        Raises:
            TrialPruned: The scheduler stops the trial; let it propagate out of the objective.
            InvalidValueError: `value` is not a finite number, or `step` does not increase.
            TrialStateError: The trial is already finished.
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
        values = self._study._objective_values(value, f"{where} report at step {step}",
                                               "trial.report got")
        previous = self._last_report, self._last_values
        self._last_report = (step, values[0])
        self._last_values = values if len(values) > 1 else None
        try:
            if checkpoint is not None:
                self._study._save_checkpoint(self, checkpoint, step)
            stop = self._study._report(self, step, values)
        except BaseException:
            # not recorded: the same step may be reported again
            self._last_report, self._last_values = previous
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

    def constrain(self, name: str, value: float, *, min: float | None = None,
                  max: float | None = None) -> None:
        """Record a constraint the trial must meet: `min <= value <= max` (give one or both).
        A trial that misses one is recorded as infeasible (complete, with `violation` > 0),
        and never counts among the best. Calling it again for `name` replaces the value."""
        where = f"trial #{self.number} constraint {name!r}"
        if not isinstance(name, str) or not name:
            raise InvalidValueError(
                f"trial #{self.number}: a constraint name must be a non-empty string, got "
                f"{name!r}; e.g. trial.constrain('memory_gb', 14.2, max=16)")
        if min is None and max is None:
            raise InvalidValueError(
                f"{where}: give its limit, min= or max= (e.g. trial.constrain({name!r}, "
                f"{value!r}, max=16))")
        low = None if min is None else check_value(min, f"{where} min")
        high = None if max is None else check_value(max, f"{where} max")
        if low is not None and high is not None and low > high:
            raise InvalidValueError(f"{where}: min={low} is above max={high}; swap them")
        self._constraints[name] = (check_value(value, where), low, high)

    def add_cost(self, tokens: float | None = None, flops: float | None = None,
                 **other: float) -> None:
        """Add to what the trial cost (summed over calls): `tokens`, `flops` or any other
        named non-negative amount. Its wall time is recorded as cost "seconds" anyway."""
        amounts = {"tokens": tokens, "flops": flops, **other}
        for key, amount in amounts.items():
            if amount is None:
                continue
            number = check_value(amount, f"trial #{self.number} cost {key!r}")
            if number < 0:
                raise InvalidValueError(
                    f"trial #{self.number} cost {key!r} is {number}, negative; add what the "
                    "trial spent (a count of tokens, FLOPs, ...)")
            self._cost[key] = self._cost.get(key, 0.0) + number

    # --- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self, state: Any, *, step: int | None = None) -> Checkpoint:
        """Save a checkpoint of the trial; it is durable before it is recorded.

        Old checkpoints are pruned by the study's retention policy (`keep_last_checkpoints`,
        `keep_best_checkpoints`).

        Args:
            state: A picklable object (such as a dict of state dicts), or the path of a file
                or directory, which is copied in.
            step: The step it belongs to (default: the last reported step).

        Returns:
            The recorded checkpoint.
        """
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
        `load_checkpoint` has skipped a damaged checkpoint, the older one it loaded (None
        when a PBT child found none that loads and starts afresh)."""
        if self._resumed:
            return self._resumed_from
        return self._study._resume_point(self)

    def load_checkpoint(self) -> Any:
        """The state of the newest checkpoint this trial can continue from that loads.

        A damaged checkpoint is skipped with a warning naming it and the one used. Training
        continues after `trial.checkpoint.step`, read after this call. A PBT child whose
        inherited checkpoint does not load starts from its donor's newest older checkpoint
        that does, else from scratch (None), with a warning naming the trial and the files.

        Returns:
            The saved object (or a local path for a saved file or directory), or None when
            the trial starts from scratch.

        Raises:
            CheckpointCorruptError: No checkpoint loads (it names the trial, steps and files).
        """
        if self._resumed:
            return None if self._resumed_from is None else \
                self._study.checkpoints.load(self._resumed_from)
        checkpoint, state = self._study._load_resume_point(self)
        self._resumed_from, self._resumed = checkpoint, True
        return state

    def set_user_attr(self, key: str, value: Any) -> None:
        """Attach a JSON-serializable attribute to the trial; it is stored at once."""
        self._study._set_trial_user_attr(self, key, value)
        self.user_attrs[key] = value

    def _take_pending_params(self) -> dict[str, Any]:
        pending, self._pending_params = self._pending_params, {}
        return pending

