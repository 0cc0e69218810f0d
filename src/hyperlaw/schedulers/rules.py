"""Simple stopping rules: percentile (the median rule generalised), threshold and patience."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.schedulers.base import Decision, Scheduler
from hyperlaw.trial import TrialRecord, TrialState

_COMPLETE = TrialState.COMPLETE


def _on_grid(step: int, warmup: int, interval: int) -> bool:
    return step >= warmup and (step - warmup) % interval == 0


def _best_so_far(trial: TrialRecord, step: int, maximize: bool) -> float | None:
    values = [v for s, v in trial.intermediate.items() if s <= step and not math.isnan(v)]
    if not values:
        return None
    return max(values) if maximize else min(values)


class PercentileStopping(Scheduler):
    """Stop at step s when the trial's best value up to s is worse than the given percentile
    of the values complete trials reported at s (percentile 25 keeps the best quarter;
    50 is the median rule).

    Nothing is stopped before `n_startup_trials` trials completed, before `n_warmup_steps`,
    off the `interval_steps` grid, or when fewer than `n_min_trials` trials reported at s.
    """

    name = "percentile"

    def __init__(self, percentile: float = 25.0, n_startup_trials: int = 5,
                 n_warmup_steps: int = 0, interval_steps: int = 1,
                 n_min_trials: int = 1) -> None:
        if not 0 <= percentile <= 100:
            raise HyperlawError(f"PercentileStopping: percentile must be in [0, 100], got "
                                f"{percentile!r}")
        if n_startup_trials < 0 or n_warmup_steps < 0 or interval_steps < 1 or n_min_trials < 1:
            raise HyperlawError("PercentileStopping needs n_startup_trials >= 0, "
                                "n_warmup_steps >= 0, interval_steps >= 1, n_min_trials >= 1")
        self.percentile = float(percentile)
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps
        self.n_min_trials = n_min_trials

    def options(self) -> dict[str, Any]:
        return {"percentile": self.percentile, "n_startup_trials": self.n_startup_trials,
                "n_warmup_steps": self.n_warmup_steps, "interval_steps": self.interval_steps,
                "n_min_trials": self.n_min_trials}

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision:
        if not _on_grid(step, self.n_warmup_steps, self.interval_steps):
            return Decision.CONTINUE
        trials = history.trials
        at_step = history.by_step.get(step, {})
        finished = [v for n, v in at_step.items() if trials[n].state is _COMPLETE]
        if len(finished) < self.n_min_trials:
            return Decision.CONTINUE
        if sum(t.state is _COMPLETE for t in trials) < self.n_startup_trials:
            return Decision.CONTINUE
        best = _best_so_far(trial, step, history.maximize)
        if best is None:
            return Decision.CONTINUE
        maximize = history.maximize
        cut = float(np.percentile(finished, 100 - self.percentile if maximize
                                  else self.percentile))
        worse = best < cut if maximize else best > cut
        return Decision.STOP if worse else Decision.CONTINUE


class ThresholdStopping(Scheduler):
    """Stop a trial whose reported value leaves [lower, upper] (either bound may be None)."""

    name = "threshold"

    def __init__(self, lower: float | None = None, upper: float | None = None,
                 n_warmup_steps: int = 0, interval_steps: int = 1) -> None:
        if lower is None and upper is None:
            raise HyperlawError("ThresholdStopping needs lower=, upper= or both (e.g. "
                                "upper=10.0 to stop a diverging loss)")
        if lower is not None and upper is not None and lower > upper:
            raise HyperlawError(f"ThresholdStopping: lower ({lower}) is above upper ({upper})")
        if n_warmup_steps < 0 or interval_steps < 1:
            raise HyperlawError("ThresholdStopping needs n_warmup_steps >= 0 and "
                                "interval_steps >= 1")
        self.lower = lower
        self.upper = upper
        self.n_warmup_steps = n_warmup_steps
        self.interval_steps = interval_steps

    def options(self) -> dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper, "n_warmup_steps": self.n_warmup_steps,
                "interval_steps": self.interval_steps}

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision:
        if not _on_grid(step, self.n_warmup_steps, self.interval_steps):
            return Decision.CONTINUE
        value = trial.intermediate.get(step)
        if value is None:
            return Decision.CONTINUE
        if (self.lower is not None and value < self.lower) or \
                (self.upper is not None and value > self.upper):
            return Decision.STOP
        return Decision.CONTINUE


class PatienceStopping(Scheduler):
    """Stop a trial whose best value has not improved by more than `min_delta` during its last
    `patience` steps (early stopping on a plateau)."""

    name = "patience"

    def __init__(self, patience: int = 5, min_delta: float = 0.0,
                 n_warmup_steps: int = 0) -> None:
        if patience < 1 or min_delta < 0 or n_warmup_steps < 0:
            raise HyperlawError("PatienceStopping needs patience >= 1 (steps), min_delta >= 0 "
                                "and n_warmup_steps >= 0")
        self.patience = patience
        self.min_delta = min_delta
        self.n_warmup_steps = n_warmup_steps

    def options(self) -> dict[str, Any]:
        return {"patience": self.patience, "min_delta": self.min_delta,
                "n_warmup_steps": self.n_warmup_steps}

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision:
        if step < self.n_warmup_steps:
            return Decision.CONTINUE
        cutoff = step - self.patience
        sign = history.sign()
        before = [sign * v for s, v in trial.intermediate.items()
                  if s <= cutoff and not math.isnan(v)]
        if not before:
            return Decision.CONTINUE
        recent = [sign * v for s, v in trial.intermediate.items()
                  if cutoff < s <= step and not math.isnan(v)]
        if not recent:
            return Decision.CONTINUE
        improved = min(recent) < min(before) - self.min_delta
        return Decision.CONTINUE if improved else Decision.STOP
