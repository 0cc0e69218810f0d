"""`hyperlaw worker`: join an existing study from any machine and run its trials.

    hyperlaw worker --storage postgresql://user@db/hpo --study mlp --objective train:objective

The worker shares nothing with the others but the storage: it asks the study's stored sampler
for trials, runs the objective, and writes results, reports and heartbeats to the store. Start
as many as you like (a SLURM array, a Kubernetes Deployment); a worker that dies leaves a
trial that goes stale and is retried by the others (`--retry-stale`).

SIGTERM (what SLURM and Kubernetes send before a kill) makes the worker start no new trial;
the running one finishes if the grace period allows, otherwise it goes stale and is retried.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

import click

from hyperlaw.cli.common import add_cwd_to_path, import_ref, opened, storage_option, study_option
from hyperlaw.errors import HyperlawError, StudyNotFoundError
from hyperlaw.executors.loop import Budget, run_worker
from hyperlaw.store.sql import ReachedUrl
from hyperlaw.study import Study, load_study
from hyperlaw.trial import TrialRecord, TrialState

log = logging.getLogger("hyperlaw")


@click.command()
@storage_option
@study_option
@click.option("--objective", required=True, metavar="MODULE:FUNCTION",
              help="The objective, a function taking a trial (imported from the current "
                   "directory or the installed packages, or a file: dir/train.py:objective).")
@click.option("--n-trials", type=click.IntRange(min=0), metavar="N",
              help="Run at most N trials in this worker (default: until stopped).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Start no trial after this many seconds.")
@click.option("--retry-stale", type=click.IntRange(min=0), default=1, show_default=True,
              metavar="N", help="Retry a trial whose worker died up to N times.")
@click.option("--heartbeat-interval", type=click.FloatRange(min=0, min_open=True),
              default=10.0, show_default=True, metavar="SECONDS",
              help="Seconds between heartbeats; a trial is stale after 5 missed beats. Use "
                   "the same value in every worker of a study.")
@click.option("--max-consecutive-failures", type=click.IntRange(min=0), default=10,
              show_default=True, metavar="N",
              help="Stop after N failed trials in a row (0: never).")
@click.option("--wait-for-study", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="Wait up to this long for the study to be created by someone else.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
def worker(storage: str | None, study_name: str, objective: str, n_trials: int | None,
           timeout: float | None, retry_stale: int, heartbeat_interval: float,
           max_consecutive_failures: int, wait_for_study: float, quiet: bool) -> None:
    """Join an existing study and run its trials until the budget or a signal stops it."""
    _configure_logging(quiet)
    # a worker joins a study that exists or will: it waits out an unreachable server from its
    # first contact on (up to HYPERLAW_RECONNECT_TIMEOUT), as a worker of `optimize` does, so
    # that workers started during a database restart join when it is back
    with opened(ReachedUrl(storage) if storage else storage, "create") as store:
        add_cwd_to_path()
        func = import_ref(objective, "--objective", "MODULE:FUNCTION")
        if not callable(func):
            raise HyperlawError(f"--objective {objective!r} is a {type(func).__name__}, not a "
                                "function; point it at a function taking a trial")
        study = _load_when_ready(study_name, store, wait_for_study, retry_stale,
                                 heartbeat_interval)
        # the check `optimize` makes: PBT's members would be left paused by a trial count
        study.scheduler.check_budget(n_trials)
        name = f"{socket.gethostname()}:{os.getpid()}"
        log.info("worker %s joined study %r in storage %s", name, study.name, store.url)
        counts = dict.fromkeys(TrialState, 0)

        def done(record: TrialRecord) -> None:
            counts[record.state] += 1
            log.info("trial #%d %s%s", record.number, record.state.value,
                     "" if record.value is None else f" value={record.value:.6g}")

        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm(study))
        try:
            run_worker(study, func, Budget(n_trials, timeout, study), (Exception,),
                       max_consecutive_failures or None, on_done=done)
        except KeyboardInterrupt:
            click.echo(f"worker {name} interrupted", err=True)
            click.get_current_context().exit(130)
        finally:
            signal.signal(signal.SIGTERM, previous)
        ran = sum(counts.values())
        click.echo(f"worker {name} ran {ran} trials of study {study.name!r}: "
                   + ", ".join(f"{counts[s]} {s.value}" for s in
                               (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)))


def _load_when_ready(name: str, store: object, wait: float, retry_stale: int,
                     heartbeat_interval: float) -> Study:
    deadline = time.monotonic() + wait
    while True:
        try:
            return load_study(name, store, retry_stale=retry_stale,  # type: ignore[arg-type]
                              heartbeat_interval=heartbeat_interval)
        except StudyNotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def _stop_on_sigterm(study: Study) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.warning("SIGTERM: starting no new trial (a second SIGTERM ends the worker now)")
        study.stop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return handler


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger("hyperlaw")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
