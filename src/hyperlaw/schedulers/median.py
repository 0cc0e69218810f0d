"""The median stopping rule: stop a trial whose best value so far is worse than the median of
the other trials at the same step."""

from __future__ import annotations

import math
import statistics
from typing import Any

from hyperlaw.history import History
from hyperlaw.schedulers.base import Decision, Scheduler
from hyperlaw.trial import TrialRecord, TrialState

_COMPLETE = TrialState.COMPLETE


class MedianStopping(Scheduler):
    """Stop at step s when the trial's best value up to s is worse than the median of the
    values other complete trials reported at s.

    Nothing is stopped before `n_startup_trials` trials have completed, before `n_warmup_steps`,
    off the `interval_steps` grid, or when fewer than `n_min_trials` trials reported at s.
    """

    name = "median"

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 interval_steps: int = 1, n_min_trials: int = 1) -> None:
        if n_startup_trials < 0 or n_warmup_steps < 0 or interval_steps < 1 or n_min_trials < 1:
            raise ValueError(
                "MedianStopping needs n_startup_trials >= 0, n_warmup_steps >= 0, "
                "interval_steps >= 1 and n_min_trials >= 1"
            )
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps
        self.n_min_trials = n_min_trials

    def options(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials,
                "n_warmup_steps": self.n_warmup_steps,
                "interval_steps": self.interval_steps, "n_min_trials": self.n_min_trials}

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision:
        if step < self.n_warmup_steps or (step - self.n_warmup_steps) % self.interval_steps:
            return Decision.CONTINUE
        trials = history.trials
        finished = [n for n in history.by_step.get(step, {}) if trials[n].state is _COMPLETE]
        if sum(t.state is _COMPLETE for t in trials) < self.n_startup_trials:
            return Decision.CONTINUE
        if len(finished) < self.n_min_trials:
            return Decision.CONTINUE
        at_step = history.by_step[step]
        median = statistics.median(at_step[n] for n in finished)
        values = [v for s, v in trial.intermediate.items() if s <= step and not math.isnan(v)]
        if not values:
            return Decision.CONTINUE
        best = max(values) if history.maximize else min(values)
        worse = best < median if history.maximize else best > median
        return Decision.STOP if worse else Decision.CONTINUE
