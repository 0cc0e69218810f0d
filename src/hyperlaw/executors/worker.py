"""What a local worker process runs (started as `python -m hyperlaw.executors.spawn FD`).

The parent sends the import path and a cloudpickled job over the socket FD; the worker opens
the study from its storage URL and runs trials while the parent grants tickets. Nothing is
shared with the parent but that socket and the store.
"""

from __future__ import annotations

import pickle
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any


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


def _fatal(conn: Connection, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc)).strip()
    try:
        import cloudpickle

        blob: bytes | None = cloudpickle.dumps(exc)
    except Exception:
        blob = None
    conn.send([("fatal", blob, text)])


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


def main(fd: int) -> int:
    interrupts = _Interrupts()
    conn = Connection(fd)
    sys.path[:0] = [p for p in conn.recv() if p not in sys.path]
    try:
        import cloudpickle

        from hyperlaw.executors.loop import run_worker
        from hyperlaw.study import load_study

        job: WorkerJob = cloudpickle.loads(conn.recv_bytes())
        study = load_study(job.study_name, job.storage_url, sampler=job.sampler,
                           scheduler=job.scheduler, retry_stale=job.retry_stale,
                           heartbeat_interval=job.heartbeat_interval)
        outbox = _Outbox(conn)

        def on_start(number: int) -> None:  # at once: the parent must know what runs here
            outbox.post("start", number)
            outbox.flush()

        try:
            run_worker(study, job.objective, _ParentTickets(outbox), job.catch,
                       job.max_consecutive_failures, on_start=on_start,
                       on_done=lambda r: outbox.post("done", r.number, r.state.value, r.value),
                       starting=interrupts)
        finally:
            outbox.flush()
    except KeyboardInterrupt:
        return INTERRUPTED
    except (EOFError, BrokenPipeError):  # the parent is gone
        return 1
    except BaseException as exc:
        try:
            _fatal(conn, exc)
        except (OSError, pickle.PicklingError):
            traceback.print_exc()
        return 1
    return 0

