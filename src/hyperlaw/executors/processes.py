"""Run trials in local worker processes that share the study through its store.

Each worker is a fresh interpreter (`python -m hyperlaw.executors.spawn`), so objectives
defined in a script or a notebook work (they travel by cloudpickle) and scripts need no
`if __name__ == "__main__"` guard. The parent grants tickets, shows progress and watches the
workers. A ticket is spent only when its trial reaches an outcome of the objective's own
(complete, pruned, failed by the objective), so `n_trials` results are delivered or an error
says why not. A worker that dies, whatever it was doing, is replaced (with a growing delay
when workers die one after another without a trial finishing, and an error after too many);
its trials are failed as stale at once (and retried with `retry_stale`), including one it
had started in the store but not yet announced: every trial records the worker that started
it (`Store.owner`). A worker that cannot start (unpickle the job, open the study) stops the
run with an error that names the step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, cast

import cloudpickle

from hyperlaw.errors import WorkerError
from hyperlaw.executors.base import Executor, RunSettings, check_n_workers
from hyperlaw.executors.devices import VISIBLE, check_gpus_per_trial, device_slots
from hyperlaw.executors.loop import max_deaths, respawn_delay
from hyperlaw.executors.worker import INTERRUPTED, WorkerJob, owner_tag
from hyperlaw.lineage import STALE, WORKER
from hyperlaw.store.base import Store
from hyperlaw.trial import TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Objective, Study

log = logging.getLogger("hyperlaw")

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class _Worker:
    def __init__(self, process: subprocess.Popen[bytes], conn: Connection, tag: str,
                 slot: int) -> None:
        self.process = process
        self.conn = conn
        self.tag = tag  # recorded in the trials it starts
        self.slot = slot  # its place among the n_workers (its devices); a replacement takes it
        self.ready = False  # it opened the study (its first message says so)
        self.trial: int | None = None  # the running trial it announced
        self.held = 0  # tickets granted whose trial has not reached an outcome yet


def _worker_env(n_workers: int, devices: str | None = None) -> dict[str, str]:
    """Split the cores between workers unless the user set thread counts; with `devices`,
    the worker sees only those GPUs."""
    env = dict(os.environ)
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))
    for var in _THREAD_VARS:
        env.setdefault(var, threads)
    if devices is not None:
        env[VISIBLE] = devices
    return env


def _spawn(payload: bytes, env: dict[str, str], run_id: str, slot: int) -> _Worker:
    parent_sock, child_sock = socket.socketpair()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hyperlaw.executors.spawn", str(child_sock.fileno())],
            pass_fds=[child_sock.fileno()], env=env)
    finally:
        child_sock.close()
    conn = Connection(parent_sock.detach())
    with contextlib.suppress(OSError):  # it died at once: seen as a death at start-up
        conn.send(list(sys.path))
        conn.send_bytes(payload)
    return _Worker(process, conn, owner_tag(run_id, process.pid), slot)


class ProcessExecutor(Executor):
    """Runs trials in `n_workers` local worker processes that share the study through its
    store (`n_workers=K` with K > 1, or `executor="processes"`). An in-memory study is run
    through a temporary SQLite copy, and every trial is brought back.

    With `gpus_per_trial=k`, each worker sees its own k GPUs through CUDA_VISIBLE_DEVICES
    (taken from this process's CUDA_VISIBLE_DEVICES, else from `nvidia-smi -L`), so
    n_workers x k devices must be visible; a replacement worker gets the devices of the
    worker it replaces.
    """

    def __init__(self, n_workers: int, gpus_per_trial: int | None = None) -> None:
        self.n_workers = check_n_workers(n_workers)
        self.gpus_per_trial = check_gpus_per_trial(gpus_per_trial)

    def __repr__(self) -> str:
        gpus = "" if self.gpus_per_trial is None else f", gpus_per_trial={self.gpus_per_trial}"
        return f"ProcessExecutor(n_workers={self.n_workers}{gpus})"

    def run(self, study: Study, objective: Objective, settings: RunSettings) -> None:
        if self.gpus_per_trial is not None:  # refuse before anything is copied or started
            device_slots(self.n_workers, self.gpus_per_trial)
        url = study.store.worker_url()
        if url is not None:
            self._run(study, objective, settings, url)
            return
        # workers cannot see this process's memory: run them on a temporary SQLite copy
        from hyperlaw.store.sql import SqlStore
        from hyperlaw.transfer import copy_study, sync_back

        with tempfile.TemporaryDirectory(prefix="hyperlaw-") as tmp:
            url = f"sqlite:///{tmp}/study.db"
            temp_store = SqlStore(url)
            try:
                copy_study(study.store, study.name, temp_store)
                temp_study = _reopen(study, temp_store)
                try:
                    self._run(temp_study, objective, settings, url)
                finally:
                    sync_back(temp_store, study)
            finally:
                temp_store.close()

    def _run(self, study: Study, objective: Objective, settings: RunSettings,
             storage_url: str) -> None:
        run_id = uuid.uuid4().hex[:12]
        job = WorkerJob(storage_url, study.name, objective, study.sampler, study.scheduler,
                        settings.catch, study.retry_stale, study.heartbeat_interval,
                        settings.max_consecutive_failures, run_id)
        try:
            payload = cloudpickle.dumps(job)
        except Exception as exc:
            raise WorkerError(
                f"the objective cannot be sent to worker processes ({type(exc).__name__}: "
                f"{exc}); make what it uses picklable (open files, locks and connections "
                "inside it), or use n_workers=1"
            ) from exc
        n_workers = self.n_workers
        devices: list[str | None] = [None] * n_workers
        if self.gpus_per_trial is not None:
            devices = list(device_slots(n_workers, self.gpus_per_trial))
        pool = _Pool(study, settings, n_workers, lambda slot: _spawn(
            payload, _worker_env(n_workers, devices[slot]), run_id, slot), run_id)
        pool.run()


def _reopen(study: Study, store: Store) -> Study:
    from hyperlaw.study import load_study

    return load_study(study.name, store, sampler=study.sampler, scheduler=study.scheduler,
                      retry_stale=study.retry_stale, heartbeat_interval=study.heartbeat_interval)


class _Pool:
    """The parent's side: tickets, messages, deaths and replacements."""

    def __init__(self, study: Study, settings: RunSettings, n_workers: int,
                 spawn: Callable[[int], _Worker], run_id: str) -> None:
        self.study = study
        self.settings = settings
        self.budget = settings.budget
        self.n_workers = n_workers
        self.spawn = spawn
        self.run_id = run_id
        self.workers: dict[Connection, _Worker] = {}
        self.respawns: list[tuple[float, int]] = []  # (when, slot) of replacements due
        self.deaths: list[str] = []  # since a trial last reached an outcome
        self.max_deaths = max_deaths(n_workers)
        self.fatal: list[tuple[Any, ...]] = []
        self.exhausted = False  # a worker found nothing left to start
        self.died = False  # a worker died during the run (it may have left a trial running)

    def run(self) -> None:
        try:
            for slot in range(self.n_workers):
                self._add(self.spawn(slot))
            while self.workers or (self.respawns and not self.budget.stopped):
                self._step()
        except BaseException as exc:
            self.budget.stopped = True
            why = ("interrupted (KeyboardInterrupt)" if isinstance(exc, KeyboardInterrupt)
                   else f"the run stopped ({type(exc).__name__} in the parent process)")
            _interrupt(self.study, list(self.workers.values()), why)
            try:
                self._fail_orphans(why)
            except Exception as cleanup:  # the original error matters more
                log.warning("trials of stopped workers may stay RUNNING: %s", cleanup)
            raise
        self.study.reload_space()
        if self.died:
            self._fail_orphans("its worker process ended before finishing it")
        self._raise_fatal()
        self._check_delivered()

    def _add(self, worker: _Worker) -> None:
        self.workers[worker.conn] = worker

    def _step(self) -> None:
        timeout = 1.0
        if self.respawns:
            timeout = min(timeout, max(0.0, min(self.respawns)[0] - time.monotonic()))
        # `wait` returns those of the objects given that are ready: here, connections
        for conn in cast(list[Connection], wait(list(self.workers), timeout=timeout)):
            worker = self.workers[conn]
            try:
                messages = conn.recv()
            except (EOFError, OSError):
                self._gone(worker)
                continue
            worker.trial = _running_after(messages, worker.trial)  # first: Ctrl-C
            for message in messages:
                self._handle(worker, message)
        now = time.monotonic()
        due = [slot for when, slot in self.respawns if when <= now]
        self.respawns = [(when, slot) for when, slot in self.respawns if when > now]
        for slot in due:
            if self.budget.can_grant():
                self._add(self.spawn(slot))

    def _handle(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "want":
            granted = self.budget.take()
            worker.held += granted
            with contextlib.suppress(OSError):  # it exited after asking ahead (refunded)
                worker.conn.send(granted)
        elif kind == "done":
            _, number, state, value = message
            self._deliver(worker, number, TrialState(state), value)
        elif kind == "refund":
            worker.held -= message[1]
            self.budget.refund(message[1])
        elif kind == "ready":
            worker.ready = True
        elif kind == "exhausted":
            self.exhausted = True
        elif kind in ("fatal", "cannot_start"):
            self.budget.stopped = True
            self.fatal.append(message)

    def _deliver(self, worker: _Worker, number: int, state: TrialState,
                 value: float | None) -> None:
        """Trial `number` reached an outcome of the objective's own: its ticket is spent."""
        worker.held -= 1
        self.deaths.clear()
        self.settings.delivered(self.study, number, state, value)

    def _gone(self, worker: _Worker) -> None:
        """A worker's socket closed: reap it, settle its trials and tickets, replace it."""
        del self.workers[worker.conn]
        code = worker.process.wait()
        worker.conn.close()
        if code == INTERRUPTED:
            # Ctrl-C reached the workers: stop the run even if this process's own
            # KeyboardInterrupt was lost (raised inside a finalizer, say)
            raise KeyboardInterrupt from None
        if code != 0:
            self.died = True
            self._settle(worker, code)
        self.budget.refund(worker.held)  # tickets whose trial reached no outcome
        worker.held = 0
        if code != 0 and not self.budget.stopped:
            self._count_death(worker, code)
        # a worker that found nothing to start is not replaced; one that died always is
        if self.budget.can_grant() and (code != 0 or not self.exhausted) and \
                len(self.workers) + len(self.respawns) < self.n_workers:
            self.respawns.append((time.monotonic() + respawn_delay(len(self.deaths)),
                                  worker.slot))

    def _settle(self, worker: _Worker, code: int) -> None:
        """Deliver the outcome a dead worker recorded but did not report, and fail as stale
        the trials it left running, announced or not."""
        study = self.study
        numbers: set[int] = set()
        if worker.trial is not None:
            record = study.store.get_trial(study.id, worker.trial)
            if record.state is TrialState.RUNNING:
                numbers.add(record.number)
            elif record.state.is_finished and not record.system_attrs.get(STALE):
                self._deliver(worker, record.number, record.state, record.value)
        if worker.ready:
            numbers.update(t.number for t in study.get_trials([TrialState.RUNNING])
                           if t.system_attrs.get(WORKER) == worker.tag)
        if not numbers:
            return
        failed = study.fail_trials_of_dead_worker(
            sorted(numbers), f"worker process {worker.process.pid} died ({_how(code)})")
        if failed:
            log.warning("worker %d died (%s) running trial(s) %s; marked failed%s",
                        worker.process.pid, _how(code), failed,
                        " and queued again" if study.retry_stale else "")

    def _count_death(self, worker: _Worker, code: int) -> None:
        if not worker.ready and code > 0:  # not killed: it failed before it could say why
            self.budget.stopped = True
            self.fatal.append(("deaths", None, (
                f"a worker process of study {self.study.name!r} could not start: it exited "
                f"with code {code} before it opened the study (its stderr above says why; "
                f"can `{sys.executable} -m hyperlaw.executors.spawn` import hyperlaw?)")))
            return
        when = (f"running trial #{worker.trial}" if worker.trial is not None
                else "between trials" if worker.ready else "at start-up")
        self.deaths.append(f"pid {worker.process.pid} {when} ({_how(code)})")
        if len(self.deaths) < self.max_deaths:
            return
        self.budget.stopped = True
        self.fatal.append(("deaths", None, (
            f"study {self.study.name!r}: {len(self.deaths)} worker processes died one after "
            f"another without a trial finishing: {'; '.join(self.deaths[-4:])}. Something "
            "kills them (the out-of-memory killer, a signal, a crash in native code: their "
            "stderr above may say which); fix that, or run with fewer workers")))

    def _fail_orphans(self, why: str) -> None:
        """Fail the trials this run's workers started that are still RUNNING."""
        prefix = f"{self.run_id}:"
        numbers = [t.number for t in self.study.get_trials([TrialState.RUNNING])
                   if str(t.system_attrs.get(WORKER, "")).startswith(prefix)]
        if numbers:
            self.study.fail_trials_of_dead_worker(numbers, why)

    def _raise_fatal(self) -> None:
        if not self.fatal:
            return
        kind, blob, text, *detail = self.fatal[0]
        if kind == "deaths":
            raise WorkerError(text)
        exc = _unpickle(blob)
        if kind == "cannot_start":
            raise WorkerError(
                f"a worker process of study {self.study.name!r} could not start: {detail[0]} "
                f"failed with {_last_line(text)}. The worker's traceback:\n{text}") from exc
        if exc is None:
            raise WorkerError(f"a worker process stopped the study:\n{text}")
        exc.add_note(f"raised in a hyperlaw worker process:\n{text}")
        raise exc

    def _check_delivered(self) -> None:
        """The promise: every ticket of `n_trials` was spent on an outcome, unless the run
        was stopped, timed out, or found nothing left to start."""
        budget = self.budget
        if budget.remaining and not (budget.stopped or budget.timed_out or self.exhausted):
            raise WorkerError(
                f"study {self.study.name!r}: the worker processes ended with "
                f"{budget.remaining} of the trials asked for not run; this is a bug in "
                "hyperlaw, please report it (run optimize again to run them)")


def _how(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "an unknown error"


def _running_after(messages: list[tuple[Any, ...]], running: int | None) -> int | None:
    """The trial a worker runs once these messages are taken into account (set before the
    messages are handled, so an interrupt meanwhile still knows which trial to fail)."""
    for message in messages:
        if message[0] == "start":
            running = message[1]
        elif message[0] == "done":
            running = None
    return running


def _interrupt(study: Study, workers: list[_Worker], why: str) -> None:
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
            study.fail_trials_of_dead_worker([worker.trial], why)


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
