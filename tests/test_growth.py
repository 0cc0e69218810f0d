"""Flat cost as a study grows: starting a trial never walks the study's trials (memory), and
every query of ask and tell is an index seek (SQL), on databases made by older versions too."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect

from hyperlaw.errors import SchemaVersionError
from hyperlaw.store import MemoryStore, open_store, schema
from hyperlaw.store.sql import _OLDEST_WAITING
from hyperlaw.trial import TrialState

RUNNING, WAITING = TrialState.RUNNING, TrialState.WAITING


class _NoWalk(list):  # type: ignore[type-arg]
    """The trial list of a memory study, refusing to be walked."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        raise AssertionError("the memory store walked every trial of the study")


def test_memory_claim_does_not_walk_the_study() -> None:
    store = MemoryStore()
    info = store.create_study("s", "minimize", None, {})
    for i in range(200):
        t = store.create_trial(info.id, RUNNING, {"i": i})
        store.finish_trial(info.id, t.number, TrialState.COMPLETE, float(i))
    queued = store.create_trial(info.id, WAITING, {"i": -1})
    data = store._by_id[info.id]
    data.trials = _NoWalk(data.trials)
    claimed = store.claim_waiting(info.id)
    assert claimed is not None and claimed.number == queued.number
    assert store.claim_waiting(info.id) is None
    started, created = store.start_trial(info.id, {"i": 201}, lambda n, p: p)
    assert created and started.number == queued.number + 1


def _oldest_waiting(store: MemoryStore, study_id: int) -> int | None:
    """The reference answer, by walking the study."""
    trials = store._by_id[study_id].trials
    return next((t.number for t in trials if t.state is WAITING), None)


def test_memory_claims_follow_number_order_through_enqueue_retry_and_import() -> None:
    store = MemoryStore()
    info = store.create_study("s", "minimize", None, {})
    other = MemoryStore()
    other_info = other.create_study("o", "minimize", None, {})
    rng = random.Random(0)
    for _ in range(600):
        action = rng.random()
        running = [t.number for t in store._by_id[info.id].trials if t.state is RUNNING]
        if action < 0.3:
            store.create_trial(info.id, rng.choice([RUNNING, WAITING]), {}, heartbeat=True)
        elif action < 0.5 and running:
            store.finish_trial(info.id, rng.choice(running), TrialState.COMPLETE, 1.0)
        elif action < 0.6 and running:  # failed as stale and retried: a new WAITING trial
            store.fail_stale(info.id, reason="test", retry_limit=3,
                             numbers=[rng.choice(running)])
        elif action < 0.7:  # a trial overwritten by an import, in any state
            trials = store._by_id[info.id].trials
            if trials:
                number = rng.randrange(len(trials))
                source = other.create_trial(other_info.id, rng.choice([RUNNING, WAITING]), {})
                store.import_trial(info.id, source.__class__(
                    number, source.state, {}, None, {}, {}, {}, None, 0.0, None, None))
        elif action < 0.8 and (n := _oldest_waiting(store, info.id)) is not None:
            store.set_trial_user_attr(info.id, n, "k", 1)  # stays WAITING
        else:
            expected = _oldest_waiting(store, info.id)
            claimed = store.claim_waiting(info.id)
            assert (None if claimed is None else claimed.number) == expected
    data = store._by_id[info.id]
    waiting = {t.number for t in data.trials if t.state is WAITING}
    assert waiting <= set(data.waiting)
    while (expected := _oldest_waiting(store, info.id)) is not None:
        claimed = store.claim_waiting(info.id)
        assert claimed is not None and claimed.number == expected
    assert store.claim_waiting(info.id) is None and data.waiting == []


def _plan(path: Path, statement: sa.Executable) -> str:
    """SQLite's plan of `statement`, as one line per step."""
    compiled = statement.compile(dialect=sqlite_dialect.dialect(),
                                 compile_kwargs={"literal_binds": True})
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"EXPLAIN QUERY PLAN {compiled}").fetchall()
    return "\n".join(row[-1] for row in rows)


def test_sqlite_claim_query_seeks_the_state_index(tmp_path: Path) -> None:
    path = tmp_path / "study.db"
    store = open_store(f"sqlite:///{path}")
    info = store.create_study("s", "minimize", None, {})
    for i in range(50):
        store.create_trial(info.id, WAITING if i % 7 == 0 else RUNNING, {})
    plan = _plan(path, _OLDEST_WAITING.params(sid=info.id))
    assert "USING INDEX ix_hyperlaw_trials_state (study_id=? AND state=?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # the index gives the order: nothing to sort
    assert store.claim_waiting(info.id).number == 0  # type: ignore[union-attr]


def _drop_version_3_columns() -> list[str]:
    """What turns today's tables back into version 2's (and with the indexes, version 1's)."""
    return [f"ALTER TABLE {table.name} DROP COLUMN {name}"
            for table, names in schema._V3_COLUMNS.items() for name in names]


def test_version_1_database_gains_the_state_index(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    info = store.create_study("s", "minimize", None, {})
    store.create_trial(info.id, WAITING, {"x": 1})
    store.close()
    with sqlite3.connect(path) as conn:  # what a version 1 database looks like
        conn.execute("DROP INDEX ix_hyperlaw_trials_state")
        conn.execute("DROP INDEX ix_hyperlaw_reports_trial")
        conn.execute("CREATE INDEX ix_hyperlaw_reports_trial ON hyperlaw_reports "
                     "(study_id, number)")
        for statement in _drop_version_3_columns():
            conn.execute(statement)
        conn.execute("UPDATE hyperlaw_meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(SchemaVersionError, match="older than"):
        open_store(f"sqlite:///{path}", mode="read")
    upgraded = open_store(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        version = conn.execute("SELECT value FROM hyperlaw_meta").fetchone()[0]
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(hyperlaw_trials)")}
        columns = [r[2] for r in conn.execute("PRAGMA index_info(ix_hyperlaw_reports_trial)")]
        trial_columns = {r[1] for r in conn.execute("PRAGMA table_info(hyperlaw_trials)")}
    assert version == str(schema.SCHEMA_VERSION) and "ix_hyperlaw_trials_state" in indexes
    assert "objective_values" in trial_columns
    assert columns == ["study_id", "number", "seq"]
    assert "ix_hyperlaw_trials_state" in _plan(path, _OLDEST_WAITING.params(sid=info.id))
    claimed = upgraded.claim_waiting(info.id)
    assert claimed is not None and claimed.params == {"x": 1}


@pytest.mark.parametrize("dim", [1, 2, 5, 17, 40])
def test_sobol_points_are_scipys(dim: int) -> None:
    import warnings

    from scipy.stats import qmc

    from hyperlaw.samplers.sobol import ScrambledSobol

    for seed in (0, 12345):
        ours = ScrambledSobol(dim, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            first = qmc.Sobol(dim, scramble=True, seed=seed).random(300)
            far = qmc.Sobol(dim, scramble=True, seed=seed).fast_forward(999_990).random(20)
        assert np.array_equal(np.array([ours.point(k) for k in range(300)]), first)
        assert np.array_equal(np.array([ours.point(999_990 + k) for k in range(20)]), far)


@pytest.mark.parametrize("dim", [0, 1, 17, 32])
def test_sobol_points_from_a_generator_are_scipys(dim: int) -> None:
    import warnings

    from scipy.stats import qmc

    from hyperlaw.samplers.sobol import ScrambledSobol

    for n in (1, 5, 32, 1000):
        ours, theirs = np.random.default_rng(n), np.random.default_rng(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            expected = qmc.Sobol(dim, scramble=True, seed=theirs).random(n)
        assert np.array_equal(ScrambledSobol(dim, ours).first(n), expected)
        # both draw from a spawned child: the generators go on alike
        assert np.array_equal(ours.spawn(1)[0].random(4), theirs.spawn(1)[0].random(4))
        assert np.array_equal(ours.random(4), theirs.random(4))


def test_sobol_points_stay_scipys_as_the_scrambled_bits_grow() -> None:
    """The scrambled direction numbers are computed for the bits used so far: later, larger
    draws from the same engine extend them (a stale cache would repeat the first points)."""
    import warnings

    from scipy.stats import qmc

    from hyperlaw.samplers.sobol import ScrambledSobol

    ours = ScrambledSobol(3, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs = qmc.Sobol(3, scramble=True, seed=7).random(1024)
    assert np.array_equal(ours.first(4), theirs[:4])
    assert np.array_equal(ours.point(700), theirs[700])
    assert np.array_equal(ours.first(1024), theirs)
    assert np.array_equal(ours.first(2), theirs[:2])


_FIRST_ASK = """
import sys
import hyperlaw as hl
space = {"x": hl.Float(0.0, 1.0), "n": hl.Int(1, 9), "c": hl.Choice(["a", "b"])}
for sampler in ("random", "sobol", "tpe", "gp", "auto"):
    study = hl.create_study(space=space, sampler=sampler, seed=0)
    study.tell(study.ask(), 1.0)
grid = hl.create_study(space={"n": hl.Int(1, 9)}, sampler="grid", seed=0)
grid.tell(grid.ask(), 1.0)
print(sorted(m for m in ("scipy.stats", "scipy.optimize", "scipy.linalg") if m in sys.modules))
"""


def test_first_ask_of_every_sampler_imports_no_heavy_scipy_module() -> None:
    done = subprocess.run([sys.executable, "-c", _FIRST_ASK], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_every_statement_of_ask_and_tell_seeks_an_index(tmp_path: Path, sampler: str) -> None:
    import hyperlaw as hl

    path = tmp_path / "study.db"
    study = hl.create_study("s", storage=f"sqlite:///{path}", sampler=sampler, seed=0,
                            space={"x": hl.Float(0.0, 1.0)}, heartbeat_interval=1e-6)
    for i in range(20):
        trial = study.ask(heartbeat=True)
        study.tell(trial, float(i))
    statements: list[tuple[str, tuple[object, ...]]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: object,
                context: object, executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(
                ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")):
            statements.append((statement, tuple(parameters or ())))  # type: ignore[arg-type]

    engine = study.store._engine  # type: ignore[attr-defined]
    sa.event.listen(engine, "before_cursor_execute", capture)
    study.enqueue({"x": 0.5})
    for i in range(3):  # a queued trial is claimed, then two are sampled; stale sweeps run
        trial = study.ask(heartbeat=True)
        trial.report(float(i), 0)
        study.tell(trial, float(i))
    assert study.best_trial is not None
    assert len(statements) > 10
    with sqlite3.connect(path) as conn:
        for statement, parameters in statements:
            plan = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}",
                                                    parameters)]
            # a scan, or a search on the study alone, walks every trial of the study
            walks = [step for step in plan if step.endswith("(study_id=?)")
                     or (step.startswith("SCAN") and "CONSTANT ROW" not in step)]
            assert not walks, f"{statement}\n{plan}"


def test_version_1_postgres_database_is_upgraded(postgres_url: str) -> None:
    store = open_store(postgres_url)
    info = store.create_study("s", "minimize", None, {})
    store.create_trial(info.id, WAITING, {"x": 1})
    store.close()
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:  # what a version 1 database looks like
        conn.exec_driver_sql("DROP INDEX ix_hyperlaw_trials_state")
        conn.exec_driver_sql("DROP INDEX ix_hyperlaw_reports_trial")
        conn.exec_driver_sql("CREATE INDEX ix_hyperlaw_reports_trial ON hyperlaw_reports "
                             "(study_id, number)")
        for statement in _drop_version_3_columns():
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("UPDATE hyperlaw_meta SET value = '1'")
    upgraded = open_store(postgres_url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT value FROM hyperlaw_meta").scalar_one()
        found = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes(
            "hyperlaw_trials") + sa.inspect(conn).get_indexes("hyperlaw_reports")}
    engine.dispose()
    assert version == str(schema.SCHEMA_VERSION)
    assert found["ix_hyperlaw_trials_state"] == ["study_id", "state", "number"]
    assert found["ix_hyperlaw_reports_trial"] == ["study_id", "number", "seq"]
    claimed = upgraded.claim_waiting(info.id)
    assert claimed is not None and claimed.params == {"x": 1}
