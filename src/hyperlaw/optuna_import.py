"""Import an Optuna study into a hyperlaw store: `hl.from_optuna(storage, study_name, to=...)`.

The Optuna database is read with SQLAlchemy directly (Optuna itself is not needed): its
tables `studies`, `study_directions`, `study_user_attributes`, `study_system_attributes`,
`trials`, `trial_params`, `trial_values`, `trial_intermediate_values`,
`trial_user_attributes` and `trial_system_attributes` (Optuna 3.0 and later). The SQLite file
is opened read-only; nothing is written to the Optuna database.

What maps to what:

- parameters: Optuna stores each as a float in its distribution's internal form; they are
  turned back into the values the objective saw (the choice itself for a categorical one),
  and the distributions become the study's space (`Float`, `Int`, `Choice`; a parameter
  whose distribution changed between trials gets the union of them);
- states: COMPLETE, PRUNED, FAIL, RUNNING and WAITING become complete, pruned, failed,
  running and waiting; a complete trial whose value is not finite (Optuna allows ±inf)
  becomes failed, with the value named in its error;
- intermediate values (non-finite ones, which hyperlaw does not store, are left out and
  counted), user attributes, start and end times;
- several objectives (the study's directions, each trial's values), and the constraint
  values of Optuna's `constraints_func` as constraints "c0", "c1", ... (met when <= 0);
- Optuna's system attributes, its trial ids and the study's directions are kept under the
  `"optuna"` key of the system attributes of the trial and of the study.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hyperlaw.errors import HyperlawError, StorageError, StudyNotFoundError
from hyperlaw.space import Choice, Const, Float, Int, Param, Space
from hyperlaw.store import Store, open_store
from hyperlaw.store.common import mask_url
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Study

log = logging.getLogger("hyperlaw")

__all__ = ["from_optuna", "optuna_constraints", "param_from_distribution"]

#: Optuna's trial states (as stored) -> hyperlaw's
_STATES = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED,
           "FAIL": TrialState.FAILED, "RUNNING": TrialState.RUNNING,
           "WAITING": TrialState.WAITING}
_SPECIAL = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}


def param_from_distribution(name: str, attributes: Mapping[str, Any]) -> Param:
    """The hyperlaw parameter of an Optuna distribution given by its class name and
    attributes (as in Optuna's `distribution_json`), deprecated classes included."""
    a = dict(attributes)
    if name == "CategoricalDistribution":
        return Choice(list(a["choices"]))
    low, high = a["low"], a["high"]
    if name in ("IntDistribution", "IntUniformDistribution", "IntLogUniformDistribution"):
        log_scale = bool(a.get("log")) or name == "IntLogUniformDistribution"
        return Int(int(low), int(high), log=log_scale, step=int(a.get("step") or 1))
    if name in ("FloatDistribution", "UniformDistribution", "LogUniformDistribution",
                "DiscreteUniformDistribution"):
        if low == high:
            return Const(float(low))
        step = a.get("q") if name == "DiscreteUniformDistribution" else a.get("step")
        log_scale = bool(a.get("log")) or name == "LogUniformDistribution"
        return Float(float(low), float(high), log=log_scale,
                     step=None if step is None else float(step))
    raise HyperlawError(f"unknown Optuna distribution {name!r}; hyperlaw reads Float-, Int- "
                        "and CategoricalDistribution and their deprecated forms")


def _external(param: Param, internal: float) -> Any:
    """The value the objective saw, from Optuna's internal float."""
    if isinstance(param, Choice):
        return param.values[int(internal)]
    if isinstance(param, Int):
        return round(internal)
    if isinstance(param, Const):
        return param.value
    return float(internal)


def _union(name: str, a: Param, b: Param) -> Param:
    """One parameter covering both definitions of `name` (Optuna lets them change)."""
    if a == b:
        return a
    if isinstance(a, Choice) and isinstance(b, Choice):
        return Choice(list(a.values) + [v for v in b.values if not a.contains(v)])
    if isinstance(a, Int) and isinstance(b, Int):
        return Int(min(a.low, b.low), max(a.high, b.high), log=a.log and b.log,
                   step=a.step if a.step == b.step else 1)
    if isinstance(a, Float) and isinstance(b, Float):
        return Float(min(a.low, b.low), max(a.high, b.high), log=a.log and b.log)
    log.warning("parameter %r is %r in some Optuna trials and %r in others; the space keeps "
                "the first", name, a, b)
    return a


@dataclass
class _Trial:
    """One Optuna trial as read, before it becomes a TrialRecord."""

    trial_id: int
    number: int
    state: str
    start: Any
    complete: Any
    params: dict[str, Any] = field(default_factory=dict)
    values: dict[int, float] = field(default_factory=dict)
    intermediate: dict[int, float] = field(default_factory=dict)
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0


@dataclass
class _Study:
    study_id: int
    name: str
    directions: list[str]
    user_attrs: dict[str, Any]
    system_attrs: dict[str, Any]
    space: dict[str, Param]
    trials: list[_Trial]


def _engine(url: str) -> sa.Engine:
    """An engine that reads the Optuna database at `url` (a SQLite file read-only)."""
    from hyperlaw.store import postgres, sqlite

    try:
        parsed = sa.make_url(postgres.normalize_url(url))
    except sa.exc.ArgumentError as exc:
        raise StorageError(f"cannot parse Optuna storage URL {mask_url(url)!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        path = sqlite.database_path(parsed)
        if path is None:
            raise StorageError("an in-memory SQLite URL holds no Optuna study; pass the URL of "
                               "the Optuna database file, e.g. 'sqlite:///optuna.db'")
        sqlite.require_file(path, mask_url(url))
        return sa.create_engine("sqlite://", creator=sqlite.reader(path, mask_url(url)))
    return sa.create_engine(parsed)


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _attrs(conn: sa.Connection, table: str, owner: str, owners: sa.TextClause,
           sid: int) -> dict[Any, dict[str, Any]]:
    """{owner id: {key: value}} from an Optuna attribute table, for the owners selected."""
    t = sa.table(table, sa.column(owner), sa.column("key"), sa.column("value_json"))
    out: dict[Any, dict[str, Any]] = defaultdict(dict)
    query = sa.select(t.c[owner], t.c.key, t.c.value_json).where(owners)
    for owner_id, name, value in conn.execute(query, {"sid": sid}):
        out[owner_id][name] = _json(value)
    return out


def _read(conn: sa.Connection, url: str, study_name: str) -> _Study:
    tables = set(sa.inspect(conn).get_table_names())
    if not {"studies", "trials", "trial_values", "trial_params"} <= tables:
        raise StorageError(
            f"storage {mask_url(url)!r} is not an Optuna database of Optuna 3.0 or later (it "
            "has no studies/trials/trial_values tables); upgrade an older one with "
            f"`optuna storage upgrade --storage {mask_url(url)}`")
    row = conn.execute(sa.text("SELECT study_id FROM studies WHERE study_name = :n"),
                       {"n": study_name}).first()
    if row is None:
        names = conn.execute(sa.text("SELECT study_name FROM studies")).scalars().all()
        raise StudyNotFoundError(f"no study {study_name!r} in Optuna storage "
                                 f"{mask_url(url)!r}; it has {sorted(names)}")
    sid = {"sid": row[0]}
    directions = [d.lower() for d in conn.execute(sa.text(
        "SELECT direction FROM study_directions WHERE study_id = :sid ORDER BY objective"),
        sid).scalars()]
    in_study = "trial_id IN (SELECT trial_id FROM trials WHERE study_id = :sid)"
    user = _attrs(conn, "study_user_attributes", "study_id", sa.text("study_id = :sid"),
                  row[0])
    system = _attrs(conn, "study_system_attributes", "study_id", sa.text("study_id = :sid"),
                    row[0])
    trials = {r[0]: _Trial(*r) for r in conn.execute(sa.text(
        "SELECT trial_id, number, state, datetime_start, datetime_complete FROM trials "
        "WHERE study_id = :sid ORDER BY number"), sid)}
    space: dict[str, Param] = {}
    for trial_id, name, internal, dist in conn.execute(sa.text(
            "SELECT trial_id, param_name, param_value, distribution_json FROM trial_params "
            f"WHERE {in_study}"), sid):
        spec = json.loads(dist)
        param = param_from_distribution(spec["name"], spec["attributes"])
        trials[trial_id].params[name] = _external(param, internal)
        space[name] = _union(name, space[name], param) if name in space else param
    for trial_id, objective, value, kind in conn.execute(sa.text(
            "SELECT trial_id, objective, value, value_type FROM trial_values "
            f"WHERE {in_study}"), sid):
        trials[trial_id].values[objective] = _SPECIAL.get(kind, value)
    if "trial_intermediate_values" in tables:
        for trial_id, step, value, kind in conn.execute(sa.text(
                "SELECT trial_id, step, intermediate_value, intermediate_value_type FROM "
                f"trial_intermediate_values WHERE {in_study}"), sid):
            number = _SPECIAL.get(kind, value)
            if number is None or not math.isfinite(number):
                trials[trial_id].skipped += 1
            else:
                trials[trial_id].intermediate[int(step)] = float(number)
    for trial_id, attrs in _attrs(conn, "trial_user_attributes", "trial_id", sa.text(in_study),
                                  row[0]).items():
        trials[trial_id].user_attrs = attrs
    for trial_id, attrs in _attrs(conn, "trial_system_attributes", "trial_id", sa.text(in_study),
                                  row[0]).items():
        trials[trial_id].system_attrs = attrs
    return _Study(row[0], study_name, directions or ["minimize"], user.get(row[0], {}),
                  system.get(row[0], {}), space, sorted(trials.values(), key=lambda t: t.number))


def optuna_constraints(system_attrs: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """An Optuna trial's constraint values by name (each met when <= 0), from its system
    attributes: the list of `constraints_func` under "constraints" (named `prefix` + index)
    and Optuna 5's `set_constraint` values under "constraints:<name>"."""
    found = {f"{prefix}{i}": float(v)
             for i, v in enumerate(system_attrs.get("constraints") or ())}
    found.update({key.partition(":")[2]: float(v) for key, v in system_attrs.items()
                  if key.startswith("constraints:")})
    return found


def _timestamp(value: Any) -> float | None:
    """POSIX seconds of an Optuna datetime (naive, local time; SQLite gives text)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.timestamp()


def _record(trial: _Trial, n_objectives: int) -> TrialRecord:
    """The hyperlaw record of one Optuna trial."""
    state = _STATES.get(trial.state)
    if state is None:
        raise HyperlawError(f"Optuna trial #{trial.number} has unknown state {trial.state!r}")
    values = [trial.values.get(i) for i in range(n_objectives)] if trial.values else []
    value = values[0] if values else None
    error = None
    if state is TrialState.COMPLETE and not all(v is not None and math.isfinite(v)
                                                for v in values):
        state, error = TrialState.FAILED, f"imported from Optuna: its values {values} are " \
                                          "not all finite numbers"
        value = None
    elif state is TrialState.FAILED:
        reason = trial.system_attrs.get("fail_reason")
        error, value = str(reason) if reason else "failed in Optuna (imported)", None
    elif value is not None and not math.isfinite(value):
        value = None
    optuna: dict[str, Any] = {"trial_id": trial.trial_id}
    if trial.system_attrs:
        optuna["system_attrs"] = trial.system_attrs
    if trial.skipped:
        optuna["skipped_intermediate_values"] = trial.skipped
    kept = (tuple(float(v) for v in values if v is not None)
            if state is TrialState.COMPLETE and values else None)
    constraints: dict[str, tuple[float, float | None, float | None]] = {
        name: (value, None, 0.0) for name, value in optuna_constraints(trial.system_attrs,
                                                                       "c").items()}
    start, end = _timestamp(trial.start), _timestamp(trial.complete)
    return TrialRecord(number=trial.number, state=state, params=trial.params, value=value,
                       intermediate=trial.intermediate, user_attrs=trial.user_attrs,
                       system_attrs={"optuna": optuna}, error=error,
                       created_at=start, started_at=start, finished_at=end,
                       values=kept if n_objectives > 1 else None, constraints=constraints)


def from_optuna(storage: str, study_name: str, *, to: str | Store | None = None,
                name: str | None = None) -> Study:
    """Import Optuna study `study_name` from the Optuna database at `storage` into the
    hyperlaw storage `to` (a URL, a Store, or None for memory) as study `name` (default: the
    same name), and return it.

        study = hl.from_optuna("sqlite:///optuna.db", "mlp", to="sqlite:///hyperlaw.db")
        study.optimize(objective, n_trials=50)   # goes on from Optuna's trials

    The Optuna database is only read (see the module docstring for what maps to what).
    """
    from hyperlaw.study import load_study

    if not isinstance(storage, str):
        raise StorageError(f"storage must be the URL of the Optuna database, got "
                           f"{type(storage).__name__}; pass e.g. 'sqlite:///optuna.db'")
    engine = _engine(storage)
    try:
        with engine.connect() as conn, conn.begin():
            found = _read(conn, storage, study_name)
    except sa.exc.SQLAlchemyError as exc:
        raise StorageError(f"cannot read Optuna storage {mask_url(storage)!r}: {exc}") from None
    finally:
        engine.dispose()
    store = open_store(to)
    attrs = {"declared_space": False,
             "optuna": {"storage": mask_url(storage), "study_id": found.study_id,
                        "study_name": found.name, "directions": found.directions,
                        "system_attrs": found.system_attrs}}
    info = store.create_study(name or study_name, found.directions[0],
                              Space(found.space).to_json() if found.space else None, attrs,
                              directions=found.directions)
    for key, value in found.user_attrs.items():
        store.set_study_user_attr(info.id, key, value)
    for trial in found.trials:
        store.import_trial(info.id, _record(trial, len(found.directions)))
    log.info("imported %d trials of Optuna study %r into %s", len(found.trials), study_name,
             store.url)
    return load_study(info.name, store)
