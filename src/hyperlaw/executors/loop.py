"""The worker loop shared by every executor: take a ticket, run a trial, report it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from hyperlaw.errors import SearchExhaustedError, TrialStateError, WorkerError
from hyperlaw.store.memory import MemoryStore
from hyperlaw.trial import Trial, TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Objective, Study

log = logging.getLogger("hyperlaw")


class Tickets(Protocol):
    """Grants the right to start one more trial. A ticket is spent when its trial reaches
    an outcome of the objective's own; one whose trial ended otherwise is given back."""

    def take(self) -> bool:
        """Take a ticket: whether one more trial may start."""
        ...

    def refund(self, tickets: int) -> None:
        """Give back tickets whose trials reached no outcome of the objective's own."""
        ...


class StartGuard(Protocol):
    """Brackets the start of a trial, from before the store write to the `on_start` call
    (a worker process postpones Ctrl-C there)."""

    def hold(self) -> None: ...

    def release(self) -> None: ...


class _NoGuard:
    def hold(self) -> None:
        pass

    def release(self) -> None:
        pass


_NO_GUARD = _NoGuard()


class Budget:
    """At most `n_trials` trials, none started after `timeout` seconds."""

    def __init__(self, n_trials: int | None, timeout: float | None,
                 study: Study | None = None) -> None:
        self.remaining = n_trials
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stopped = False
        self._study = study

    def take(self) -> bool:
        """Take a ticket: False once `n_trials` are granted, the timeout passed or the study
        was asked to stop."""
        if self._study is not None and self._study.stop_requested:
            self.stopped = True
        if not self.can_grant():
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True

    def refund(self, tickets: int) -> None:
        """Give back tickets whose trial reached no outcome of the objective's own (never
        started, or failed as stale because its worker died)."""
        if self.remaining is not None:
            self.remaining += tickets

    def can_grant(self) -> bool:
        """Whether `take` could grant a ticket now (without taking it)."""
        return not (self.stopped or self.remaining == 0 or self.timed_out)

    @property
    def timed_out(self) -> bool:
        """Whether the run's timeout has passed."""
        return self.deadline is not None and time.monotonic() >= self.deadline


def respawn_delay(deaths: int) -> float:
    """Seconds to wait before replacing a worker when `deaths` workers died since a trial
    last finished: none for the first, then doubling from 0.2 s up to 5 s."""
    return 0.0 if deaths <= 1 else min(0.2 * 2 ** (deaths - 2), 5.0)


def max_deaths(n_workers: int) -> int:
    """Workers that may die one after another, without a trial finishing, before the run
    stops with an error."""
    return max(8, 2 * n_workers)


class Heartbeat:
    """Keeps the heartbeat of the trials this process runs, from a daemon thread."""

    def __init__(self, study: Study) -> None:
        self._study = study
        self._numbers: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        if not isinstance(self._study.store, MemoryStore):
            self._thread = threading.Thread(target=self._beat, name="hyperlaw-heartbeat",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def add(self, number: int) -> None:
        """Keep trial `number`'s heartbeat going."""
        with self._lock:
            self._numbers.add(number)

    def clear(self) -> None:
        """Stop beating for every trial."""
        with self._lock:
            self._numbers.clear()

    def _beat(self) -> None:
        study = self._study
        while not self._stop.wait(study.heartbeat_interval):
            with self._lock:
                numbers = sorted(self._numbers)
            if not numbers:
                continue
            try:
                study.store.heartbeat(study.id, numbers)
            except Exception as exc:  # the next beat retries; staleness needs several misses
                log.warning("heartbeat of trials %s failed: %s", numbers, exc)


def run_worker(study: Study, objective: Objective, tickets: Tickets,
               catch: tuple[type[BaseException], ...], max_consecutive_failures: int | None,
               on_start: Callable[[int], None] | None = None,
               on_done: Callable[[TrialRecord], None] | None = None,
               starting: StartGuard | None = None) -> bool:
    """Run trials while `tickets` grants them; True when it stopped because the search is
    exhausted (nothing left to start). Raises WorkerError after too many failures in a row,
    and re-raises exceptions that `catch` does not cover."""
    failures = 0
    guard = starting if starting is not None else _NO_GUARD
    with Heartbeat(study) as beat:
        def started(trial: Trial) -> None:
            beat.add(trial.number)
            if on_start is not None:
                on_start(trial.number)
            try:
                guard.release()
            except KeyboardInterrupt:  # postponed while the trial was started: fail it here
                study.tell(trial, state=TrialState.FAILED, error="interrupted (KeyboardInterrupt)")
                raise

        following: Trial | None = None  # started with the previous trial's outcome
        owed = False  # a ticket was taken for a trial that could not be started with it

        def start_next(state: TrialState) -> bool:
            nonlocal owed
            if max_consecutive_failures and state is TrialState.FAILED \
                    and failures + 1 >= max_consecutive_failures:
                return False
            owed = tickets.take()
            if owed:
                guard.hold()  # released once the started trial is announced
            return owed

        while following is not None or owed or tickets.take():
            owed = False
            try:
                trial = following
                if trial is None:
                    guard.hold()
                    trial = study.ask(heartbeat=True)
                    started(trial)
                following = None
                record, following = study.evaluate_then_start(trial, objective, catch, start_next)
                owed = False
            except SearchExhaustedError:
                log.info("study %r: the search space is exhausted", study.name)
                return True
            except TrialStateError as exc:  # told elsewhere, e.g. failed as stale meanwhile
                log.warning("%s", exc)
                tickets.refund(1)  # no outcome of the objective's own: the ticket goes back
                continue
            finally:
                beat.clear()
                if following is None:
                    guard.release()  # no trial was started to announce
            if on_done is not None:
                try:
                    on_done(record)
                except BaseException as exc:  # e.g. a callback's error: the run stops here
                    if following is not None:
                        study.tell(following, state=TrialState.FAILED,
                                   error=f"not run: the run stopped before it ({exc!r})")
                    raise
            if following is not None:
                started(following)
            failures = failures + 1 if record.state is TrialState.FAILED else 0
            if max_consecutive_failures and failures >= max_consecutive_failures:
                raise WorkerError(
                    f"study {study.name!r}: {failures} trials failed in a row, so the study "
                    f"stopped; fix the objective (the last error is below) or raise "
                    f"max_consecutive_failures.\n{record.error}"
                )
    return False
