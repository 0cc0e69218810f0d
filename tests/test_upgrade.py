"""Schema upgrades in place: a database written by the last release (schema version 2,
`fixtures/schema_v2.db`, made by `fixtures/make_schema_v2.py`) opens with today's hyperlaw,
is upgraded, reads back exactly as the old release read it, and takes new trials; a failed
upgrade leaves the file as it was and says what to do."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

import hyperlaw as hl
from hyperlaw.errors import SchemaVersionError
from hyperlaw.export import trial_to_dict
from hyperlaw.store import schema

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "schema_v2.json").read_text())
#: what the old release's `trial_to_dict` had; today's adds cost, values, constraints
OLD_KEYS = ("number", "state", "value", "params", "user_attrs", "system_attrs", "error",
            "created_at", "started_at", "finished_at", "intermediate")


@pytest.fixture
def v2_file(tmp_path: Path) -> Path:
    path = tmp_path / "v2.db"
    shutil.copyfile(FIXTURES / "schema_v2.db", path)
    return path


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(
            "SELECT value FROM hyperlaw_meta WHERE key = 'schema_version'").fetchone()[0])


def _as_old(study: hl.Study) -> dict:
    return {"direction": study.direction, "space": study.space.to_json(),
            "user_attrs": study.user_attrs,
            "trials": [{k: trial_to_dict(t)[k] for k in OLD_KEYS} for t in study.trials]}


def test_the_fixture_is_a_version_2_database(v2_file: Path) -> None:
    assert _version(v2_file) == 2
    with sqlite3.connect(v2_file) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(hyperlaw_trials)")}
    assert "objective_values" not in columns


def test_opening_upgrades_in_place_and_every_fact_reads_back(v2_file: Path) -> None:
    url = f"sqlite:///{v2_file}"
    for name, expected in EXPECTED.items():
        study = hl.load_study(name, url)
        assert _as_old(study) == expected
        assert study.directions == (expected["direction"],)
        assert not study.is_multi_objective
        finished = [t for t in study.trials if t.state.is_finished]
        assert all(t.cost["seconds"] == t.duration for t in finished)
        assert all(t.values == (t.value,) for t in finished if t.value is not None)
    assert _version(v2_file) == schema.SCHEMA_VERSION == 3


def test_an_upgraded_database_takes_new_trials(v2_file: Path) -> None:
    url = f"sqlite:///{v2_file}"
    declared = hl.load_study("declared", url)
    waiting = next(t for t in declared.trials if t.state is hl.TrialState.WAITING)
    trial = declared.ask()
    assert trial.number == waiting.number  # the queued trial is claimed first
    declared.tell(trial, 0.1)
    assert declared.best_trial.number == waiting.number
    define_by_run = hl.load_study("define-by-run", url)
    define_by_run.optimize(lambda t: t.suggest_float("x", -2.0, 2.0), n_trials=2,
                           show_progress=False)
    assert len(define_by_run.trials) == len(EXPECTED["define-by-run"]["trials"]) + 2
    several = hl.create_study("several", storage=url, directions=["minimize", "maximize"])
    several.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), n_trials=3,
                     show_progress=False)
    assert {t.values[1] for t in hl.load_study("several", url).trials} == {1.0}
    # and the old trials are still as they were
    assert _as_old(hl.load_study("define-by-run", url))["trials"][:4] == \
        EXPECTED["define-by-run"]["trials"]


def _failing_step(conn: sa.Connection) -> None:
    """The real step, then a statement the database refuses (a real failure mid-upgrade)."""
    schema._several_objectives(conn)
    conn.execute(sa.text("ALTER TABLE hyperlaw_no_such_table ADD COLUMN x TEXT"))


def test_a_failed_upgrade_leaves_the_file_as_it_was(v2_file: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    before = v2_file.read_bytes()
    monkeypatch.setitem(schema.MIGRATIONS, 2, _failing_step)
    with pytest.raises(SchemaVersionError) as caught:
        hl.load_study("declared", f"sqlite:///{v2_file}")
    message = str(caught.value)
    assert str(v2_file) in message
    assert "still at version 2" in message and "open it again" in message
    assert v2_file.read_bytes() == before
    assert _version(v2_file) == 2
    monkeypatch.undo()  # the real step: the same file upgrades
    assert _as_old(hl.load_study("declared", f"sqlite:///{v2_file}")) == EXPECTED["declared"]


def test_read_only_opening_asks_for_one_writable_opening(v2_file: Path) -> None:
    from hyperlaw.store import open_store

    before = v2_file.read_bytes()
    with pytest.raises(SchemaVersionError, match="open it for writing once"):
        open_store(f"sqlite:///{v2_file}", mode="read")
    assert v2_file.read_bytes() == before


def _downgrade_to_v2(url: str) -> None:
    """Turn a version-3 database back into version 2: drop what version 3 added."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table, names in schema._V3_COLUMNS.items():
            for name in names:
                conn.execute(sa.text(f"ALTER TABLE {table.name} DROP COLUMN {name}"))
        conn.execute(sa.text("UPDATE hyperlaw_meta SET value = '2' "
                             "WHERE key = 'schema_version'"))
    engine.dispose()


def test_postgres_upgrades_in_place(postgres_url: str) -> None:
    study = hl.create_study("old", storage=postgres_url, direction="maximize")
    trial = study.ask()
    trial.report(0.5, 1)
    study.tell(trial, 0.7)
    before = [trial_to_dict(t) for t in study.trials]
    study.store.close()
    _downgrade_to_v2(postgres_url)
    reopened = hl.load_study("old", postgres_url)
    assert [trial_to_dict(t) for t in reopened.trials] == before
    reopened.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, show_progress=False)
    several = hl.create_study("new", storage=postgres_url, objectives={"a": "minimize",
                                                                       "b": "minimize"})
    several.optimize(lambda t: {"a": 1.0, "b": 2.0}, n_trials=1, show_progress=False)
    assert hl.load_study("new", postgres_url).trials[0].values == (1.0, 2.0)


def test_a_failed_postgres_upgrade_changes_nothing(postgres_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    study = hl.create_study("old", storage=postgres_url)
    study.tell(study.ask(), 0.5)
    study.store.close()
    _downgrade_to_v2(postgres_url)
    monkeypatch.setitem(schema.MIGRATIONS, 2, _failing_step)
    with pytest.raises(SchemaVersionError, match="still at version 2"):
        hl.load_study("old", postgres_url)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT value FROM hyperlaw_meta").scalar_one()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("hyperlaw_trials")}
    engine.dispose()
    assert version == "2" and "objective_values" not in columns
    monkeypatch.undo()
    assert hl.load_study("old", postgres_url).trials[0].value == 0.5
