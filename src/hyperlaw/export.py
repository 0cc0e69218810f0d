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


def trial_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The columns of `trial_rows` in table order: number, state, value, the sorted params_*
    and user_attrs_*, then the rest as they first appear."""
    head = ["number", "state", "value"]
    seen = list(dict.fromkeys(key for row in rows for key in row))
    params = sorted(c for c in seen if c.startswith("params_"))
    attrs = sorted(c for c in seen if c.startswith("user_attrs_"))
    return head + params + attrs + [c for c in seen if c not in head + params + attrs]


def trials_csv(trials: Sequence[TrialRecord]) -> str:
    """The trials as CSV text, one row per trial in `trial_columns` order (no pandas needed);
    a missing or None cell is empty."""
    rows = trial_rows(trials)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=trial_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def trials_dataframe(trials: Sequence[TrialRecord]) -> pd.DataFrame:
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
    rows = trial_rows(trials)
    return pd.DataFrame(rows, columns=trial_columns(rows))
