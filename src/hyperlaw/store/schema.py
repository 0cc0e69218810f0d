"""The SQL schema, versioned from the first release. Portable SQLAlchemy Core types only.

A schema change bumps `SCHEMA_VERSION` and registers the step that upgrades a database of the
previous version in `MIGRATIONS`. Opening a store creates missing tables, then runs the steps
from the stored version up to `SCHEMA_VERSION` in the same transaction (on PostgreSQL, under an
advisory lock, so that many workers starting at once upgrade it exactly once).
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

#: bump on every schema change and register its upgrade step in MIGRATIONS
SCHEMA_VERSION = 3

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

meta = sa.Table(
    "hyperlaw_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

studies = sa.Table(
    "hyperlaw_studies", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("space", sa.Text, nullable=True),
    sa.Column("user_attrs", sa.Text, nullable=False, default="{}"),
    sa.Column("system_attrs", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Double, nullable=False),
    # allocators, bumped under the row lock of each write transaction
    sa.Column("next_number", sa.Integer, nullable=False, default=0),
    sa.Column("next_seq", sa.BigInteger, nullable=False, default=0),
    # version 3: {"directions": [...], "names": [...] | null}; NULL for one unnamed objective
    sa.Column("objectives", sa.Text, nullable=True),
)

trials = sa.Table(
    "hyperlaw_trials", metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("user_attrs", sa.Text, nullable=False),
    sa.Column("system_attrs", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double, nullable=True),
    sa.Column("finished_at", sa.Double, nullable=True),
    sa.Column("heartbeat_at", sa.Double, nullable=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    # version 3, each NULL unless the trial has it: every objective's value (JSON list; `value`
    # is the first), constraints (JSON {name: [value, min, max]}), their total violation
    # (0 feasible), and cost (JSON {"tokens": ..., ...}; "seconds" defaults to the run time)
    sa.Column("objective_values", sa.Text, nullable=True),
    sa.Column("constraints", sa.Text, nullable=True),
    sa.Column("violation", sa.Double, nullable=True),
    sa.Column("cost", sa.Text, nullable=True),
    sa.UniqueConstraint("study_id", "number", name="uq_hyperlaw_trials_number"),
    sa.Index("ix_hyperlaw_trials_seq", "study_id", "seq"),
    sa.Index("ix_hyperlaw_trials_value", "study_id", "state", "value"),
    # the oldest trial of a state (a queued trial to claim) in O(log n), however large the study
    sa.Index("ix_hyperlaw_trials_state", "study_id", "state", "number"),
)

reports = sa.Table(
    "hyperlaw_reports", metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("study_id", sa.Integer, nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Double, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    # version 3: every objective's value (JSON list; `value` is the first), NULL for one
    sa.Column("objective_values", sa.Text, nullable=True),
    sa.Index("ix_hyperlaw_reports_seq", "study_id", "seq"),
    # a trial's reports in order (version 1 lacked "seq": SQLite walked the study's reports)
    sa.Index("ix_hyperlaw_reports_trial", "study_id", "number", "seq"),
)


def _seek_indexes(conn: sa.Connection) -> None:
    """Version 1 -> 2: the indexes that find the oldest WAITING trial, and a trial's reports
    in order, without walking the study."""
    _index(trials, "ix_hyperlaw_trials_state").create(conn, checkfirst=True)
    reports_of_trial = _index(reports, "ix_hyperlaw_reports_trial")
    reports_of_trial.drop(conn, checkfirst=True)  # version 1 had it without "seq"
    reports_of_trial.create(conn)


#: the columns version 3 added, by table: all nullable, so adding them rewrites no row
_V3_COLUMNS = {studies: ("objectives",),
               trials: ("objective_values", "constraints", "violation", "cost"),
               reports: ("objective_values",)}


def _several_objectives(conn: sa.Connection) -> None:
    """Version 2 -> 3: several objectives, constraints and cost (nullable columns; a study
    of one objective writes none of them)."""
    for table, names in _V3_COLUMNS.items():
        present = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
        for name in names:
            if name in present:
                continue
            column = table.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}"))


def _index(table: sa.Table, name: str) -> sa.Index:
    return next(i for i in table.indexes if i.name == name)


#: MIGRATIONS[v] upgrades a database at schema version v to version v + 1
MIGRATIONS: dict[int, Callable[[sa.Connection], None]] = {1: _seek_indexes,
                                                          2: _several_objectives}
