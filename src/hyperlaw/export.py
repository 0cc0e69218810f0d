"""Trials as a table (CSV through the standard library, or a pandas DataFrame) or as
JSON-ready dictionaries. pandas is optional (`pip install 'hyperlaw[pandas]'`) and imported
only by `trials_dataframe`."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import HyperlawError
from hyperlaw.trial import TrialRecord

if TYPE_CHECKING:
    import pandas as pd


def trial_to_dict(record: TrialRecord, *, intermediate: bool = True) -> dict[str, Any]:
    """A JSON-ready dictionary of one trial.

    Args:
        record: The trial.
        intermediate: Include the reported values, keyed by step (as strings).
    """
    out: dict[str, Any] = {
        "number": record.number, "state": record.state.value, "value": record.value,
        "params": record.params, "user_attrs": record.user_attrs,
        "system_attrs": record.system_attrs, "error": record.error,
        "created_at": record.created_at, "started_at": record.started_at,
        "finished_at": record.finished_at,
    }
    if record.values is not None and len(record.values) > 1:
        out["values"] = list(record.values)
    if record.constraints:
        out["constraints"] = {k: {"value": v, "min": lo, "max": hi}
                              for k, (v, lo, hi) in record.constraints.items()}
        out["violation"] = record.violation
    if record.cost:
        out["cost"] = dict(record.cost)
    if intermediate:
        out["intermediate"] = {str(k): v for k, v in sorted(record.intermediate.items())}
        if record.intermediate_values:
            out["intermediate_values"] = {str(k): list(v) for k, v
                                          in sorted(record.intermediate_values.items())}
    return out


def trial_rows(trials: Sequence[TrialRecord],
               objective_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Flat rows: number, state, value, values_<name or index> (when some trial has several
    values, or the objectives have names), params_*, user_attrs_*, constraint_<name> and
    violation (constrained trials), cost_<key>, times, last_step, error."""
    several = objective_names is not None or any(
        t.values is not None and len(t.values) > 1 for t in trials)
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.value, "value": t.value}
        if several:
            row.update(_values_columns(t, objective_names))
        row.update({f"params_{k}": v for k, v in t.params.items()})
        row.update({f"user_attrs_{k}": v for k, v in t.user_attrs.items()})
        if t.constraints:
            row.update({f"constraint_{k}": v[0] for k, v in t.constraints.items()})
            row["violation"] = t.violation
        row.update({f"cost_{k}": v for k, v in t.cost.items()})
        row.update({"datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
                    "duration_s": t.duration, "last_step": t.last_step, "error": t.error})
        rows.append(row)
    return rows


def _values_columns(t: TrialRecord, names: Sequence[str] | None) -> dict[str, Any]:
    labels = names or [str(i) for i in range(len(t.values or ()))]
    values = t.values or ()
    return {f"values_{label}": values[i] if i < len(values) else None
            for i, label in enumerate(labels)}


def trial_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The columns of `trial_rows` in table order: number, state, value and values_*, then
    the sorted params_*, user_attrs_* and constraint_*, violation, cost_*, then the rest as
    they first appear."""
    seen = list(dict.fromkeys(key for row in rows for key in row))
    first = ["number", "state", "value"] + [c for c in seen if c.startswith("values_")]
    groups = [sorted(c for c in seen if c.startswith(prefix))
              for prefix in ("params_", "user_attrs_", "constraint_")]
    grouped = [c for group in groups for c in group]
    measures = (["violation"] if "violation" in seen else []) + sorted(
        c for c in seen if c.startswith("cost_"))
    return first + grouped + measures + [c for c in seen if c not in first + grouped + measures]


def trials_csv(trials: Sequence[TrialRecord],
               objective_names: Sequence[str] | None = None) -> str:
    """The trials as CSV text, one row per trial in `trial_columns` order (no pandas needed);
    a missing or None cell is empty."""
    rows = trial_rows(trials, objective_names)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=trial_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def trials_dataframe(trials: Sequence[TrialRecord],
                     objective_names: Sequence[str] | None = None) -> pd.DataFrame:
    """The trials as a pandas DataFrame, one row per trial in `trial_columns` order.

    Raises:
        HyperlawError: pandas is not installed (install `hyperlaw[pandas]`).
    """
    try:
        import pandas as pd
    except ImportError:
        raise HyperlawError("to_dataframe needs pandas, an optional dependency: "
                            "pip install 'hyperlaw[pandas]' (the CSV export "
                            "`hyperlaw export --format csv` needs no pandas)") from None
    rows = trial_rows(trials, objective_names)
    return pd.DataFrame(rows, columns=trial_columns(rows))
