"""Optuna's API on hyperlaw: change one import and a typical Optuna script runs on hyperlaw.

    import hyperlaw.optuna as optuna

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        return (x - 2) ** 2

    study = optuna.create_study(study_name="quadratic", storage="sqlite:///example.db")
    study.optimize(objective, n_trials=100)
    print(study.best_params)

`from hyperlaw.optuna.<module> import ...` stands for `from optuna.<module> import ...`
(samplers, pruners, trial, study, distributions, exceptions, logging, storages,
visualization, importance; integration has the XGBoost and LightGBM pruning callbacks).
The studies are ordinary hyperlaw studies: the dashboard and the `hyperlaw` command open
them, and `hl.load_study` gives hyperlaw's own API on them.
Samplers and pruners are built as the hyperlaw samplers and schedulers that do the same job
(see `hyperlaw.optuna.samplers` and `hyperlaw.optuna.pruners` for the table). To bring a
study that Optuna ran into hyperlaw, use `hl.from_optuna(storage, study_name, to=...)`.
"""

from __future__ import annotations

from hyperlaw.errors import TrialPruned
from hyperlaw.optuna import (
    distributions,
    exceptions,
    importance,
    integration,
    logging,
    pruners,
    samplers,
    storages,
    study,
    trial,
    visualization,
)
from hyperlaw.optuna.study import (
    Study,
    copy_study,
    create_study,
    delete_study,
    get_all_study_names,
    load_study,
)
from hyperlaw.optuna.trial import FrozenTrial, Trial, create_trial

__version__ = "5.1.0+hyperlaw"

__all__ = ["FrozenTrial", "Study", "Trial", "TrialPruned", "copy_study", "create_study",
           "create_trial", "delete_study", "distributions", "exceptions",
           "get_all_study_names", "importance", "integration", "load_study", "logging", "pruners",
           "samplers", "storages", "study", "trial", "visualization"]
