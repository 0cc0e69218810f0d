"""LightGBM: a training callback that reports an evaluation metric to a trial each boosting
round and stops training when the study's scheduler stops the trial.

    def objective(trial):
        params = {"objective": "binary", "metric": "binary_logloss", "verbosity": -1,
                  "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.5, log=True)}
        booster = lgb.train(params, dtrain, num_boost_round=200, valid_sets=[dvalid],
                            callbacks=[LightGBMPruningCallback(trial, "binary_logloss")])
        return booster.best_score["valid_0"]["binary_logloss"]
"""

from __future__ import annotations

from typing import Any

from hyperlaw.errors import HyperlawError
from hyperlaw.trial import Trial

__all__ = ["LightGBMPruningCallback"]


class LightGBMPruningCallback:
    """Report `metric` on the validation set `valid_name` to `trial` every `report_every`
    boosting rounds.

    `metric` is LightGBM's name (e.g. "binary_logloss", "multi_logloss", "auc", "l2");
    `valid_name` the validation set's (by default LightGBM names the first of `valid_sets`
    "valid_0"; `valid_names=` renames them). With `lgb.cv` the mean over the folds is
    reported and `valid_name` is not used. The step is the number of boosting rounds trained.
    When the study's scheduler stops the trial, `trial.report` raises `TrialPruned` out of
    `lgb.train` (or `fit`, `lgb.cv`), which ends training; let it propagate from the
    objective and the trial is recorded as pruned. A metric LightGBM maximizes (such as
    "auc") needs a study that maximizes, and one it minimizes a study that minimizes.
    """

    order = 30  # LightGBM runs callbacks by `order`: after logging and recording
    before_iteration = False

    def __init__(self, trial: Trial, metric: str, valid_name: str = "valid_0", *,
                 report_every: int = 1) -> None:
        if isinstance(report_every, bool) or not isinstance(report_every, int) or \
                report_every < 1:
            raise HyperlawError(f"report_every must be an int >= 1, got {report_every!r}")
        self.trial = trial
        self.metric = metric
        self.valid_name = valid_name
        self.report_every = report_every

    def __call__(self, env: Any) -> None:
        """Report the metric after round `env.iteration` (0-based) when due."""
        rounds = env.iteration + 1
        if rounds % self.report_every:
            return
        value, maximize = self._find(env.evaluation_result_list or [], _in_cv(env))
        self._check_direction(maximize)
        self.trial.report(value, step=rounds)

    def _find(self, results: list[Any], cv: bool) -> tuple[float, bool]:
        """(value, greater is better) of the metric among LightGBM's evaluation results:
        (set name, metric name, value, greater is better[, std]) tuples; `lgb.cv` names the
        set "valid" (before LightGBM 4.7: "cv_agg", with the metric named "valid <metric>")."""
        wanted = {("valid", self.metric), ("cv_agg", f"valid {self.metric}")} if cv \
            else {(self.valid_name, self.metric)}
        for result in results:
            if (result[0], result[1]) in wanted:
                return float(result[2]), bool(result[3])
        known = [f"{r[0]}'s {r[1]}" for r in results]
        raise HyperlawError(
            f"LightGBMPruningCallback: no {self.metric!r} on {self.valid_name!r} among the "
            f"evaluation results {known or '(none: no valid_sets were given)'}; pass the "
            "validation data in valid_sets (eval_set to fit), the metric in params['metric'], "
            "and name them here")

    def _check_direction(self, maximize: bool) -> None:
        study = getattr(self.trial, "study", None)
        if study is None or (study.direction == "maximize") == maximize:
            return
        raise HyperlawError(
            f"LightGBMPruningCallback: LightGBM {'maximizes' if maximize else 'minimizes'} "
            f"{self.metric!r} but study {study.name!r} is set to {study.direction}; create "
            f"the study with direction={'maximize' if maximize else 'minimize'!r} or report "
            "another metric")


def _in_cv(env: Any) -> bool:
    """Whether the callback runs in `lgb.cv` (its model is a CVBooster)."""
    return type(env.model).__name__ == "CVBooster"
