"""Curve-based stopping: extrapolate a running trial's curve to the full budget and stop it when
it is unlikely to end better than the best trial so far (Domhan et al. 2015)."""

from __future__ import annotations

import math
from typing import Any, Literal

from hyperlaw.curves import extrapolate
from hyperlaw.curves.ensemble import Bounds, check_bounds
from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.schedulers.base import Decision, Scheduler
from hyperlaw.schedulers.rungs import CompletedSteps, check_budgets
from hyperlaw.trial import TrialRecord, TrialState

_COMPLETE = TrialState.COMPLETE


class CurveStopping(Scheduler):
    """Stop a trial when P(its value at max_budget beats the best complete trial) < threshold.

    Decisions start at `min_budget` (in step units) and need `min_points` reports; they are
    taken every `interval_steps`. `max_budget=None` uses the last step of the complete trials.
    Until `n_startup_trials` trials have completed nothing is stopped. `bounds` is the
    objective's range, passed to `hl.curves.extrapolate`: (0.0, 1.0) for an error rate or an
    accuracy, (0.0, None) for a loss; "auto" (the default) treats a curve with no negative
    value as a loss, None turns bounds off.
    """

    name = "curve"

    def __init__(self, min_budget: float = 1, max_budget: float | None = None,
                 threshold: float = 0.05, min_points: int = 3, interval_steps: int = 1,
                 n_startup_trials: int = 1,
                 bounds: Bounds | Literal["auto"] | None = "auto") -> None:
        check_budgets(min_budget, max_budget, 2, type(self).__name__)
        if not 0 < threshold < 1:
            raise HyperlawError(f"CurveStopping: threshold must be a probability in (0, 1), "
                                f"got {threshold!r}")
        if min_points < 3 or interval_steps < 1 or n_startup_trials < 1:
            raise HyperlawError("CurveStopping needs min_points >= 3, interval_steps >= 1 and "
                                "n_startup_trials >= 1")
        self.min_budget = min_budget
        self.max_budget = max_budget
        self.threshold = threshold
        self.min_points = min_points
        self.interval_steps = interval_steps
        self.n_startup_trials = n_startup_trials
        checked = check_bounds(None if bounds is None else
                               (tuple(bounds) if isinstance(bounds, list) else bounds),
                               "CurveStopping")
        self.bounds: Bounds | Literal["auto"] = checked

    def options(self) -> dict[str, Any]:
        return {"min_budget": self.min_budget, "max_budget": self.max_budget,
                "threshold": self.threshold, "min_points": self.min_points,
                "interval_steps": self.interval_steps,
                "n_startup_trials": self.n_startup_trials,
                "bounds": self.bounds if self.bounds == "auto" else list(self.bounds)}

    def probability_of_improvement(self, trial: TrialRecord, history: History) -> float | None:
        """P(the trial's value at max_budget beats the best complete value), or None when
        there is nothing to compare with yet."""
        best = history.memoized("curve-best", _BestComplete).refresh(history)
        if best.count < self.n_startup_trials or best.value is None:
            return None
        top = self.max_budget if self.max_budget is not None else best.largest_step
        if top is None:
            return None
        steps = sorted(s for s, v in trial.intermediate.items() if not math.isnan(v))
        if len(steps) < self.min_points:
            return None
        values = [trial.intermediate[s] for s in steps]
        below = extrapolate(steps, values, top, bounds=self._bounds_for(values),
                            direction="maximize" if history.maximize else "minimize"
                            ).cdf(best.value)
        return float(1.0 - below) if history.maximize else float(below)

    def _bounds_for(self, values: list[float]) -> Bounds | Literal["auto"] | None:
        """The bounds to extrapolate with: declared bounds a curve leaves (a diverged trial
        reporting a capped value, say) are dropped for that curve rather than failing it."""
        low, high = (None, None) if self.bounds == "auto" else self.bounds
        if (low is not None and min(values) < low) or (high is not None and max(values) > high):
            return None
        return self.bounds

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision:
        if step < self.min_budget or step % self.interval_steps:
            return Decision.CONTINUE
        top = self.max_budget
        if top is not None and step >= top:
            return Decision.CONTINUE
        chance = self.probability_of_improvement(trial, history)
        if chance is None:
            return Decision.CONTINUE
        return Decision.STOP if chance < self.threshold else Decision.CONTINUE


class _BestComplete:
    """The best complete value, how many trials completed, and their largest last step."""

    def __init__(self) -> None:
        self.steps = CompletedSteps()
        self.value: float | None = None
        self.count = 0
        self.largest_step: int | None = None

    def refresh(self, history: History) -> _BestComplete:
        known = self.steps.known
        maximize = history.maximize
        for record in history.trials:
            if record.state is _COMPLETE and record.number not in known and \
                    record.value is not None:
                value = record.value
                if self.value is None or (value > self.value if maximize else value < self.value):
                    self.value = value
                self.count += 1
        self.largest_step = self.steps.refresh(history)
        return self
