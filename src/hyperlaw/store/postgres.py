"""PostgreSQL specifics of the SQL store: the driver, connection settings, which errors mean
"the server is away, wait and reconnect" and which mean "give up now".

psycopg (version 3) is the driver; `postgresql://` and `postgres://` URLs are routed to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import sqlalchemy as sa

DRIVER = "postgresql+psycopg"

#: driver settings used unless the URL's query string sets them
CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 10,  # a silent host must not hang a worker forever
    "application_name": "hyperlaw",
    "keepalives": 1,  # notice a dead server on an idle connection
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}

#: SQLSTATEs of a server going away or not ready yet (class 08, operator intervention)
_DOWN_STATES = ("57P01", "57P02", "57P03", "57P05")
#: SQLSTATEs of a transaction the server rolled back and that is safe to run again
_BUSY_STATES = ("40001", "40P01", "53300", "55P03")
#: connection failures that waiting will not cure
_FATAL_MESSAGES = ("password authentication failed", "no password supplied", "does not exist",
                   "no pg_hba.conf entry", "permission denied", "authentication method",
                   "ssl is not enabled", "invalid connection option", "invalid dsn")

Retry = Literal["busy", "down"]


def is_postgres(url: str) -> bool:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    return scheme in ("postgresql", "postgres")


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` become `postgresql+psycopg://`; an explicit driver
    (`postgresql+psycopg2://`) is kept."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    base, plus, driver = scheme.partition("+")
    if base.lower() not in ("postgresql", "postgres"):
        return url
    return f"{DRIVER if not plus else 'postgresql+' + driver}://{rest}"


def connect_args(url: sa.URL) -> dict[str, Any]:
    """Driver settings for `url`: the defaults above, unless its query string overrides them."""
    if url.get_driver_name() != "psycopg":
        return {}
    return {k: v for k, v in CONNECT_DEFAULTS.items() if k not in url.query}


def retry_kind(exc: sa.exc.DBAPIError) -> Retry | None:
    """"down" when the server is unreachable or restarting, "busy" when it rolled the
    transaction back for concurrency, None when retrying cannot help."""
    if exc.connection_invalidated:
        return "down"
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state:
        if state.startswith("08") or state in _DOWN_STATES:
            return "down"
        return "busy" if state in _BUSY_STATES else None
    if not isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return None
    message = str(orig).lower()
    if any(text in message for text in _FATAL_MESSAGES):
        return None
    return "down"  # refused, reset, closed, timed out, starting up, shutting down


def async_commit() -> sa.ColumnElement[Any]:
    """An expression that, evaluated in a statement, lets the current transaction commit
    without waiting for its WAL to reach the disk (`synchronous_commit` is set for this
    transaction only).

    Every write transaction holds its study's counters row lock until it ends; waiting for
    the disk inside it would serialize every writer of the study behind one fsync each.
    Instead the commit returns at once and `flush_wal` then waits for the disk outside the
    lock, where the waits of concurrent writers share one fsync (group commit). A write is
    reported done only after `flush_wal`, so every acknowledged write is durable.
    """
    return sa.func.set_config("synchronous_commit", "off", True)


def flush_wal(conn: sa.Connection) -> None:
    """Wait until the WAL up to this connection's last commit is on disk.

    A one-statement transaction that takes a transaction id commits with the server's
    `synchronous_commit`, which flushes the WAL up to its own commit record, hence up to
    every commit before it.
    """
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.autocommit = True
    try:
        raw.execute("SELECT pg_current_xact_id()")
    finally:
        raw.autocommit = False


def advisory_lock(conn: sa.Connection, key: int) -> None:
    """Hold a transaction-scoped advisory lock (serializes schema creation between
    processes that start at once on an empty database)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


#: a one-statement implicit transaction that takes a transaction id, so that its commit (with
#: the server's `synchronous_commit`) flushes the WAL up to every commit before it
_FLUSH_QUERY = "SELECT pg_current_xact_id()"


class Pipelined:
    """A write transaction of two statements in two network round trips, for the hot path.

    The first statement runs right after `BEGIN`; from its row `then` builds the second
    statement, which is sent with `COMMIT` and the WAL flush (see `flush_wal`) in the same
    round trip. The study's row lock is therefore held for one client turnaround instead of
    three (statement, statement, commit), which is what limits many workers on few cores.
    `then` returns None to roll the transaction back instead (an uncommon case the caller
    handles on the ordinary path). `commit_sent` is true once the commit may have landed, and
    `outcome` is what the caller reports when it did (set by `then`). psycopg errors come out
    as SQLAlchemy's `DBAPIError`, as from an ordinary statement.
    """

    def __init__(self) -> None:
        self.commit_sent = False
        self.outcome: Any = None

    def run(self, conn: sa.Connection, first: tuple[str, dict[str, Any]],
            then: Callable[[tuple[Any, ...]], tuple[str, dict[str, Any]] | None],
            ) -> tuple[Any, ...] | None:
        """The row of the first statement, or None when `then` asked for a rollback."""
        import psycopg

        raw = conn.connection.driver_connection
        assert raw is not None
        raw.autocommit = True  # the transaction is spelled out, inside the pipeline
        try:
            with raw.pipeline() as pipeline, raw.cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(first[0], first[1], prepare=True)
                pipeline.sync()
                row = cursor.fetchone()
                second = None if row is None else then(row)
                if second is None:
                    cursor.execute("ROLLBACK")
                    return None
                cursor.execute(second[0], second[1], prepare=True)
                self.commit_sent = True
                cursor.execute("COMMIT")
                cursor.execute(_FLUSH_QUERY)
            return row
        except psycopg.Error as exc:
            broken = raw.closed or raw.broken
            if broken:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(first[0], None, exc, psycopg.Error,
                                             connection_invalidated=broken) from None
        finally:
            if not (raw.closed or raw.broken):
                if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    raw.rollback()
                raw.autocommit = False
