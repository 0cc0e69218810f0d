"""Executors decide *where* trials run: in this process (`InlineExecutor`), in local worker
processes (`ProcessExecutor`), on Ray actors (`RayExecutor`, see `executors/ray.py`), or on a
simulated clock that replays recorded curves (`SimulatedExecutor`). `Study.optimize` takes one
through `executor=`, as an instance or by name."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import HyperlawError
from hyperlaw.executors.base import Executor, RunSettings, check_n_workers
from hyperlaw.executors.devices import check_gpus_per_trial
from hyperlaw.executors.inline import InlineExecutor
from hyperlaw.executors.loop import Budget, Heartbeat, run_worker
from hyperlaw.executors.processes import ProcessExecutor
from hyperlaw.executors.ray import RayExecutor
from hyperlaw.executors.simulated import SimulatedExecutor
from hyperlaw.lineage import PBT, RETRY_OF
from hyperlaw.progress import StudyProgress
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Study

__all__ = ["Budget", "Executor", "Heartbeat", "InlineExecutor", "ProcessExecutor",
           "RayExecutor", "RunSettings", "SimulatedExecutor", "make_executor", "run_optimize",
           "run_worker"]

log = logging.getLogger("hyperlaw")

#: the names `optimize(executor=...)` accepts
EXECUTOR_NAMES = ("auto", "inline", "processes", "ray", "simulated")


def make_executor(executor: str | Executor, n_workers: int = 1,
                  resources_per_trial: Mapping[str, float] | None = None,
                  ray_address: str | None = None,
                  gpus_per_trial: int | None = None) -> Executor:
    """The executor `optimize` runs with: an Executor as given, or one by name with
    `n_workers` ("auto": this process for one worker, else worker processes; worker
    processes whenever `gpus_per_trial` is set, since a process's devices are fixed when it
    starts)."""
    gpus_per_trial = check_gpus_per_trial(gpus_per_trial)
    if isinstance(executor, Executor):
        if gpus_per_trial is not None:
            raise HyperlawError(
                f"gpus_per_trial is a setting of the executor; with executor={executor!r} "
                "pass it to it (ProcessExecutor(n_workers=2, gpus_per_trial=1)) or, on Ray, "
                "as resources_per_trial={'gpu': k}")
        return _given(executor, n_workers, resources_per_trial, ray_address)
    if executor not in EXECUTOR_NAMES:
        raise HyperlawError(
            f"executor must be 'auto' (this process or local worker processes), 'inline', "
            f"'processes', 'ray', 'simulated', or an Executor such as "
            f"ProcessExecutor(n_workers=4), got {executor!r}")
    if executor != "ray" and (resources_per_trial is not None or ray_address is not None):
        raise HyperlawError("resources_per_trial and ray_address apply to executor='ray' only; "
                            "pass executor='ray' to run trials on a Ray cluster")
    check_n_workers(n_workers)
    if gpus_per_trial is not None and executor not in ("auto", "processes"):
        raise HyperlawError(
            f"gpus_per_trial gives each local worker process its own devices; with "
            f"executor={executor!r} it does not apply: use executor='processes' (or 'auto'), "
            "or on Ray resources_per_trial={'gpu': k} (Ray sets each actor's devices)")
    if executor == "ray":
        return RayExecutor(n_workers, resources_per_trial, ray_address)
    if executor == "simulated":
        return SimulatedExecutor(n_workers)
    if executor == "processes" or (executor == "auto" and (n_workers > 1 or gpus_per_trial)):
        return ProcessExecutor(n_workers, gpus_per_trial)
    if n_workers != 1:
        raise HyperlawError(f"executor='inline' runs one trial at a time in this process, "
                            f"so n_workers must be 1, got {n_workers!r}; use "
                            "executor='processes' for worker processes")
    return InlineExecutor()


def _given(executor: Executor, n_workers: int, resources_per_trial: Any,
           ray_address: str | None) -> Executor:
    """An Executor instance carries its own settings: refuse them a second time."""
    if n_workers != 1 or resources_per_trial is not None or ray_address is not None:
        raise HyperlawError(
            f"n_workers, resources_per_trial and ray_address are settings of the executor; "
            f"with executor={executor!r} pass them to it (e.g. ProcessExecutor(n_workers=4), "
            "RayExecutor(n_workers=8, resources_per_trial={'gpu': 1}, address='auto'))")
    return executor


def run_optimize(study: Study, objective: Any, *, n_trials: int | None,
                 timeout: float | None, n_workers: int, catch: tuple[type[BaseException], ...],
                 show_progress: bool | None,
                 callbacks: Sequence[Callable[[Study, TrialRecord], None]],
                 max_consecutive_failures: int | None, executor: str | Executor = "auto",
                 resources_per_trial: Mapping[str, float] | None = None,
                 ray_address: str | None = None, gpus_per_trial: int | None = None) -> None:
    """`Study.optimize`: check the run's settings, then run it on the chosen executor."""
    runner = make_executor(executor, n_workers, resources_per_trial, ray_address,
                           gpus_per_trial)
    if n_trials is not None and (isinstance(n_trials, bool) or n_trials < 0):
        raise HyperlawError(f"n_trials must be a non-negative int or None, got {n_trials!r}")
    if timeout is not None and timeout <= 0:
        raise HyperlawError(f"timeout must be a positive number of seconds, got {timeout!r}")
    study.scheduler.check_budget(n_trials)
    study.clear_stop()
    budget = Budget(n_trials, timeout, study)
    progress = StudyProgress(study.name, n_trials, study.directions[0] == "maximize",
                             show_progress)
    with progress:
        runner.run(study, objective, RunSettings(budget, progress, catch, callbacks,
                                                 max_consecutive_failures))
    _announce_queued(study, budget)


def _announce_queued(study: Study, budget: Budget) -> None:
    """Say which continuations (of PBT members) and retries (of trials failed as stale) the
    run queued but did not get to, because its budget ended first."""
    if not (study.retry_stale or study.scheduler.reads_history_to_start):
        return
    queued = [t.number for t in study.get_trials([TrialState.WAITING])
              if RETRY_OF in t.system_attrs or PBT in t.system_attrs]
    if not queued:
        return
    why = ("the run was stopped" if budget.stopped else
           "the timeout passed" if budget.timed_out else "n_trials were run")
    log.warning("study %r: trials %s are queued (continuations of population members or "
                "retries of trials whose worker died) and were not run because %s; run "
                "optimize again to run them", study.name, queued, why)
