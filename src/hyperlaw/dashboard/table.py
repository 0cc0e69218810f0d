"""The trial table: filter, sort and page a study's trials on the server.

A filter is a comma-separated list of conditions, each `FIELD OP VALUE`, where FIELD is
`number`, `value`, `state`, `last_step`, `duration` or `params.NAME` (with several objectives
also `values.I`, the I-th objective counting from 0; with constraints, `violation`), and OP
is one of `= == != < <= > >=`. Example: `value < 0.2, params.optimizer = adam`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperlaw.analysis.columns import STATE_CODE, StudyColumns
from hyperlaw.errors import HyperlawError
from hyperlaw.trial import TrialState

MAX_PAGE = 500
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(==|!=|<=|>=|=|<|>)\s*(.+?)\s*$")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "==": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_FIELDS = ("number", "value", "state", "last_step", "duration")


@dataclass(frozen=True)
class TableQuery:
    """What the page asks of the table."""

    offset: int = 0
    limit: int = 50
    sort: str = "number"
    descending: bool = False
    states: tuple[str, ...] = ()
    filter: str = ""

    @classmethod
    def parse(cls, args: dict[str, str]) -> TableQuery:
        try:
            offset = int(args.get("offset", 0))
            limit = int(args.get("limit", 50))
        except ValueError:
            raise HyperlawError("offset and limit must be integers, e.g. offset=0&limit=50") \
                from None
        if offset < 0 or not 1 <= limit <= MAX_PAGE:
            raise HyperlawError(f"need offset >= 0 and 1 <= limit <= {MAX_PAGE}, got "
                                f"offset={offset} and limit={limit}")
        order = args.get("order", "asc")
        if order not in ("asc", "desc"):
            raise HyperlawError(f"order must be 'asc' or 'desc', got {order!r}")
        states = tuple(s for s in args.get("state", "").split(",") if s)
        valid = [s.value for s in TrialState]
        bad = [s for s in states if s not in valid]
        if bad:
            raise HyperlawError(f"unknown states {bad}; use some of {valid}")
        return cls(offset, limit, args.get("sort", "number"), order == "desc", states,
                   args.get("filter", ""))


def field_values(columns: StudyColumns, name: str) -> np.ndarray:
    """A table field over every trial as numbers (NaN where missing; categories as codes)."""
    if name == "number":
        return np.arange(columns.n, dtype=np.float64)
    if name == "value":
        return columns.value
    if name == "state":
        return columns.state.astype(np.float64)
    if name == "last_step":
        steps = columns.last_step.astype(np.float64)
        steps[steps < 0] = np.nan
        return steps
    if name == "duration":
        return columns.finished_at - columns.started_at
    if name.startswith("params.") and name[7:] in columns.params:
        return columns.param(name[7:])
    objectives = [f"values.{j}" for j in range(columns.n_objectives)
                  ] if columns.is_multi_objective else []
    if name in objectives:
        return columns.objectives[:, int(name[7:])]
    if name == "violation" and columns.constraint_names():
        return columns.violation
    known = [*_FIELDS, *objectives, *(["violation"] if columns.constraint_names() else []),
             *(f"params.{p}" for p in columns.params)]
    raise HyperlawError(f"unknown field {name!r}; use one of {known}")


def _condition_mask(columns: StudyColumns, text: str) -> np.ndarray:
    match = _CONDITION.match(text)
    if match is None:
        raise HyperlawError(f"cannot read the filter condition {text!r}; write FIELD OP VALUE, "
                            "e.g. 'value < 0.5' or 'params.optimizer = adam'")
    name, op, raw = match.groups()
    raw = raw.strip().strip("'\"")
    values = field_values(columns, name)
    compare = _OPS[op]
    if name == "state":
        if raw not in [s.value for s in TrialState]:
            raise HyperlawError(f"unknown state {raw!r}; use one of "
                                f"{[s.value for s in TrialState]}")
        return compare(values, float(STATE_CODE[TrialState(raw)]))
    column = columns.params.get(name[7:]) if name.startswith("params.") else None
    if column is not None and column.categorical:
        if op not in ("=", "==", "!="):
            raise HyperlawError(f"{name} is categorical: compare it with = or !=, not {op}")
        code = column.labels.index(raw) if raw in column.labels else -1
        return compare(values, float(code))
    try:
        number = float(raw)
    except ValueError:
        raise HyperlawError(f"{name} is a number: compare it with a number, got {raw!r}") \
            from None
    with np.errstate(invalid="ignore"):
        return compare(values, number) & ~np.isnan(values)


def query_table(columns: StudyColumns, query: TableQuery) -> dict[str, Any]:
    """One page of the table: total matching, the rows, and the parameter columns."""
    keep = np.ones(columns.n, dtype=bool)
    if query.states:
        keep &= np.isin(columns.state, [STATE_CODE[TrialState(s)] for s in query.states])
    for part in (p for p in query.filter.split(",") if p.strip()):
        keep &= _condition_mask(columns, part)
    numbers = np.flatnonzero(keep)
    key = field_values(columns, query.sort)[numbers]
    if query.descending:
        key = -key
    # NaN sorts last in either direction; ties keep trial order
    order = np.lexsort((numbers, np.nan_to_num(key, nan=0.0), np.isnan(key)))
    page = numbers[order][query.offset: query.offset + query.limit]
    return {"total": len(numbers), "offset": query.offset, "limit": query.limit,
            "sort": query.sort, "order": "desc" if query.descending else "asc",
            "params": columns.param_names(),
            "objectives": columns.objective_labels() if columns.is_multi_objective else None,
            "constrained": bool(columns.constraint_names()),
            "rows": [columns.row(int(i)) for i in page]}

