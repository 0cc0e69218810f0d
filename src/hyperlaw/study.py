"""Studies: ask, tell, optimize, best, to_dataframe; create_study and load_study."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from hyperlaw.canonical import Canonical, Reusing
from hyperlaw.checkpoints import (
    CheckpointError,
    StudyCheckpoints,
    check_retention,
    default_root,
    study_directory,
)
from hyperlaw.errors import (
    DuplicateStudyError,
    HyperlawError,
    InvalidValueError,
    NoCompleteTrialError,
    SearchExhaustedError,
    SpaceMismatchError,
    StudyNotFoundError,
    is_pruned,
)
from hyperlaw.history import History
from hyperlaw.history.observations import held_params, params_key
from hyperlaw.history.rungs import chains
from hyperlaw.lineage import (
    CHECKPOINTS,
    CONTINUED_BY,
    PBT,
    PROMOTED_FROM,
    PROPOSAL,
    RESUME,
    SUSPENDED,
    Checkpoint,
    PbtLink,
    is_retry,
    pbt_link,
    recorded_checkpoints,
    resume_candidates,
    resume_point,
)
from hyperlaw.samplers import Sampler, make_sampler
from hyperlaw.schedulers import Decision, NeverStop, Scheduler, make_scheduler
from hyperlaw.schedulers.base import HandOff, NewTrials
from hyperlaw.schedulers.pbt import Segment, pbt_schedule
from hyperlaw.space import Param, Params, Space
from hyperlaw.store import Store, StudyInfo, StudySummary, open_store
from hyperlaw.trial import Trial, TrialExtras, TrialRecord, TrialState, check_value

if TYPE_CHECKING:
    import pandas as pd

    from hyperlaw.analysis.cost import FrontierPoint
    from hyperlaw.executors import Executor
    from hyperlaw.noise import Reevaluation
    from hyperlaw.soups import Soup
    from hyperlaw.transfer import WarmStart

log = logging.getLogger("hyperlaw")

Direction = Literal["minimize", "maximize"]
#: what an objective returns: a float, a tuple of floats (several objectives, in the study's
#: order) or a dict keyed by the objective names
ObjectiveResult = float | Sequence[float] | Mapping[str, float]
Objective = Callable[[Trial], ObjectiveResult]
#: Optuna-style constraints: a finished trial's record -> values, each <= 0 when met
ConstraintsFunc = Callable[[TrialRecord], Sequence[float]]

_DIRECTIONS = ("minimize", "maximize")


class Study:
    """A named optimization study whose every fact lives in a store.

    Create one with `create_study` or `load_study`. Any number of Study objects, in any
    number of processes, may share one study through a SQL store.

    Attributes:
        sampler: Chooses the configuration of each new trial.
        scheduler: Decides when a trial stops (or pauses) from its reports.
        retry_stale: How many times a trial whose worker died is retried.
        heartbeat_interval: Seconds between the heartbeats of a running trial.

    Example:
        >>> import hyperlaw as hl
        >>> space = hl.Space({"lr": hl.Float(1e-4, 1e-1, log=True), "layers": hl.Int(1, 4)})
        >>> study = hl.create_study("doc", space=space, sampler="sobol", seed=0)
        >>> study.optimize(lambda trial: trial.params["layers"] * 0.1, n_trials=8)
        >>> study.best_value
        0.1
        >>> study.best_params["layers"]
        1
    """

    def __init__(self, store: Store, info: StudyInfo, sampler: Sampler, scheduler: Scheduler,
                 *, retry_stale: int = 0, heartbeat_interval: float = 10.0,
                 constraints: ConstraintsFunc | None = None, dedup: bool | None = None,
                 canonical: Canonical | None = None) -> None:
        self._store = store
        self._info = info
        self.sampler = sampler
        self.scheduler = scheduler
        self.retry_stale = retry_stale
        self.heartbeat_interval = heartbeat_interval
        self._declared = bool(info.system_attrs.get("declared_space"))
        self._space = Space.from_json(info.space_json) if info.space_json else Space({})
        self._history = History(store, info.id, info.directions[0] == "maximize",
                                info.directions)
        #: Optuna-style constraints applied to each trial the objective completes (see
        #: `create_study`); `optimize` sends it along with the objective to every worker
        self.constraints = constraints
        #: whether `optimize` reuses the result of an equivalent complete trial instead of
        #: running the objective again (see `hyperlaw.canonical`); stored with the study
        self.dedup: bool = info.system_attrs.get("dedup", True) if dedup is None else dedup
        #: the user's equivalence of configurations (see `create_study`); not stored
        self.canonical = canonical
        self._next_stale_check = 0.0
        self._stop_requested = False
        self._scheduler_stops = not isinstance(scheduler, NeverStop)
        self._checkpoints: StudyCheckpoints | None = None

    def __repr__(self) -> str:
        objectives = (f"directions={list(self.directions)!r}" if self.is_multi_objective
                      else f"direction={self.direction!r}")
        return f"Study(name={self.name!r}, {objectives}, storage={self.storage!r})"

    # --- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The study's name, unique in its storage."""
        return self._info.name

    @property
    def id(self) -> int:
        """The study's id in its store: the key of the `Store` calls about its trials."""
        return self._info.id

    @property
    def direction(self) -> Direction:
        """"minimize" or "maximize": the direction of the study's one objective (see
        `directions` for several)."""
        if self.is_multi_objective:
            raise HyperlawError(
                f"study {self.name!r} has {len(self.directions)} objectives "
                f"({self._objectives_text()}); read study.directions instead of "
                "study.direction")
        return self._info.direction  # type: ignore[return-value]

    @property
    def directions(self) -> tuple[Direction, ...]:
        """One direction per objective (one entry for a study of one objective)."""
        return self._info.directions  # type: ignore[return-value]

    @property
    def objective_names(self) -> tuple[str, ...] | None:
        """The objectives' names (from `objectives=`), or None when they have none."""
        return self._info.objective_names

    @property
    def is_multi_objective(self) -> bool:
        """Whether the study has several objectives (its trials return tuples or dicts)."""
        return len(self._info.directions) > 1

    def _objectives_text(self) -> str:
        names = self.objective_names or tuple(f"#{i}" for i in range(len(self.directions)))
        return ", ".join(f"{n} ({d})" for n, d in zip(names, self.directions, strict=True))

    def _objective_values(self, result: Any, where: str,
                          came: str = "the objective returned") -> tuple[float, ...]:
        """What the objective returned (or, with `came`, reported) as one finite float per
        objective; InvalidValueError naming what was expected and what came."""
        k = len(self.directions)
        names = self.objective_names
        if isinstance(result, Mapping):
            if names is None:
                raise InvalidValueError(
                    f"{where}: {came} a dict with keys {sorted(result)}, but "
                    f"the study's {k} objective(s) have no names; return "
                    f"{'a float' if k == 1 else f'a tuple of {k} floats'}, or create the "
                    "study with objectives={name: direction, ...}")
            if set(result) != set(names):
                raise InvalidValueError(
                    f"{where}: {came} keys {sorted(result)}, the study's "
                    f"objectives are {list(names)}; return a dict with exactly those keys")
            return tuple(check_value(result[n], f"{where} objective {n!r}") for n in names)
        if (isinstance(result, Sequence) and not isinstance(result, str)) or (
                isinstance(result, np.ndarray) and result.ndim == 1):
            items = list(result)
            if len(items) != k:
                raise InvalidValueError(
                    f"{where}: {came} {len(items)} values, the study has {k} "
                    f"objective(s) ({self._objectives_text()}); return one value per "
                    "objective, in that order")
            return tuple(check_value(v, f"{where} objective #{i}") for i, v in enumerate(items))
        if k > 1:
            raise InvalidValueError(
                f"{where}: {came} one value ({result!r}), the study has {k} "
                f"objectives ({self._objectives_text()}); return a tuple of {k} values"
                + (" or a dict keyed by their names" if names else ""))
        return (check_value(result, where),)

    @property
    def storage(self) -> str:
        """The storage URL (password hidden)."""
        return self._store.url

    @property
    def store(self) -> Store:
        """The store that holds the study (an in-memory or SQL `hyperlaw.store.Store`)."""
        return self._store

    @property
    def space(self) -> Space:
        """The declared space, or the one learned so far from suggest calls."""
        return self._space

    @property
    def stale_after(self) -> float:
        """Seconds without a heartbeat after which a running trial counts as dead."""
        return 5.0 * self.heartbeat_interval

    @property
    def user_attrs(self) -> dict[str, Any]:
        """The study's attributes set with `set_user_attr`, as stored now."""
        self._info = self._store.get_study(self.name)
        return dict(self._info.user_attrs)

    def set_user_attr(self, key: str, value: Any) -> None:
        """Store a JSON-serializable attribute of the study under `key`."""
        self._store.set_study_user_attr(self._info.id, key, value)

    # --- ask and tell --------------------------------------------------------------------
    def ask(self, fixed: Mapping[str, Any] | None = None, *, heartbeat: bool = False) -> Trial:
        """Start a trial: an enqueued one if any waits, else one the sampler suggests.

        Args:
            fixed: Parameters pinned for this trial; the rest are completed by sampling.
            heartbeat: For workers that keep the trial's heartbeat going (see `optimize`).

        Returns:
            The running trial; finish it with `tell`.

        Raises:
            SearchExhaustedError: A finite space has no untried configuration left (grid).

        Example:
            >>> import hyperlaw as hl
            >>> study = hl.create_study(space=hl.Space({"x": hl.Float(0.0, 1.0)}), seed=0)
            >>> trial = study.ask({"x": 0.25})
            >>> study.tell(trial, trial.params["x"] * 2).value
            0.5
        """
        if fixed is None and self._starts_unread:
            return self._start_unread(heartbeat)
        history = self._history.refresh()
        self._fail_stale_if_due()
        if fixed is not None:
            given = self._checked_params(fixed, partial=True)
            record = self._store.create_trial(
                self._info.id, TrialState.RUNNING, lambda n: self._fill(n, given),
                heartbeat=heartbeat)
            return self._start(record, dict(record.params))
        new_trials = self.scheduler.new_trials(history)
        if new_trials is NewTrials.FIRST:
            try:
                return self._sample_trial(history, heartbeat, only_first=True)
            except _Superseded:
                new_trials = self.scheduler.new_trials(self._history.refresh())
        if history.has_waiting():
            claimed = self._store.claim_waiting(self._info.id, self._fill, heartbeat=heartbeat)
            if claimed is not None:
                return self._start(claimed, dict(claimed.params))
        promoted = self.scheduler.promoted(history)
        if promoted is not None:
            try:
                return self._promote(promoted, heartbeat)
            except _Superseded:
                pass
        if new_trials is not NewTrials.ALLOWED:
            raise SearchExhaustedError(
                f"study {self.name!r}: {self.scheduler!r} starts no new trial and none is "
                "queued (its population has started; members continue in queued trials)"
            )
        return self._sample_trial(history, heartbeat, only_first=False)

    def _start_unread(self, heartbeat: bool) -> Trial:
        """`ask` for samplers and schedulers that need no history: claim a queued trial or
        create a sampled one in one write transaction, without reading the store first."""
        self._fail_stale_if_due()
        proposal: dict[str, Any] = {}
        record, created = self._store.start_trial(self._info.id, self._unread_maker(proposal),
                                                  self._fill, heartbeat=heartbeat)
        return self._start(record, proposal if created else dict(record.params), unread=True)

    def _unread_maker(self, proposal: dict[str, Any]) -> Callable[[int], dict[str, Any]]:
        """The params of a trial started without a read, keyed on its number; the sampler's
        proposal is also kept in `proposal` (for define-by-run)."""
        space, sampler = self._space, self.sampler

        def make(number: int) -> dict[str, Any]:
            proposal.update(sampler.suggest(space, self._history, number))
            return proposal if self._declared else {}

        return make

    def _promote(self, number: int, heartbeat: bool) -> Trial:
        """Continue suspended trial `number` from its checkpoint in a new running trial; the
        write transaction re-checks that no other worker continued it meanwhile."""
        paused = self._history.trials[number]
        start = resume_point(number, paused.system_attrs, self._history.trials)
        if start is None:
            raise _Superseded

        def make(new: int) -> dict[str, Any]:
            if number in chains(self._history.refresh()).continued:
                raise _Superseded
            return dict(paused.params)

        record = self._store.create_trial(
            self._info.id, TrialState.RUNNING, make, heartbeat=heartbeat,
            system_attrs={RESUME: start.to_json(), PROMOTED_FROM: number})
        return self._start(record, dict(record.params))

    def _sample_trial(self, history: History, heartbeat: bool, only_first: bool) -> Trial:
        """Create a running trial with sampled parameters. Samplers that read the history
        propose before the write transaction; when another process started a trial in
        between, this one's sampler diverges from the others (see `Sampler.diverge`), and a
        proposal that another trial started meanwhile holds is drawn again from the
        refreshed history."""
        for _ in range(_MAX_REDRAWS):
            try:
                return self._sample_trial_once(history, heartbeat, only_first)
            except _Duplicate:
                self._history.refresh()  # `history` is this object: now with the rival trial
        return self._sample_trial_once(history, heartbeat, only_first, allow_duplicate=True)

    def _sample_trial_once(self, history: History, heartbeat: bool, only_first: bool,
                           allow_duplicate: bool = False) -> Trial:
        """One attempt of `_sample_trial`. With `only_first`, re-check inside the write
        transaction (which sees every committed trial) that the scheduler still wants new
        trials first, so racing workers never overfill a population. A define-by-run trial
        records its proposal, so that other processes see what it holds while it runs."""
        space = self._space
        sampler = self.sampler
        if sampler.is_exhausted(space, history):
            raise SearchExhaustedError(
                f"study {self.name!r}: {sampler!r} has tried every point of the space; "
                "widen the space or raise the grid resolution to go on"
            )
        proposal: dict[str, Any] = {}
        read_up_to = len(history)
        if not sampler.keyed_on_number:
            proposal = sampler.suggest(space, history, read_up_to)
        recorded = {PROPOSAL: proposal} if proposal and not self._declared else None

        def make(number: int) -> dict[str, Any]:
            # other processes started trials since the read: this proposal may repeat one
            raced = number > read_up_to and not sampler.keyed_on_number
            if raced:
                sampler.diverge()
            check = raced and bool(proposal) and not allow_duplicate
            if only_first or check:
                self._history.refresh()
            if only_first and self.scheduler.new_trials(self._history) is not NewTrials.FIRST:
                raise _Superseded
            if sampler.keyed_on_number:
                proposal.update(sampler.suggest(space, history, number))
            elif check and _holds(self._history.trials[read_up_to:number], proposal):
                raise _Duplicate
            return proposal if self._declared else {}

        record = self._store.create_trial(self._info.id, TrialState.RUNNING, make,
                                          heartbeat=heartbeat, system_attrs=recorded)
        return self._start(record, proposal)

    def adopt(self, record: TrialRecord, proposal: dict[str, Any]) -> Trial:
        """The handle, in this process, of a running trial another process asked (a Ray
        actor runs what its driver asked): `record` as the asker got it, `proposal` its
        sampler's proposal (for define-by-run suggest calls)."""
        return self._start(record, proposal)

    def _start(self, record: TrialRecord, proposal: dict[str, Any],
               unread: bool = False) -> Trial:
        if not unread:  # a history that was not read up to this trial stays as it is
            self._history.put(record)
        trial = Trial(self, record.number, dict(record.params), record.user_attrs,
                      record.system_attrs)
        trial._proposal = proposal
        return trial

    def tell(self, trial: Trial | int,
             value: float | Sequence[float] | Mapping[str, float] | None = None, *,
             state: TrialState | str = TrialState.COMPLETE,
             error: str | None = None) -> TrialRecord:
        """Finish a running trial with its final value (or as pruned or failed).

        The study's `constraints` function, if any, is applied to a complete trial.

        Args:
            trial: The trial, or its number.
            value: The final value, for a complete trial; with several objectives, a tuple
                (in the study's order) or a dict keyed by the objective names.
            state: "complete", "pruned" (its value is its last report) or "failed".
            error: Why a failed trial failed.

        Returns:
            The trial's record as stored.

        Raises:
            InvalidValueError: The value is not a finite number, or of the wrong arity (the
                trial is recorded as failed).
            TrialStateError: The trial is already finished.
        """
        number = trial.number if isinstance(trial, Trial) else int(trial)
        state = TrialState(state)
        values: tuple[float, ...] | None = None
        if state is TrialState.COMPLETE:
            try:
                values = self._objective_values(
                    value, f"trial #{number} of study {self.name!r}", "study.tell got")
            except InvalidValueError as exc:
                self._finish(trial, TrialState.FAILED, None, str(exc))
                raise
            if self.constraints is not None and isinstance(trial, Trial):
                apply_constraints(trial, self.constraints, values)
        elif state is TrialState.PRUNED:
            values = self._pruned_values(trial)
        elif state is not TrialState.FAILED:
            raise HyperlawError(
                f"cannot tell trial #{number} the state {state.value!r}; use 'complete', "
                "'pruned' or 'failed'"
            )
        return self._finish(trial, state, values, error)

    def _finish(self, trial: Trial | int, state: TrialState, values: tuple[float, ...] | None,
                error: str | None) -> TrialRecord:
        number = trial.number if isinstance(trial, Trial) else trial
        pending = trial._take_pending_params() if isinstance(trial, Trial) else None
        record = self._store.finish_trial(self._info.id, number, state,
                                          None if values is None else values[0], error=error,
                                          params=pending, extras=self._extras(trial, values))
        if isinstance(trial, Trial):
            trial._finished = True
        if number < len(self._history.trials):
            self._history.put(record)
        return record

    @staticmethod
    def _extras(trial: Trial | int, values: tuple[float, ...] | None) -> TrialExtras | None:
        """What the finish writes besides the first value; None when nothing (one objective,
        no constraints, no cost: the store's cheapest path)."""
        several = values if values is not None and len(values) > 1 else None
        if not isinstance(trial, Trial):
            return TrialExtras(several) if several else None
        extras = TrialExtras(several, dict(trial._constraints), dict(trial._cost))
        return extras if extras else None

    def _pruned_values(self, trial: Trial | int) -> tuple[float, ...] | None:
        """A pruned trial's values: those of its last step (from the history, else the
        last report the Trial handle made)."""
        number = trial.number if isinstance(trial, Trial) else trial
        trials = self._history.trials
        if number < len(trials) and trials[number].intermediate:
            record = trials[number]
            last = max(record.intermediate)
            return record.intermediate_values.get(last, (record.intermediate[last],))
        if isinstance(trial, Trial) and trial._last_report is not None:
            return trial._last_values or (trial._last_report[1],)
        return None

    def enqueue(self, params: Mapping[str, Any], *,
                user_attrs: Mapping[str, Any] | None = None) -> int:
        """Queue a configuration to try next; the next `ask` (of any process) takes it.

        Args:
            params: Some or all parameters; missing ones are sampled when it starts.
            user_attrs: Attributes the trial starts with.

        Returns:
            The number of the waiting trial.
        """
        given = self._checked_params(params, partial=True)
        record = self._store.create_trial(self._info.id, TrialState.WAITING, given,
                                          user_attrs=user_attrs)
        return record.number

    def _checked_params(self, params: Mapping[str, Any], partial: bool) -> dict[str, Any]:
        if self._declared:
            return self._space.validate_params(params, partial=partial)
        return dict(params)

    def _fill(self, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
        if not self._declared:
            return dict(params)
        return self._space.complete(params, self.sampler.rng(number, 1))

    # --- define-by-run -------------------------------------------------------------------
    def _suggest(self, trial: Trial, name: str, param: Param) -> Any:
        declared = self._space.get(name)
        if self._declared:
            if declared is None:
                raise SpaceMismatchError(
                    f"parameter {name!r} is not in the declared space of study {self.name!r} "
                    f"(it has {sorted(self._space)}); add it to the Space, or create the "
                    "study without `space=` to let the objective define it"
                )
            raise SpaceMismatchError(
                f"parameter {name!r} is inactive in trial #{trial.number} (its condition "
                f"{dict(declared.when or {})} does not hold for {trial.params}); read "
                "trial.params instead of suggesting a conditional parameter"
            )
        if declared is None:
            self._learn(name, param)
        proposed = trial._proposal.get(name, _MISSING)
        if proposed is not _MISSING and param.contains(proposed):
            return proposed
        return self.sampler.suggest_param(name, param, self._history, trial.number,
                                          trial.params)

    def _learn(self, name: str, param: Param) -> None:
        def merge(current: str | None) -> str:
            space = Space.from_json(current) if current else Space({})
            return space.with_param(name, param).to_json()

        self._space = Space.from_json(self._store.update_space(self._info.id, merge))

    # --- reports -------------------------------------------------------------------------
    def _report(self, trial: Trial, step: int, values: tuple[float, ...]) -> bool:
        """Store a report (one value per objective) and return True when the scheduler stops
        the trial; schedulers of one objective read the first."""
        pending = trial._take_pending_params()
        several = values if len(values) > 1 else None
        self._store.report(self._info.id, trial.number, step, values[0],
                           params=pending or None, values=several)
        history = self._history
        if trial.number < len(history.trials):
            history.add_report(trial.number, step, values[0], several)
        if not self._scheduler_stops:
            return False
        history.refresh()
        decision = self.scheduler.decide(history.trials[trial.number], step, history)
        if isinstance(decision, HandOff):
            return self._hand_off(trial, decision)
        return decision is Decision.STOP

    def _hand_off(self, trial: Trial, decision: HandOff) -> bool:
        """Queue the child that continues `trial`'s member (see HandOff); True when the
        trial is to end, False when no checkpoint could be copied (it then goes on)."""
        own = decision.donor == trial.number
        if decision.kind == "suspend":
            if self._resume_point(trial) is None:
                return False
            self._store.set_trial_system_attr(self._info.id, trial.number, SUSPENDED,
                                              {"score": decision.score})
            return True
        try:
            if own:
                start = self._resume_point(trial)
                if start is None:
                    return False
            else:
                start = self.checkpoints.inherit(decision.donor,
                                                 lambda: self._history.refresh().trials)
        except CheckpointError as exc:
            log.warning("trial #%d is not copied (%s); it goes on", trial.number, exc)
            return False
        donor = self._history.trials[decision.donor]
        params = dict(trial.params) if own else self.scheduler.explore(
            self._space, donor, self._history, trial.number)
        link = PbtLink(decision.member, decision.donor, start.step, decision.score,
                       decision.kind, trial.number)
        child = self._store.create_trial(
            self._info.id, TrialState.WAITING, params,
            system_attrs={RESUME: start.to_json(), PBT: link.to_json()})
        self._store.set_trial_system_attr(self._info.id, trial.number, CONTINUED_BY,
                                          {"trial": child.number, "kind": decision.kind})
        return True

    def pbt_schedule(self, trial: TrialRecord | int) -> list[Segment]:
        """The hyperparameters a population member followed from step 0 to `trial`: one
        Segment(start step, trial, params) per change, for replaying it from scratch (see
        `hyperlaw.schedulers.pbt.params_at`)."""
        number = trial.number if isinstance(trial, TrialRecord) else int(trial)
        return pbt_schedule(self._history.refresh().trials, number)

    def _set_trial_user_attr(self, trial: Trial, key: str, value: Any) -> None:
        self._store.set_trial_user_attr(self._info.id, trial.number, key, value)

    # --- checkpoints ---------------------------------------------------------------------
    @property
    def checkpoints(self) -> StudyCheckpoints:
        """Where this study's checkpoints live and how many each trial keeps."""
        if self._checkpoints is None:
            settings = self._info.system_attrs.get("checkpoints") or {
                "dir": f"{default_root(self._store.url).rstrip('/')}/{self.name}"}
            self._checkpoints = StudyCheckpoints(
                self._store, self._info.id, settings["dir"],
                keep_last=settings.get("keep_last", 2), keep_best=settings.get("keep_best", 0),
                maximize=self.directions[0] == "maximize")
        return self._checkpoints

    def _save_checkpoint(self, trial: Trial, state: Any, step: int) -> Checkpoint:
        last = trial._last_report
        value = last[1] if last is not None and last[0] == step else None
        kept = self.checkpoints.save(trial.number, recorded_checkpoints(trial.system_attrs),
                                     state, step, value)
        trial.system_attrs[CHECKPOINTS] = [c.to_json() for c in kept]
        trial._resumed_from, trial._resumed = None, False  # it continues from this one now
        return next(c for c in reversed(kept) if c.step == step)

    def _resume_point(self, trial: Trial) -> Checkpoint | None:
        candidates = self._resume_candidates(trial)
        return candidates[0] if candidates else None

    def _resume_candidates(self, trial: Trial) -> list[Checkpoint]:
        attrs = trial.system_attrs
        trials = self._history.refresh().trials if is_retry(attrs) else []
        return resume_candidates(trial.number, attrs, trials)

    def _load_resume_point(self, trial: Trial) -> tuple[Checkpoint | None, Any]:
        """The newest checkpoint `trial` can continue from that loads, and its state."""
        candidates = self._resume_candidates(trial)
        if not candidates:
            return None, None
        if pbt_link(trial.system_attrs) is None:
            return self.checkpoints.load_newest(trial.number, candidates)
        return self.checkpoints.load_inherited(trial.number, candidates,
                                               lambda: self._donor_checkpoints(trial))

    def _donor_checkpoints(self, trial: Trial) -> list[Checkpoint]:
        """A PBT child's fallbacks: the checkpoints of the trial it inherited from, up to the
        inherited step, newest first; then, up the lineage, those of the trial that one
        started from, and so on (a donor may hold no older checkpoint of its own)."""
        start = trial.system_attrs.get(RESUME)
        if not start:
            return []
        inherited = Checkpoint.from_json(start)
        trials = self._history.refresh().trials
        found: list[Checkpoint] = []
        paths, seen = {inherited.path}, set()
        source: Checkpoint | None = inherited
        while source is not None and source.trial not in seen and \
                0 <= source.trial < len(trials):
            seen.add(source.trial)
            donor = trials[source.trial]
            for c in resume_candidates(donor.number, donor.system_attrs, trials):
                if c.step <= inherited.step and c.path not in paths:
                    paths.add(c.path)
                    found.append(c)
            resume = donor.system_attrs.get(RESUME)
            source = Checkpoint.from_json(resume) if resume else None
        return found

    # --- staleness -----------------------------------------------------------------------
    def reload_space(self) -> None:
        """Re-read the space (another process may have taught the study new parameters)."""
        self._info = self._store.get_study(self.name)
        if self._info.space_json:
            self._space = Space.from_json(self._info.space_json)

    def _fail_stale_if_due(self) -> None:
        now = time.time()
        if now >= self._next_stale_check:
            self._next_stale_check = now + self.heartbeat_interval
            self.fail_stale_trials()

    def fail_stale_trials(self) -> list[int]:
        """Fail running trials whose worker stopped beating; retry them if `retry_stale`."""
        failed = self._store.fail_stale(
            self._info.id, stale_before=time.time() - self.stale_after,
            reason=f"stale: no heartbeat for {self.stale_after:g} s (the worker died)",
            retry_limit=self.retry_stale)
        if failed:
            log.warning("study %r: trials %s had no heartbeat for %g s and were marked failed",
                        self.name, failed, self.stale_after)
        return failed

    def fail_trials_of_dead_worker(self, numbers: Sequence[int], why: str) -> list[int]:
        """Fail running trials at once when their worker is known to be dead."""
        return self._store.fail_stale(self._info.id, numbers=list(numbers),
                                      reason=f"stale: {why}", retry_limit=self.retry_stale)

    # --- reading -------------------------------------------------------------------------
    @property
    def trials(self) -> list[TrialRecord]:
        """Every trial, by number, as the store has it now."""
        return list(self._history.refresh().trials)

    def get_trials(self, states: Iterable[TrialState | str] | None = None) -> list[TrialRecord]:
        """The trials in any of `states` (e.g. `["complete"]`), by number; every one
        without `states`."""
        if states is None:
            return self.trials
        wanted = {TrialState(s) for s in states}
        return [t for t in self._history.refresh().trials if t.state in wanted]

    @property
    def best_trial(self) -> TrialRecord:
        """The complete feasible trial with the best value (an indexed query, no history
        scan). A study of several objectives has a front of best trials instead: read
        `best_trials`, or pick one with `select`."""
        if self.is_multi_objective:
            raise HyperlawError(
                f"study {self.name!r} has {len(self.directions)} objectives "
                f"({self._objectives_text()}), so no single best trial; read "
                "study.best_trials (the Pareto front) or pick one of them with "
                "study.select(weights=..., limits=...)")
        best = self._store.best_trial(self._info.id, self.direction == "maximize")
        if best is None:
            from hyperlaw.analysis.front import candidates

            candidates(self.name, self.trials)  # raises why: none complete, or none feasible
            raise NoCompleteTrialError(f"study {self.name!r} has no complete feasible trial")
        return best

    @property
    def best_trials(self) -> list[TrialRecord]:
        """The Pareto front: the complete feasible trials no other such trial dominates (no
        worse in every objective, better in one), by number. For one objective, the
        trial(s) with the best value. NoCompleteTrialError when there is none; when no
        trial is feasible, its message names the least-violating ones."""
        from hyperlaw.analysis.front import front_of

        return front_of(self.name, self.trials, self.directions)

    def hypervolume(self, reference: Sequence[float] | None = None) -> float:
        """The hypervolume the front dominates up to `reference` (one value per objective,
        in the objectives' own units and directions; default: the front's nadir pushed
        out by 10% of its range)."""
        from hyperlaw.analysis.front import front_hypervolume

        return front_hypervolume(self.best_trials, self.directions, reference,
                                 self._objectives_text())

    def select(self, weights: Sequence[float] | Mapping[str, float] | None = None,
               limits: Mapping[str | int, tuple[float | None, float | None]] | None = None,
               ) -> TrialRecord:
        """One trial of the front: of those whose objectives lie within `limits`
        ({objective name or index: (low, high)}, None for no bound), the one with the
        best weighted sum of objectives normalized to [0, 1] over the front (`weights` per
        objective, equal by default; a dict keyed by name). An error names the limit that
        left no trial."""
        from hyperlaw.analysis.front import select_trial

        return select_trial(self.best_trials, self.directions, self.objective_names,
                            weights, limits)

    def cost_frontier(self, cost: str = "seconds", objective: int | str = 0,
                      ) -> list[FrontierPoint]:
        """The best value reached at each cost: the complete feasible trials that no
        cheaper-or-equal trial matches, by increasing `cost` (a key of `TrialRecord.cost`:
        "seconds", or what the objective added with `trial.add_cost`), as (cost, value,
        trial) points. `objective`: an index or a name (several objectives)."""
        from hyperlaw.analysis.cost import cost_frontier, objective_index

        k = objective_index(objective, self.objective_names, len(self.directions))
        return cost_frontier(self.trials, cost, objective=k, direction=self.directions[k])

    @property
    def best_value(self) -> float:
        """The value of `best_trial`."""
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        """The parameters of `best_trial` (nested groups readable by name, see `Params`)."""
        return Params(self.best_trial.params)

    def best(self, by: Literal["value", "model_mean"] = "value") -> TrialRecord:
        """The best complete trial by its value, or (for noisy objectives) by the mean of a
        GP fitted to all complete trials, which discounts a single lucky value."""
        from hyperlaw.noise import best_trial

        return best_trial(self, by)

    def reevaluate(self, objective: Callable[[Trial], float], top_k: int = 5, *,
                   seeds: Iterable[int], by: Literal["value", "model_mean"] = "value",
                   ) -> list[Reevaluation]:
        """Re-run the `top_k` best configurations once per (test) seed; best mean first.

        The objective reads `trial.user_attrs["seed"]`. Runs go to the sibling study
        `<name>.reevaluation`; seeds already used for tuning are refused (see hyperlaw.noise).
        """
        from hyperlaw.noise import reevaluate

        return reevaluate(self, objective, top_k, seeds, by)

    def soup(self, evaluate: Callable[[Mapping[str, Any]], float], top_k: int = 5,
             method: Literal["uniform", "greedy"] = "greedy", *,
             weights: Callable[[Any], Mapping[str, Any]] | None = None) -> Soup:
        """A model soup of the `top_k` best complete trials' newest checkpoints (fine-tunes
        of one pre-trained model): ``"greedy"`` adds each, best first, when the soup with it
        scores no worse; ``"uniform"`` averages them all.

        `evaluate(weights)` scores a state dict on held-out data (not the test split), as the
        study's objective is minimized or maximized. `weights(state)` finds the state dict in
        a checkpoint (default: the state itself, its ``"model"`` entry as `TrainingLoop`
        saves it, or a Lightning checkpoint file's ``"state_dict"``). The soup is recorded as
        a trial of the study ``<name>.soups`` with its weights as the checkpoint.
        """
        from hyperlaw.soups import default_weights, make_soup

        return make_soup(self, evaluate, top_k, method, weights or default_weights)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per trial: number, state, value, values_* (several objectives),
        params_*, user_attrs_*, constraint_* and violation, cost_*, times, error.

        Needs pandas, an optional dependency (`pip install 'hyperlaw[pandas]'`); without it
        this raises `HyperlawError` saying so.
        """
        from hyperlaw.export import trials_dataframe

        return trials_dataframe(self.trials, self.objective_names)

    # --- running -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask a running `optimize` to start no new trial (e.g. from a callback)."""
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        """Whether `stop` was called since the last `clear_stop` (executors read it before
        they start a trial)."""
        return self._stop_requested

    def clear_stop(self) -> None:
        """Forget an earlier `stop`; every `optimize` starts with this."""
        self._stop_requested = False

    def optimize(self, objective: Objective, n_trials: int | None = None, *,
                 timeout: float | None = None, n_workers: int = 1,
                 catch: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
                 show_progress: bool | None = None,
                 callbacks: Sequence[Callable[[Study, TrialRecord], None]] = (),
                 max_consecutive_failures: int | None = 10, executor: str | Executor = "auto",
                 resources_per_trial: Mapping[str, float] | None = None,
                 ray_address: str | None = None, gpus_per_trial: int | None = None,
                 constraints: ConstraintsFunc | None = None,
                 seeds_per_config: int | Sequence[int] | None = None,
                 seed_aggregate: str | Callable[[Sequence[float]], float] = "mean") -> None:
        """Run `objective` on new trials until `n_trials` ran or `timeout` seconds passed.

        Unlike Optuna, whose `catch` defaults to `()`, `catch` defaults to `(Exception,)`: an
        exception raised by the objective fails that trial (its traceback is recorded in
        `TrialRecord.error`) and the study goes on, until `max_consecutive_failures` trials in a
        row have failed, when `WorkerError` stops the run and shows the last error. Pass
        `catch=()` to stop at the first exception, re-raised as it was (the trial is recorded
        as failed first). `hl.TrialPruned` prunes the trial whatever `catch` says, and
        `KeyboardInterrupt` always stops the run.

        Args:
            objective: A function of a `Trial` that returns a finite number (or, with the
                simulated executor, maps a configuration to its `ReplayCurve`).
            n_trials: How many trials reach an outcome of the objective's own (complete,
                pruned or failed by the objective); None runs until `timeout`, `study.stop()`,
                an interrupt or the end of the search space.
            timeout: Seconds after which no new trial starts.
            n_workers: Worker processes (or Ray actors) running trials at once.
            catch: Exception types that fail the trial and let the study go on (see above).
            show_progress: A progress bar; by default when stderr is a terminal.
            callbacks: Called with `(study, trial_record)` after each trial.
            max_consecutive_failures: Failed trials in a row that stop the run; None never.
            executor: Where trials run: an Executor from `hyperlaw.executors`
                (InlineExecutor, ProcessExecutor, RayExecutor, SimulatedExecutor) or its name
                with `n_workers`. "auto" runs them in this process, or with `n_workers > 1` in
                that many worker processes (a SQL storage shares the study between them; an
                in-memory study is run through a temporary SQLite file). "ray" runs them on
                Ray actors; "simulated" replays recorded curves.
            resources_per_trial: With "ray": what each actor holds, e.g.
                `{"cpu": 1, "gpu": 0.5}`.
            ray_address: With "ray": the cluster (default RAY_ADDRESS, else a new local one);
                the study needs a shared storage.
            gpus_per_trial: Run trials in worker processes that each see their own k GPUs
                through CUDA_VISIBLE_DEVICES (n_workers x k devices, taken from this
                process's CUDA_VISIBLE_DEVICES or from nvidia-smi).
            constraints: An Optuna-style function of a trial record returning a sequence of
                floats, each <= 0 when satisfied (default: the study's own, see
                `create_study`); it travels with the objective to every worker and is
                applied to each trial it completes.
            seeds_per_config: Train each configuration on k tuning seeds (an int: seeds 0
                to k-1; or the list of seeds): the trial runs the objective once per seed in
                threads taking turns step by step, each reading `trial.seed`; the scheduler
                judges the aggregate of the seeds' reports at each step, and the trial's value
                is the aggregate of their results (see `hyperlaw.seeds`). Keep test seeds apart
                for `reevaluate`.
            seed_aggregate: How the seeds' values combine: "mean" (default), "median",
                "min", "max" or a function of the list of values.

        Raises:
            WorkerError: `max_consecutive_failures` trials failed in a row, or workers could
                not start or kept dying.

        Example:
            >>> import hyperlaw as hl
            >>> study = hl.create_study(space=hl.Space({"x": hl.Float(-1.0, 1.0)}), seed=0)
            >>> study.optimize(lambda trial: trial.params["x"] ** 2, n_trials=5)
            >>> len(study.trials)
            5
        """
        from hyperlaw.executors import SimulatedExecutor, run_optimize

        attrs: dict[str, Any] = {}  # what the objective's results depend on (for dedup)
        if seeds_per_config is not None:
            from hyperlaw.seeds import SeedGroup, tuning_seeds

            group = SeedGroup(objective, tuning_seeds(seeds_per_config), seed_aggregate)
            objective, attrs = group, group.attrs
        constraints = constraints if constraints is not None else self.constraints
        if constraints is not None:
            objective = Constrained(objective, constraints)
        replays = executor == "simulated" or isinstance(executor, SimulatedExecutor)
        if self.dedup and self._declared and not replays:  # a replay runs no objective
            objective = Reusing(objective, self.canonical, attrs)
        run_optimize(self, objective, n_trials=n_trials, timeout=timeout, n_workers=n_workers,
                     catch=catch if isinstance(catch, tuple) else (catch,),
                     show_progress=show_progress, callbacks=callbacks,
                     max_consecutive_failures=max_consecutive_failures, executor=executor,
                     resources_per_trial=resources_per_trial, ray_address=ray_address,
                     gpus_per_trial=gpus_per_trial)

    def run_trial(self, objective: Objective,
                  catch: tuple[type[BaseException], ...] = (Exception,),
                  on_start: Callable[[int], None] | None = None) -> TrialRecord:
        """Ask, run the objective, tell. Failures inside the objective are recorded."""
        trial = self.ask(heartbeat=True)
        if on_start is not None:
            on_start(trial.number)
        return self.evaluate(trial, objective, catch)

    def evaluate(self, trial: Trial, objective: Objective,
                 catch: tuple[type[BaseException], ...] = (Exception,)) -> TrialRecord:
        """Run the objective on an asked trial and tell the outcome (failures are recorded;
        exceptions outside `catch` are re-raised after that)."""
        return self.evaluate_then_start(trial, objective, catch, None)[0]

    def evaluate_then_start(self, trial: Trial, objective: Objective,
                            catch: tuple[type[BaseException], ...],
                            start_next: Callable[[TrialState], bool] | None,
                            ) -> tuple[TrialRecord, Trial | None]:
        """`evaluate`, for executors' worker loops: the outcome's record, and the next trial
        when one was started. When the sampler and scheduler read no history and
        `start_next(state)` (asked with the outcome's state) says so, the next trial is
        started in the write transaction that records this one's outcome; else None."""
        error: str | None = None
        values: tuple[float, ...] | None
        try:
            result = objective(trial)
        except KeyboardInterrupt:
            self._finish(trial, TrialState.FAILED, None, "interrupted (KeyboardInterrupt)")
            raise
        except BaseException as exc:
            if is_pruned(exc):  # hyperlaw's TrialPruned, or Optuna's from code written for it
                state, values = TrialState.PRUNED, self._pruned_values(trial)
            else:
                error = "".join(traceback.format_exception(exc)).strip()
                if not isinstance(exc, catch):
                    self._finish(trial, TrialState.FAILED, None, error)
                    raise
                log.warning("trial #%d failed: %s: %s", trial.number, type(exc).__name__, exc)
                state, values = TrialState.FAILED, None
        else:
            try:
                values = self._objective_values(
                    result, f"trial #{trial.number} of study {self.name!r}")
                state = TrialState.COMPLETE
            except InvalidValueError as exc:
                log.warning("%s", exc)
                state, values, error = TrialState.FAILED, None, str(exc)
        if start_next is not None and self._starts_unread and start_next(state):
            return self._finish_then_start(trial, state, values, error)
        return self._finish(trial, state, values, error), None

    @property
    def _starts_unread(self) -> bool:
        return not self.sampler.reads_history and not self.scheduler.reads_history_to_start

    def _finish_then_start(self, trial: Trial, state: TrialState,
                           values: tuple[float, ...] | None,
                           error: str | None) -> tuple[TrialRecord, Trial]:
        """Record `trial`'s outcome and start the next trial (claimed or sampled without
        reading, as `ask` does for such samplers) in one write transaction."""
        self._fail_stale_if_due()  # as `ask` does: trials of dead workers do not stay RUNNING
        proposal: dict[str, Any] = {}
        finished, started, created = self._store.finish_and_start(
            self._info.id, trial.number, state, None if values is None else values[0],
            error=error, params=trial._take_pending_params(),
            start=self._unread_maker(proposal), fill=self._fill, heartbeat=True,
            extras=self._extras(trial, values))
        trial._finished = True
        if trial.number < len(self._history.trials):
            self._history.put(finished)
        return finished, self._start(started, proposal if created else dict(started.params),
                                     unread=True)


class Constrained:
    """An objective with Optuna-style constraints: after the objective returns, `constraints`
    gets the trial's record (its params, attributes, values and reports) and returns one
    value per constraint, met when <= 0; each is recorded as constraint "c<i>" (max 0).
    Picklable when both are, so it travels to worker processes and Ray actors."""

    def __init__(self, objective: Objective, constraints: ConstraintsFunc) -> None:
        self.objective = objective
        self.constraints = constraints

    def __call__(self, trial: Trial) -> ObjectiveResult:
        result = self.objective(trial)
        try:
            values = trial.study._objective_values(result, f"trial #{trial.number}")
        except InvalidValueError:
            return result  # the trial fails with this error when the result is told
        apply_constraints(trial, self.constraints, values)
        return result


def apply_constraints(trial: Trial, constraints: ConstraintsFunc,
                      values: tuple[float, ...]) -> None:
    """Record `constraints(record)` of a trial that completed with `values` (see
    `Constrained`); an error names the function and the trial."""
    record = TrialRecord(trial.number, TrialState.COMPLETE, dict(trial.params), values[0],
                         user_attrs=dict(trial.user_attrs),
                         system_attrs=dict(trial.system_attrs), values=values,
                         constraints=dict(trial._constraints), cost=dict(trial._cost))
    found = constraints(record)
    name = getattr(constraints, "__name__", repr(constraints))
    if isinstance(found, str | bytes) or not isinstance(found, Sequence | np.ndarray):
        raise InvalidValueError(
            f"constraints function {name} returned {found!r} for trial #{trial.number}; "
            "return a sequence of floats, each <= 0 when its constraint is met")
    for i, value in enumerate(found):
        trial.constrain(f"c{i}", value, max=0.0)


class _Superseded(Exception):
    """Another worker acted first: it filled the scheduler's population, or it continued the
    suspended trial this one was about to promote."""


class _Duplicate(Exception):
    """Another worker started the proposed configuration after this one read the history."""


def _holds(trials: Iterable[TrialRecord], params: dict[str, Any]) -> bool:
    """Whether one of `trials` holds the configuration `params` (see `held_params`)."""
    key = params_key(params)
    return any(params_key(held_params(t)) == key for t in trials)


_MAX_REDRAWS = 3


_MISSING = object()


# --- module functions -----------------------------------------------------------------------
def create_study(name: str | None = None, *, storage: str | Store | None = None,
                 space: Space | Mapping[str, Param] | None = None,
                 direction: Direction | None = None, sampler: str | Sampler | None = None,
                 scheduler: str | Scheduler | None = None, seed: int | None = None,
                 load_if_exists: bool = False, retry_stale: int = 0,
                 heartbeat_interval: float = 10.0, checkpoint_dir: str | None = None,
                 keep_last_checkpoints: int = 2, keep_best_checkpoints: int = 0,
                 directions: Sequence[Direction] | None = None,
                 objectives: Mapping[str, Direction] | None = None,
                 constraints: ConstraintsFunc | None = None,
                 warm_start: Any = None, dedup: bool = True,
                 canonical: Canonical | None = None) -> Study:
    """Create a study (or, with `load_if_exists`, continue the one of that name).

    Args:
        name: The study's name; None generates one (`study-1a2b3c4d`).
        storage: A URL (`sqlite:///hyperlaw.db`, `postgresql://...`), a Store, or None for
            memory.
        space: The search space; without it the objective's suggest calls define it.
        direction: "minimize" or "maximize": one objective ("minimize" when none of
            `direction`, `directions` and `objectives` is given; give only one of them).
        sampler: A sampler or its name ("auto", the default, "tpe", "gp", "random", "sobol",
            "grid").
        scheduler: A scheduler or its name ("fifo", the default, "median", "asha", ...).
        seed: Seed of the sampler; the same seed and history give the same suggestions.
        load_if_exists: Continue an existing study of that name instead of raising.
        retry_stale: How many times a trial whose worker died is retried.
        heartbeat_interval: Seconds between heartbeats; a trial silent for 5 intervals is
            failed as stale.
        checkpoint_dir: Where the study's checkpoint directory goes (a path or fsspec URL;
            see `hyperlaw.checkpoints.default_root` for the default).
        keep_last_checkpoints: How many newest checkpoints each trial keeps.
        keep_best_checkpoints: How many best checkpoints (by reported value) each trial keeps.
        directions: Several objectives, e.g. ["minimize", "maximize"]; the objective returns
            a tuple in that order.
        objectives: Several objectives by name, e.g. {"val_loss": "minimize",
            "latency_ms": "minimize"}; the objective returns a dict or a tuple in that order.
        constraints: An Optuna-style function mapping a complete trial's record to values
            that are <= 0 when met; `optimize` sends it with the objective to every worker
            (it is not stored: pass it again when loading the study).
        warm_start: Earlier studies on a related task (Study objects, names of studies in
            `storage`, or (storage, name) pairs): `space` gets priors on the good region of
            their best trials, for the parameters without a prior of yours, and their 3 best
            configurations are queued as the first trials (see `hyperlaw.transfer`). Used
            when the study is created; a study continued with `load_if_exists` keeps the
            priors it was created with.
        dedup: Run each configuration once: a trial equivalent to a complete one (same
            canonical key, see `hyperlaw.canonical`: active parameters only, values in their
            domain's form, the same `user_attrs["seed"]`, or tuning seeds and aggregate)
            is completed with its result (not its cost), marked
            `system_attrs["reused_from"]`, instead of running the objective (declared
            spaces; stored with the study). Pass False for an objective whose result varies
            from run to run on one configuration and seed.
        canonical: User-declared equivalences: a function of the canonical params (a dict)
            returning what identifies the configuration, e.g. `lambda p: {**p, "lr":
            round(p["lr"], 4)}`; not stored (pass it again when loading the study).

    Returns:
        The study.

    Raises:
        DuplicateStudyError: A study of that name exists and `load_if_exists` is False.
        SpaceMismatchError: With `load_if_exists`, the stored study has another space; with
            `warm_start`, an earlier study gives a parameter another domain or lacks it.
        StorageError: The storage cannot be opened.

    Example:
        >>> import hyperlaw as hl
        >>> study = hl.create_study("mlp", space={"lr": hl.Float(1e-5, 1e-1, log=True)},
        ...                         direction="minimize", sampler="random", seed=0)
        >>> study.name, study.direction
        ('mlp', 'minimize')
    """
    the_directions, names = _objectives(direction, directions, objectives)
    if space is not None and not isinstance(space, Space):
        space = Space(space)
    name = f"study-{uuid.uuid4().hex[:8]}" if name in (None, "") else _check_name(name)
    store = open_store(storage)
    the_sampler = make_sampler(sampler, seed)
    the_scheduler = make_scheduler(scheduler)
    try:
        info = store.get_study(name)
    except StudyNotFoundError:
        info = None
    warm = None
    if info is None and warm_start is not None:
        warm = _warm_start(space, warm_start, store)
        space = warm.space
    if info is None:
        check_retention(keep_last_checkpoints, keep_best_checkpoints)
        root = checkpoint_dir or default_root(store.url)
        attrs = {"declared_space": space is not None, "sampler": the_sampler.spec(),
                 "scheduler": the_scheduler.spec(),
                 "checkpoints": {"dir": study_directory(root, name),
                                 "keep_last": keep_last_checkpoints,
                                 "keep_best": keep_best_checkpoints},
                 "dedup": bool(dedup)}
        try:
            info = store.create_study(name, the_directions[0],
                                      space.to_json() if space else None, attrs,
                                      directions=the_directions, objective_names=names)
        except DuplicateStudyError:
            if not load_if_exists:
                raise
            info = store.get_study(name)  # another process created it a moment ago
        else:
            study = Study(store, info, the_sampler, the_scheduler, retry_stale=retry_stale,
                          heartbeat_interval=heartbeat_interval, constraints=constraints,
                          canonical=canonical)
            for config in warm.configs if warm is not None else []:
                study.enqueue(config)
            return study
    elif not load_if_exists:
        raise DuplicateStudyError(
            f"study {name!r} already exists in storage {store.url!r}; pass "
            "load_if_exists=True to continue it, or choose another name"
        )
    _check_compatible(info, the_directions, names, space, ignore_priors=warm_start is not None)
    return _open(store, info, sampler, scheduler, seed, retry_stale, heartbeat_interval,
                 constraints, canonical)


def _warm_start(space: Space | None, warm_start: Any, store: Store) -> WarmStart:
    """Priors and first configurations transferred from the earlier studies `warm_start`."""
    from hyperlaw.transfer import warm_start as transferred

    if space is None:
        raise HyperlawError(
            "warm_start needs the study's space: pass space={...} to create_study (the good "
            "region of the earlier studies is transferred parameter by parameter)")
    return transferred(space, warm_start, store)


def _objectives(direction: str | None, directions: Sequence[str] | None,
                objectives: Mapping[str, str] | None,
                ) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
    """(directions, names) from the one of `direction`, `directions`, `objectives` given."""
    given = [n for n, v in (("direction", direction), ("directions", directions),
                            ("objectives", objectives)) if v is not None]
    if len(given) > 1:
        raise HyperlawError(
            f"create_study got {' and '.join(given)}; give only one: direction= for one "
            "objective, directions=[...] for several, or objectives={name: direction} for "
            "named ones")
    names: tuple[str, ...] | None = None
    if objectives is not None:
        if not isinstance(objectives, Mapping) or not objectives:
            raise HyperlawError(
                f"objectives must be a non-empty dict of name -> direction, got "
                f"{objectives!r}; e.g. objectives={{'val_loss': 'minimize'}}")
        bad = [n for n in objectives if not isinstance(n, str) or not n]
        if bad:
            raise HyperlawError(f"objective names must be non-empty strings, got {bad!r}")
        names, found = tuple(objectives), tuple(objectives.values())
    elif directions is not None:
        if isinstance(directions, str) or not isinstance(directions, Sequence) or \
                not directions:
            raise HyperlawError(
                f"directions must be a non-empty list such as ['minimize', 'maximize'], got "
                f"{directions!r} (for one objective pass direction=)")
        found = tuple(directions)
    else:
        found = (direction or "minimize",)
    for d in found:
        if d not in _DIRECTIONS:
            raise HyperlawError(
                f"a direction must be 'minimize' or 'maximize', got {d!r}")
    return found, names


def load_study(name: str, storage: str | Store, *, sampler: str | Sampler | None = None,
               scheduler: str | Scheduler | None = None, seed: int | None = None,
               retry_stale: int = 0, heartbeat_interval: float = 10.0,
               constraints: ConstraintsFunc | None = None,
               canonical: Canonical | None = None) -> Study:
    """Open an existing study; never creates a database or adds tables to one. Its sampler
    and scheduler are rebuilt from what was stored unless others are given; its objectives
    are the stored ones.

    Args:
        name: The study's name.
        storage: A URL or a Store.
        sampler: Another sampler than the stored one (rebuilt by default).
        scheduler: Another scheduler than the stored one (rebuilt by default).
        seed: Another sampler seed than the stored one.
        retry_stale: How many times a trial whose worker died is retried.
        heartbeat_interval: Seconds between heartbeats of this process's trials.
        constraints: The study's constraints function (it is not stored; see
            `create_study`).
        canonical: The study's equivalence of configurations (it is not stored; see
            `create_study`).

    Returns:
        The study.

    Raises:
        StudyNotFoundError: The storage holds no study of that name.
        StorageError: The storage is missing, unreachable or not a hyperlaw database.
    """
    _check_name(name)
    store = open_store(storage, mode="open")
    info = store.get_study(name)
    return _open(store, info, sampler, scheduler, seed, retry_stale, heartbeat_interval,
                 constraints, canonical)


def _check_name(name: Any) -> str:
    """`name` if it is a usable study name, else a named error."""
    if isinstance(name, str) and name:
        return name
    hint = (f"pass it as a string, e.g. name={str(name)[:40]!r}" if name != ""
            else "pass a non-empty string")
    raise InvalidValueError(f"a study name must be a non-empty string, got "
                            f"{type(name).__name__} {repr(name)[:60]}; {hint}")


def _open(store: Store, info: StudyInfo, sampler: str | Sampler | None,
          scheduler: str | Scheduler | None, seed: int | None, retry_stale: int,
          heartbeat_interval: float, constraints: ConstraintsFunc | None = None,
          canonical: Canonical | None = None) -> Study:
    the_sampler = make_sampler(sampler, seed, info.system_attrs.get("sampler"))
    the_scheduler = make_scheduler(scheduler, info.system_attrs.get("scheduler"))
    return Study(store, info, the_sampler, the_scheduler, retry_stale=retry_stale,
                 heartbeat_interval=heartbeat_interval, constraints=constraints,
                 canonical=canonical)


def _check_compatible(info: StudyInfo, directions: tuple[str, ...],
                      names: tuple[str, ...] | None, space: Space | None,
                      ignore_priors: bool = False) -> None:
    if info.directions != directions or (names is not None
                                         and info.objective_names != names):
        def text(ds: tuple[str, ...], ns: tuple[str, ...] | None) -> str:
            if ns is not None:
                return f"objectives {dict(zip(ns, ds, strict=True))!r}"
            return f"direction {ds[0]!r}" if len(ds) == 1 else f"directions {list(ds)!r}"

        raise HyperlawError(
            f"study {info.name!r} exists with {text(info.directions, info.objective_names)}, "
            f"not {text(directions, names)}; pass the same direction(s) or objectives, or use "
            "another study name"
        )
    if space is not None and info.space_json is not None:
        stored = Space.from_json(info.space_json)
        if ignore_priors:  # the stored priors came from warm_start: compare the domains
            stored, space = _without_priors(stored), _without_priors(space)
        if stored != space:
            raise SpaceMismatchError(
                f"study {info.name!r} exists with another space ({stored!r}); pass the same "
                "space to continue it, or use another study name"
            )


def _without_priors(space: Space) -> Space:
    return Space({name: param.with_prior(None) if param.has_prior else param
                  for name, param in space.items()})


def delete_study(name: str, storage: str | Store) -> None:
    """Delete a study and all its trials from `storage` (a URL or a Store).

    Raises:
        StudyNotFoundError: The storage holds no study of that name.
    """
    open_store(storage, mode="open").delete_study(_check_name(name))


def list_studies(storage: str | Store) -> list[StudySummary]:
    """A summary of every study in `storage` (a URL or a Store): name, direction, trials by
    state, best value. Reading never writes to the storage."""
    return open_store(storage, mode="read").list_studies()
