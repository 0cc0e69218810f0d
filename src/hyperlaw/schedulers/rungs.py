"""Rungs: the budgets at which multi-fidelity schedulers compare trials, and the values trials
reached there, kept current incrementally from a history.

A trial *reaches* a rung of budget r with its first report at a step >= r; its rung value is
the value of that report. Budgets are in the units of `step` (epochs, iterations, tokens).
A trial that continues a paused one (the promotion variant of ASHA) counts as the same
configuration: rung values are keyed by the number of the chain's first trial.
Samplers can read the same structure (`Rung`) through a scheduler's `rungs(history)`, or
without the scheduler: `RungIndex(history.memo["rung_budgets"]).refresh(history).rungs` (the
budgets of the last rung decision taken in this process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.trial import TrialState

_COMPLETE = TrialState.COMPLETE


@dataclass
class Rung:
    """One rung: its budget and, per trial number, the value the trial reported on reaching it."""

    budget: float
    values: dict[int, float] = field(default_factory=dict)
    _steps: dict[int, int] = field(default_factory=dict, repr=False)  # trial -> step used
    _seen: dict[int, int] = field(default_factory=dict, repr=False)  # step -> entries read

    def update(self, by_step: dict[int, dict[int, float]], steps: list[int],
               roots: dict[int, int]) -> None:
        """Read the reports at steps >= budget that were not read yet."""
        seen, values, used = self._seen, self.values, self._steps
        for step in steps:
            reports = by_step[step]
            if seen.get(step) == len(reports):
                continue
            seen[step] = len(reports)
            for trial, value in reports.items():
                number = roots.get(trial, trial)
                previous = used.get(number)
                if previous is None or step < previous:
                    used[number] = step
                    values[number] = value


def check_budgets(min_budget: float, max_budget: float | None, reduction_factor: float,
                  owner: str) -> None:
    """Raise a HyperlawError naming `owner` when the budget options make no sense."""
    if not (isinstance(min_budget, int | float) and min_budget > 0):
        raise HyperlawError(f"{owner}: min_budget must be a positive number of steps, got "
                            f"{min_budget!r}")
    if max_budget is not None and not (isinstance(max_budget, int | float)
                                       and max_budget >= min_budget):
        raise HyperlawError(f"{owner}: max_budget must be a number >= min_budget "
                            f"({min_budget}), got {max_budget!r}; or None to take it from the "
                            "first complete trial")
    if not (isinstance(reduction_factor, int | float) and reduction_factor > 1):
        raise HyperlawError(f"{owner}: reduction_factor must be > 1 (3 keeps a third of the "
                            f"trials at each rung), got {reduction_factor!r}")


def rung_budgets(min_budget: float, max_budget: float | None, reduction_factor: float,
                 rate: int = 0, limit: float | None = None) -> list[float]:
    """Budgets min_budget·η^(rate+k) up to max_budget (inclusive), or up to `limit`."""
    top = max_budget if max_budget is not None else limit
    budgets = []
    k = rate
    while True:
        budget = min_budget * reduction_factor**k
        if top is not None and budget > top * (1 + 1e-9):
            break
        budgets.append(budget)
        k += 1
        if top is None and k > rate + 64:
            break
    return budgets


class RungIndex:
    """The rungs of one history at the given budgets; call `refresh()` before reading."""

    def __init__(self, budgets: list[float]) -> None:
        self.rungs = [Rung(b) for b in budgets]
        self._steps_known = -1
        self._sorted_steps: list[int] = []

    def refresh(self, history: History) -> RungIndex:
        by_step = history.by_step
        if len(by_step) != self._steps_known:
            self._sorted_steps = sorted(by_step)
            self._steps_known = len(by_step)
        steps = self._sorted_steps
        roots = chains(history).roots
        for rung in self.rungs:
            start = _first_at_least(steps, rung.budget)
            rung.update(by_step, steps[start:], roots)
        return self


#: trial system attribute of a trial that continues a paused one: the paused trial's number
PROMOTED_FROM = "promoted_from"


class ChainRoots:
    """For each trial that continues a paused one, the first trial of its chain; kept
    incrementally (the attribute is set when a trial is created)."""

    def __init__(self) -> None:
        self.roots: dict[int, int] = {}
        self.continued: set[int] = set()
        self._read = 0

    def refresh(self, history: History) -> dict[int, int]:
        roots = self.roots
        for record in history.trials[self._read:]:
            parent = record.system_attrs.get(PROMOTED_FROM)
            if parent is not None:
                roots[record.number] = roots.get(parent, parent)
                self.continued.add(parent)
        self._read = len(history.trials)
        return roots


def chains(history: History) -> ChainRoots:
    """The promotion chains of a history, current."""
    found: ChainRoots = memo(history, "chain-roots", ChainRoots)
    found.refresh(history)
    return found


def _first_at_least(steps: list[int], budget: float) -> int:
    import bisect

    return bisect.bisect_left(steps, math.ceil(budget - 1e-9))


class CompletedSteps:
    """The largest last step of any complete trial (for `max_budget=None`), kept incrementally."""

    def __init__(self) -> None:
        self.known: set[int] = set()
        self.largest: int | None = None

    def refresh(self, history: History) -> int | None:
        known = self.known
        for record in history.trials:
            if record.state is _COMPLETE and record.number not in known:
                known.add(record.number)
                last = record.last_step
                if last is not None and (self.largest is None or last > self.largest):
                    self.largest = last
        return self.largest


def memo(history: History, key: str, make: Any) -> Any:
    """A per-history object kept in `history.memo` under `key` (made on first use)."""
    found = history.memo.get(key)
    if found is None:
        found = history.memo[key] = make()
    return found


def crossed(intermediate: dict[int, float], step: int, budgets: list[float],
            after: int | None = None) -> list[float]:
    """The budgets that the report at `step` reaches for the first time for this trial (which
    continues a chain from step `after`, when given)."""
    previous = max((s for s in intermediate if s < step), default=after)
    return [b for b in budgets if step >= b - 1e-9 and (previous is None or previous < b - 1e-9)]


def kept(better: int, n: int, reduction_factor: float, strict: bool = False) -> bool:
    """ASHA's rule for a value that `better` of the `n` values at its rung (itself included)
    beat: is it among the best ⌊n/η⌋? Unless `strict`, the best one is kept even when n < η
    (the stopping variant's rule, which has no later chance to give); `strict` keeps none then
    (the promotion variant's rule)."""
    keep = int(n // reduction_factor)
    return better < (keep if strict else max(keep, 1))


def within_top(value: float, rivals: list[float], reduction_factor: float,
               maximize: bool, strict: bool = False) -> bool:
    """`kept` for `value` among `rivals` (which include it)."""
    if maximize:
        better = sum(1 for v in rivals if v > value)
    else:
        better = sum(1 for v in rivals if v < value)
    return kept(better, len(rivals), reduction_factor, strict)
