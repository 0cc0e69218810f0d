"""Run trials as Ray actor tasks on a Ray cluster (`study.optimize(..., executor="ray")`).

The driver asks: the sampler runs here, on the driver, and each asked trial is sent to one of
`n_workers` actors, which runs the objective and tells the result straight to the store (so
reports, pruning decisions and results flow through the store, exactly as with worker
processes, and Ray workers mix freely with `hyperlaw worker` processes on the same study).
Each actor holds one trial running and one queued, so asking never keeps an actor idle.

The driver keeps the heartbeat of every trial it handed out. An actor that dies (its node
lost) has its trials failed at once and retried (`retry_stale`), their tickets go back (so
`n_trials` outcomes of the objective's own are delivered, as with worker processes), and it
is replaced at the same bounded rate as a worker process; if the driver
itself dies, the actors die with it, their trials go stale, and a driver restarted with
`load_study` retries them. Ray is imported only when this executor runs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import cloudpickle

from hyperlaw.errors import HyperlawError, SearchExhaustedError, TrialStateError, WorkerError
from hyperlaw.executors.base import Executor, RunSettings, check_n_workers
from hyperlaw.executors.loop import Heartbeat, max_deaths, respawn_delay
from hyperlaw.executors.worker import WorkerJob
from hyperlaw.lineage import STALE
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Objective, ObjectiveResult, Study

log = logging.getLogger("hyperlaw")

#: trials handed to each actor at a time: one running, one waiting behind it
_DEPTH = 2


class _Beats(Heartbeat):
    """The driver's heartbeat of the trials it handed out, removed one by one."""

    def discard(self, number: int) -> None:
        with self._lock:
            self._numbers.discard(number)


class TrialRunner:
    """A Ray actor that runs asked trials of one study (opened once, from its URL)."""

    def __init__(self, driver_path: list[str], payload: bytes) -> None:
        sys.path.extend(p for p in driver_path if p not in sys.path and os.path.isdir(p))
        from hyperlaw.study import load_study

        job: WorkerJob = cloudpickle.loads(payload)
        self._job = job
        self._study = load_study(job.study_name, job.storage_url, sampler=job.sampler,
                                 scheduler=job.scheduler, retry_stale=job.retry_stale,
                                 heartbeat_interval=job.heartbeat_interval)

    def run(self, asked: TrialRecord, proposal: dict[str, Any]) -> tuple[str, float | None]:
        """Run the objective on the trial the driver asked; return its final state and value.
        (The record comes from the driver, so starting a trial costs no read here.)"""
        study = self._study
        trial = study.adopt(asked, proposal)
        try:
            done = study.evaluate(trial, _leave_running_on_exit(self._job.objective),
                                  self._job.catch)
        except TrialStateError as exc:  # failed as stale meanwhile (the driver lost it)
            log.warning("%s", exc)
            current = study.store.get_trial(study.id, asked.number)
            return current.state.value, current.value
        return done.state.value, done.value


def _leave_running_on_exit(objective: Objective) -> Objective:
    """The objective, except that when Ray stops the actor mid-trial (it raises SystemExit
    when the driver is gone), the process ends at once and leaves the trial running: the
    driver, or the heartbeat sweep if the driver is gone too, fails it as stale and retries
    it. Recording it as an ordinary failure would lose it."""

    def guarded(trial: Any) -> ObjectiveResult:
        try:
            return objective(trial)
        except (SystemExit, KeyboardInterrupt):
            log.warning("Ray stopped this actor during trial #%d; leaving it to be retried",
                        trial.number)
            os._exit(1)

    return guarded


class RayExecutor(Executor):
    """Runs trials on `n_workers` Ray actors (`executor="ray"`), each holding
    `resources_per_trial` (e.g. {"cpu": 1, "gpu": 0.5}), on the cluster at `address` (or
    RAY_ADDRESS, else a new local one). The study needs a storage the actors can reach."""

    def __init__(self, n_workers: int = 1, resources_per_trial: Mapping[str, float] | None = None,
                 address: str | None = None) -> None:
        self.n_workers = check_n_workers(n_workers)
        self.resources_per_trial = resources_per_trial
        self.address = address
        self._options = actor_options(resources_per_trial)

    def __repr__(self) -> str:
        return (f"RayExecutor(n_workers={self.n_workers}, "
                f"resources_per_trial={self.resources_per_trial!r}, address={self.address!r})")

    def run(self, study: Study, objective: Objective, settings: RunSettings) -> None:
        ray = _import_ray()
        url = study.store.worker_url()
        if url is None:
            raise HyperlawError(
                f"study {study.name!r} lives in memory, which Ray workers cannot reach; "
                "create it with storage='postgresql://...' (any cluster) or "
                "'sqlite:///path.db' (one machine)"
            )
        job = WorkerJob(url, study.name, objective, study.sampler, study.scheduler,
                        settings.catch, study.retry_stale, study.heartbeat_interval,
                        settings.max_consecutive_failures)
        try:
            payload = cloudpickle.dumps(job)
        except Exception as exc:
            raise WorkerError(
                f"the objective cannot be sent to Ray workers ({type(exc).__name__}: {exc}); "
                "make what it uses picklable (open files and connections inside it)"
            ) from exc
        if not ray.is_initialized():
            _init_ray(ray, self.address)
        runner = ray.remote(TrialRunner).options(**self._options)
        driver = _Driver(study, settings, lambda: runner.remote(list(sys.path), payload), ray)
        driver.run(self.n_workers)


class _Driver:
    """Hands asked trials to actors and collects their outcomes."""

    def __init__(self, study: Study, settings: RunSettings, new_actor: Callable[[], Any],
                 ray: Any) -> None:
        self.study = study
        self.settings = settings
        self.budget = settings.budget
        self.max_failures = settings.max_consecutive_failures
        self.new_actor = new_actor
        self.ray = ray
        self.in_flight: dict[Any, tuple[Any, int]] = {}  # task ref -> (actor, trial number)
        self.idle: list[Any] = []  # actors that found nothing to run while others ran
        self.failures = 0
        # trials handed to an actor ahead of time would count as started for a scheduler
        # that decides from the history what may start (PBT), so those get one at a time
        self.depth = 1 if study.scheduler.reads_history_to_start else _DEPTH
        self.deaths: list[str] = []  # actors that died since a trial last reached an outcome
        self.max_deaths = 0
        self.respawns: list[float] = []  # when to start the replacements that are due

    def run(self, n_workers: int) -> None:
        ray = self.ray
        self.max_deaths = max_deaths(n_workers)
        with _Beats(self.study) as beats:
            self.beats = beats
            actors = [self.new_actor() for _ in range(n_workers)]
            for _ in range(self.depth):
                for actor in actors:
                    self._submit(actor)
            try:
                while self.in_flight or self.respawns:
                    timeout = 1.0
                    if self.respawns:
                        timeout = max(0.0, min(self.respawns) - time.monotonic())
                    ready = []
                    if self.in_flight:
                        ready, _ = ray.wait(list(self.in_flight), num_returns=1,
                                            timeout=timeout)
                    elif timeout:
                        time.sleep(timeout)
                    for ref in ready:
                        self._collect(ref)
                    self._respawn_due()
            except BaseException:
                self.budget.stopped = True
                self._abandon()
                raise
        self.study.reload_space()

    def _submit(self, actor: Any) -> None:
        if not self.budget.take():
            return
        try:
            trial = self.study.ask(heartbeat=True)
        except SearchExhaustedError as exc:
            # nothing to start now; a running trial may still queue one (a PBT member)
            self.budget.refund(1)
            if self.in_flight:
                self.idle.append(actor)
            else:
                log.info("%s", exc)
            return
        self.beats.add(trial.number)
        asked = TrialRecord(trial.number, TrialState.RUNNING, dict(trial.params), None, {},
                            dict(trial.user_attrs))
        ref = actor.run.remote(asked, dict(trial._proposal))
        self.in_flight[ref] = (actor, trial.number)

    def _collect(self, ref: Any) -> None:
        ray = self.ray
        actor, number = self.in_flight.pop(ref)
        self.beats.discard(number)
        try:
            state, value = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            if getattr(exc, "actor_init_failed", False):  # it cannot even open the study
                self.budget.stopped = True
                self.study.fail_trials_of_dead_worker([number], "its Ray actor could not start")
                raise WorkerError(
                    f"a Ray actor of study {self.study.name!r} could not start (unpickling "
                    "the objective, sampler and scheduler, or opening the study, failed; "
                    "what they use must be importable on the Ray workers and the storage "
                    f"reachable from them): {exc}") from exc
            self._replace_dead(actor, number, exc)
            return
        except ray.exceptions.RayTaskError as exc:  # an exception `catch` does not cover
            self.budget.stopped = True
            cause = exc.as_instanceof_cause()
            raise cause from None
        self._deliver(number, TrialState(state), value)
        self._submit(actor)
        self._submit_idle()

    def _submit_idle(self) -> None:
        idle, self.idle = self.idle, []
        for waiting in idle:
            self._submit(waiting)

    def _deliver(self, number: int, state: TrialState, value: float | None) -> None:
        """Trial `number` ended: its ticket is spent on an outcome of the objective's own,
        or given back when the trial was failed as stale meanwhile."""
        if state is TrialState.FAILED and self.study.store.get_trial(
                self.study.id, number).system_attrs.get(STALE):
            self.budget.refund(1)
            return
        self.deaths.clear()
        self.settings.delivered(self.study, number, state, value)
        self.failures = self.failures + 1 if state is TrialState.FAILED else 0
        if self.max_failures and self.failures >= self.max_failures:
            self.budget.stopped = True
            error = self.study.store.get_trial(self.study.id, number).error
            raise WorkerError(
                f"study {self.study.name!r}: {self.failures} trials failed in a row, so the "
                "study stopped; fix the objective (the last error is below) or raise "
                f"max_consecutive_failures.\n{error}"
            )

    def _replace_dead(self, actor: Any, number: int, exc: BaseException) -> None:
        """Fail the trials a dead actor held (their tickets go back), deliver one it
        finished but could not return, and start a replacement (later, when actors die
        one after another)."""
        lost = [number] + [n for a, n in self.in_flight.values() if a is actor]
        for ref in [r for r, (a, _) in self.in_flight.items() if a is actor]:
            del self.in_flight[ref]
        for n in lost:
            self.beats.discard(n)
        failed = self.study.fail_trials_of_dead_worker(
            lost, f"its Ray actor died ({type(exc).__name__})")
        log.warning("a Ray actor died running trials %s; they are marked failed%s", failed,
                    " and queued again" if self.study.retry_stale else "")
        for n in lost:
            record = self.study.store.get_trial(self.study.id, n)
            if n not in failed and record.state.is_finished:
                self._deliver(n, record.state, record.value)  # refunds a stale one
            else:
                self.budget.refund(1)
        self.deaths.append(f"trials {lost} ({type(exc).__name__})")
        if len(self.deaths) >= self.max_deaths:
            self.budget.stopped = True
            raise WorkerError(
                f"study {self.study.name!r}: {len(self.deaths)} Ray actors died one after "
                f"another without a trial finishing (the last held {self.deaths[-1]}); "
                f"something kills them (memory, a crash in native code, lost nodes): fix "
                f"that, or run fewer at a time. The last error: {exc}")
        self.respawns.append(time.monotonic() + respawn_delay(len(self.deaths)))
        self._submit_idle()  # a refunded ticket may start a trial on an idle actor at once

    def _respawn_due(self) -> None:
        now = time.monotonic()
        due = [t for t in self.respawns if t <= now]
        self.respawns = [t for t in self.respawns if t > now]
        for _ in due:
            if self.budget.can_grant():
                replacement = self.new_actor()
                for _ in range(self.depth):
                    self._submit(replacement)

    def _abandon(self) -> None:
        """On an interrupt or a fatal error: cancel what runs, fail it, tell nobody else."""
        numbers = [n for _, n in self.in_flight.values()]
        for ref in list(self.in_flight):
            try:
                self.ray.cancel(ref, force=True)
            except Exception as exc:  # the task may be gone already
                log.debug("cancelling a Ray task failed: %s", exc)
        self.in_flight.clear()
        if numbers:
            self.study.fail_trials_of_dead_worker(numbers, "the Ray driver stopped")


def actor_options(resources: Mapping[str, float] | None) -> dict[str, Any]:
    """Ray actor options from `resources_per_trial` ({"cpu": 1, "gpu": 0.5, "custom": 1})."""
    if resources is None:
        return {"num_cpus": 1}
    if not isinstance(resources, Mapping):
        raise HyperlawError(
            f"resources_per_trial must be a dict like {{'cpu': 1, 'gpu': 0.5}}, got "
            f"{type(resources).__name__}"
        )
    options: dict[str, Any] = {"num_cpus": 0}
    custom: dict[str, float] = {}
    for key, amount in resources.items():
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise HyperlawError(
                f"resources_per_trial[{key!r}] must be a non-negative number, got {amount!r}")
        if key == "cpu":
            options["num_cpus"] = amount
        elif key == "gpu":
            options["num_gpus"] = amount
        elif key == "memory":
            options["memory"] = amount
        else:
            custom[str(key)] = float(amount)
    if custom:
        options["resources"] = custom
    return options


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HyperlawError(
            "executor='ray' needs Ray; install it with `pip install hyperlaw[ray]`"
        ) from None
    return ray


def _init_ray(ray: Any, address: str | None) -> None:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a local one."""
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None and not os.environ.get("RAY_ADDRESS"):
        kwargs["include_dashboard"] = False
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise HyperlawError(
            f"cannot connect to the Ray cluster at {address or os.environ.get('RAY_ADDRESS')!r}"
            f": {exc}; start it with `ray start --head` or fix ray_address"
        ) from None
