"""From a cost-aware study to scaling laws: the frontier trials as records for `fit`.

A study that tunes model size, tokens, learning rate and batch size together, with the
objective reporting what each run cost (`trial.add_cost(flops=6 * n_params * n_tokens)`),
finds the best loss at each compute along its cost–performance front
(`sampler="cost_aware"`). The front's trials are the compute-optimal runs the scaling fits
want:

    records = frontier_records(study, cost="flops")
    fit(records, target="n_params", features=("compute",), cell=("compute",))  # N* ∝ C^a
    fit(records, target="lr", features=("n_params", "n_tokens"))              # lr* law

Each record holds n_params, n_tokens, lr, batch_size (read from the trial's parameters, or
its user attributes, under the names given), the loss, the compute (the cost) and the
trial's number.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hyperlaw.analysis.cost import cost_frontier
from hyperlaw.errors import ScalingFitError
from hyperlaw.scaling.fit import CELL_COLUMNS
from hyperlaw.study import Study
from hyperlaw.trial import TrialRecord

COMPUTE = "compute"


def frontier_records(source: Study | Iterable[TrialRecord], cost: str = "flops", *,
                     n_params: str = "n_params", n_tokens: str = "n_tokens", lr: str = "lr",
                     batch_size: str | None = "batch_size", objective: int = 0,
                     direction: str | None = None, loss: str = "loss") -> list[dict[str, Any]]:
    """The trials of the cost–performance front of `source` (a study, or trials with
    `direction`, default "minimize") as records for `hyperlaw.scaling.fit`, by increasing
    compute. A frontier trial without one of the named columns is an error that names it."""
    if isinstance(source, Study):
        trials: Iterable[TrialRecord] = source.trials
        direction = direction or source.directions[objective]
    else:
        trials = source
    points = cost_frontier(trials, cost, objective=objective,
                           direction=direction or "minimize")
    columns = {CELL_COLUMNS[0]: n_params, CELL_COLUMNS[1]: n_tokens, "lr": lr}
    if batch_size is not None:
        columns["batch_size"] = batch_size
    records = []
    for point in points:
        trial = point.trial
        record: dict[str, Any] = {}
        for column, name in columns.items():
            found = trial.params.get(name, trial.user_attrs.get(name))
            if found is None:
                raise ScalingFitError(
                    f"trial #{trial.number} on the {cost!r} frontier has no parameter or user "
                    f"attribute {name!r} (for {column!r}); pass {column}=<its name>")
            record[column] = float(found)
        record.update({loss: point.value, COMPUTE: point.cost, "trial": trial.number})
        records.append(record)
    return records


__all__ = ["COMPUTE", "frontier_records"]
