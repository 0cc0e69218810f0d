"""Executors decide *where* trials run: in this process, in local worker processes, or on a
Ray cluster (`executor="ray"`, see `executors/ray.py`)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from hyperlaw.errors import HyperlawError
from hyperlaw.executors.inline import run_inline
from hyperlaw.executors.loop import Budget, Heartbeat, run_worker
from hyperlaw.executors.processes import run_processes
from hyperlaw.lineage import PBT, RETRY_OF
from hyperlaw.progress import StudyProgress
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Objective, Study

__all__ = ["Budget", "Heartbeat", "run_optimize", "run_worker"]

log = logging.getLogger("hyperlaw")


def run_optimize(study: Study, objective: Objective, *, n_trials: int | None,
                 timeout: float | None, n_workers: int, catch: tuple[type[BaseException], ...],
                 show_progress: bool | None,
                 callbacks: Sequence[Callable[[Study, TrialRecord], None]],
                 max_consecutive_failures: int | None, executor: str = "auto",
                 resources_per_trial: Mapping[str, float] | None = None,
                 ray_address: str | None = None) -> None:
    if executor not in ("auto", "ray"):
        raise HyperlawError(f"executor must be 'auto' (this process or local worker processes) "
                            f"or 'ray', got {executor!r}")
    if executor != "ray" and (resources_per_trial is not None or ray_address is not None):
        raise HyperlawError("resources_per_trial and ray_address apply to executor='ray' only; "
                            "pass executor='ray' to run trials on a Ray cluster")
    if n_trials is not None and (isinstance(n_trials, bool) or n_trials < 0):
        raise HyperlawError(f"n_trials must be a non-negative int or None, got {n_trials!r}")
    if timeout is not None and timeout <= 0:
        raise HyperlawError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise HyperlawError(f"n_workers must be an int >= 1, got {n_workers!r}")
    study.scheduler.check_budget(n_trials)
    study._stop_requested = False
    budget = Budget(n_trials, timeout, study)
    progress = StudyProgress(study.name, n_trials, study.direction == "maximize",
                             show_progress)
    with progress:
        if executor == "ray":
            from hyperlaw.executors.ray import run_ray  # Ray is imported only here

            run_ray(study, objective, budget, n_workers, catch, progress, callbacks,
                    max_consecutive_failures, resources_per_trial, ray_address)
        elif n_workers == 1:
            run_inline(study, objective, budget, catch, progress, callbacks,
                       max_consecutive_failures)
        elif (url := study.store.worker_url()) is not None:
            run_processes(study, objective, budget, n_workers, catch, progress, callbacks,
                          max_consecutive_failures, url)
        else:
            _run_memory_study_in_processes(study, objective, budget, n_workers, catch,
                                           progress, callbacks, max_consecutive_failures)
    _announce_queued(study, budget)


def _announce_queued(study: Study, budget: Budget) -> None:
    """Say which continuations (of PBT members) and retries (of trials failed as stale) the
    run queued but did not get to, because its budget ended first."""
    if not (study.retry_stale or study.scheduler.reads_history_to_start):
        return
    queued = [t.number for t in study._history.refresh().trials
              if t.state is TrialState.WAITING
              and (RETRY_OF in t.system_attrs or PBT in t.system_attrs)]
    if not queued:
        return
    why = ("the run was stopped" if budget.stopped else
           "the timeout passed" if budget.timed_out else "n_trials were run")
    log.warning("study %r: trials %s are queued (continuations of population members or "
                "retries of trials whose worker died) and were not run because %s; run "
                "optimize again to run them", study.name, queued, why)


def _run_memory_study_in_processes(study: Study, objective: Objective, budget: Budget,
                                   n_workers: int, catch: tuple[type[BaseException], ...],
                                   progress: StudyProgress,
                                   callbacks: Sequence[Callable[[Study, TrialRecord], None]],
                                   max_consecutive_failures: int | None) -> None:
    """Workers cannot see this process's memory: run them on a temporary SQLite copy of the
    study and bring every trial back."""
    from hyperlaw.store.sql import SqlStore
    from hyperlaw.transfer import copy_study, sync_back

    with tempfile.TemporaryDirectory(prefix="hyperlaw-") as tmp:
        url = f"sqlite:///{tmp}/study.db"
        temp_store = SqlStore(url)
        try:
            copy_study(study.store, study.name, temp_store)
            temp_study = _reopen(study, temp_store)
            try:
                run_processes(temp_study, objective, budget, n_workers, catch, progress,
                              callbacks, max_consecutive_failures, url)
            finally:
                sync_back(temp_store, study)
        finally:
            temp_store.close()


def _reopen(study: Study, store: object) -> Study:
    from hyperlaw.study import load_study

    return load_study(study.name, store, sampler=study.sampler,  # type: ignore[arg-type]
                       scheduler=study.scheduler, retry_stale=study.retry_stale,
                       heartbeat_interval=study.heartbeat_interval)
