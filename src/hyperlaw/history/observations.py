"""The history as arrays for model-based samplers: unit-cube rows, losses, states, pending."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperlaw.history import History
from hyperlaw.lineage import PROPOSAL
from hyperlaw.space import Choice, Int, Space
from hyperlaw.trial import TrialRecord, TrialState

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


@dataclass(frozen=True)
class Observations:
    """Trials of a history encoded on the unit cube (NaN = inactive dimension).

    `objectives` holds every objective's value signed so that lower is better (n, k; NaN
    for failed and running trials, and where a pruned trial reported fewer). `loss` is its
    first column, except that infeasible trials rank after every feasible one: their loss is
    the worst loss of a feasible trial (of any trial when none is feasible) plus their
    violation, so samplers of one objective never take them for good points. `violation` is
    0 for feasible trials, > 0 for infeasible ones, NaN when unknown or unconstrained.
    `step` is the last reported step of pruned trials (-1 otherwise).
    """

    x: np.ndarray
    loss: np.ndarray
    state: np.ndarray  # 0 complete, 1 pruned, 2 failed, 3 running
    step: np.ndarray
    keys: frozenset[str]
    objectives: np.ndarray | None = None
    violation: np.ndarray | None = None

    @property
    def n_informative(self) -> int:
        """Complete plus pruned trials (those with a value)."""
        return int(np.count_nonzero(self.state <= 1))

    def of_state(self, *codes: int) -> np.ndarray:
        return np.flatnonzero(np.isin(self.state, codes))


COMPLETE, PRUNED, FAILED, RUNNING = 0, 1, 2, 3
_CODE = {TrialState.COMPLETE: COMPLETE, TrialState.PRUNED: PRUNED,
         TrialState.FAILED: FAILED, TrialState.RUNNING: RUNNING}


def params_key(params: dict[str, Any]) -> str:
    """A hashable identity of a configuration (to detect duplicates)."""
    return repr(sorted(params.items(), key=lambda kv: kv[0]))


def held_params(trial: TrialRecord) -> dict[str, Any]:
    """The configuration a trial holds: its params, and while it runs, the proposal recorded
    when it was asked for the parameters its objective has not suggested yet."""
    proposal = trial.system_attrs.get(PROPOSAL)
    if trial.state is TrialState.RUNNING and proposal:
        return {**proposal, **trial.params}
    return trial.params


def encode_row(space: Space, params: dict[str, Any]) -> np.ndarray:
    """Unit-cube row of a trial's params; absent or unreadable parameters are NaN."""
    row = np.full(space.dim, np.nan)
    for j, name in enumerate(space.dims):
        if name in params:
            try:
                row[j] = space[name].to_unit(params[name])
            except Exception:  # a value the (learned) space no longer holds
                row[j] = np.nan
    return row


def categorical_mask(space: Space) -> np.ndarray:
    """True for dimensions that are unordered choices."""
    return np.array([isinstance(space[n], Choice) for n in space.dims], dtype=bool)


def n_bins(space: Space) -> np.ndarray:
    """Number of equal-width cells per dimension on the unit cube: the number of values of an
    evenly spaced dimension, 0 for continuous ones and for log-scaled integers (their values
    are not evenly spaced on the cube: TPE and NSGA-II model them as continuous and round them
    when decoded, so every value stays reachable; the GP's acquisition takes `int_levels`)."""
    params = [space[n] for n in space.dims]
    return np.array([0 if isinstance(p, Int) and p.log else p.n_values or 0 for p in params],
                    dtype=np.int64)


#: log-scaled integers with at most this many values have `int_levels`
MAX_LEVELS = 1024


def int_levels(space: Space) -> dict[int, np.ndarray]:
    """Unit-cube positions of the values of each log-scaled integer dimension (by index) with
    at most `MAX_LEVELS` values, ascending: an acquisition scored at these positions is
    scored at what will run (between them it is scored at a point that rounds elsewhere)."""
    out = {}
    for j, name in enumerate(space.dims):
        p = space[name]
        if isinstance(p, Int) and p.log and p.n_values <= MAX_LEVELS:
            out[j] = _unit_levels(p)
    return out


@functools.lru_cache(maxsize=256)
def _unit_levels(p: Int) -> np.ndarray:
    """The unit-cube positions of every value of `p`, read-only (computed once per parameter,
    not on every ask)."""
    at = np.array([p.to_unit(v) for v in range(p.low, p.high + 1)])
    at.setflags(write=False)
    return at


def observations(space: Space, history: History) -> Observations:
    """Encode `history` for `space`, memoized per history version (rows of finished trials
    are kept across versions)."""
    memo = history.memo
    tag = ("hl.obs", space.hash)
    cached = memo.get(tag)
    if cached is not None and cached[0] == history.version:
        return cached[1]
    signs = history.signs()
    # a finished trial's row, kept with the (frozen) record it was read from and its number
    # of reports (a pruned trial's last step): reused while the history holds that very
    # record with as many reports, so a study's every ask encodes only what changed
    rows_tag = ("hl.rows", space.hash, signs)
    rows: dict[int, tuple[TrialRecord, int, _Row]] = memo.setdefault(rows_tag, {})
    found: list[_Row] = []
    for t in history.trials:
        kept = rows.get(t.number)
        if kept is not None and kept[0] is t and kept[1] == len(t.intermediate):
            found.append(kept[2])
            continue
        row = _row(space, t, signs)
        if row is None:
            continue
        if t.state in _FINISHED:
            rows[t.number] = (t, len(t.intermediate), row)
        found.append(row)
    n = len(found)
    xs, keys, objectives, violation, state, step = zip(*found, strict=True) if n else ((),) * 6
    x = np.array(xs) if n else np.empty((0, space.dim))
    signed = np.array(objectives, dtype=float).reshape(n, len(signs))
    violations = np.array(violation, dtype=float)
    obs = Observations(x.reshape(n, space.dim), _feasible_first(signed[:, 0].copy(), violations),
                       np.array(state, dtype=np.int64), np.array(step, dtype=np.int64),
                       frozenset(keys), signed, violations)
    memo[tag] = (history.version, obs)
    return obs


#: a trial's row: unit-cube point, configuration key, signed objectives, violation, state
#: code and last step (see `_row`)
_Row = tuple[np.ndarray, str, tuple[float, ...], float, int, int]


def _row(space: Space, t: TrialRecord, signs: tuple[float, ...]) -> _Row | None:
    """What `observations` holds of trial t (None for trials it leaves out: waiting ones,
    and those without parameters yet)."""
    code = _CODE.get(t.state)
    params = held_params(t) if code == RUNNING else t.params
    if code is None or not params:
        return None
    step = t.last_step if code == PRUNED and t.last_step is not None else -1
    return (encode_row(space, params), params_key(params), _signed(t, signs), _violation(t),
            code, step)


def _signed(t: TrialRecord, signs: tuple[float, ...]) -> tuple[float, ...]:
    """The trial's objective values signed so that lower is better (NaN where unknown)."""
    values = t.values
    if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or values is None:
        return (_NAN,) * len(signs)
    return tuple(s * float(values[i]) if i < len(values) else _NAN
                 for i, s in enumerate(signs))


def _violation(t: TrialRecord) -> float:
    """The trial's violation, NaN while unknown (running, failed) or without constraints."""
    if t.state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return _NAN
    found = t.violation
    return _NAN if found is None else found


def _feasible_first(loss: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """`loss` with every infeasible trial ranked after the feasible ones: the worst feasible
    loss (of all trials when none is feasible) plus its violation."""
    infeasible = violation > 0  # NaN compares False
    if not infeasible.any():
        return loss
    known = ~np.isnan(loss)
    pool = loss[known & ~infeasible]
    if pool.size == 0:
        pool = loss[known]
    if pool.size == 0:
        return loss
    out = loss.copy()
    hit = infeasible & known
    out[hit] = pool.max() + violation[hit]
    return out


_NAN = float("nan")
