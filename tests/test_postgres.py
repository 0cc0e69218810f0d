"""The PostgreSQL store on a real server: the store contract, 16 worker processes on one study,
`hyperlaw worker` processes joining a study, reconnecting after dropped connections, failing
loudly when the server is unreachable, schema migrations, and passwords kept out of output."""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_store import (
    _create_many,
    test_best_trial_ties_and_direction,
    test_catch_up_reads_only_what_changed,
    test_finish_and_start_creates_or_claims_a_queued_trial,
    test_history_matches_a_full_read,
    test_listing_and_deleting,
    test_stale_trials_are_failed_and_retried_up_to_the_limit,
)

import hyperlaw as hl
from hyperlaw import TrialState
from hyperlaw.history import History
from hyperlaw.store import Store, open_store, postgres, schema
from hyperlaw.store.sql import SqlStore
from hyperlaw.transfer import read_all

HYPERLAW = str(Path(sys.executable).with_name("hyperlaw"))  # the installed console script
CONTRACT = (test_best_trial_ties_and_direction, test_catch_up_reads_only_what_changed,
            test_finish_and_start_creates_or_claims_a_queued_trial,
            test_history_matches_a_full_read, test_listing_and_deleting,
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


def test_a_write_cut_off_after_its_commit_lands_exactly_once(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqlStore(postgres_url)
    info = store.create_study("cut", "minimize", None, {})
    flush = postgres.flush_wal
    cuts: list[str] = []

    def cut_once_then_flush(conn: sa.Connection) -> None:
        if len(cuts) < 3:  # the connection dies after the commit, before the acknowledgement
            cuts.append("cut")
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        flush(conn)

    monkeypatch.setattr(postgres, "flush_wal", cut_once_then_flush)
    trial = store.create_trial(info.id, TrialState.RUNNING, {"x": 1}, heartbeat=True)
    store.report(info.id, trial.number, 0, 0.5)
    store.finish_trial(info.id, trial.number, TrialState.COMPLETE, 1.0)  # not told twice
    assert cuts == ["cut"] * 3
    records = read_all(store, info.id)
    assert [(r.number, r.state, r.value) for r in records] == [(0, TrialState.COMPLETE, 1.0)]
    assert records[0].intermediate == {0: 0.5}


def test_a_pipelined_finish_and_start_cut_off_after_its_commit_lands_once(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot path sends the commit and the WAL flush in one round trip; when the connection
    dies right after the commit, the write is found landed and not run again."""
    store = SqlStore(postgres_url)
    info = store.create_study("cut-pipelined", "minimize", None, {})
    trial = store.create_trial(info.id, TrialState.RUNNING, {"x": 1}, heartbeat=True)
    monkeypatch.setattr(postgres, "_FLUSH_QUERY",
                        "SELECT pg_terminate_backend(pg_backend_pid())")
    done, started, created = store.finish_and_start(
        info.id, trial.number, TrialState.COMPLETE, 1.0, start={"x": 2}, fill=dict)
    monkeypatch.undo()
    assert (done.number, started.number, created) == (0, 1, True)
    records = read_all(store, info.id)
    assert [(r.number, r.state, r.params) for r in records] == [
        (0, TrialState.COMPLETE, {"x": 1}), (1, TrialState.RUNNING, {"x": 2})]
    _, after, _ = store.finish_and_start(info.id, 1, TrialState.COMPLETE, 0.5,
                                         start={"x": 3}, fill=dict)
    assert after.number == 2  # the pooled connection that died was replaced


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
