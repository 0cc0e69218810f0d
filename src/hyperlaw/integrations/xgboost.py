"""XGBoost: a training callback that reports an evaluation metric to a trial each boosting
round and stops training when the study's scheduler stops the trial.

    def objective(trial):
        params = {"objective": "binary:logistic", "eval_metric": "logloss",
                  "eta": trial.suggest_float("eta", 1e-3, 0.5, log=True)}
        callback = XGBoostPruningCallback(trial, "validation-logloss")
        booster = xgb.train(params, dtrain, num_boost_round=200,
                            evals=[(dvalid, "validation")], callbacks=[callback])
        return float(booster.eval(dvalid).split(":")[1])
"""

from __future__ import annotations

from typing import Any

import xgboost as xgb

from hyperlaw.errors import HyperlawError
from hyperlaw.trial import Trial

__all__ = ["XGBoostPruningCallback"]


class XGBoostPruningCallback(xgb.callback.TrainingCallback):
    """Report `observation_key` to `trial` every `report_every` boosting rounds.

    `observation_key` is "<evaluation set name>-<metric>" as XGBoost logs it: e.g.
    "validation-logloss" for `evals=[(dvalid, "validation")]`, or with the scikit-learn API
    "validation_0-logloss" for the first `eval_set`; with `xgb.cv`, "test-<metric>" (the
    mean over the folds is reported). The step is the number of boosting rounds trained.
    When the study's scheduler stops the trial, `trial.report` raises `TrialPruned` out of
    `xgb.train` (or `fit`, `xgb.cv`), which ends training; let it propagate from the
    objective and the trial is recorded as pruned.
    """

    def __init__(self, trial: Trial, observation_key: str, *, report_every: int = 1) -> None:
        super().__init__()
        if isinstance(report_every, bool) or not isinstance(report_every, int) or \
                report_every < 1:
            raise HyperlawError(f"report_every must be an int >= 1, got {report_every!r}")
        self.trial = trial
        self.observation_key = observation_key
        self.report_every = report_every

    def __deepcopy__(self, memo: dict[int, Any]) -> XGBoostPruningCallback:
        # scikit-learn's `clone` deep-copies an XGBModel's callbacks: the copy reports to the
        # same trial (a deep copy of the trial would copy its study and store)
        return type(self)(self.trial, self.observation_key, report_every=self.report_every)

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        """Report the metric after round `epoch` (0-based) when due; never asks XGBoost to
        stop (a stopped trial raises TrialPruned instead)."""
        rounds = epoch + 1
        if rounds % self.report_every == 0:
            self.trial.report(_latest(evals_log, self.observation_key), step=rounds)
        return False


def _latest(evals_log: Any, key: str) -> float:
    """The last value of `key` in XGBoost's evaluation log (the mean, in `xgb.cv`)."""
    for data, metrics in evals_log.items():
        for metric, history in metrics.items():
            if f"{data}-{metric}" == key and history:
                last = history[-1]
                return float(last[0] if isinstance(last, tuple) else last)
    known = [f"{data}-{metric}" for data, metrics in evals_log.items() for metric in metrics]
    raise HyperlawError(
        f"XGBoostPruningCallback: observation_key {key!r} is not among the evaluation results "
        f"{known or '(none: no evaluation set was given)'}; pass evals=[(dvalid, 'validation')] "
        "to xgb.train (eval_set=[...] to fit) and name one of these keys")
