"""Asynchronous successive halving (ASHA, Li et al. 2020), stopping variant.

Rungs sit at budgets min_budget·η^(s+k) (s: the minimum early-stopping rate). When a trial
reaches a rung it continues only if its value is among the best ⌊n/η⌋ of the n trials that
reached that rung so far (itself included; the best one always continues). Decisions are taken
on the spot from what has been recorded, so no worker ever waits for a rung to fill.
"""

from __future__ import annotations

from typing import Any

from hyperlaw.history import History
from hyperlaw.schedulers.base import Decision, Scheduler
from hyperlaw.schedulers.rungs import (
    CompletedSteps,
    Rung,
    RungIndex,
    check_budgets,
    crossed,
    memo,
    rung_budgets,
    within_top,
)
from hyperlaw.trial import TrialRecord


class ASHA(Scheduler):
    """Asynchronous successive halving that stops trials (the stopping variant).

    `min_budget`, `max_budget` are in the units of `step`; `max_budget=None` takes the last
    step of the first complete trial (no trial is stopped before one completes).
    `min_trials_at_rung` lets the first trials at a rung through unjudged.
    """

    name = "asha"

    def __init__(self, min_budget: float = 1, max_budget: float | None = None,
                 reduction_factor: float = 3, min_early_stopping_rate: int = 0,
                 min_trials_at_rung: int = 1) -> None:
        check_budgets(min_budget, max_budget, reduction_factor, type(self).__name__)
        self.min_budget = min_budget
        self.max_budget = max_budget
        self.reduction_factor = reduction_factor
        self.min_early_stopping_rate = int(min_early_stopping_rate)
        self.min_trials_at_rung = int(min_trials_at_rung)

    def options(self) -> dict[str, Any]:
        return {"min_budget": self.min_budget, "max_budget": self.max_budget,
                "reduction_factor": self.reduction_factor,
                "min_early_stopping_rate": self.min_early_stopping_rate,
                "min_trials_at_rung": self.min_trials_at_rung}

    # --- structure (also for samplers) ---------------------------------------------------
    def resolved_max_budget(self, history: History) -> float | None:
        """max_budget, or the last step of the first complete trials when it was not given."""
        if self.max_budget is not None:
            return self.max_budget
        return memo(history, "completed-steps", CompletedSteps).refresh(history)

    def budgets(self, history: History, rate: int | None = None) -> list[float]:
        """The rung budgets (the last one is max_budget when it is known)."""
        top = self.resolved_max_budget(history)
        return rung_budgets(self.min_budget, top, self.reduction_factor,
                            self.min_early_stopping_rate if rate is None else rate)

    def rungs(self, history: History, rate: int | None = None) -> list[Rung]:
        """The rungs with every trial's value at each, current with `history`."""
        budgets = self.budgets(history, rate)
        index = memo(history, f"rungs:{tuple(budgets)}", lambda: RungIndex(budgets))
        history.memo["rung_budgets"] = budgets  # where samplers find the rungs in use
        return index.refresh(history).rungs

    # --- decision ------------------------------------------------------------------------
    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision:
        return self._decide(trial, step, history, self.min_early_stopping_rate, None)

    def _decide(self, trial: TrialRecord, step: int, history: History, rate: int,
                members: Any) -> Decision:
        """The ASHA rule at rate `rate`, comparing with the trials `members(number)` accepts."""
        top = self.resolved_max_budget(history)
        if top is None or step >= top:
            return Decision.CONTINUE
        budgets = self.budgets(history, rate)
        reached = crossed(trial.intermediate, step, budgets[:-1] if budgets[-1] >= top
                          else budgets)
        if not reached:
            return Decision.CONTINUE
        by_budget = {rung.budget: rung for rung in self.rungs(history, rate)}
        for budget in reached:
            rung = by_budget[budget]
            value = rung.values.get(trial.number)
            if value is None:
                continue
            if members is None:
                rivals = list(rung.values.values())
            else:
                rivals = [v for n, v in rung.values.items() if members(n)]
            if len(rivals) < self.min_trials_at_rung:
                continue
            if not within_top(value, rivals, self.reduction_factor, history.maximize):
                return Decision.STOP
        return Decision.CONTINUE


class SuccessiveHalving(ASHA):
    """Successive halving, run asynchronously (the same rule as ASHA)."""

    name = "successive_halving"
