"""What a local worker process runs (started as `python -m hyperlaw.executors.spawn FD`).

The parent sends the import path and a cloudpickled job over the socket FD; the worker opens
the study from its storage URL and runs trials while the parent grants tickets. Nothing is
shared with the parent but that socket and the store.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hyperlaw.study import Study


@dataclass
class WorkerJob:
    """Everything a worker needs, cloudpickled by the parent."""

    storage_url: str
    study_name: str
    objective: Any
    sampler: Any
    scheduler: Any
    catch: tuple[type[BaseException], ...]
    retry_stale: int
    heartbeat_interval: float
    max_consecutive_failures: int | None
    run_id: str = ""  # with the pid, names the worker in the trials it starts (`owner_tag`)


def owner_tag(run_id: str, pid: int) -> str:
    """How the trials a worker process starts name it (`Store.owner`)."""
    return f"{run_id}:{pid}"


class _Outbox:
    """Messages to the parent, sent as one list: a trial's outcome, the start of the next one
    and the next ticket request travel together (one send per trial instead of three)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._pending: list[tuple[Any, ...]] = []

    def post(self, *message: Any) -> None:
        self._pending.append(message)

    def flush(self) -> None:
        if self._pending:
            self.conn.send(self._pending)
            self._pending = []


class _ParentTickets:
    """Tickets granted by the parent. The next one is asked for as soon as one is granted, so
    a worker never waits for the parent between trials (every granted ticket is used: the
    worker reads each answer it asked for before it stops)."""

    def __init__(self, outbox: _Outbox) -> None:
        self._outbox = outbox
        self._asked = False

    def take(self) -> bool:
        if not self._asked:
            self._outbox.post("want")
        self._outbox.flush()
        granted = bool(self._outbox.conn.recv())
        self._asked = granted
        if granted:
            self._outbox.post("want")  # sent with the next start at the latest
        return granted

    def refund(self, tickets: int) -> None:
        self._outbox.post("refund", tickets)


def _fatal(conn: Connection, exc: BaseException, kind: str = "fatal",
           *detail: str) -> None:
    text = "".join(traceback.format_exception(exc)).strip()
    try:
        import cloudpickle

        blob: bytes | None = cloudpickle.dumps(exc)
    except Exception:
        blob = None
    conn.send([(kind, blob, text, *detail)])


class _CannotStart(Exception):
    """Start-up failed at `stage`; the parent raises a WorkerError naming it."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage


#: a worker process's exit code after a Ctrl-C (SIGINT) stopped it
INTERRUPTED = 130


class _Interrupts:
    """SIGINT raises KeyboardInterrupt on the first signal only, so that the write recording
    the interrupted trial is not itself interrupted by a second one (terminal and parent).
    While a trial is being started and announced to the parent (`hold` .. `release`), the
    interrupt waits for `release`: a trial started in the store but never announced would
    stay RUNNING after the parent stopped the workers."""

    def __init__(self) -> None:
        self._fired = False
        self._held = False
        self._pending = False
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._fired:
            return
        self._fired = True
        if self._held:
            self._pending = True
            return
        raise KeyboardInterrupt

    def hold(self) -> None:
        self._held = True

    def release(self) -> None:
        self._held = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt


def _open(conn: Connection) -> tuple[WorkerJob, Study]:
    """Read the job and open its study; a failure is a _CannotStart naming the step."""
    try:
        import cloudpickle

        job: WorkerJob = cloudpickle.loads(conn.recv_bytes())
    except (EOFError, OSError):
        raise
    except Exception as exc:
        raise _CannotStart(
            "unpickling the objective, sampler and scheduler sent by the parent (what they "
            "use must be importable in a fresh interpreter with the parent's sys.path)"
        ) from exc
    from hyperlaw.study import load_study

    try:
        study = load_study(job.study_name, job.storage_url, sampler=job.sampler,
                           scheduler=job.scheduler, retry_stale=job.retry_stale,
                           heartbeat_interval=job.heartbeat_interval)
    except Exception as exc:
        raise _CannotStart(f"opening study {job.study_name!r} in its storage (can this "
                           "machine reach it?)") from exc
    study.store.owner = owner_tag(job.run_id, os.getpid())
    return job, study


def main(fd: int) -> int:
    interrupts = _Interrupts()
    conn = Connection(fd)
    sys.path[:0] = [p for p in conn.recv() if p not in sys.path]
    try:
        from hyperlaw.executors.loop import run_worker

        job, study = _open(conn)
        outbox = _Outbox(conn)
        outbox.post("ready")  # sent with the first ticket request

        def on_start(number: int) -> None:  # at once: the parent must know what runs here
            _test_kill_point(number)
            outbox.post("start", number)
            outbox.flush()

        try:
            exhausted = run_worker(
                study, job.objective, _ParentTickets(outbox), job.catch,
                job.max_consecutive_failures, on_start=on_start,
                on_done=lambda r: outbox.post("done", r.number, r.state.value, r.value),
                starting=interrupts)
            if exhausted:
                outbox.post("exhausted")
        finally:
            outbox.flush()
    except KeyboardInterrupt:
        return INTERRUPTED
    except (EOFError, BrokenPipeError):  # the parent is gone
        return 1
    except BaseException as exc:
        try:
            if isinstance(exc, _CannotStart) and exc.__cause__ is not None:
                _fatal(conn, exc.__cause__, "cannot_start", exc.stage)
            else:
                _fatal(conn, exc)
        except (OSError, pickle.PicklingError):
            traceback.print_exc()
        return 1
    return 0


#: test-only, "NUMBER:FLAG_PATH": a worker SIGKILLs itself after the store write that starts
#: a trial numbered NUMBER or more and before it tells the parent; once (the worker that
#: creates FLAG_PATH). Nothing else can stop a worker inside that window on purpose.
KILL_BEFORE_ANNOUNCING = "HYPERLAW_TEST_KILL_BEFORE_ANNOUNCING"


def _test_kill_point(number: int) -> None:
    spec = os.environ.get(KILL_BEFORE_ANNOUNCING)
    if not spec:
        return
    first, _, flag = spec.partition(":")
    if number < int(first):
        return
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)

