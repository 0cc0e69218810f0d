"""The PostgreSQL store on a real server: the store contract, 16 worker processes on one study,
`hyperlaw worker` processes joining a study, reconnecting after dropped connections, failing
loudly when the server is unreachable, schema migrations, and passwords kept out of output."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from services import start_postgres, stop_postgres
from test_store import (
    _create_many,
    test_best_trial_ties_and_direction,
    test_catch_up_reads_only_what_changed,
    test_finish_and_start_creates_or_claims_a_queued_trial,
    test_history_matches_a_full_read,
    test_listing_and_deleting,
    test_reports_only_to_running_trials,
    test_stale_trials_are_failed_and_retried_up_to_the_limit,
)

import hyperlaw as hl
from hyperlaw import TrialState
from hyperlaw.history import History
from hyperlaw.store import Store, open_store, schema
from hyperlaw.store.sql import SqlStore
from hyperlaw.transfer import read_all

HYPERLAW = str(Path(sys.executable).with_name("hyperlaw"))  # the installed console script
T = TypeVar("T")
CONTRACT = (test_best_trial_ties_and_direction, test_catch_up_reads_only_what_changed,
            test_finish_and_start_creates_or_claims_a_queued_trial,
            test_history_matches_a_full_read, test_listing_and_deleting,
            test_reports_only_to_running_trials,
            test_stale_trials_are_failed_and_retried_up_to_the_limit)


@pytest.fixture
def store(postgres_url: str) -> Store:
    """The store the imported contract tests run on: PostgreSQL."""
    return open_store(postgres_url)


def _terminate_other_connections(url: str) -> int:
    """Cut every other connection to the database (what a network blip or a failover does)."""
    engine = sa.create_engine(SqlStore(url)._engine.url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        killed = conn.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar_one()
    engine.dispose()
    return int(killed)


def test_sixteen_worker_processes_share_one_study(postgres_url: str) -> None:
    study = hl.create_study("sixteen", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=1)

    def objective(trial: hl.Trial) -> float:
        trial.report(trial.params["x"], 0)
        return (trial.params["x"] - 0.3) ** 2

    study.optimize(objective, n_trials=500, n_workers=16, show_progress=False)
    trials = study.trials
    assert [t.number for t in trials] == list(range(500))  # unique and gap-free, none lost
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(t.intermediate == {0: t.params["x"]} for t in trials)
    assert len({t.params["x"] for t in trials}) == 500
    assert study.best_value == min(t.value for t in trials)  # type: ignore[type-var]


def test_concurrent_raw_writers_and_an_incremental_reader(postgres_url: str) -> None:
    store = open_store(postgres_url)
    info = store.create_study("race", "minimize", None, {})
    context = mp.get_context("spawn")
    workers = [context.Process(target=_create_many, args=(postgres_url, 40)) for _ in range(2)]
    reader = History(store, info.id, maximize=False)
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        reader.refresh()
        time.sleep(0.005)
    for w in workers:
        w.join()
        assert w.exitcode == 0
    reader.refresh()
    records = read_all(store, info.id)
    assert [r.number for r in records] == list(range(80))
    assert reader.trials == records  # the commit-ordered cursor missed nothing


def test_worker_command_processes_join_a_study(postgres_url: str, tmp_path: Path) -> None:
    (tmp_path / "objective_mod.py").write_text(textwrap.dedent("""
        def objective(trial):
            x = trial.suggest_float("x", -1, 1)
            trial.report(abs(x), 0)
            return x * x
    """))
    env = dict(os.environ, HYPERLAW_STORAGE=postgres_url)
    command = [HYPERLAW, "worker", "--study", "cli", "--objective", "objective_mod:objective",
               "--n-trials", "15", "--wait-for-study", "120"]
    # the workers start before the study exists, on an empty database: they create the
    # schema together with this process, then wait for the study
    workers = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    study = hl.create_study("cli", storage=postgres_url, sampler="random", seed=3)
    outputs = [w.communicate(timeout=240) for w in workers]
    for w, (out, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err
        assert "ran 15 trials of study 'cli': 15 complete" in out
        assert "hyperlaw-test-password" not in out + err
        assert "***" in err  # the joined-study log line shows the redacted URL
    trials = study.trials
    assert [t.number for t in trials] == list(range(30))
    assert all(t.state is TrialState.COMPLETE and t.value == t.params["x"] ** 2
               for t in trials)
    study.reload_space()
    assert set(study.space) == {"x"}


def test_dropped_connections_are_reconnected(postgres_url: str) -> None:
    study = hl.create_study("drops", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=0)
    values = []
    for round_ in range(3):
        trial = study.ask()
        assert _terminate_other_connections(postgres_url) >= 1
        study.tell(trial, trial.params["x"])  # the pooled connection is dead: reconnect
        values.append(trial.params["x"])
        assert round_ == trial.number
    assert [t.value for t in study.trials] == values


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"),
                            isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _alter_system(server_url: str, setting: str, value: str | None) -> None:
    """ALTER SYSTEM (as the test URL's superuser) and reload; None restores the default."""
    engine = _admin(server_url)
    with engine.connect() as conn:
        if value is None:
            conn.exec_driver_sql(f"ALTER SYSTEM RESET {setting}")
        else:
            conn.exec_driver_sql(f"ALTER SYSTEM SET {setting} = '{value}'")
        conn.exec_driver_sql("SELECT pg_reload_conf()")
    engine.dispose()


def _cut_at_the_standby_wait(admin: sa.Engine, database: str, write: Callable[[], T],
                             ) -> tuple[bool, Future[T]]:
    """Run `write` in a thread; once its commit waits for the synchronous standby (its WAL is
    on the local disk: the commit has landed), cut its connection. Whether it was cut (False:
    it returned without waiting), and its future."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(write)
    pool.shutdown(wait=False)
    deadline = time.monotonic() + 120
    while not future.done():
        with admin.connect() as conn:
            if conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :db AND wait_event = 'SyncRep'"), {"db": database}).all():
                return True, future
        if time.monotonic() > deadline:
            pytest.fail("the write neither returned nor waited for the standby in 120 s")
        time.sleep(0.02)
    return False, future


def _cut_after_commit(admin: sa.Engine, database: str, write: Callable[[], T]) -> T:
    cut, future = _cut_at_the_standby_wait(admin, database, write)
    assert cut, "the write was acknowledged before it reached the synchronous standby"
    return future.result(timeout=120)


@contextlib.contextmanager
def _missing_standby(server_url: str) -> Iterator[sa.Engine]:
    """From here on, commits wait for a synchronous standby that never comes: each hangs after
    its WAL is on the local disk until its connection is cut. Yields an admin engine."""
    admin = _admin(server_url)
    _alter_system(server_url, "synchronous_standby_names", "hyperlaw_test_nobody")

    def probe() -> None:  # a commit that writes WAL, outside any hyperlaw store
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT pg_logical_emit_message(true, 'probe', '')")

    try:  # the reload is asynchronous: probe until commits wait
        while not _cut_at_the_standby_wait(admin, "postgres", probe)[0]:
            time.sleep(0.05)
        yield admin
    finally:
        _alter_system(server_url, "synchronous_standby_names", None)
        admin.dispose()


def test_a_write_cut_off_after_its_commit_lands_exactly_once(
        postgres_server: str, postgres_url: str) -> None:
    """The connection is cut after the commit reached the disk, before the acknowledgement:
    on the ordinary path and on the pipelined hot path, the write is found landed after
    reconnecting and not run again."""
    store = SqlStore(postgres_url)
    database = sa.make_url(postgres_url).database
    info = store.create_study("cut", "minimize", None, {})
    trial = store.create_trial(info.id, TrialState.RUNNING, {"x": 1}, heartbeat=True)
    with _missing_standby(postgres_server) as admin:
        _cut_after_commit(admin, database, lambda: store.report(info.id, trial.number, 0, 0.5))
        done, started, created = _cut_after_commit(
            admin, database, lambda: store.finish_and_start(
                info.id, trial.number, TrialState.COMPLETE, 1.0, start={"x": 2}, fill=dict))
    assert (done.number, started.number, created) == (0, 1, True)
    records = read_all(store, info.id)
    assert [(r.number, r.state, r.params) for r in records] == [
        (0, TrialState.COMPLETE, {"x": 1}), (1, TrialState.RUNNING, {"x": 2})]
    assert records[0].intermediate == {0: 0.5}


def test_a_connection_lost_while_the_hot_path_cleans_up_is_retried(postgres_url: str) -> None:
    """The pipelined path fails mid-transaction (its parameter maker raises) after the server
    cut the connection: ending the pipeline and rolling back meet the lost connection, and
    psycopg's error is waited out like any other; the retry runs the write once."""
    store = SqlStore(postgres_url)
    info = store.create_study("cleanup", "minimize", None, {})
    trial = store.create_trial(info.id, TrialState.RUNNING, {"x": 1}, heartbeat=True)
    admin = _admin(postgres_url)
    calls: list[int] = []

    def start(number: int) -> dict[str, int]:
        calls.append(number)
        if len(calls) == 1:  # mid-transaction: cut this connection, then fail
            with admin.connect() as conn:
                pid = conn.execute(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'idle in transaction'")).scalar_one()
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 60000)"), {"pid": pid})
            raise RuntimeError("the parameter maker failed once")
        return {"x": 2}

    done, started, created = store.finish_and_start(
        info.id, trial.number, TrialState.COMPLETE, 1.0, start=start, fill=dict)
    admin.dispose()
    assert calls == [1, 1] and (done.number, started.number, created) == (0, 1, True)
    records = read_all(store, info.id)
    assert [(r.number, r.state, r.params) for r in records] == [
        (0, TrialState.COMPLETE, {"x": 1}), (1, TrialState.RUNNING, {"x": 2})]


def test_worker_processes_started_while_the_server_is_down_wait_for_it(
        postgres_url: str) -> None:
    """The workers of `optimize` make their first contact during an outage longer than the
    5 s a URL typed by the user is given: they wait for the server, and the study completes."""
    study = hl.create_study("outage", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=0)

    def objective(trial: hl.Trial) -> float:
        return trial.params["x"] ** 2

    stop_postgres()
    comeback = threading.Timer(12.0, start_postgres)
    comeback.start()
    try:
        study.optimize(objective, n_trials=6, n_workers=2, show_progress=False)
    finally:
        comeback.join()
    trials = study.trials
    assert [t.number for t in trials] == list(range(6))
    assert all(t.state is TrialState.COMPLETE for t in trials)


def test_worker_command_started_while_the_server_is_down_waits_for_it(
        postgres_url: str, tmp_path: Path) -> None:
    """A `hyperlaw worker` whose first contact falls in an outage longer than the 5 s a typed
    URL of the library gets waits for the server (a SLURM array started during a database
    restart), and runs its trials once the server is back."""
    (tmp_path / "objective_mod.py").write_text("def objective(trial):\n"
                                               "    return trial.suggest_float('x', 0, 1)\n")
    hl.create_study("late", storage=postgres_url, sampler="random", seed=0)
    stop_postgres()
    try:
        worker = subprocess.Popen(
            [HYPERLAW, "worker", "--study", "late", "--objective", "objective_mod:objective",
             "--n-trials", "3", "--storage", postgres_url], cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(8.0)  # past the 5 s first-contact limit of a typed URL
        assert worker.poll() is None, worker.communicate()[1]
    finally:
        start_postgres()
    out, err = worker.communicate(timeout=240)
    assert worker.returncode == 0, err
    assert "ran 3 trials of study 'late': 3 complete" in out


def test_a_trial_finished_while_a_sweep_waits_for_the_lock_is_neither_failed_nor_retried(
        postgres_url: str) -> None:
    """A stale sweep that waits for the study's lock while the trial's worker finishes it
    must find the trial finished: failing it then, or queueing a retry, would run one
    configuration to completion twice (seen under load, with retry_stale)."""
    study = hl.create_study("race", storage=postgres_url, space={"x": hl.Float(0, 1)},
                            sampler="random", seed=0, retry_stale=1)
    trial = study.ask(heartbeat=True)
    sweeper = SqlStore(postgres_url)
    engine = sa.create_engine(sweeper._engine.url, poolclass=sa.NullPool)
    with ThreadPoolExecutor(1) as pool, engine.connect() as worker:
        # the worker's finishing write holds the study's lock (its sequence bump) ...
        worker.execute(sa.text("UPDATE hyperlaw_studies SET next_seq = next_seq + 1 "
                               "WHERE id = :sid"), {"sid": study.id})
        worker.execute(sa.text("UPDATE hyperlaw_trials SET state = 'complete', value = 0.5, "
                               "finished_at = 1 WHERE study_id = :sid AND number = :n"),
                       {"sid": study.id, "n": trial.number})
        # ... while a sweep of the (believed dead) worker's trial waits for it
        swept = pool.submit(sweeper.fail_stale, study.id, numbers=[trial.number],
                            reason="stale: test", retry_limit=1)
        _wait_until_a_backend_waits_for_a_lock(worker)
        worker.commit()
        assert swept.result(timeout=60) == []
    engine.dispose()
    sweeper.close()
    trials = hl.load_study("race", storage=postgres_url).trials  # read afresh
    assert [(t.number, t.state) for t in trials] == [(trial.number, TrialState.COMPLETE)]


def _wait_until_a_backend_waits_for_a_lock(conn: sa.Connection) -> None:
    deadline = time.monotonic() + 120
    query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'")
    probe = sa.create_engine(conn.engine.url, poolclass=sa.NullPool)
    try:
        while time.monotonic() < deadline:
            with probe.connect() as other:
                if other.execute(query).scalar_one():
                    return
            time.sleep(0.05)
        raise AssertionError("the sweep never waited for the study's lock")
    finally:
        probe.dispose()


def test_unreachable_server_fails_loudly_after_the_reconnect_timeout() -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:9/nowhere"  # nothing listens on port 9
    with pytest.raises(hl.StorageError, match="unreachable for") as info:
        SqlStore(url, reconnect_timeout=1.0)
    assert "s3cret-pw" not in str(info.value)
    assert "check the host and port" in str(info.value)  # never reached: it fails soon


def test_worker_command_gives_up_on_an_unreachable_server(tmp_path: Path) -> None:
    env = dict(os.environ, HYPERLAW_RECONNECT_TIMEOUT="1")
    done = subprocess.run(
        [HYPERLAW, "worker", "--study", "s", "--objective", "m:f", "--storage", "postgres://someone:s3cret-pw@127.0.0.1:9/nowhere"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "unreachable for" in done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_wrong_password_fails_at_once_without_showing_it(postgres_server: str) -> None:
    url = sa.make_url(postgres_server).set(password="not-the-password")
    with pytest.raises(hl.StorageError, match="password authentication failed") as info:
        SqlStore(url.render_as_string(hide_password=False), reconnect_timeout=600)
    assert "not-the-password" not in str(info.value)


def test_urls_are_routed_to_psycopg_and_shown_without_password(postgres_url: str) -> None:
    short = postgres_url.replace("postgresql+psycopg://", "postgres://", 1)
    study = hl.create_study("urls", storage=short)
    assert study.storage.startswith("postgresql+psycopg://hyperlaw:***@")
    assert "hyperlaw-test-password" not in repr(study)
    assert study.store.worker_url() == postgres_url


def test_schema_is_migrated_once_in_order(postgres_url: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    hl.create_study("old", storage=postgres_url)  # a database at the current version
    current = schema.SCHEMA_VERSION
    steps: list[int] = []

    def add_column(conn: sa.Connection) -> None:
        steps.append(current)
        conn.exec_driver_sql("ALTER TABLE hyperlaw_studies ADD COLUMN note TEXT")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(schema.MIGRATIONS, current, add_column)
    upgraded = SqlStore(postgres_url)
    SqlStore(postgres_url)  # already upgraded: the step does not run again
    assert steps == [current]
    with upgraded._engine.connect() as conn:
        version = conn.execute(sa.select(schema.meta.c.value)).scalar_one()
        notes = conn.exec_driver_sql("SELECT note FROM hyperlaw_studies").all()
    assert int(version) == current + 1 and notes == [(None,)]
    assert hl.load_study("old", upgraded).name == "old"
    monkeypatch.setattr(schema, "SCHEMA_VERSION", current)
    with pytest.raises(hl.SchemaVersionError, match="newer hyperlaw"):
        SqlStore(postgres_url)


def test_missing_migration_step_is_explained(postgres_url: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    SqlStore(postgres_url)
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    with pytest.raises(hl.SchemaVersionError, match="cannot upgrade"):
        SqlStore(postgres_url)


assert CONTRACT  # imported above so that pytest runs the store contract on PostgreSQL
