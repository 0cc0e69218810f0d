"""PostgreSQL specifics of the SQL store: the driver, connection settings, which errors mean
"the server is away, wait and reconnect" and which mean "give up now".

psycopg (version 3) is the driver; `postgresql://` and `postgres://` URLs are routed to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, cast

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


#: raises a session's `synchronous_commit` of "off" (no wait for the disk) or "local" (no wait
#: for the synchronous standbys an administrator configured) to "on"; "remote_write", "on"
#: and "remote_apply" are kept, since each waits for the local disk
_DURABLE_SESSION = ("SELECT set_config('synchronous_commit', 'on', false) WHERE "
                    "current_setting('synchronous_commit') IN ('off', 'local')")


def make_durable(engine: sa.Engine) -> None:
    """Every new connection of `engine` commits synchronously: a commit returns only once its
    WAL is on the server's disk (and on the synchronous standbys, if any), whatever
    `synchronous_commit` the server, database or role sets (see `_DURABLE_SESSION`).

    A write transaction holds its study's counters row lock through that wait, so a study's
    writers queue behind one another's fsync; in exchange a commit is visible to other
    processes only once it is durable, so no reader ever sees a write that a crash of the
    server then takes away.
    """
    if engine.dialect.driver != "psycopg":
        return

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.autocommit = True  # one round trip, no transaction
        dbapi_conn.execute(_DURABLE_SESSION)
        dbapi_conn.autocommit = False


def advisory_lock(conn: sa.Connection, key: int) -> None:
    """Hold a transaction-scoped advisory lock (serializes schema creation between
    processes that start at once on an empty database)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


class Pipelined:
    """A write transaction of two statements in two network round trips, for the hot path.

    The first statement runs right after `BEGIN`; from its row `then` builds the second
    statement, which is sent with `COMMIT` in the same round trip. The study's row lock is
    therefore held for one client turnaround (and the commit's wait for the disk) instead of
    three turnarounds (statement, statement, commit), which is what limits many workers on few
    cores. `then` returns None to roll the transaction back instead (an uncommon case the
    caller handles on the ordinary path). `commit_sent` is true once the commit may have
    landed, and `outcome` is what the caller reports when it did (set by `then`). psycopg
    errors, those of the clean-up after a lost connection included, come out as SQLAlchemy's
    `DBAPIError`, as from an ordinary statement.
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
        try:
            raw.autocommit = True  # the transaction is spelled out, inside the pipeline
            try:
                return self._send(raw, first, then)
            finally:
                _end_transaction(raw)
        except psycopg.Error as exc:
            raise driver_error(conn, exc, first[0]) from None

    def _send(self, raw: Any, first: tuple[str, dict[str, Any]],
              then: Callable[[tuple[Any, ...]], tuple[str, dict[str, Any]] | None],
              ) -> tuple[Any, ...] | None:
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
        return row


def _end_transaction(raw: Any) -> None:
    """Roll back what was left open and leave autocommit mode; on a connection that is gone
    this raises psycopg's error (the original one, if any, chained to it)."""
    import psycopg

    if raw.closed or raw.broken:
        return
    if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raw.rollback()
    raw.autocommit = False


def driver_error(conn: sa.Connection, exc: Exception,
                 statement: str | None = None) -> sa.exc.DBAPIError:
    """`exc`, raised by psycopg itself rather than through SQLAlchemy, as SQLAlchemy's
    `DBAPIError`; the connection is invalidated (so the pool opens a new one) when it is
    broken or the error is about the connection rather than the statement."""
    import psycopg

    client_side = (getattr(exc, "sqlstate", None) is None
                   and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)))
    if conn.invalidated:
        broken = True
    else:
        raw = conn.connection.driver_connection
        broken = raw is None or raw.closed or raw.broken or client_side
        if broken:
            conn.invalidate(exc)
    # `exc` is a psycopg error, so `instance` wraps it as a `DBAPIError`
    return cast(sa.exc.DBAPIError, sa.exc.DBAPIError.instance(
        statement, None, exc, psycopg.Error, connection_invalidated=broken))
