"""Rungs: the values trials reached at given budgets, kept current incrementally from a
history (the index multi-fidelity schedulers decide on and budget-aware samplers fit on).

A trial *reaches* a rung of budget r with its first report at a step >= r; its rung value is
the value of that report. Budgets are in the units of `step` (epochs, iterations, tokens).
A trial that continues a paused one (the promotion variant of ASHA) counts as the same
configuration: rung values are keyed by the number of the chain's first trial.
In a study with several objectives each rung also keeps, per trial, the vector of values it
reported there (`Rung.vectors`, from `TrialRecord.intermediate_values`), as reported: the
schedulers sign them by the study's directions.
Samplers read the rungs in use without the scheduler:
`RungIndex(history.rung_budgets).refresh(history).rungs` (the budgets of the last rung
decision taken in this process).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from hyperlaw.history import History
from hyperlaw.lineage import PROMOTED_FROM
from hyperlaw.trial import TrialRecord


@dataclass
class Rung:
    """One rung: its budget and, per trial number, the value the trial reported on reaching it
    (the first objective's) and, with several objectives, all its values there (`vectors`).
    `version` grows whenever a value is added or replaced (for rankings memoized per rung)."""

    budget: float
    values: dict[int, float] = field(default_factory=dict)
    vectors: dict[int, tuple[float, ...]] = field(default_factory=dict)
    version: int = 0
    _steps: dict[int, int] = field(default_factory=dict, repr=False)  # trial -> step used
    _seen: dict[int, int] = field(default_factory=dict, repr=False)  # step -> entries read

    def update(self, by_step: dict[int, dict[int, float]], steps: list[int],
               roots: dict[int, int], trials: list[TrialRecord] | None = None) -> None:
        """Read the reports at steps >= budget that were not read yet; with `trials` (a
        history with several objectives) also the vector each trial reported there."""
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
                    self.version += 1
                    if trials is not None:
                        vector = trials[trial].intermediate_values.get(step)
                        if vector is not None:
                            self.vectors[number] = tuple(vector)


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
        trials = history.trials if objective_signs(history) is not None else None
        for rung in self.rungs:
            start = _first_at_least(steps, rung.budget)
            rung.update(by_step, steps[start:], roots, trials)
        return self


def objective_signs(history: History) -> tuple[float, ...] | None:
    """For a history with several objectives, +1 or -1 per objective (multiply a vector by
    them to minimize every column); None for a single objective."""
    return history.signs() if len(history.directions) > 1 else None


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
    found: ChainRoots = history.memoized("chain-roots", ChainRoots)
    found.refresh(history)
    return found


def _first_at_least(steps: list[int], budget: float) -> int:
    return bisect.bisect_left(steps, math.ceil(budget - 1e-9))
