"""`optuna.importance.get_param_importances` on hyperlaw's PED-ANOVA importance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.analysis.importance import ped_anova

if TYPE_CHECKING:
    from hyperlaw.optuna.study import Study

__all__ = ["PedAnovaImportanceEvaluator", "get_param_importances"]


class PedAnovaImportanceEvaluator:
    """PED-ANOVA (hyperlaw computes every importance this way)."""

    def __init__(self, *, target_quantile: float = 0.1, **_: Any) -> None:
        self.target_quantile = target_quantile


def get_param_importances(study: Study, *, evaluator: Any = None,
                          params: list[str] | None = None, target: Any = None,
                          normalize: bool = True) -> dict[str, float]:
    """Each parameter's importance (PED-ANOVA, normalized to sum to 1), highest first;
    any `evaluator` is computed as PED-ANOVA."""
    quantile = getattr(evaluator, "target_quantile", 0.1)
    hl_study = study.hyperlaw_study
    columns = StudyColumns.from_trials(hl_study.trials, hl_study.direction, hl_study.space)
    scores = ped_anova(columns, quantile=quantile)
    if params is not None:
        scores = {k: v for k, v in scores.items() if k in params}
    return scores
