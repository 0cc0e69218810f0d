"""Run trials in local worker processes that share the study through its store.

Each worker is a fresh interpreter (`python -m hyperlaw.executors.spawn`), so objectives
defined in a script or a notebook work (they travel by cloudpickle) and scripts need no
`if __name__ == "__main__"` guard. The parent only grants tickets, shows progress and
notices dead workers: their running trial is failed at once and, with `retry_stale`, queued
again for a replacement worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

import cloudpickle

from hyperlaw.errors import WorkerError
from hyperlaw.executors.loop import Budget
from hyperlaw.executors.worker import INTERRUPTED, WorkerJob
from hyperlaw.progress import StudyProgress
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Objective, Study

log = logging.getLogger("hyperlaw")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.trial: int | None = None
        self.unused_tickets = 0  # granted ahead of a trial it has not started yet


def _worker_env(n_workers: int) -> dict[str, str]:
    """Split the cores between workers unless the user set thread counts."""
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    for var in _THREAD_VARS:
        env.setdefault(var, threads)
    return env


def _spawn(payload: bytes, env: dict[str, str]) -> _Worker:
    parent_sock, child_sock = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hyperlaw.executors.spawn", str(child_sock.fileno())],
            pass_fds=[child_sock.fileno()], env=env)
    finally:
        child_sock.close()
    conn = Connection(parent_sock.detach())
    conn.send(list(sys.path))
    conn.send_bytes(payload)
    return _Worker(process, conn)


def run_processes(study: Study, objective: Objective, budget: Budget, n_workers: int,
                  catch: tuple[type[BaseException], ...], progress: StudyProgress,
                  callbacks: Sequence[Callable[[Study, TrialRecord], None]],
                  max_consecutive_failures: int | None, storage_url: str) -> None:
    job = WorkerJob(storage_url, study.name, objective, study.sampler, study.scheduler, catch,
                    study.retry_stale, study.heartbeat_interval, max_consecutive_failures)
    try:
        payload = cloudpickle.dumps(job)
    except Exception as exc:
        raise WorkerError(
            f"the objective cannot be sent to worker processes ({type(exc).__name__}: {exc}); "
            "make what it uses picklable (open files, locks and connections inside it), or "
            "use n_workers=1"
        ) from exc
    env = _worker_env(n_workers)
    workers = {}
    for _ in range(n_workers):
        worker = _spawn(payload, env)
        workers[worker.conn] = worker
    fatal: list[tuple[bytes | None, str]] = []
    try:
        while workers:
            for conn in wait(list(workers), timeout=1.0):
                worker = workers[conn]  # type: ignore[index]
                try:
                    messages = conn.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    del workers[conn]  # type: ignore[arg-type]
                    budget.refund(worker.unused_tickets)
                    requeued = _bury(study, worker)
                    if worker.process.returncode == INTERRUPTED:
                        # Ctrl-C reached the workers: stop the run even if this process's own
                        # KeyboardInterrupt was lost (raised inside a finalizer, say)
                        raise KeyboardInterrupt from None
                    if requeued and not budget.stopped:
                        replacement = _spawn(payload, env)  # runs the queued retry
                        workers[replacement.conn] = replacement
                    continue
                worker.trial = _running_after(messages, worker.trial)  # first: Ctrl-C
                for message in messages:
                    _handle(study, worker, message, budget, progress, callbacks, fatal)
    except KeyboardInterrupt:
        budget.stopped = True
        _interrupt(study, list(workers.values()))
        raise
    study.reload_space()
    if fatal:
        blob, text = fatal[0]
        exc = _unpickle(blob)
        if exc is None:
            raise WorkerError(f"a worker process stopped the study:\n{text}")
        exc.add_note(f"raised in a hyperlaw worker process:\n{text}")
        raise exc


def _handle(study: Study, worker: _Worker, message: tuple[Any, ...], budget: Budget,
            progress: StudyProgress,
            callbacks: Sequence[Callable[[Study, TrialRecord], None]],
            fatal: list[tuple[bytes | None, str]]) -> None:
    kind = message[0]
    if kind == "want":
        granted = budget.take()
        worker.unused_tickets += granted
        with contextlib.suppress(OSError):  # it exited after asking ahead (refunded at EOF)
            worker.conn.send(granted)
    elif kind == "start":
        worker.unused_tickets = max(worker.unused_tickets - 1, 0)
    elif kind == "done":
        _, number, state, value = message
        progress.finished(TrialState(state), value)
        if callbacks:
            record = study.store.get_trial(study._info.id, number)
            for callback in callbacks:
                callback(study, record)
    elif kind == "fatal":
        budget.stopped = True
        fatal.append((message[1], message[2]))


def _running_after(messages: list[tuple[Any, ...]], running: int | None) -> int | None:
    """The trial a worker runs once these messages are taken into account (set before the
    messages are handled, so an interrupt meanwhile still knows which trial to fail)."""
    for message in messages:
        if message[0] == "start":
            running = message[1]
        elif message[0] == "done":
            running = None
    return running


def _bury(study: Study, worker: _Worker) -> bool:
    """Reap a dead worker and fail its trial; True when that trial was queued again."""
    code = worker.process.wait()
    worker.conn.close()
    if worker.trial is None:
        return False
    how = f"signal {-code}" if code < 0 else f"exit code {code}"
    failed = study.fail_trials_of_dead_worker(
        [worker.trial], "interrupted (KeyboardInterrupt)" if code == INTERRUPTED
        else f"worker process {worker.process.pid} died ({how})")
    if failed:
        log.warning("worker %d died (%s) running trial #%d; the trial is marked failed%s",
                    worker.process.pid, how, worker.trial,
                    " and queued again" if study.retry_stale else "")
    return bool(failed) and study.retry_stale > 0


def _interrupt(study: Study, workers: list[_Worker]) -> None:
    """Stop every worker and fail the trials they were running, so none stays RUNNING."""
    _wait_for(workers, 2.0)  # a Ctrl-C in a terminal reached the workers already
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.send_signal(signal.SIGINT)
    for worker in _wait_for(workers, 10.0):
        worker.process.kill()
        worker.process.wait()
    for worker in workers:
        _drain(worker)
        if worker.trial is not None:
            study.fail_trials_of_dead_worker([worker.trial], "interrupted (KeyboardInterrupt)")


def _wait_for(workers: list[_Worker], seconds: float) -> list[_Worker]:
    """Wait up to `seconds` for the workers to exit; return those still alive."""
    deadline = time.monotonic() + seconds
    alive = [w for w in workers if w.process.poll() is None]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [w for w in alive if w.process.poll() is None]
    return alive


def _drain(worker: _Worker) -> None:
    """Read the messages a worker sent before it stopped (to learn its last trial)."""
    try:
        while worker.conn.poll(0):
            worker.trial = _running_after(worker.conn.recv(), worker.trial)
    except (EOFError, OSError):
        pass
    worker.conn.close()


def _unpickle(blob: bytes | None) -> BaseException | None:
    if blob is None:
        return None
    try:
        exc = cloudpickle.loads(blob)
    except Exception:
        return None
    return exc if isinstance(exc, BaseException) else None
