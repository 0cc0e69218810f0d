"""Asynchronous Hyperband (Li et al.): several ASHA brackets at once, stopping trials or (with
`promotion=True`) pausing them until they are promoted.

With s_max = ⌊log_η(max_budget/min_budget)⌋, bracket s (s = 0…s_max) is ASHA whose first rung
is min_budget·η^s, so bracket 0 is the most aggressive and bracket s_max runs every trial to
the end. Trials are dealt to brackets in Hyperband's proportions: one Hyperband iteration holds
n_s = ⌈(s_max+1)/(s_max−s+1)·η^(s_max−s)⌉ trials of bracket s, and trial numbers cycle through
the iterations, so every process assigns the same bracket to the same trial (a promoted
continuation keeps the bracket of its chain's first trial). A trial is only compared with
trials of its own bracket.
"""

from __future__ import annotations

import math
from typing import Any

from hyperlaw.history import History
from hyperlaw.history.rungs import Rung, chains
from hyperlaw.schedulers.asha import ASHA


class Hyperband(ASHA):
    """Asynchronous Hyperband over all its brackets; `max_budget=None` waits for the first
    complete trial to learn it (trials are not stopped before)."""

    name = "hyperband"

    def __init__(self, min_budget: float = 1, max_budget: float | None = None,
                 reduction_factor: float = 3, min_trials_at_rung: int = 1,
                 promotion: bool = False) -> None:
        super().__init__(min_budget, max_budget, reduction_factor, 0, min_trials_at_rung,
                         promotion)
        self._cached_sequence: tuple[float, list[int]] | None = None

    def options(self) -> dict[str, Any]:
        options = super().options()
        del options["min_early_stopping_rate"]
        return options

    def n_brackets(self, max_budget: float) -> int:
        """How many brackets a maximum budget gives: floor(log_eta(max / min)) + 1."""
        ratio = max_budget / self.min_budget
        return math.floor(math.log(ratio, self.reduction_factor) + 1e-9) + 1

    def bracket_sequence(self, max_budget: float) -> list[int]:
        """One Hyperband iteration as a list of brackets, one entry per trial."""
        s_max = self.n_brackets(max_budget) - 1
        eta = self.reduction_factor
        sequence: list[int] = []
        for bracket in range(s_max + 1):
            hb_s = s_max - bracket  # Hyperband's own index: its most aggressive bracket is s_max
            count = math.ceil((s_max + 1) / (hb_s + 1) * eta**hb_s)
            sequence.extend([bracket] * count)
        return sequence

    def bracket_of(self, number: int, history: History) -> int | None:
        """The bracket of trial `number` (None while max_budget is still unknown)."""
        top = self.resolved_max_budget(history)
        if top is None:
            return None
        sequence = self._sequence(top)
        return sequence[chains(history).roots.get(number, number) % len(sequence)]

    def _sequence(self, top: float) -> list[int]:
        cached = self._cached_sequence
        if cached is None or cached[0] != top:
            cached = (top, self.bracket_sequence(top))
            self._cached_sequence = cached
        return cached[1]

    def rungs(self, history: History, rate: int | None = None) -> list[Rung]:
        """Rungs of bracket `rate` (default 0) with the values of *all* trials; filter with
        `bracket_of` to keep one bracket's trials."""
        return super().rungs(history, 0 if rate is None else rate)

    def bracket(self, root: int, history: History) -> tuple[int, Any]:
        top = self.resolved_max_budget(history)
        if top is None:
            return 0, None
        sequence = self._sequence(top)
        period = len(sequence)
        bracket = sequence[root % period]

        def same_bracket(number: int) -> bool:
            return sequence[number % period] == bracket

        return bracket, same_bracket
