"""Trials as a table (pandas) or as JSON-ready dictionaries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyperlaw.trial import TrialRecord

if TYPE_CHECKING:
    import pandas as pd


def trial_to_dict(record: TrialRecord, *, intermediate: bool = True) -> dict[str, Any]:
    """A JSON-ready dictionary of one trial."""
    out: dict[str, Any] = {
        "number": record.number, "state": record.state.value, "value": record.value,
        "params": record.params, "user_attrs": record.user_attrs,
        "system_attrs": record.system_attrs, "error": record.error,
        "created_at": record.created_at, "started_at": record.started_at,
        "finished_at": record.finished_at,
    }
    if intermediate:
        out["intermediate"] = {str(k): v for k, v in sorted(record.intermediate.items())}
    return out


def trial_rows(trials: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    """Flat rows: number, state, value, params_*, user_attrs_*, times, last_step, error."""
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.value, "value": t.value}
        row.update({f"params_{k}": v for k, v in t.params.items()})
        row.update({f"user_attrs_{k}": v for k, v in t.user_attrs.items()})
        row.update({"datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
                    "duration_s": t.duration, "last_step": t.last_step, "error": t.error})
        rows.append(row)
    return rows


def trials_dataframe(trials: Sequence[TrialRecord]) -> pd.DataFrame:
    import pandas as pd

    columns = ["number", "state", "value"]
    frame = pd.DataFrame(trial_rows(trials))
    if frame.empty:
        return pd.DataFrame(columns=columns)
    params = sorted(c for c in frame.columns if c.startswith("params_"))
    attrs = sorted(c for c in frame.columns if c.startswith("user_attrs_"))
    rest = [c for c in frame.columns if c not in columns + params + attrs]
    return frame[columns + params + attrs + rest]
