"""The pruning callbacks of `optuna.integration` most scripts use: XGBoost's and LightGBM's.

Each reports the watched metric after every boosting round (`trial.report(value, round)`)
and raises TrialPruned when the study's pruner says so, as Optuna's do. The frameworks are
imported when a callback is made. Optuna's other integrations (LightGBM Tuner,
OptunaSearchCV, BoTorch, ...) are Optuna's own and are not offered.
"""

from __future__ import annotations

import functools
from typing import Any

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.optuna.trial import Trial

__all__ = ["LightGBMPruningCallback", "XGBoostPruningCallback"]


def _check(trial: Trial, value: float, step: int) -> None:
    trial.report(value, step)
    if trial.should_prune():
        raise TrialPruned(f"trial #{trial.number} pruned at boosting round {step}")


@functools.cache
def _xgboost_callback_class() -> type:
    from xgboost.callback import TrainingCallback

    class XGBoostPruning(TrainingCallback):
        """Reports `observation_key` ("<data>-<metric>", e.g. "validation-auc") each round."""

        def __init__(self, trial: Trial, observation_key: str) -> None:
            super().__init__()
            self.trial = trial
            self.data, _, self.metric = observation_key.partition("-")

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            try:
                score = evals_log[self.data][self.metric][-1]
            except KeyError:
                raise HyperlawError(
                    f"XGBoostPruningCallback: no metric {self.metric!r} of data "
                    f"{self.data!r} in XGBoost's log (it has "
                    f"{ {k: sorted(v) for k, v in evals_log.items()} }); pass "
                    "'<evals name>-<eval_metric>', e.g. 'validation-auc'") from None
            _check(self.trial, float(score[0] if isinstance(score, tuple) else score), epoch)
            return False

    return XGBoostPruning


def XGBoostPruningCallback(trial: Trial, observation_key: str) -> Any:
    """An XGBoost `TrainingCallback` for `xgb.train` and `xgb.cv` (for cv, the mean)."""
    return _xgboost_callback_class()(trial, observation_key)


class LightGBMPruningCallback:
    """A LightGBM callback for `lgb.train` and `lgb.cv`: reports `metric` of the validation
    set `valid_name` ("valid_0", LightGBM's name of the first unnamed one; for cv, the
    mean) every `report_interval` rounds."""

    def __init__(self, trial: Trial, metric: str, valid_name: str = "valid_0",
                 report_interval: int = 1) -> None:
        self.trial = trial
        self.metric = metric
        self.valid_name = valid_name
        self.report_interval = report_interval

    def __call__(self, env: Any) -> None:
        if (env.iteration + 1) % self.report_interval:
            return
        for entry in env.evaluation_result_list or []:
            data, name, value = entry[0], entry[1], entry[2]
            in_cv = len(entry) == 5  # (data, metric, mean, higher is better, std)
            if name == self.metric and (in_cv or data == self.valid_name):
                _check(self.trial, float(value), env.iteration)
                return
        raise HyperlawError(
            f"LightGBMPruningCallback: no metric {self.metric!r} of validation set "
            f"{self.valid_name!r} among LightGBM's results "
            f"{[(e[0], e[1]) for e in env.evaluation_result_list or []]}; set the metric in "
            "the params and pass valid_sets")
