"""The SQL store (SQLAlchemy Core). SQLite is the embedded default, PostgreSQL the shared
server; the SQL is dialect-neutral (PostgreSQL details live in `postgres.py`).

Every write transaction first bumps the study's counters row (`UPDATE ... RETURNING`), which
serializes the study's writers: trial numbers are gap-free and sequence numbers are committed
in order, so readers catch up by cursor. SQLite is opened in WAL mode (each write's WAL is
fsynced after its commit, outside the lock, before it is reported done), write
transactions start with `BEGIN IMMEDIATE` (so two writers never deadlock on a lock upgrade),
and a transaction that meets a busy database is retried with jittered exponential backoff
instead of failing. PostgreSQL commits return once the WAL is on the server's disk (see
`postgres.make_durable`), and PostgreSQL reads run in REPEATABLE READ snapshots.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import random
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from hyperlaw.errors import DuplicateStudyError, SchemaVersionError, StorageError
from hyperlaw.lineage import STALE
from hyperlaw.store import postgres, schema, sqlite
from hyperlaw.store.base import (
    Changes,
    ColumnarChanges,
    ParamsFiller,
    ParamsOrMaker,
    Report,
    Store,
    StudyInfo,
    StudySummary,
    objective_matrix,
    objectives_from_json,
)
from hyperlaw.store.common import (
    check_url,
    extras_of,
    mask_url,
    missing_study_error,
    not_running_error,
    owned,
    retry_attrs,
)
from hyperlaw.store.schema import meta, metadata, reports, studies, trials
from hyperlaw.trial import TrialExtras, TrialRecord, TrialState, violation_of

log = logging.getLogger(__name__)

T = TypeVar("T")

#: "create": create the database and its tables if missing, upgrade an older schema;
#: "open": use an existing hyperlaw database (read-only if the file cannot be written);
#: "read": read an existing hyperlaw database, never writing to it
OpenMode = Literal["create", "open", "read"]

_RUNNING = TrialState.RUNNING.value
_WAITING = TrialState.WAITING.value
_STATES = {s.value: s for s in TrialState}
_SCHEMA_LOCK_KEY = 0x6879706572  # any constant shared by every hyperlaw process
_RECONNECT_ENV = "HYPERLAW_RECONNECT_TIMEOUT"
_FIRST_CONTACT_TIMEOUT = 5.0  # seconds a store that never connected retries before failing
_PIPELINED = "hyperlaw_pipelined"  # connection-info entry: the attempt's `postgres.Pipelined`
_TRIAL_COLUMNS = (trials.c.number, trials.c.state, trials.c.params, trials.c.value,
                  trials.c.user_attrs, trials.c.system_attrs, trials.c.error,
                  trials.c.created_at, trials.c.started_at, trials.c.finished_at,
                  trials.c.objective_values, trials.c.constraints, trials.c.cost)
#: trial columns that only trials with several objectives, constraints or cost fill
_EXTRA_COLUMNS = ("objective_values", "constraints", "violation", "cost")

# Hot-path statements, built once: building a statement per call costs more than running it.
_SID: sa.BindParameter[int] = sa.bindparam("sid")
_CURSOR: sa.BindParameter[int] = sa.bindparam("cursor")
_HEAD_SEQ: sa.BindParameter[int] = sa.bindparam("head")
_BUMP = (sa.update(studies).where(studies.c.id == _SID)
         .values(next_seq=studies.c.next_seq + 1,
                 next_number=studies.c.next_number + sa.bindparam("numbers")))
_BUMP_RETURNING = _BUMP.returning(studies.c.next_seq, studies.c.next_number)
_INSERT_TRIAL = sa.insert(trials)
_INSERT_TRIAL_INLINE = _INSERT_TRIAL.inline()  # no RETURNING of the id
_UNDO_NUMBER = (sa.update(studies).where(studies.c.id == _SID)
                .values(next_number=studies.c.next_number - 1))
# PostgreSQL: allocate a number, finish a trial and look for a queued one in one statement, so
# that the study's lock is held for two round trips per trial instead of four.
_PG_FINISH_BUMP = sa.text(f"""
WITH bump AS (
    UPDATE {studies.name} SET next_seq = next_seq + 1, next_number = next_number + 1
    WHERE id = :sid
    RETURNING next_seq, next_number
), fin AS (
    UPDATE {trials.name}
    SET state = :new_state, value = :new_value, error = :new_error, finished_at = :t,
        seq = (SELECT next_seq FROM bump)
    WHERE study_id = :sid AND number = :num AND state = '{TrialState.RUNNING.value}'
    RETURNING number, state, params, value, user_attrs, system_attrs, error, created_at,
              started_at, finished_at, objective_values, constraints, cost
)
SELECT bump.next_seq, bump.next_number,
       (SELECT min(number) FROM {trials.name}
        WHERE study_id = :sid AND state = '{TrialState.WAITING.value}') AS waiting,
       fin.*
FROM bump LEFT JOIN fin ON true
""")
_FINISH = (sa.update(trials)
           .where(trials.c.study_id == _SID, trials.c.number == sa.bindparam("num"),
                  trials.c.state == _RUNNING)
           .values(state=sa.bindparam("new_state"), value=sa.bindparam("new_value"),
                   error=sa.bindparam("new_error"), finished_at=sa.bindparam("t"),
                   seq=sa.bindparam("new_seq"))
           .returning(*_TRIAL_COLUMNS))
_INSERT_REPORT = sa.insert(reports)
# a report, inserted only if its trial is running: one round trip under the study's lock
_NUM: sa.BindParameter[int] = sa.bindparam("num")
_RUNNING_TRIAL = sa.exists().where(trials.c.study_id == _SID, trials.c.number == _NUM,
                                   trials.c.state == _RUNNING)
_REPORT_BINDS = (_SID, _NUM, sa.bindparam("step", type_=sa.BigInteger),
                 sa.bindparam("value", type_=sa.Double), sa.bindparam("seq", type_=sa.BigInteger))
_INSERT_REPORT_IF_RUNNING = sa.insert(reports).from_select(
    ["study_id", "number", "step", "value", "seq"],
    sa.select(*_REPORT_BINDS).where(_RUNNING_TRIAL))
# the same with every objective's value (studies of several objectives)
_INSERT_REPORTS_IF_RUNNING = sa.insert(reports).from_select(
    ["study_id", "number", "step", "value", "seq", "objective_values"],
    sa.select(*_REPORT_BINDS, sa.bindparam("values", type_=sa.Text)).where(_RUNNING_TRIAL))
_HEAD = sa.select(studies.c.next_seq).where(studies.c.id == _SID)
# the oldest queued trial: a seek in ix_hyperlaw_trials_state, never a scan of the study
_OLDEST_WAITING = (sa.select(trials.c.number, trials.c.params, trials.c.system_attrs)
                   .where(trials.c.study_id == _SID, trials.c.state == _WAITING)
                   .order_by(trials.c.number).limit(1))
_CHANGED_TRIALS = (sa.select(*_TRIAL_COLUMNS)
                   .where(trials.c.study_id == _SID, trials.c.seq > _CURSOR,
                          trials.c.seq <= _HEAD_SEQ)
                   .order_by(trials.c.seq))
_NEW_REPORTS = (sa.select(reports.c.number, reports.c.step, reports.c.value,
                          reports.c.objective_values)
                .where(reports.c.study_id == _SID, reports.c.seq > _CURSOR,
                       reports.c.seq <= _HEAD_SEQ)
                .order_by(reports.c.seq))


#: tables of Optuna's RDB storage by which an Optuna database is recognized
_OPTUNA_TABLES = frozenset({"studies", "trials", "trial_values", "version_info"})
_OPTUNA_STUDY_NAMES = sa.text("SELECT study_name FROM studies ORDER BY study_id LIMIT 6")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***."""
    return mask_url(url)


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise StorageError(
            f"{what} must be JSON-serializable (str, int, finite float, bool, None, lists and "
            f"dicts of them): {exc}; convert the value before storing it"
        ) from None


class ReachedUrl(str):
    """A storage URL handed out by a process that reached its server (`worker_url`). A store
    opened from it waits out an outage at its first contact as at any later one, so that a
    worker process started during a database restart joins the study when the server is
    back; a URL typed by the user fails after 5 s instead. Pickled as itself, it reaches
    worker processes and Ray actors unchanged; as a string it is the URL."""

    __slots__ = ()


class SqlStore(Store):
    """A study store in any SQLAlchemy database; many processes may share one.

    A busy database (SQLite's lock) is waited for up to `lock_timeout` seconds. A server that
    goes away (a dropped connection, a PostgreSQL restart) is waited for with backoff up to
    `reconnect_timeout` seconds (default: the HYPERLAW_RECONNECT_TIMEOUT environment variable,
    else 300), after which the operation raises StorageError. A server never reached yet is
    retried for at most 5 s, so that a mistyped host fails fast; a store opened from
    `worker_url()` (in a worker process) waits out outages from its first contact on, since
    the process that handed out the URL reached the server. A write whose commit was cut off
    is checked before it is run again, so it lands exactly once.

    `mode` (see `OpenMode`) says whether opening may create the database and its tables
    ("create"), or needs an existing hyperlaw database that it only reads ("read") or may
    also write ("open").
    """

    def __init__(self, url: str, *, lock_timeout: float = 120.0,
                 reconnect_timeout: float | None = None,
                 engine_kwargs: Mapping[str, Any] | None = None,
                 mode: OpenMode = "create") -> None:
        reached = isinstance(url, ReachedUrl)
        check_url(url)
        url = postgres.normalize_url(url)
        self.url = redact_url(url)
        self._full_url = url
        self.mode = mode
        self._lock_timeout = lock_timeout
        self._reconnect_timeout = _reconnect_timeout(reconnect_timeout)
        self._outages: deque[tuple[float, float]] = deque(maxlen=64)
        self._connected = reached  # else from the first transaction that succeeds
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError as exc:
            raise StorageError(
                f"cannot parse storage URL {self.url!r}: {exc}; use e.g. "
                "'sqlite:///hyperlaw.db' or 'postgresql://user@host/db'"
            ) from None
        self._password = parsed.password
        self._is_sqlite = parsed.get_backend_name() == "sqlite"
        self._is_postgres = parsed.get_backend_name() == "postgresql"
        kwargs: dict[str, Any] = dict(engine_kwargs or {})
        self._sqlite_path = sqlite.database_path(parsed) if self._is_sqlite else None
        if self._is_sqlite:
            kwargs.setdefault("connect_args", {"timeout": sqlite.CONNECT_TIMEOUT,
                                               "check_same_thread": False})
            if self._sqlite_path is None:
                kwargs.setdefault("poolclass", StaticPool)
                self.mode = "create"  # nothing outlives the store: there is nothing to spare
            elif mode != "create":
                sqlite.require_file(self._sqlite_path, self.url)
                if mode == "read" or not sqlite.writable(self._sqlite_path):
                    self.mode = "read"
                    kwargs.setdefault("creator", sqlite.reader(self._sqlite_path, self.url))
        elif self._is_postgres:
            kwargs.setdefault("connect_args", postgres.connect_args(parsed))
        try:
            self._engine = sa.create_engine(parsed, **kwargs)
        except (ImportError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise StorageError(
                f"cannot open storage {self.url!r}: {exc}; supported URLs are "
                "'sqlite:///path.db' and 'postgresql://...' (install hyperlaw[postgres])"
            ) from None
        self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        if self._is_sqlite:
            _configure_sqlite(self._engine, wal=self.mode == "create")
            self._read_engine = self._engine
        else:
            self._read_engine = self._engine.execution_options(isolation_level="REPEATABLE READ")
        if self._is_postgres:
            postgres.make_durable(self._engine)
        self._write_engine = self._engine.execution_options(hyperlaw_write=True)
        # SQLite commits without fsync (synchronous=NORMAL in WAL mode) and `_run` syncs the
        # WAL after the commit, outside the write lock, before the write is reported done:
        # every acknowledged write is on disk, and writers do not queue behind each fsync
        database = self._engine.url.database if self._is_sqlite else None
        self._wal_path = (f"{database}-wal" if database not in (None, "", ":memory:")
                          else None)
        self._refuse_optuna_file()
        self._init_schema()

    # --- transactions --------------------------------------------------------------------
    def _run(self, engine: Engine, fn: Callable[[Connection], T],
             landed: Callable[[Connection, T], bool] | None = None) -> T:
        """Run `fn` in one transaction, waiting out busy databases and outages.

        When the connection drops during the commit, the write may or may not have landed:
        `landed(conn, result)` decides, in a fresh transaction, whether to return the result
        or run the write again. Without it, the write is run again (it must be idempotent).
        """
        patience = _Patience(self)
        while True:
            committing = False
            # PostgreSQL's hot path commits inside `fn` (see `_finish_and_start_pg`)
            pipelined = postgres.Pipelined() if self._is_postgres else None
            try:
                with engine.connect() as conn:
                    if pipelined is not None:
                        conn.info[_PIPELINED] = pipelined
                    try:
                        with conn.begin():
                            result = fn(conn)
                            committing = True
                    except self._dbapi_error as exc:  # from the driver's own cursor
                        raise self._driver_error(conn, exc) from None
                if engine is self._write_engine and self._wal_path is not None:
                    _sync_file(self._wal_path)
            except sa.exc.DBAPIError as exc:
                patience.wait(exc)
                if pipelined is not None and pipelined.commit_sent:
                    committing, result = True, pipelined.outcome
                if committing and landed is not None and self._read(
                        lambda conn: landed(conn, result)):  # noqa: B023 - called at once
                    patience.done()
                    return result
                continue
            patience.done()
            self._connected = True
            return result

    def _write(self, fn: Callable[[Connection], T],
               landed: Callable[[Connection, T], bool] | None = None) -> T:
        return self._run(self._write_engine, fn, landed)

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return self._run(self._read_engine, fn)

    def _driver_error(self, conn: Connection, exc: Exception) -> sa.exc.DBAPIError:
        """An error the driver raised outside SQLAlchemy, wrapped as SQLAlchemy would."""
        if self._is_postgres and conn.dialect.driver == "psycopg":
            return postgres.driver_error(conn, exc)
        # `exc` is an instance of the driver's error class, so this is never a bare
        # `StatementError` (what `instance` returns for foreign exceptions)
        return cast(sa.exc.DBAPIError,
                    sa.exc.DBAPIError.instance(None, None, exc, self._dbapi_error))

    def _retry_kind(self, exc: sa.exc.DBAPIError) -> str | None:
        if self._is_sqlite:
            message = str(exc.orig).lower()
            return "busy" if "locked" in message or "busy" in message else None
        if self._is_postgres:
            return postgres.retry_kind(exc)
        return "down" if exc.connection_invalidated else None

    def _scrub(self, text: str) -> str:
        """`text` without the password of the storage URL."""
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _storage_error(self, exc: Exception) -> StorageError:
        message = self._scrub(str(getattr(exc, "orig", exc)).strip())
        hint = "check that the server is reachable and the credentials are right"
        if _disk_full(exc, message):
            where = (f"the disk holding {self._sqlite_path!r}" if self._sqlite_path
                     else "the database server's disk")
            hint = (f"{where} refused the write (a full disk, a file-size limit or a device "
                    "error); free space and run again: this write was not recorded, every write "
                    "acknowledged before it is kept")
        elif self._is_sqlite:
            if "readonly" in message:
                hint = ("the database file, its directory or its mount is read-only here; "
                        "only reading works, or copy it somewhere writable")
            elif "unable to open" in message:
                hint = "check that the directory exists and is writable"
            elif "not a database" in message:
                hint = "point the storage at a hyperlaw database file or at a new path"
            elif "locked" in message or "busy" in message:
                hint = (f"another process held the database for more than {self._lock_timeout:g}"
                        " s; check for a stuck process")
        return StorageError(f"storage {self.url!r} failed: {message}; {hint}")

    def _note_outage(self, start: float, end: float) -> None:
        self._outages.append((start, end))

    def _unreachable_time_since(self, since: float) -> float:
        """Seconds after `since` during which this process could not reach the store."""
        return sum(max(0.0, end - max(start, since)) for start, end in list(self._outages))

    def _init_schema(self) -> None:
        """Create and upgrade the schema (mode "create"); otherwise only check that this is a
        hyperlaw database this version can use, writing nothing."""
        upgrading: list[int] = []  # the version an upgrade started from

        def init(conn: Connection) -> None:
            if self._is_postgres:
                postgres.advisory_lock(conn, _SCHEMA_LOCK_KEY)
            self._refuse_optuna(conn)
            metadata.create_all(conn, checkfirst=True)
            found = self._schema_version(conn)
            if found is None:
                conn.execute(sa.insert(meta).values(key="schema_version",
                                                    value=str(schema.SCHEMA_VERSION)))
            elif found < schema.SCHEMA_VERSION:
                upgrading.append(found)
                self._migrate(conn, found)

        def check(conn: Connection) -> int | None:
            self._refuse_optuna(conn)
            if not sa.inspect(conn).has_table(meta.name):
                where = (f"file {self._sqlite_path!r}" if self._sqlite_path
                         else f"storage {self.url!r}")
                raise StorageError(
                    f"{where} is not a hyperlaw database (it has no {meta.name} table); check "
                    "the storage URL (reading never adds hyperlaw's tables to a database)")
            return self._schema_version(conn)

        if self.mode == "create":
            self._upgrade(init, upgrading)
            return
        found = self._read(check)
        if found is not None and found < schema.SCHEMA_VERSION:
            if self.mode == "read":
                raise SchemaVersionError(
                    f"storage {self.url!r} has schema version {found}, older than this "
                    f"hyperlaw's {schema.SCHEMA_VERSION}, and is opened read-only; open it for "
                    "writing once (create_study(name, storage=..., load_if_exists=True)) to "
                    "upgrade it")
            self._upgrade(init, upgrading)

    def _upgrade(self, init: Callable[[Connection], None], upgrading: list[int]) -> None:
        """Run `init`; when it fails while upgrading the schema, say that the database was
        left as it was (the upgrade is one transaction) and how to go on."""
        try:
            self._write(init)
        except Exception as exc:
            if not upgrading:
                raise
            found = upgrading[-1]
            where = (f"file {self._sqlite_path!r}" if self._sqlite_path
                     else f"storage {self.url!r}")
            raise SchemaVersionError(
                f"upgrading {where} from schema version {found} to {schema.SCHEMA_VERSION} "
                f"failed ({type(exc).__name__}: {_first_line(str(exc))}); nothing was "
                f"changed, it is still at version {found}. Make the database writable (the "
                "file and its directory, or the role's rights to ALTER its tables) with free "
                "disk space, and open it again with this hyperlaw; a hyperlaw of schema "
                f"version {found} still reads it as it is") from exc

    def _refuse_optuna_file(self) -> None:
        """For an existing SQLite file, `_refuse_optuna` before the store's own connection
        opens it (that connection switches the file to WAL mode): read through a read-only
        connection of the standard library, which changes nothing in the file."""
        path = self._sqlite_path
        if not path or path == ":memory:" or not os.path.isfile(path):
            return
        import sqlite3

        try:
            reader = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True)
        except sqlite3.Error:
            return  # unreadable: the store's own opening says why
        try:
            self._refuse_optuna(reader)
        except sqlite3.Error:
            return
        finally:
            reader.close()

    def _refuse_optuna(self, conn: Connection | Any) -> None:
        """Raise a StorageError naming the way in when the database is Optuna's (its tables
        and none of hyperlaw's): hyperlaw never adds its tables beside them. `conn` is a
        SQLAlchemy connection or a standard-library sqlite3 one."""
        if isinstance(conn, Connection):
            tables = set(sa.inspect(conn).get_table_names())
        else:
            tables = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if meta.name in tables or not tables >= _OPTUNA_TABLES:
            return
        names = (conn.execute(_OPTUNA_STUDY_NAMES).scalars().all()
                 if isinstance(conn, Connection) else
                 [row[0] for row in conn.execute(str(_OPTUNA_STUDY_NAMES))])
        listed = ", ".join(repr(n) for n in names[:5]) + (", ..." if len(names) > 5 else "")
        study = names[0] if names else "STUDY"
        raise StorageError(
            f"storage {self.url!r} is an Optuna database (studies: {listed or 'none'}); "
            "hyperlaw does not add its tables to it. Import a study into a hyperlaw storage "
            f"with hl.from_optuna({self.url!r}, {study!r}, to='sqlite:///hyperlaw.db') or "
            f"`hyperlaw import-optuna {self.url} --study {study} --to sqlite:///hyperlaw.db`")

    def _schema_version(self, conn: Connection) -> int | None:
        """The stored schema version (None when not recorded yet); refuses a newer one."""
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
        found = row.scalar_one_or_none()
        if found is not None and int(found) > schema.SCHEMA_VERSION:
            raise SchemaVersionError(
                f"storage {self.url!r} was written by a newer hyperlaw (schema version "
                f"{found}; this version reads up to {schema.SCHEMA_VERSION}); upgrade "
                "hyperlaw with `pip install -U hyperlaw`"
            )
        return None if found is None else int(found)

    def _migrate(self, conn: Connection, found: int) -> None:
        for version in range(found, schema.SCHEMA_VERSION):
            step = schema.MIGRATIONS.get(version)
            if step is None:
                raise SchemaVersionError(
                    f"storage {self.url!r} has schema version {found}, which this hyperlaw "
                    f"cannot upgrade to {schema.SCHEMA_VERSION} (no step from {version}); "
                    "export the study with an older hyperlaw and import it here"
                )
            step(conn)
            log.info("storage %s: schema upgraded to version %d", self.url, version + 1)
        conn.execute(sa.update(meta).where(meta.c.key == "schema_version")
                     .values(value=str(schema.SCHEMA_VERSION)))

    def worker_url(self) -> str | None:
        if self._is_sqlite and self._engine.url.database in (None, "", ":memory:"):
            return None
        return ReachedUrl(self._full_url)

    def close(self) -> None:
        self._engine.dispose()

    # --- studies -------------------------------------------------------------------------
    def create_study(self, name: str, direction: str, space_json: str | None,
                     system_attrs: Mapping[str, Any], *,
                     directions: Sequence[str] | None = None,
                     objective_names: Sequence[str] | None = None) -> StudyInfo:
        now = time.time()
        attrs = _dumps(dict(system_attrs), "study system attributes")
        made = StudyInfo(0, name, direction, space_json, {}, dict(system_attrs), now,
                         tuple(directions or ()),
                         None if objective_names is None else tuple(objective_names))

        def create(conn: Connection) -> StudyInfo:
            exists = conn.execute(sa.select(studies.c.id).where(studies.c.name == name))
            if exists.first() is not None:
                raise DuplicateStudyError(
                    f"study {name!r} already exists in storage {self.url!r}; pass "
                    "load_if_exists=True to continue it, or choose another name"
                )
            result = conn.execute(sa.insert(studies).values(
                name=name, direction=direction, space=space_json, user_attrs="{}",
                system_attrs=attrs, created_at=now, next_number=0, next_seq=0,
                objectives=made.objectives_json))
            key = result.inserted_primary_key
            assert key is not None  # a single-row INSERT always reports its key
            return dataclasses.replace(made, id=int(key[0]))

        def landed(conn: Connection, info: StudyInfo) -> bool:
            return conn.execute(sa.select(studies.c.id).where(
                studies.c.id == info.id, studies.c.created_at == now)).first() is not None

        return self._write(create, landed)

    def get_study(self, name: str) -> StudyInfo:
        def get(conn: Connection) -> StudyInfo:
            row = conn.execute(sa.select(studies).where(studies.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(studies.c.name)).scalars().all()
                raise missing_study_error(name, self.url, names)
            directions, objective_names = objectives_from_json(row.objectives, row.direction)
            return StudyInfo(row.id, row.name, row.direction, row.space,
                             _loads(row.user_attrs, "study user_attrs"),
                             _loads(row.system_attrs, "study system_attrs"), row.created_at,
                             directions, objective_names)

        return self._read(get)

    def list_studies(self) -> list[StudySummary]:
        def listing(conn: Connection) -> list[StudySummary]:
            counts: dict[int, dict[TrialState, int]] = {}
            for sid, state, n in conn.execute(
                    sa.select(trials.c.study_id, trials.c.state, sa.func.count())
                    .group_by(trials.c.study_id, trials.c.state)):
                counts.setdefault(sid, {s: 0 for s in TrialState})[_STATES[state]] = n
            extremes = {
                sid: (lo, hi, last) for sid, lo, hi, last in conn.execute(
                    sa.select(trials.c.study_id,
                              sa.func.min(sa.case((trials.c.state == "complete",
                                                   trials.c.value))),
                              sa.func.max(sa.case((trials.c.state == "complete",
                                                   trials.c.value))),
                              sa.func.max(sa.func.coalesce(trials.c.finished_at,
                                                           trials.c.started_at,
                                                           trials.c.created_at)))
                    .group_by(trials.c.study_id))}
            out = []
            for row in conn.execute(sa.select(studies).order_by(studies.c.id)):
                lo, hi, last = extremes.get(row.id, (None, None, None))
                directions, _ = objectives_from_json(row.objectives, row.direction)
                best = (None if len(directions) > 1
                        else hi if row.direction == "maximize" else lo)
                out.append(StudySummary(row.name, row.direction, row.created_at,
                                        counts.get(row.id, {s: 0 for s in TrialState}),
                                        best, last, directions))
            return out

        return self._read(listing)

    def delete_study(self, name: str) -> None:
        def delete(conn: Connection) -> None:
            sid = conn.execute(sa.select(studies.c.id).where(studies.c.name == name)).scalar()
            if sid is None:
                names = conn.execute(sa.select(studies.c.name)).scalars().all()
                raise missing_study_error(name, self.url, names)
            conn.execute(sa.delete(reports).where(reports.c.study_id == sid))
            conn.execute(sa.delete(trials).where(trials.c.study_id == sid))
            conn.execute(sa.delete(studies).where(studies.c.id == sid))

        def landed(conn: Connection, _: None) -> bool:
            return conn.execute(sa.select(studies.c.id)
                                .where(studies.c.name == name)).first() is None

        self._write(delete, landed)

    def update_space(self, study_id: int, merge: Callable[[str | None], str]) -> str:
        def update(conn: Connection) -> str:
            self._bump(conn, study_id)  # takes the study's write lock first
            current = conn.execute(sa.select(studies.c.space)
                                   .where(studies.c.id == study_id)).scalar()
            merged = merge(current)
            if merged != current:
                conn.execute(sa.update(studies).where(studies.c.id == study_id)
                             .values(space=merged))
            return merged

        return self._write(update)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        def update(conn: Connection) -> None:
            self._bump(conn, study_id)
            raw = conn.execute(sa.select(studies.c.user_attrs)
                               .where(studies.c.id == study_id)).scalar()
            attrs = {**_loads(raw, "study user_attrs"), key: value}
            conn.execute(sa.update(studies).where(studies.c.id == study_id)
                         .values(user_attrs=_dumps(attrs, f"study user attribute {key!r}")))

        self._write(update)

    # --- trials --------------------------------------------------------------------------
    def _bump(self, conn: Connection, study_id: int, numbers: int = 0) -> tuple[int, int]:
        """Allocate the next sequence number (and `numbers` trial numbers) of a study.

        This takes the study's write lock until the commit (on PostgreSQL, until the commit's
        WAL is on disk: see `postgres.make_durable`).
        """
        row = conn.execute(_BUMP_RETURNING, {"sid": study_id, "numbers": numbers}).first()
        if row is None:
            raise StorageError(f"study id {study_id} was deleted from storage {self.url!r}")
        return int(row[0]), int(row[1]) - numbers

    def _insert_trial(self, conn: Connection, study_id: int, state: str,
                      params: ParamsOrMaker, user_json: str, system_json: str,
                      now: float, heartbeat: bool = False) -> tuple[int, dict[str, Any]]:
        seq, number = self._bump(conn, study_id, 1)
        values = _insert_row(conn, study_id, seq, number, state, params, user_json,
                             system_json, now, heartbeat)
        return number, values

    def create_trial(self, study_id: int, state: TrialState, params: ParamsOrMaker, *,
                     user_attrs: Mapping[str, Any] | None = None,
                     system_attrs: Mapping[str, Any] | None = None,
                     heartbeat: bool = False) -> TrialRecord:
        now = time.time()
        user_json = _dumps(dict(user_attrs or {}), "trial user attributes")
        system_attrs = owned(system_attrs, self.owner if state is TrialState.RUNNING else None)
        system_json = _dumps(system_attrs, "trial system attributes")
        number, values = self._write(
            lambda conn: self._insert_trial(conn, study_id, state.value, params, user_json,
                                            system_json, now, heartbeat),
            lambda conn, made: _trial_landed(conn, study_id, made[0],
                                             trials.c.created_at == now))
        return TrialRecord(number, state, values, None, {}, dict(user_attrs or {}),
                           system_attrs, None, now,
                           now if state is TrialState.RUNNING else None, None)

    def claim_waiting(self, study_id: int,
                      fill: ParamsFiller | None = None,
                      heartbeat: bool = False) -> TrialRecord | None:
        def claim(conn: Connection) -> TrialRecord | None:
            seq, _ = self._bump(conn, study_id)
            return self._claim_oldest(conn, study_id, seq, fill, heartbeat)

        def landed(conn: Connection, record: TrialRecord | None) -> bool:
            return record is None or _trial_landed(
                conn, study_id, record.number, trials.c.started_at == record.started_at)

        return self._write(claim, landed)

    def _claim_oldest(self, conn: Connection, study_id: int, seq: int,
                      fill: ParamsFiller | None, heartbeat: bool) -> TrialRecord | None:
        """Move the oldest WAITING trial to RUNNING (stamped `seq`) and return it, or None."""
        row = conn.execute(_OLDEST_WAITING, {"sid": study_id}).first()
        if row is None:
            return None
        number, raw, raw_attrs = row
        params = _loads(raw, f"params of trial #{number}")
        if fill is not None:
            params = dict(fill(number, params))
        now = time.time()
        values: dict[str, Any] = {"state": _RUNNING, "started_at": now, "seq": seq,
                                  "heartbeat_at": now if heartbeat else None,
                                  "params": _dumps(params, "trial params")}
        if self.owner is not None:
            attrs = _loads(raw_attrs, f"system attributes of trial #{number}")
            values["system_attrs"] = _dumps(owned(attrs, self.owner), "system attributes")
        updated = conn.execute(
            sa.update(trials)
            .where(trials.c.study_id == study_id, trials.c.number == number,
                   trials.c.state == _WAITING)
            .values(values)
            .returning(*_TRIAL_COLUMNS)).first()
        return None if updated is None else _record(updated)

    def start_trial(self, study_id: int, params: ParamsOrMaker, fill: ParamsFiller,
                    *, heartbeat: bool = False) -> tuple[TrialRecord, bool]:
        def start(conn: Connection) -> tuple[TrialRecord, bool]:
            seq, number = self._bump(conn, study_id, 1)
            return self._start_row(conn, study_id, seq, number, params, fill, heartbeat)

        def landed(conn: Connection, made: tuple[TrialRecord, bool]) -> bool:
            return _trial_landed(conn, study_id, made[0].number,
                                 trials.c.started_at == made[0].started_at)

        return self._write(start, landed)

    def _finish_and_start_pg(self, conn: Connection, study_id: int, number: int,
                             state: TrialState, value: float | None, error: str | None,
                             start: ParamsOrMaker, fill: ParamsFiller,
                             heartbeat: bool) -> tuple[TrialRecord, TrialRecord, bool]:
        """`finish_and_start` in two statements and two round trips (see `_PG_FINISH_BUMP`
        and `postgres.Pipelined`); a queued trial to claim, a trial that is not running any
        more, or a driver other than psycopg 3 take the ordinary path."""
        finish = {"sid": study_id, "num": number, "new_state": state.value,
                  "new_value": value, "new_error": error, "t": time.time()}
        pipelined: postgres.Pipelined = conn.info[_PIPELINED]

        def insert(row: tuple[Any, ...]) -> tuple[str, dict[str, Any]] | None:
            seq, new, waiting = int(row[0]), int(row[1]) - 1, row[2]
            if waiting is not None or row[3] is None:
                return None
            now = time.time()
            attrs = owned(None, self.owner)
            columns, params = _trial_row(study_id, seq, new, _RUNNING, start, "{}",
                                         _dumps(attrs, "system attributes"), now, heartbeat)
            pipelined.outcome = (_record(row[3:]), _running_record(new, params, attrs, now),
                                 True)
            return _pg_sql(_INSERT_TRIAL_INLINE), columns

        if conn.dialect.driver == "psycopg" and pipelined.run(
                conn, (_pg_sql(_PG_FINISH_BUMP), finish), insert) is not None:
            return pipelined.outcome
        row = conn.execute(_PG_FINISH_BUMP, finish).first()
        if row is None:
            raise StorageError(f"study id {study_id} was deleted from storage {self.url!r}")
        seq, new, waiting = int(row[0]), int(row[1]) - 1, row[2]
        if row[3] is None:  # not running any more: say why (the transaction is rolled back)
            self._current(conn, study_id, number, "finish")
        finished = _record(row[3:])
        if waiting is None:
            return finished, *self._insert_running(conn, study_id, seq, new, start, heartbeat)
        return finished, *self._start_row(conn, study_id, seq, new, start, fill, heartbeat)

    def _start_row(self, conn: Connection, study_id: int, seq: int, number: int,
                   params: ParamsOrMaker, fill: ParamsFiller,
                   heartbeat: bool) -> tuple[TrialRecord, bool]:
        """Claim the oldest waiting trial, or create trial `number` (allocated by the caller's
        bump, and given back when a waiting trial is claimed instead)."""
        claimed = self._claim_oldest(conn, study_id, seq, fill, heartbeat)
        if claimed is not None:
            conn.execute(_UNDO_NUMBER, {"sid": study_id})
            return claimed, False
        return self._insert_running(conn, study_id, seq, number, params, heartbeat)

    def _insert_running(self, conn: Connection, study_id: int, seq: int, number: int,
                        params: ParamsOrMaker, heartbeat: bool) -> tuple[TrialRecord, bool]:
        now = time.time()
        attrs = owned(None, self.owner)
        values = _insert_row(conn, study_id, seq, number, _RUNNING, params, "{}",
                             _dumps(attrs, "system attributes"), now, heartbeat)
        return _running_record(number, values, attrs, now), True

    def report(self, study_id: int, number: int, step: int, value: float,
               params: Mapping[str, Any] | None = None,
               values: Sequence[float] | None = None) -> None:
        several = None if values is None else _dumps(list(values), "reported values")

        def add(conn: Connection) -> int:
            seq, _ = self._bump(conn, study_id)
            if not params:
                row = {"sid": study_id, "num": number, "step": step, "value": value,
                       "seq": seq}
                if several is None:
                    inserted = conn.execute(_INSERT_REPORT_IF_RUNNING, row)
                else:
                    inserted = conn.execute(_INSERT_REPORTS_IF_RUNNING,
                                            {**row, "values": several})
                if inserted.rowcount != 1:
                    self._current(conn, study_id, number, "report to")  # raises: not running
                return seq
            current = self._current(conn, study_id, number, "report to")
            conn.execute(
                sa.update(trials)
                .where(trials.c.study_id == study_id, trials.c.number == number)
                .values(params=_dumps({**current.params, **params}, "trial params"), seq=seq))
            conn.execute(_INSERT_REPORT, {"study_id": study_id, "number": number, "step": step,
                                          "value": value, "seq": seq,
                                          "objective_values": several})
            return seq

        def landed(conn: Connection, seq: int) -> bool:
            return conn.execute(sa.select(reports.c.id).where(
                reports.c.study_id == study_id, reports.c.seq == seq,
                reports.c.number == number)).first() is not None

        self._write(add, landed)

    def set_trial_user_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        self._set_trial_attr(study_id, number, "user_attrs", key, value)

    def set_trial_system_attr(self, study_id: int, number: int, key: str, value: Any) -> None:
        self._set_trial_attr(study_id, number, "system_attrs", key, value)

    def _set_trial_attr(self, study_id: int, number: int, column: str, key: str,
                        value: Any) -> None:
        def update(conn: Connection) -> None:
            seq, _ = self._bump(conn, study_id)
            current = getattr(self._fetch(conn, study_id, number), column)
            attrs = _dumps({**current, key: value}, f"trial attribute {key!r}")
            conn.execute(sa.update(trials)
                         .where(trials.c.study_id == study_id, trials.c.number == number)
                         .values({column: attrs, "seq": seq}))

        self._write(update)

    def finish_trial(self, study_id: int, number: int, state: TrialState, value: float | None,
                     *, error: str | None = None, params: Mapping[str, Any] | None = None,
                     system_attrs: Mapping[str, Any] | None = None,
                     extras: TrialExtras | None = None) -> TrialRecord:
        def finish(conn: Connection) -> TrialRecord:
            seq, _ = self._bump(conn, study_id)
            return self._finish_row(conn, study_id, number, seq, state, value, error, params,
                                    system_attrs, extras)

        def landed(conn: Connection, record: TrialRecord) -> bool:
            return _trial_landed(conn, study_id, number,
                                 trials.c.finished_at == record.finished_at)

        return self._write(finish, landed)

    def _finish_row(self, conn: Connection, study_id: int, number: int, seq: int,
                    state: TrialState, value: float | None, error: str | None,
                    params: Mapping[str, Any] | None,
                    system_attrs: Mapping[str, Any] | None,
                    extras: TrialExtras | None = None) -> TrialRecord:
        values: dict[str, Any] = {"state": state.value, "value": value, "error": error,
                                  "finished_at": time.time(), "seq": seq}
        if extras:
            values.update(_extra_columns(extras))
        if params or system_attrs:
            current = self._current(conn, study_id, number, "finish")
            if params:
                values["params"] = _dumps({**current.params, **params}, "trial params")
            if system_attrs:
                values["system_attrs"] = _dumps({**current.system_attrs, **system_attrs},
                                                "trial system attributes")
        if len(values) == 5:  # the common case, with a prebuilt statement
            row = conn.execute(_FINISH, {
                "sid": study_id, "num": number, "new_state": values["state"],
                "new_value": value, "new_error": error, "t": values["finished_at"],
                "new_seq": seq}).first()
        else:
            row = conn.execute(
                sa.update(trials)
                .where(trials.c.study_id == study_id, trials.c.number == number,
                       trials.c.state == _RUNNING)
                .values(**values).returning(*_TRIAL_COLUMNS)).first()
        if row is None:
            self._current(conn, study_id, number, "finish")  # raises: it is not running
        assert row is not None
        return _record(row)

    def finish_and_start(self, study_id: int, number: int, state: TrialState,
                         value: float | None, *, error: str | None = None,
                         params: Mapping[str, Any] | None = None, start: ParamsOrMaker,
                         fill: ParamsFiller, heartbeat: bool = False,
                         extras: TrialExtras | None = None,
                         ) -> tuple[TrialRecord, TrialRecord, bool]:
        def both(conn: Connection) -> tuple[TrialRecord, TrialRecord, bool]:
            if self._is_postgres and not params and not extras:
                return self._finish_and_start_pg(conn, study_id, number, state, value, error,
                                                 start, fill, heartbeat)
            seq, new = self._bump(conn, study_id, 1)
            finished = self._finish_row(conn, study_id, number, seq, state, value, error,
                                        params, None, extras)
            started, created = self._start_row(conn, study_id, seq, new, start, fill,
                                               heartbeat)
            return finished, started, created

        def landed(conn: Connection, made: tuple[TrialRecord, TrialRecord, bool]) -> bool:
            return _trial_landed(conn, study_id, made[1].number,
                                 trials.c.started_at == made[1].started_at)

        return self._write(both, landed)

    def heartbeat(self, study_id: int, numbers: Sequence[int]) -> None:
        if not numbers:
            return
        now = time.time()
        self._write(lambda conn: conn.execute(
            sa.update(trials)
            .where(trials.c.study_id == study_id, trials.c.number.in_(list(numbers)),
                   trials.c.state == _RUNNING)
            .values(heartbeat_at=now)))

    def fail_stale(self, study_id: int, *, reason: str, retry_limit: int,
                   stale_before: float | None = None,
                   numbers: Sequence[int] | None = None) -> list[int]:
        which: sa.ColumnElement[bool]
        if numbers is not None:
            which = trials.c.number.in_(list(numbers))
        elif stale_before is not None:
            # time the store was unreachable does not count: no worker could beat then
            stale_before -= self._unreachable_time_since(stale_before)
            which = trials.c.heartbeat_at < stale_before
        else:
            return []
        running = (trials.c.study_id == study_id) & (trials.c.state == _RUNNING)
        if numbers is None and self._read(lambda conn: conn.execute(
                sa.select(trials.c.number).where(running & which).limit(1)).first()) is None:
            return []  # the common case: nothing stale, and no write lock taken to know it

        def sweep(conn: Connection) -> list[int]:
            # the study's lock first: on PostgreSQL a trial selected before it could be
            # finished by its worker meanwhile, and must then be neither failed nor retried
            seq, _ = self._bump(conn, study_id)
            stale = [_record(r) for r in conn.execute(
                sa.select(*_TRIAL_COLUMNS).where(running & which))]
            now = time.time()
            failed = []
            for record in stale:
                done = conn.execute(
                    sa.update(trials)
                    .where(running & (trials.c.number == record.number))
                    .values(state=TrialState.FAILED.value, error=reason, finished_at=now,
                            seq=seq, system_attrs=_dumps({**record.system_attrs,
                                                          STALE: True}, "system attributes")))
                if done.rowcount != 1:
                    continue
                failed.append(record.number)
                retry = retry_attrs(record, retry_limit)
                if retry is not None:
                    self._insert_trial(conn, study_id, _WAITING, record.params, "{}",
                                       _dumps(retry, "system attributes"), now)
            return failed

        return self._write(sweep)

    def import_trial(self, study_id: int, record: TrialRecord) -> None:
        def write(conn: Connection) -> None:
            seq, _ = self._bump(conn, study_id)
            mine = (trials.c.study_id == study_id) & (trials.c.number == record.number)
            conn.execute(sa.delete(trials).where(mine))
            conn.execute(sa.delete(reports).where((reports.c.study_id == study_id)
                                                  & (reports.c.number == record.number)))
            conn.execute(sa.insert(trials).values(
                study_id=study_id, number=record.number, state=record.state.value,
                params=_dumps(record.params, "trial params"), value=record.value,
                user_attrs=_dumps(record.user_attrs, "trial user attributes"),
                system_attrs=_dumps(record.system_attrs, "trial system attributes"),
                error=record.error, created_at=record.created_at or time.time(),
                started_at=record.started_at, finished_at=record.finished_at,
                heartbeat_at=None, seq=seq, **_extra_columns(extras_of(record))))
            if record.intermediate:
                several = record.intermediate_values
                conn.execute(sa.insert(reports), [
                    {"study_id": study_id, "number": record.number, "step": step,
                     "value": value, "seq": seq,
                     "objective_values": _dumps(list(several[step]), "reported values")
                     if step in several else None}
                    for step, value in record.intermediate.items()])
            conn.execute(sa.update(studies).where(studies.c.id == study_id).values(
                next_number=sa.func.max(studies.c.next_number, record.number + 1)
                if self._is_sqlite else sa.func.greatest(studies.c.next_number,
                                                         record.number + 1)))

        self._write(write)

    # --- reading -------------------------------------------------------------------------
    def changes_since(self, study_id: int, cursor: int) -> Changes:
        def read(conn: Connection) -> Changes:
            head = self._head(conn, study_id)
            if head <= cursor:
                return Changes([], [], cursor)
            window = {"sid": study_id, "cursor": cursor, "head": head}
            rows = conn.execute(_CHANGED_TRIALS, window).all()
            new_reports = conn.execute(_NEW_REPORTS, window).all()
            return Changes([_record(r) for r in rows],
                           [Report(n, s, v, None if raw is None else _values(raw))
                            for n, s, v, raw in new_reports], head)

        return self._read(read)

    def _head(self, conn: Connection, study_id: int) -> int:
        """The study's latest sequence number in this snapshot."""
        head = conn.execute(_HEAD, {"sid": study_id}).scalar()
        if head is None:
            raise StorageError(f"study id {study_id} was deleted from storage {self.url!r}")
        return int(head)

    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        return self._read(lambda conn: self._with_reports(
            conn, study_id, self._fetch(conn, study_id, number)))

    def best_trial(self, study_id: int, maximize: bool) -> TrialRecord | None:
        order = trials.c.value.desc() if maximize else trials.c.value.asc()

        def best(conn: Connection) -> TrialRecord | None:
            # infeasible trials are never best: read on from the best value to a feasible one
            row = conn.execute(
                sa.select(*_TRIAL_COLUMNS)
                .where(trials.c.study_id == study_id, trials.c.state == "complete",
                       sa.or_(trials.c.violation.is_(None), trials.c.violation <= 0))
                .order_by(order, trials.c.number).limit(1)).first()
            return None if row is None else self._with_reports(conn, study_id, _record(row))

        return self._read(best)

    # --- helpers -------------------------------------------------------------------------
    def _fetch(self, conn: Connection, study_id: int, number: int) -> TrialRecord:
        row = conn.execute(sa.select(*_TRIAL_COLUMNS).where(
            trials.c.study_id == study_id, trials.c.number == number)).first()
        if row is None:
            raise StorageError(
                f"trial #{number} of study id {study_id} does not exist in storage {self.url!r}"
            )
        return _record(row)

    def _current(self, conn: Connection, study_id: int, number: int,
                 action: str) -> TrialRecord:
        """The trial, which must be running; raises the not-running error otherwise."""
        record = self._fetch(conn, study_id, number)
        if record.state is not TrialState.RUNNING:
            name = conn.execute(sa.select(studies.c.name)
                                .where(studies.c.id == study_id)).scalar()
            raise not_running_error(str(name), record, action)
        return record

    @staticmethod
    def _with_reports(conn: Connection, study_id: int, record: TrialRecord) -> TrialRecord:
        for step, value, raw in conn.execute(
                sa.select(reports.c.step, reports.c.value, reports.c.objective_values)
                .where(reports.c.study_id == study_id, reports.c.number == record.number)
                .order_by(reports.c.seq)):
            record.intermediate[int(step)] = value
            if raw is not None:
                record.intermediate_values[int(step)] = _values(raw)
        return record

    # --- bulk reading (for analysis and the dashboard) ------------------------------------
    def changes_since_columnar(self, study_id: int, cursor: int) -> ColumnarChanges:
        """As `changes_since`, in one snapshot; reports are fetched through the driver's own
        cursor in chunks straight into arrays (millions of reports read in seconds)."""
        def read(conn: Connection) -> ColumnarChanges:
            head = self._head(conn, study_id)
            if head <= cursor:
                return _columnar([], [], cursor)
            rows = conn.execute(_CHANGED_TRIALS,
                                {"sid": study_id, "cursor": cursor, "head": head}).all()
            query = (sa.select(reports.c.number, reports.c.step, reports.c.value,
                               reports.c.objective_values)
                     .where(reports.c.study_id == int(study_id), reports.c.seq > int(cursor),
                            reports.c.seq <= int(head))
                     .order_by(reports.c.seq))
            sql = str(query.compile(dialect=conn.dialect,
                                    compile_kwargs={"literal_binds": True}))
            driver = conn.connection.driver_connection
            assert driver is not None  # the connection is open: this runs in its transaction
            raw = driver.cursor()
            chunks: list[np.ndarray] = []
            several: dict[int, tuple[float, ...]] = {}  # report index -> objective values
            try:
                raw.execute(sql)
                while batch := raw.fetchmany(250_000):
                    chunks.append(_report_chunk(batch, sum(len(c) for c in chunks), several))
            finally:
                raw.close()
            return _columnar(_records(rows), chunks, int(head), several)

        return self._read(read)


def _trial_row(study_id: int, seq: int, number: int, state: str, params: ParamsOrMaker,
               user_json: str, system_json: str, now: float,
               heartbeat: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The column values of trial `number` (RUNNING or WAITING) stamped `seq`; its params."""
    values = dict(params(number) if callable(params) else params)
    return {"study_id": study_id, "number": number, "state": state,
            "params": _dumps(values, "trial params"), "value": None,
            "user_attrs": user_json, "system_attrs": system_json, "error": None,
            "created_at": now, "started_at": now if state == _RUNNING else None,
            "finished_at": None, "heartbeat_at": now if heartbeat else None, "seq": seq}, values


def _disk_full(exc: Exception, message: str) -> bool:
    """Whether a driver error means the disk refused a write: SQLite's SQLITE_FULL or its
    disk I/O error (as for EFBIG past a file-size limit), or PostgreSQL's disk_full (53100)."""
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state == "53100" or "disk is full" in message or "disk I/O error" in message


def _running_record(number: int, params: dict[str, Any], system_attrs: dict[str, Any],
                    now: float) -> TrialRecord:
    """The record of trial `number`, just started (created RUNNING) at `now`."""
    return TrialRecord(number, TrialState.RUNNING, params, None, {}, {}, system_attrs, None,
                       now, now, None)


def _insert_row(conn: Connection, study_id: int, seq: int, number: int, state: str,
                params: ParamsOrMaker, user_json: str, system_json: str, now: float,
                heartbeat: bool) -> dict[str, Any]:
    """Insert trial `number` (RUNNING or WAITING) stamped `seq`; its params."""
    row, values = _trial_row(study_id, seq, number, state, params, user_json, system_json,
                             now, heartbeat)
    conn.execute(_INSERT_TRIAL, row)
    return values


@functools.cache
def _pg_sql(statement: sa.ClauseElement) -> str:
    """`statement` as psycopg's SQL text, for `postgres.Pipelined`."""
    from sqlalchemy.dialects import postgresql

    keys = [c.name for c in trials.columns if c.name not in ("id", *_EXTRA_COLUMNS)]
    compiled = statement.compile(dialect=postgresql.psycopg.dialect(), column_keys=keys)
    return str(compiled)


def _trial_landed(conn: Connection, study_id: int, number: int,
                  mark: sa.ColumnElement[bool]) -> bool:
    """Whether trial `number` carries `mark` (a timestamp only our write set)."""
    return conn.execute(sa.select(trials.c.id).where(
        trials.c.study_id == study_id, trials.c.number == number, mark)).first() is not None


def _loads(raw: str | None, what: str) -> Any:
    if raw is None or raw == "{}":
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise StorageError(
            f"corrupt {what} in the database ({exc}: {raw[:80]!r}); restore the row from a "
            "backup or export the study with `hyperlaw export` and re-import it"
        ) from None


def _record(row: Sequence[Any]) -> TrialRecord:
    return _record_with(row, _loads(row[2], f"params of trial #{row[0]}"))


def _record_with(row: Sequence[Any], params: dict[str, Any]) -> TrialRecord:
    """The record of a row of `_TRIAL_COLUMNS` whose params are parsed already."""
    several, constraints, cost = row[10], row[11], row[12]
    return TrialRecord(
        row[0], _STATES[row[1]], params, row[3], {},
        _loads(row[4], f"user_attrs of trial #{row[0]}"),
        _loads(row[5], f"system_attrs of trial #{row[0]}"), row[6], row[7], row[8], row[9],
        None if several is None else _values(several), {},
        {} if constraints is None else {
            k: (v[0], v[1], v[2]) for k, v in
            _loads(constraints, f"constraints of trial #{row[0]}").items()},
        {} if cost is None else _loads(cost, f"cost of trial #{row[0]}"))


def _values(raw: str) -> tuple[float, ...]:
    """Objective values stored as a JSON list."""
    return tuple(_loads(raw, "objective values"))


def _extra_columns(extras: TrialExtras) -> dict[str, Any]:
    """The column values of a finished trial's extras (NULL for what it lacks)."""
    constraints = extras.constraints
    return {
        "objective_values": None if extras.values is None
        else _dumps(list(extras.values), "objective values"),
        "constraints": _dumps({k: list(v) for k, v in constraints.items()}, "constraints")
        if constraints else None,
        "violation": violation_of(constraints),
        "cost": _dumps(extras.cost, "trial cost") if extras.cost else None}


def _report_chunk(batch: Sequence[Sequence[Any]], offset: int,
                  several: dict[int, tuple[float, ...]]) -> np.ndarray:
    """Reports (number, step, value, objective values) as an (n, 3) array; the objective
    values of the reports that have them go to `several` by report index."""
    try:  # one objective: the last column is all NULL, read as NaN
        return np.array(batch, dtype=np.float64).reshape(-1, 4)[:, :3]
    except (TypeError, ValueError):
        pass
    for i, row in enumerate(batch):
        if row[3] is not None:
            several[offset + i] = _values(row[3])
    return np.array([row[:3] for row in batch], dtype=np.float64).reshape(-1, 3)


def _records(rows: Sequence[Sequence[Any]]) -> list[TrialRecord]:
    """`_record` of many rows, their params parsed in one JSON call (per row when a row is
    corrupt, which then names it)."""
    try:
        params = json.loads("[" + ",".join(r[2] or "{}" for r in rows) + "]")
    except ValueError:
        params = None
    if not isinstance(params, list) or len(params) != len(rows) or not all(
            isinstance(p, dict) for p in params):
        return [_record(r) for r in rows]
    return [_record_with(r, p) for r, p in zip(rows, params, strict=True)]


def _reconnect_timeout(given: float | None) -> float:
    if given is not None:
        return float(given)
    raw = os.environ.get(_RECONNECT_ENV, "").strip()
    if not raw:
        return 300.0
    try:
        value = float(raw)
    except ValueError:
        raise StorageError(
            f"{_RECONNECT_ENV}={raw!r} is not a number; set it to the seconds a worker waits "
            "for an unreachable store before failing (e.g. 300)"
        ) from None
    if value <= 0:
        raise StorageError(f"{_RECONNECT_ENV} must be positive seconds, got {raw!r}")
    return value


class _Patience:
    """The backoff and time limits of one store operation."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._delay = 0.005
        self._busy_until: float | None = None
        self._down_since: float | None = None
        self._down_wall = 0.0
        self._announced = False

    def wait(self, exc: sa.exc.DBAPIError) -> None:
        """Sleep before the next attempt, or raise StorageError when waiting is useless or
        its time is up."""
        store = self._store
        kind = store._retry_kind(exc)
        if kind is None:
            raise store._storage_error(exc) from None
        now = time.monotonic()
        if kind == "busy":
            if self._busy_until is None:
                self._busy_until = now + store._lock_timeout
            if now >= self._busy_until:
                raise store._storage_error(exc) from None
            cap = 1.0
        else:
            reason = _first_line(store._scrub(str(exc.orig)))
            if self._down_since is None:
                self._down_since, self._down_wall = now, time.time()
                self._announced = store._connected  # a first contact fails quietly
                if self._announced:
                    log.warning("storage %s is unreachable (%s); reconnecting with backoff",
                                store.url, reason)
            waited = now - self._down_since
            # a store never reached yet (a wrong host, a server not started) fails soon; one
            # that worked waits out restarts and failovers
            limit = (store._reconnect_timeout if store._connected
                     else min(store._reconnect_timeout, _FIRST_CONTACT_TIMEOUT))
            if waited >= limit:
                wait_longer = f"raise {_RECONNECT_ENV} to wait longer" if store._connected \
                    else "check the host and port in the URL"
                raise StorageError(
                    f"storage {store.url!r} was unreachable for {waited:.0f} s: {reason}; "
                    f"check that the database server is running and reachable from this "
                    f"machine ({wait_longer})"
                ) from None
            cap = 2.0
        time.sleep(self._delay * (0.5 + random.random()))
        self._delay = min(self._delay * 2, cap)

    def done(self) -> None:
        if self._down_since is not None:
            self._store._note_outage(self._down_wall, time.time())
        if self._down_since is not None and self._announced:
            log.warning("storage %s is reachable again after %.1f s", self._store.url,
                        time.monotonic() - self._down_since)
            self._down_since = None


def _sync_file(path: str) -> None:
    """fsync a file if it exists (a WAL file is removed when its last connection closes, after
    a checkpoint that synced the database)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    """Per-connection settings; `wal` switches the database to WAL mode (a lasting change of
    the file, made only by a store that creates: a hyperlaw database is in WAL mode already)."""
    pragmas: tuple[str, ...] = ("journal_mode=WAL",) if wal else ()
    pragmas += ("synchronous=NORMAL", "busy_timeout=60000", "foreign_keys=ON")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun explicitly below
        cursor = dbapi_conn.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("hyperlaw_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _columnar(records: list[TrialRecord], chunks: list[np.ndarray], cursor: int,
              several: Mapping[int, tuple[float, ...]] | None = None) -> ColumnarChanges:
    table = np.concatenate(chunks) if chunks else np.empty((0, 3))
    values = np.ascontiguousarray(table[:, 2])
    matrix = None
    if several:
        rows: list[Sequence[float] | None] = [None] * len(values)
        for i, row in several.items():
            rows[i] = row
        matrix = objective_matrix(rows, values)
    return ColumnarChanges(records, table[:, 0].astype(np.int64), table[:, 1].astype(np.int64),
                           values, cursor, matrix)
