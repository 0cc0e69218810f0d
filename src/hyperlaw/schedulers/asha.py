"""Asynchronous successive halving (ASHA, Li et al. 2020): the stopping and the promotion
variant.

Rungs sit at budgets min_budget·η^(s+k) (s: the minimum early-stopping rate). When a trial
reaches a rung it continues only if its value is among the best ⌊n/η⌋ of the n trials that
reached that rung so far (itself included; the best one always continues). Decisions are taken
on the spot from what has been recorded, so no worker ever waits for a rung to fill.

The stopping variant stops the others. The promotion variant (`promotion=True`) suspends them
at their rung checkpoint instead, and `ask` continues the best suspended trial in a new trial
once it ranks in its rung's top 1/η, before sampling anything new.

In a study with several objectives (MO-ASHA) the same rules rank the trials at a rung by
non-dominated sorting of their values there, ties within a front broken by hypervolume
contribution (`schedulers.rungs.ranked_ahead`); a single objective is ranked by its value as before.
"""

from __future__ import annotations

import bisect
from typing import Any

from hyperlaw.history import History
from hyperlaw.history.rungs import Rung, RungIndex, chains, objective_signs
from hyperlaw.lineage import RESUME, SUSPENDED, Checkpoint, resume_point
from hyperlaw.schedulers.base import Decision, HandOff, Scheduler
from hyperlaw.schedulers.rungs import (
    CompletedSteps,
    check_budgets,
    crossed,
    kept,
    rung_budgets,
    vector_standings,
    within_top,
)
from hyperlaw.trial import TrialRecord, TrialState


class ASHA(Scheduler):
    """Asynchronous successive halving: the stopping variant, or with `promotion=True` the
    promotion variant.

    `min_budget`, `max_budget` are in the units of `step`; `max_budget=None` takes the last
    step of the first complete trial (no trial is stopped before one completes).
    `min_trials_at_rung` lets the first trials at a rung through unjudged.

    With `promotion`, a trial that is not in the top 1/η of its rung *pauses* instead of
    stopping (it needs a checkpoint at the rung; without one it stops); whenever a worker
    asks for work, the best paused trial of the highest rung that now ranks in its rung's top
    1/η is continued from its checkpoint in a new trial (`lineage.PROMOTED_FROM`),
    before any new configuration is sampled. So no configuration is dropped for good because
    it reached a rung early, against few rivals. As in Li et al.'s algorithm, a rung promotes
    only its top ⌊n/η⌋: while it holds fewer than η trials, a trial that can pause does, even
    the best, instead of running on unjudged (one that cannot pause follows the stopping rule).
    """

    name = "asha"

    def __init__(self, min_budget: float = 1, max_budget: float | None = None,
                 reduction_factor: float = 3, min_early_stopping_rate: int = 0,
                 min_trials_at_rung: int = 1, promotion: bool = False) -> None:
        check_budgets(min_budget, max_budget, reduction_factor, type(self).__name__)
        self.promotion = bool(promotion)
        self.min_budget = min_budget
        self.max_budget = max_budget
        self.reduction_factor = reduction_factor
        self.min_early_stopping_rate = int(min_early_stopping_rate)
        self.min_trials_at_rung = int(min_trials_at_rung)

    def options(self) -> dict[str, Any]:
        return {"min_budget": self.min_budget, "max_budget": self.max_budget,
                "reduction_factor": self.reduction_factor,
                "min_early_stopping_rate": self.min_early_stopping_rate,
                "min_trials_at_rung": self.min_trials_at_rung, "promotion": self.promotion}

    # --- structure (also for samplers) ---------------------------------------------------
    def resolved_max_budget(self, history: History) -> float | None:
        """max_budget, or the last step of the first complete trials when it was not given."""
        if self.max_budget is not None:
            return self.max_budget
        return history.memoized("completed-steps", CompletedSteps).refresh(history)

    def budgets(self, history: History, rate: int | None = None) -> list[float]:
        """The rung budgets (the last one is max_budget when it is known)."""
        top = self.resolved_max_budget(history)
        return rung_budgets(self.min_budget, top, self.reduction_factor,
                            self.min_early_stopping_rate if rate is None else rate)

    def rungs(self, history: History, rate: int | None = None) -> list[Rung]:
        """The rungs with every trial's value at each, current with `history`."""
        budgets = self.budgets(history, rate)
        index = history.memoized(("rungs", tuple(budgets)), lambda: RungIndex(budgets))
        history.rung_budgets = budgets  # where samplers find the rungs in use
        return index.refresh(history).rungs

    # --- decision ------------------------------------------------------------------------
    def bracket(self, root: int, history: History) -> tuple[int, Any]:
        """The early-stopping rate of the configuration whose chain starts at trial `root`, and
        the filter of the trials it is compared with (None: all)."""
        return self.min_early_stopping_rate, None

    def decide(self, trial: TrialRecord, step: int,
               history: History) -> Decision | HandOff:
        root = chains(history).roots.get(trial.number, trial.number)
        rate, members = self.bracket(root, history)
        decision = self._decide(trial, root, step, history, rate, members,
                                strict=self.promotion)
        if decision is Decision.STOP and self.promotion:
            # the strict rule is for trials that can pause; one that cannot gets the stopping
            # variant's rule (the strict one only ever stops more)
            if self._pausable(trial, step, history, rate):
                return HandOff("suspend", trial.number, root, trial.intermediate[step])
            return self._decide(trial, root, step, history, rate, members)
        return decision

    def _pausable(self, trial: TrialRecord, step: int, history: History, rate: int) -> bool:
        """Can the trial pause here: has it a checkpoint at its last rung or later?"""
        checkpoint = resume_point(trial.number, trial.system_attrs, history.trials)
        return checkpoint is not None and checkpoint.step >= _last_rung(
            self.budgets(history, rate), step)

    @property
    def reads_history_to_start(self) -> bool:
        return self.promotion

    def promoted(self, history: History) -> int | None:
        """The paused trial to continue next (promotion variant), or None."""
        if not self.promotion or self.resolved_max_budget(history) is None:
            return None
        found = chains(history)
        sign = -1.0 if history.maximize else 1.0  # rank by sign·value, ascending
        signs = objective_signs(history)
        by_rate: dict[int, dict[float, Rung]] = {}  # rungs of each bracket, read once
        ranked: dict[tuple[int, float], list[float]] = {}  # sorted rival values, built once
        best: tuple[float, float, int] | None = None
        for record in history.trials:
            if record.state is not TrialState.PRUNED or SUSPENDED not in \
                    record.system_attrs or record.number in found.continued:
                continue
            root = found.roots.get(record.number, record.number)
            rate, members = self.bracket(root, history)
            rungs = by_rate.get(rate)
            if rungs is None:
                rungs = by_rate[rate] = {r.budget: r for r in self.rungs(history, rate)}
            budget = _last_rung(list(rungs), record.last_step or 0)
            rung = rungs.get(budget)
            if rung is None:
                continue
            if signs is not None:  # several objectives: the trial's place in the rung's order
                standings = self._standings(history, rung, rate, members, signs)
                ahead = standings.get(root)
                if ahead is None or not kept(ahead, len(standings), self.reduction_factor,
                                             strict=True):
                    continue
                place: tuple[float, float, int] = (budget, -ahead, -record.number)
                if best is None or place > best:
                    best = place
                continue
            value = rung.values.get(root)
            if value is None:
                continue
            order = ranked.get((rate, budget))
            if order is None:
                order = ranked[rate, budget] = sorted(
                    sign * v for n, v in rung.values.items() if members is None or members(n))
            if not kept(bisect.bisect_left(order, sign * value), len(order),
                        self.reduction_factor, strict=True):
                continue
            key = (budget, -sign * value, -record.number)
            if best is None or key > best:
                best = key
        return None if best is None else -best[2]

    def _decide(self, trial: TrialRecord, root: int, step: int, history: History, rate: int,
                members: Any, strict: bool = False) -> Decision:
        """The ASHA rule at rate `rate`, comparing with the trials `members(number)` accepts
        (`strict`: see `within_top`)."""
        top = self.resolved_max_budget(history)
        if top is None or step >= top:
            return Decision.CONTINUE
        budgets = self.budgets(history, rate)
        start = trial.system_attrs.get(RESUME) if root != trial.number else None
        reached = crossed(trial.intermediate, step, budgets[:-1] if budgets[-1] >= top
                          else budgets, None if start is None else Checkpoint.from_json(start).step)
        if not reached:
            return Decision.CONTINUE
        by_budget = {rung.budget: rung for rung in self.rungs(history, rate)}
        signs = objective_signs(history)
        for budget in reached:
            rung = by_budget[budget]
            if signs is not None:  # several objectives: its place in the rung's order
                standings = self._standings(history, rung, rate, members, signs)
                ahead = standings.get(root)
                if ahead is None or len(standings) < self.min_trials_at_rung:
                    continue
                if not kept(ahead, len(standings), self.reduction_factor, strict):
                    return Decision.STOP
                continue
            value = rung.values.get(root)
            if value is None:
                continue
            if members is None:
                rivals = list(rung.values.values())
            else:
                rivals = [v for n, v in rung.values.items() if members(n)]
            if len(rivals) < self.min_trials_at_rung:
                continue
            if not within_top(value, rivals, self.reduction_factor, history.maximize,
                              strict):
                return Decision.STOP
        return Decision.CONTINUE

    @staticmethod
    def _standings(history: History, rung: Rung, rate: int, members: Any,
                   signs: tuple[float, ...]) -> dict[int, int]:
        """`vector_standings` of a rung among the trials of bracket `rate`, memoized until
        the rung changes."""
        key = ("mo-standings", rate, rung.budget)
        cached = history.memo.get(key)
        if cached is not None and cached[0] is rung and cached[1] == rung.version:
            return cached[2]
        standings = vector_standings(rung, signs, members)
        history.memo[key] = (rung, rung.version, standings)
        return standings


def _last_rung(budgets: list[float], step: int) -> float:
    """The largest rung budget a trial at `step` has reached (0 before the first)."""
    return max((b for b in budgets if b <= step + 1e-9), default=0.0)


class SuccessiveHalving(ASHA):
    """Successive halving, run asynchronously (the same rule as ASHA)."""

    name = "successive_halving"
