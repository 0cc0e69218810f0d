"""Optuna's pruners by their names, each built as the hyperlaw scheduler with the same rule.

| Optuna                   | hyperlaw                                                       |
|--------------------------|----------------------------------------------------------------|
| MedianPruner             | MedianStopping (same arguments, same rule)                     |
| PercentilePruner         | PercentileStopping (same arguments, same rule)                 |
| ThresholdPruner          | ThresholdStopping (a report that is not finite prunes)         |
| PatientPruner(None, p)   | PatienceStopping(patience=p + 1): Optuna's window holds p + 1  |
|                          | reports (for reports at consecutive steps, the same rule)      |
| SuccessiveHalvingPruner  | ASHA (stopping variant): rungs at min_resource·η^k             |
| HyperbandPruner          | Hyperband (asynchronous, stopping variant)                     |
| NopPruner                | NeverStop                                                      |

Differences: with `min_resource="auto"` (SuccessiveHalvingPruner) the first rung is at
step 1; hyperlaw's halving learns the last step from the first complete trial and prunes
nothing before one completed (Optuna's estimates `min_resource` from it the same way).
`bootstrap_count` becomes `min_trials_at_rung`. A PatientPruner that wraps another pruner
applies its patience rule alone (logged): hyperlaw has no scheduler of two rules.
"""

from __future__ import annotations

import logging

from hyperlaw.schedulers import (
    ASHA,
    Hyperband,
    MedianStopping,
    NeverStop,
    PatienceStopping,
    PercentileStopping,
    Scheduler,
    ThresholdStopping,
)

log = logging.getLogger("hyperlaw")

BasePruner = Scheduler

__all__ = ["BasePruner", "HyperbandPruner", "MedianPruner", "NopPruner", "PatientPruner",
           "PercentilePruner", "SuccessiveHalvingPruner", "ThresholdPruner"]


def MedianPruner(n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 interval_steps: int = 1, *, n_min_trials: int = 1) -> Scheduler:
    """Prune when the trial's best value so far is worse than the median of the values the
    complete trials reported at the same step."""
    return MedianStopping(n_startup_trials, n_warmup_steps, interval_steps, n_min_trials)


def PercentilePruner(percentile: float, n_startup_trials: int = 5,
                     n_warmup_steps: int = 0, interval_steps: int = 1, *,
                     n_min_trials: int = 1) -> Scheduler:
    """Prune when the trial's best value so far is outside the best `percentile` percent of
    the values the complete trials reported at the same step."""
    return PercentileStopping(percentile, n_startup_trials, n_warmup_steps, interval_steps,
                              n_min_trials)


def ThresholdPruner(lower: float | None = None, upper: float | None = None,
                    n_warmup_steps: int = 0, interval_steps: int = 1) -> Scheduler:
    """Prune when a reported value leaves [lower, upper] (or is not a finite number)."""
    return ThresholdStopping(lower, upper, n_warmup_steps, interval_steps)


def PatientPruner(wrapped_pruner: Scheduler | None, patience: int,
                  min_delta: float = 0.0) -> Scheduler:
    """Prune when the best value has not improved by more than `min_delta` for `patience`
    reports."""
    if wrapped_pruner is not None and not isinstance(wrapped_pruner, NeverStop):
        log.info("PatientPruner(%r, ...): hyperlaw applies the patience rule alone, without "
                 "the wrapped pruner", wrapped_pruner)
    return PatienceStopping(patience + 1, min_delta)


def SuccessiveHalvingPruner(min_resource: str | int = "auto",
                            reduction_factor: int = 4, min_early_stopping_rate: int = 0,
                            bootstrap_count: int = 0) -> Scheduler:
    """Asynchronous successive halving: at each rung, keep the best 1/`reduction_factor`."""
    return ASHA(min_budget=1 if min_resource == "auto" else int(min_resource),
                reduction_factor=reduction_factor,
                min_early_stopping_rate=min_early_stopping_rate,
                min_trials_at_rung=max(1, bootstrap_count))


def HyperbandPruner(min_resource: int = 1, max_resource: str | int = "auto",
                    reduction_factor: int = 3, bootstrap_count: int = 0) -> Scheduler:
    """Asynchronous Hyperband: several halving brackets at once."""
    return Hyperband(min_budget=min_resource,
                     max_budget=None if max_resource == "auto" else int(max_resource),
                     reduction_factor=reduction_factor,
                     min_trials_at_rung=max(1, bootstrap_count))


def NopPruner() -> Scheduler:
    """Never prune."""
    return NeverStop()
