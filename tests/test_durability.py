"""PostgreSQL durability: a write is acknowledged only once it is on the server's disk.

The test server is made to write its WAL lazily (`wal_writer_delay = 10s`), so that a commit
that does not wait for the disk itself stays in the server's memory for seconds; then the
server is killed without a shutdown checkpoint (`pg_ctl restart -m immediate`), as a crash
would. Every write whose call returned must be found after the restart.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from services import restart_postgres

import hyperlaw as hl
from hyperlaw import TrialState
from hyperlaw.store.sql import SqlStore
from hyperlaw.transfer import read_all


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"),
                            isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _set_wal_writer_delay(server_url: str, value: str | None) -> None:
    """ALTER SYSTEM (as the test URL's superuser) and reload; None restores the default."""
    engine = _admin(server_url)
    with engine.connect() as conn:
        if value is None:
            conn.exec_driver_sql("ALTER SYSTEM RESET wal_writer_delay")
        else:
            conn.exec_driver_sql(f"ALTER SYSTEM SET wal_writer_delay = '{value}'")
        conn.exec_driver_sql("SELECT pg_reload_conf()")
    engine.dispose()


@pytest.fixture
def lazy_wal_writer(postgres_server: str) -> Iterator[None]:
    """The test server flushes asynchronously committed WAL only every 10 s."""
    _set_wal_writer_delay(postgres_server, "10s")
    try:
        yield
    finally:
        _set_wal_writer_delay(postgres_server, None)


@pytest.mark.parametrize("database_setting", [None, "off"])
def test_acknowledged_writes_survive_an_immediate_restart(
        postgres_url: str, lazy_wal_writer: None, database_setting: str | None) -> None:
    """Every kind of write, through the hot path too; with `synchronous_commit = off` set on
    the database by an administrator, the store still waits for the disk."""
    if database_setting is not None:
        engine = _admin(postgres_url)
        with engine.connect() as conn:
            name = conn.exec_driver_sql("SELECT current_database()").scalar_one()
            conn.exec_driver_sql(
                f'ALTER DATABASE "{name}" SET synchronous_commit = {database_setting}')
        engine.dispose()
    study = hl.create_study("durable", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=0)
    told = {}
    for _ in range(3):  # ask, report and tell: start_trial, report, finish_trial
        trial = study.ask()
        trial.report(trial.params["x"] / 2, 0)
        study.tell(trial, trial.params["x"])
        told[trial.number] = trial.params["x"]
    store, sid = study.store, study.id
    running = store.create_trial(sid, TrialState.RUNNING, {"x": 0.25})
    done, started, _ = store.finish_and_start(sid, running.number, TrialState.COMPLETE, 0.25,
                                              start={"x": 0.75}, fill=dict)  # pipelined
    told[done.number] = 0.25
    store.set_trial_user_attr(sid, started.number, "note", "kept")
    store.close()

    restart_postgres(immediate=True)

    records = {r.number: r for r in read_all(SqlStore(postgres_url), sid)}
    assert sorted(records) == [*sorted(told), started.number], "acknowledged trials were lost"
    for number, x in told.items():
        assert records[number].state is TrialState.COMPLETE and records[number].value == x
    assert all(records[n].intermediate == {0: told[n] / 2} for n in list(told)[:3])
    assert records[started.number].state is TrialState.RUNNING
    assert records[started.number].user_attrs == {"note": "kept"}
