"""Scale-aware tuning: the Step Law prior, your own scaling laws, and loss across schedules.

    import hyperlaw as hl
    hl.scaling.step_law(1e9, 1e11)                       # .lr, .batch_tokens, .loss, ...
    law = hl.scaling.fit(records, target="lr", features=("n_params", "n_tokens"))
    law.predict(n_params=1e9, n_tokens=1e11)             # .value, .low, .high
    hl.scaling.LossLaw.fit(records).predict(1e9, 1e11)   # L(N, D) = E + A/N^a + B/D^b
    records = hl.scaling.frontier_records(study, cost="flops")  # a cost-aware study's front
"""

from __future__ import annotations

from hyperlaw.scaling.annealing import AnnealingFitError, AnnealingLaw, LossCurve, lr_areas
from hyperlaw.scaling.fit import (
    CellOptimum,
    ExtrapolationWarning,
    PowerLaw,
    Prediction,
    ScalingFitError,
    ScalingWarning,
    fit,
    fit_laws,
)
from hyperlaw.scaling.frontier import frontier_records
from hyperlaw.scaling.losslaw import LossLaw
from hyperlaw.scaling.multipower import MultiPowerLaw
from hyperlaw.scaling.plot import plot_law
from hyperlaw.scaling.priors import (
    BatchTradeoff,
    ComputeLawPrior,
    adamw_timescale,
    batch_tradeoff,
    compute_law,
    critical_batch_size,
    gradient_noise_scale,
    weight_decay_for_timescale,
)
from hyperlaw.scaling.steplaw import StepLawPrior, StepLawRangeWarning, step_law
from hyperlaw.scaling.study import ScalingStudy, cell_study_name, scaling_records

__all__ = [
    "AnnealingFitError",
    "AnnealingLaw",
    "BatchTradeoff",
    "CellOptimum",
    "ComputeLawPrior",
    "ExtrapolationWarning",
    "LossCurve",
    "LossLaw",
    "MultiPowerLaw",
    "PowerLaw",
    "Prediction",
    "ScalingFitError",
    "ScalingStudy",
    "ScalingWarning",
    "StepLawPrior",
    "StepLawRangeWarning",
    "adamw_timescale",
    "batch_tradeoff",
    "cell_study_name",
    "compute_law",
    "critical_batch_size",
    "fit",
    "fit_laws",
    "frontier_records",
    "gradient_noise_scale",
    "lr_areas",
    "plot_law",
    "scaling_records",
    "step_law",
    "weight_decay_for_timescale",
]
