"""The pruning callbacks of `optuna.integration` most scripts use, XGBoost's and LightGBM's,
with Optuna's signatures: hyperlaw's own (`hyperlaw.integrations.xgboost` and `.lightgbm`) on
the hyperlaw trial underneath. Each reports the watched metric after every boosting round and
raises TrialPruned out of training when the study's pruner stops the trial. The frameworks
are imported when a callback is made. Optuna's other integrations (LightGBM Tuner,
OptunaSearchCV, BoTorch, ...) are Optuna's own and are not offered.
"""

from __future__ import annotations

from typing import Any

from hyperlaw.optuna.trial import Trial

__all__ = ["LightGBMPruningCallback", "XGBoostPruningCallback"]


def XGBoostPruningCallback(trial: Trial, observation_key: str) -> Any:
    """An XGBoost `TrainingCallback` for `xgb.train` and `xgb.cv` reporting
    `observation_key` ("<evals name>-<metric>", e.g. "validation-auc"; for cv the mean)."""
    from hyperlaw.integrations.xgboost import XGBoostPruningCallback as Callback

    return Callback(trial.hyperlaw_trial, observation_key)


def LightGBMPruningCallback(trial: Trial, metric: str, valid_name: str = "valid_0",
                            report_interval: int = 1) -> Any:
    """A LightGBM callback for `lgb.train` and `lgb.cv` reporting `metric` of the validation
    set `valid_name` (for cv, the mean) every `report_interval` rounds."""
    from hyperlaw.integrations.lightgbm import LightGBMPruningCallback as Callback

    return Callback(trial.hyperlaw_trial, metric, valid_name, report_every=report_interval)
