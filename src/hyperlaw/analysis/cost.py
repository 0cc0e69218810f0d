"""The cost–performance frontier: the best value reached at each cost (CARBS's Pareto front).

    points = cost_frontier(study.trials, cost="flops")
    for p in points:                 # increasing cost, each strictly better than the cheaper ones
        print(p.cost, p.value, p.trial.params)
    value_at(points, 1e18)           # the best value a budget of 1e18 FLOPs bought

Cost is `TrialRecord.cost` (wall seconds on every finished trial; tokens, FLOPs or any amount
the objective added with `Trial.add_cost`). Only complete, feasible trials with that cost and
a finite value are on the frontier. A trial that reused an equivalent trial's result (dedup,
`system_attrs["reused_from"]`) bought nothing with its own cost: the evaluation counts once,
on the trial that ran it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.lineage import REUSED_FROM
from hyperlaw.trial import TrialRecord, TrialState


@dataclass(frozen=True)
class FrontierPoint:
    """One trial of the frontier: its cost, its value (of the chosen objective) and itself."""

    cost: float
    value: float
    trial: TrialRecord


def trial_cost(trial: TrialRecord, cost: str) -> float | None:
    """What the trial's result cost (named `cost`) as a positive finite number, or None;
    None for a trial that reused another's result (its cost did not buy it)."""
    found = trial.cost.get(cost)
    if found is None or REUSED_FROM in trial.system_attrs:
        return None
    amount = float(found)
    return amount if math.isfinite(amount) and amount > 0 else None


def objective_index(objective: int | str, names: Sequence[str] | None, n: int) -> int:
    """The column of `objective` (an index, or a name among `names`) among `n` objectives."""
    if isinstance(objective, str):
        if not names or objective not in names:
            raise HyperlawError(f"objective {objective!r} is not one of the study's objectives "
                                f"{list(names or [])}; pass a name among them or an index")
        return list(names).index(objective)
    if not 0 <= objective < n:
        raise HyperlawError(f"objective index {objective} is out of range for {n} "
                            "objective(s); pass 0 to {n - 1} or a name")
    return int(objective)


def cost_frontier(trials: Iterable[TrialRecord], cost: str = "seconds", *, objective: int = 0,
                  direction: str = "minimize") -> list[FrontierPoint]:
    """The trials no cheaper-or-equal trial matches: sorted by increasing cost, each strictly
    better (in `direction`) than every cheaper one, so `points[i].value` is the best value a
    budget of `points[i].cost` bought. `objective` is the column of `TrialRecord.values`."""
    if direction not in ("minimize", "maximize"):
        raise HyperlawError(f"direction must be 'minimize' or 'maximize', got {direction!r}")
    sign = -1.0 if direction == "maximize" else 1.0
    rows: list[tuple[float, float, int, TrialRecord]] = []
    for t in trials:
        if t.state is not TrialState.COMPLETE or not t.feasible or not t.values:
            continue
        amount = trial_cost(t, cost)
        value = float(t.values[objective]) if objective < len(t.values) else math.nan
        if amount is None or not math.isfinite(value):
            continue
        rows.append((amount, sign * value, t.number, t))
    rows.sort(key=lambda r: r[:3])
    points: list[FrontierPoint] = []
    best = math.inf
    for amount, signed, _, t in rows:
        if signed < best:
            best = signed
            points.append(FrontierPoint(amount, sign * signed, t))
    return points


def value_at(points: Sequence[FrontierPoint], budget: float) -> float | None:
    """The best value of the frontier at a cost of at most `budget` (None below its cheapest
    point)."""
    costs = np.array([p.cost for p in points])
    k = int(np.searchsorted(costs, budget, side="right"))
    return points[k - 1].value if k else None


__all__ = ["FrontierPoint", "cost_frontier", "objective_index", "trial_cost", "value_at"]
