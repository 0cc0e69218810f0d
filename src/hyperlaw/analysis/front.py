"""The best trials of a study of one or several objectives: the Pareto front of its complete,
feasible trials, its hypervolume, and one trial chosen from it by weights and limits.

Infeasible trials (a constraint missed) are never on the front. A study whose complete trials
are all infeasible has no front: `NoFeasibleTrialError` says so and names the least-violating
trials (also on the exception, as `least_violating`), which is where to look first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hyperlaw import pareto
from hyperlaw.errors import InvalidValueError, NoCompleteTrialError, NoFeasibleTrialError
from hyperlaw.trial import TrialRecord, TrialState

#: how many least-violating trials a NoFeasibleTrialError names
SHOWN = 3


def signed(trials: Sequence[TrialRecord], directions: Sequence[str]) -> np.ndarray:
    """The trials' objective values as an (n, k) array, lower better in every column."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    rows = [t.values if t.values is not None and len(t.values) == len(signs)
            else (np.nan,) * len(signs) for t in trials]
    return np.array(rows, dtype=float).reshape(len(trials), len(signs)) * signs


def candidates(study: str, trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The complete feasible trials; NoCompleteTrialError (NoFeasibleTrialError when some
    are complete but none feasible) when there are none."""
    complete = [t for t in trials if t.state is TrialState.COMPLETE and t.values is not None]
    feasible = [t for t in complete if t.feasible]
    if feasible:
        return feasible
    if not complete:
        raise NoCompleteTrialError(
            f"study {study!r} has no complete trial yet; run study.optimize or tell a result "
            "first")
    closest = sorted(complete, key=lambda t: (t.violation or 0.0, t.number))[:SHOWN]
    shown = "; ".join(f"#{t.number} (violation {t.violation:.4g}: {_missed(t)})"
                      for t in closest)
    raise NoFeasibleTrialError(
        f"study {study!r} has no feasible trial: all {len(complete)} complete trials miss a "
        f"constraint. Least violating: {shown}. Relax the limits, or steer the search "
        "towards them (e.g. enqueue variations of these trials)", closest)


def _missed(trial: TrialRecord) -> str:
    parts = []
    for name, (value, low, high) in trial.constraints.items():
        if high is not None and value > high:
            parts.append(f"{name}={value:.4g} > max {high:.4g}")
        if low is not None and value < low:
            parts.append(f"{name}={value:.4g} < min {low:.4g}")
    return ", ".join(parts)


def front_of(study: str, trials: Sequence[TrialRecord],
             directions: Sequence[str]) -> list[TrialRecord]:
    """The Pareto front of the complete feasible trials, by number (for one objective: the
    trials with the best value)."""
    pool = candidates(study, trials)
    mask = pareto.pareto_mask(signed(pool, directions))
    return [t for t, keep in zip(pool, mask, strict=True) if keep]


def front_hypervolume(front: Sequence[TrialRecord], directions: Sequence[str],
                      reference: Sequence[float] | None, objectives: str) -> float:
    """The hypervolume `front` dominates up to `reference` (in the objectives' own units and
    directions; default: `pareto.default_reference` of the front)."""
    points = signed(front, directions)
    if reference is None:
        ref = pareto.default_reference(points)
    else:
        given = np.asarray(reference, dtype=float).reshape(-1)
        if given.shape != (len(directions),) or not np.isfinite(given).all():
            raise InvalidValueError(
                f"the hypervolume reference must hold {len(directions)} finite numbers, one "
                f"per objective ({objectives}), got {list(np.asarray(reference).tolist())!r}")
        ref = given * np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return pareto.hypervolume(points, ref)


def select_trial(front: Sequence[TrialRecord], directions: Sequence[str],
                 names: Sequence[str] | None,
                 weights: Sequence[float] | Mapping[str, float] | None,
                 limits: Mapping[str | int, tuple[float | None, float | None]] | None,
                 ) -> TrialRecord:
    """The trial of `front` within `limits` with the lowest weighted sum of its objectives,
    each normalized to [0, 1] over the front (0 the best); the lowest number wins ties."""
    k = len(directions)
    labels = list(names) if names is not None else [f"#{i}" for i in range(k)]
    w = _weights(weights, labels)
    pool = list(front)
    for key, bounds in (limits or {}).items():
        i = _objective_index(key, labels)
        low, high = bounds
        kept = [t for t in pool if t.values is not None
                and (low is None or t.values[i] >= low) and (high is None or t.values[i] <= high)]
        if not kept:
            seen = [t.values[i] for t in pool if t.values is not None]
            seen_range = f"{min(seen):.6g}..{max(seen):.6g}" if seen else "none"
            raise InvalidValueError(
                f"no trial of the front meets the limit on objective {labels[i]!r} "
                f"({_bounds_text(low, high)}); the {len(pool)} front trial(s) that met the "
                f"limits before it have {labels[i]} in {seen_range}. Relax that limit, or run "
                "more trials")
        pool = kept
    points = signed(front, directions)
    lo, hi = points.min(axis=0), points.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    chosen = signed(pool, directions)
    scores = ((chosen - lo) / span) @ w
    return pool[int(np.argmin(scores))]  # the front is in number order: ties keep the lowest


def _weights(weights: Sequence[float] | Mapping[str, float] | None,
             labels: list[str]) -> np.ndarray:
    k = len(labels)
    w: np.ndarray
    if weights is None:
        return np.full(k, 1.0 / k)
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(labels))
        if unknown:
            raise InvalidValueError(
                f"select: weights name unknown objectives {unknown}; the objectives are "
                f"{labels}")
        w = np.array([float(weights.get(n, 0.0)) for n in labels])
    else:
        w = np.asarray(weights, dtype=float).reshape(-1)
        if w.shape != (k,):
            raise InvalidValueError(
                f"select: {w.size} weights for {k} objectives ({labels}); give one per "
                "objective, or a dict by name")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InvalidValueError(
            f"select: weights must be finite, non-negative and not all zero, got {w.tolist()}")
    return w / w.sum()


def _objective_index(key: str | int, labels: list[str]) -> int:
    if isinstance(key, str) and key in labels:
        return labels.index(key)
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(labels):
        return key
    raise InvalidValueError(
        f"select: the limit names objective {key!r}, which the study does not have; use a "
        f"name of {labels} or an index below {len(labels)}")


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"
