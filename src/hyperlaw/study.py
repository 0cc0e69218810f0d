"""Studies: ask, tell, optimize, best, to_dataframe; create_study and load_study."""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

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
    recorded_checkpoints,
    resume_candidates,
    resume_point,
)
from hyperlaw.samplers import Sampler, make_sampler
from hyperlaw.schedulers import Decision, NeverStop, Scheduler, make_scheduler
from hyperlaw.schedulers.base import HandOff, NewTrials
from hyperlaw.schedulers.pbt import Segment, pbt_schedule
from hyperlaw.space import Param, Space
from hyperlaw.store import Store, StudyInfo, StudySummary, open_store
from hyperlaw.trial import Trial, TrialRecord, TrialState, check_value

if TYPE_CHECKING:
    import pandas as pd

    from hyperlaw.executors import Executor
    from hyperlaw.noise import Reevaluation

log = logging.getLogger("hyperlaw")

Direction = Literal["minimize", "maximize"]
Objective = Callable[[Trial], float]

_DIRECTIONS = ("minimize", "maximize")


class Study:
    """A named optimization study whose every fact lives in a store.

    Create one with `create_study` or `load_study`. Any number of Study objects, in any
    number of processes, may share one study through a SQL store.
    """

    def __init__(self, store: Store, info: StudyInfo, sampler: Sampler, scheduler: Scheduler,
                 *, retry_stale: int = 0, heartbeat_interval: float = 10.0) -> None:
        self._store = store
        self._info = info
        self.sampler = sampler
        self.scheduler = scheduler
        self.retry_stale = retry_stale
        self.heartbeat_interval = heartbeat_interval
        self._declared = bool(info.system_attrs.get("declared_space"))
        self._space = Space.from_json(info.space_json) if info.space_json else Space({})
        self._history = History(store, info.id, info.direction == "maximize")
        self._next_stale_check = 0.0
        self._stop_requested = False
        self._scheduler_stops = not isinstance(scheduler, NeverStop)
        self._checkpoints: StudyCheckpoints | None = None

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, direction={self.direction!r}, storage={self.storage!r})"

    # --- identity ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._info.name

    @property
    def id(self) -> int:
        """The study's id in its store: the key of the `Store` calls about its trials."""
        return self._info.id

    @property
    def direction(self) -> Direction:
        return self._info.direction  # type: ignore[return-value]

    @property
    def storage(self) -> str:
        """The storage URL (password hidden)."""
        return self._store.url

    @property
    def store(self) -> Store:
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
        self._info = self._store.get_study(self.name)
        return dict(self._info.user_attrs)

    def set_user_attr(self, key: str, value: Any) -> None:
        self._store.set_study_user_attr(self._info.id, key, value)

    # --- ask and tell --------------------------------------------------------------------
    def ask(self, fixed: Mapping[str, Any] | None = None, *, heartbeat: bool = False) -> Trial:
        """Start a trial: an enqueued one if any waits, else one the sampler suggests.

        `fixed` pins some parameters for this trial; the rest are completed by sampling.
        `heartbeat` is for workers that keep the trial's heartbeat going (see `optimize`).
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

    def tell(self, trial: Trial | int, value: float | None = None, *,
             state: TrialState | str = TrialState.COMPLETE,
             error: str | None = None) -> TrialRecord:
        """Finish a running trial with its final value (or as pruned or failed).

        A value that is not a finite number fails the trial (it stays recorded) and raises
        InvalidValueError. Telling a finished trial raises TrialStateError.
        """
        number = trial.number if isinstance(trial, Trial) else int(trial)
        state = TrialState(state)
        if state is TrialState.COMPLETE:
            try:
                value = check_value(value, f"trial #{number} of study {self.name!r}")
            except InvalidValueError as exc:
                self._finish(trial, TrialState.FAILED, None, str(exc))
                raise
        elif state is TrialState.PRUNED:
            value = self._pruned_value(trial)
        elif state is TrialState.FAILED:
            value = None
        else:
            raise HyperlawError(
                f"cannot tell trial #{number} the state {state.value!r}; use 'complete', "
                "'pruned' or 'failed'"
            )
        return self._finish(trial, state, value, error)

    def _finish(self, trial: Trial | int, state: TrialState, value: float | None,
                error: str | None) -> TrialRecord:
        number = trial.number if isinstance(trial, Trial) else trial
        pending = trial._take_pending_params() if isinstance(trial, Trial) else None
        record = self._store.finish_trial(self._info.id, number, state, value, error=error,
                                          params=pending)
        if isinstance(trial, Trial):
            trial._finished = True
        if number < len(self._history.trials):
            self._history.put(record)
        return record

    def _pruned_value(self, trial: Trial | int) -> float | None:
        """A pruned trial's value: its value at its last step (from the history, else the
        last report the Trial handle made)."""
        number = trial.number if isinstance(trial, Trial) else trial
        trials = self._history.trials
        if number < len(trials) and trials[number].intermediate:
            record = trials[number]
            return record.intermediate[max(record.intermediate)]
        if isinstance(trial, Trial) and trial._last_report is not None:
            return trial._last_report[1]
        return None

    def enqueue(self, params: Mapping[str, Any], *,
                user_attrs: Mapping[str, Any] | None = None) -> int:
        """Queue a configuration to try next (missing parameters are sampled); its number."""
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
    def _report(self, trial: Trial, step: int, value: float) -> bool:
        """Store a report and return True when the scheduler stops the trial."""
        pending = trial._take_pending_params()
        self._store.report(self._info.id, trial.number, step, value, params=pending or None)
        history = self._history
        if trial.number < len(history.trials):
            history.add_report(trial.number, step, value)
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
                maximize=self.direction == "maximize")
        return self._checkpoints

    def _save_checkpoint(self, trial: Trial, state: Any, step: int) -> Checkpoint:
        last = trial._last_report
        value = last[1] if last is not None and last[0] == step else None
        kept = self.checkpoints.save(trial.number, recorded_checkpoints(trial.system_attrs),
                                     state, step, value)
        trial.system_attrs[CHECKPOINTS] = [c.to_json() for c in kept]
        trial._resumed_from = None  # it now continues from the checkpoint just saved
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
        return self.checkpoints.load_newest(trial.number, candidates)

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
        if states is None:
            return self.trials
        wanted = {TrialState(s) for s in states}
        return [t for t in self._history.refresh().trials if t.state in wanted]

    @property
    def best_trial(self) -> TrialRecord:
        """The complete trial with the best value (an indexed query, no history scan)."""
        best = self._store.best_trial(self._info.id, self.direction == "maximize")
        if best is None:
            raise NoCompleteTrialError(
                f"study {self.name!r} has no complete trial yet; run study.optimize or tell "
                "a result first"
            )
        return best

    @property
    def best_value(self) -> float:
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    def best(self, by: Literal["value", "model_mean"] = "value") -> TrialRecord:
        """The best complete trial by its value, or (for noisy objectives) by the mean of a
        GP fitted to all complete trials, which discounts a single lucky value."""
        from hyperlaw.noise import best_trial

        return best_trial(self, by)

    def reevaluate(self, objective: Objective, top_k: int = 5, *, seeds: Iterable[int],
                   by: Literal["value", "model_mean"] = "value") -> list[Reevaluation]:
        """Re-run the `top_k` best configurations once per (test) seed; best mean first.

        The objective reads `trial.user_attrs["seed"]`. Runs go to the sibling study
        `<name>.reevaluation`; seeds already used for tuning are refused (see hyperlaw.noise).
        """
        from hyperlaw.noise import reevaluate

        return reevaluate(self, objective, top_k, seeds, by)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per trial: number, state, value, params_*, user_attrs_*, times, error."""
        from hyperlaw.export import trials_dataframe

        return trials_dataframe(self.trials)

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
                 ray_address: str | None = None) -> None:
        """Run `objective` on new trials until `n_trials` ran or `timeout` seconds passed.

        `executor` says where trials run: an Executor from `hyperlaw.executors`
        (InlineExecutor, ProcessExecutor, RayExecutor, SimulatedExecutor) or its name with
        `n_workers`. "auto" (the default) runs them in this process, or with
        `n_workers > 1` in that many worker processes (a SQL storage shares the study between
        them; an in-memory study is run through a temporary SQLite file). "ray" runs them on
        `n_workers` Ray actors, each holding `resources_per_trial` (e.g.
        {"cpu": 1, "gpu": 0.5}), on the cluster at `ray_address` (or RAY_ADDRESS, else a new
        local one); the study needs a shared storage. "simulated" replays recorded curves:
        the objective then maps a configuration to its ReplayCurve (see SimulatedExecutor).
        Exceptions of the `catch` types fail the trial and the study goes on; after
        `max_consecutive_failures` failures in a row the study stops and re-raises.
        """
        from hyperlaw.executors import run_optimize

        run_optimize(self, objective, n_trials=n_trials, timeout=timeout, n_workers=n_workers,
                     catch=catch if isinstance(catch, tuple) else (catch,),
                     show_progress=show_progress, callbacks=callbacks,
                     max_consecutive_failures=max_consecutive_failures, executor=executor,
                     resources_per_trial=resources_per_trial, ray_address=ray_address)

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
        value: float | None
        try:
            value = objective(trial)
        except KeyboardInterrupt:
            self._finish(trial, TrialState.FAILED, None, "interrupted (KeyboardInterrupt)")
            raise
        except BaseException as exc:
            if is_pruned(exc):  # hyperlaw's TrialPruned, or Optuna's from code written for it
                state, value = TrialState.PRUNED, self._pruned_value(trial)
            else:
                error = "".join(traceback.format_exception(exc)).strip()
                if not isinstance(exc, catch):
                    self._finish(trial, TrialState.FAILED, None, error)
                    raise
                log.warning("trial #%d failed: %s: %s", trial.number, type(exc).__name__, exc)
                state, value = TrialState.FAILED, None
        else:
            try:
                value = check_value(value, f"trial #{trial.number} of study {self.name!r}")
                state = TrialState.COMPLETE
            except InvalidValueError as exc:
                log.warning("%s", exc)
                state, value, error = TrialState.FAILED, None, str(exc)
        if start_next is not None and self._starts_unread and start_next(state):
            return self._finish_then_start(trial, state, value, error)
        return self._finish(trial, state, value, error), None

    @property
    def _starts_unread(self) -> bool:
        return not self.sampler.reads_history and not self.scheduler.reads_history_to_start

    def _finish_then_start(self, trial: Trial, state: TrialState, value: float | None,
                           error: str | None) -> tuple[TrialRecord, Trial]:
        """Record `trial`'s outcome and start the next trial (claimed or sampled without
        reading, as `ask` does for such samplers) in one write transaction."""
        self._fail_stale_if_due()  # as `ask` does: trials of dead workers do not stay RUNNING
        proposal: dict[str, Any] = {}
        finished, started, created = self._store.finish_and_start(
            self._info.id, trial.number, state, value, error=error,
            params=trial._take_pending_params(), start=self._unread_maker(proposal),
            fill=self._fill, heartbeat=True)
        trial._finished = True
        if trial.number < len(self._history.trials):
            self._history.put(finished)
        return finished, self._start(started, proposal if created else dict(started.params),
                                     unread=True)


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
                 direction: Direction = "minimize", sampler: str | Sampler | None = None,
                 scheduler: str | Scheduler | None = None, seed: int | None = None,
                 load_if_exists: bool = False, retry_stale: int = 0,
                 heartbeat_interval: float = 10.0, checkpoint_dir: str | None = None,
                 keep_last_checkpoints: int = 2, keep_best_checkpoints: int = 0) -> Study:
    """Create a study (or, with `load_if_exists`, continue the one of that name).

    `storage` is a URL (`sqlite:///hyperlaw.db`, `postgresql://...`), a Store, or None for
    memory. Without `space` the objective's suggest calls define it. Trial checkpoints go
    to a directory of the study's own under `checkpoint_dir` (a path or fsspec URL; see
    `hyperlaw.checkpoints.default_root` for the default); each trial keeps its
    `keep_last_checkpoints` newest and `keep_best_checkpoints` best ones.
    """
    if direction not in _DIRECTIONS:
        raise HyperlawError(
            f"direction must be 'minimize' or 'maximize', got {direction!r}"
        )
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
    if info is None:
        check_retention(keep_last_checkpoints, keep_best_checkpoints)
        root = checkpoint_dir or default_root(store.url)
        attrs = {"declared_space": space is not None, "sampler": the_sampler.spec(),
                 "scheduler": the_scheduler.spec(),
                 "checkpoints": {"dir": study_directory(root, name),
                                 "keep_last": keep_last_checkpoints,
                                 "keep_best": keep_best_checkpoints}}
        try:
            info = store.create_study(name, direction, space.to_json() if space else None,
                                      attrs)
        except DuplicateStudyError:
            if not load_if_exists:
                raise
            info = store.get_study(name)  # another process created it a moment ago
        else:
            return Study(store, info, the_sampler, the_scheduler, retry_stale=retry_stale,
                         heartbeat_interval=heartbeat_interval)
    elif not load_if_exists:
        raise DuplicateStudyError(
            f"study {name!r} already exists in storage {store.url!r}; pass "
            "load_if_exists=True to continue it, or choose another name"
        )
    _check_compatible(info, direction, space)
    return _open(store, info, sampler, scheduler, seed, retry_stale, heartbeat_interval)


def load_study(name: str, storage: str | Store, *, sampler: str | Sampler | None = None,
               scheduler: str | Scheduler | None = None, seed: int | None = None,
               retry_stale: int = 0, heartbeat_interval: float = 10.0) -> Study:
    """Open an existing study. Its sampler and scheduler are rebuilt from what was stored,
    unless others are given. Never creates a database or adds tables to one."""
    _check_name(name)
    store = open_store(storage, mode="open")
    info = store.get_study(name)
    return _open(store, info, sampler, scheduler, seed, retry_stale, heartbeat_interval)


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
          heartbeat_interval: float) -> Study:
    the_sampler = make_sampler(sampler, seed, info.system_attrs.get("sampler"))
    the_scheduler = make_scheduler(scheduler, info.system_attrs.get("scheduler"))
    return Study(store, info, the_sampler, the_scheduler, retry_stale=retry_stale,
                 heartbeat_interval=heartbeat_interval)


def _check_compatible(info: StudyInfo, direction: str, space: Space | None) -> None:
    if info.direction != direction:
        raise HyperlawError(
            f"study {info.name!r} exists with direction {info.direction!r}, not {direction!r}; "
            "pass the same direction or use another study name"
        )
    if space is not None and info.space_json is not None:
        stored = Space.from_json(info.space_json)
        if stored != space:
            raise SpaceMismatchError(
                f"study {info.name!r} exists with another space ({stored!r}); pass the same "
                "space to continue it, or use another study name"
            )


def delete_study(name: str, storage: str | Store) -> None:
    open_store(storage, mode="open").delete_study(_check_name(name))


def list_studies(storage: str | Store) -> list[StudySummary]:
    return open_store(storage, mode="read").list_studies()
