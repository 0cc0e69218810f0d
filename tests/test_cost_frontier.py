"""Cost as an axis: the cost frontier, the cost-aware sampler, and the frontier as records of
the scaling fits."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.analysis.cost import cost_frontier, value_at
from hyperlaw.errors import HyperlawError, ScalingFitError
from hyperlaw.samplers import CostAwareSampler
from hyperlaw.scaling import ScalingWarning, fit
from hyperlaw.scaling.frontier import frontier_records
from hyperlaw.trial import TrialState


def _told(study: hl.Study, value: object, flops: float | None, *,
          memory: float | None = None, state: TrialState | None = None) -> int:
    trial = study.ask()
    if flops is not None:
        trial.add_cost(flops=flops)
    if memory is not None:
        trial.constrain("memory_gb", memory, max=16)
    if state is not None:
        study.tell(trial, state=state)
    else:
        study.tell(trial, value)
    return trial.number


def test_the_frontier_keeps_each_trial_no_cheaper_one_matches(tmp_path: Path) -> None:
    study = hl.create_study(storage=f"sqlite:///{tmp_path / 'c.db'}",
                            space={"x": hl.Float(0, 1)})
    cheap = _told(study, 3.0, 1.0)
    _told(study, 3.5, 2.0)  # dearer and worse: off
    mid = _told(study, 2.0, 4.0)
    _told(study, 2.0, 5.0)  # dearer and only as good: off
    _told(study, 0.5, 6.0, memory=20.0)  # infeasible: off
    _told(study, 0.1, 3.0, state=TrialState.PRUNED)  # not complete: off
    _told(study, 1.0, None)  # no flops: off
    dear = _told(study, 1.5, 8.0)
    points = study.cost_frontier(cost="flops")
    assert [(p.cost, p.value, p.trial.number) for p in points] == [
        (1.0, 3.0, cheap), (4.0, 2.0, mid), (8.0, 1.5, dear)]
    assert value_at(points, 0.5) is None
    assert value_at(points, 4.0) == 2.0 and value_at(points, 7.9) == 2.0
    # every finished trial has its wall time as cost "seconds"
    assert len(study.cost_frontier()) >= 1


def test_the_frontier_of_a_maximized_objective_by_name() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1)},
                            objectives={"accuracy": "maximize", "latency": "minimize"})
    first = _told(study, (0.7, 5.0), 2.0)
    _told(study, (0.6, 1.0), 3.0)
    best = _told(study, (0.9, 9.0), 5.0)
    points = study.cost_frontier(cost="flops", objective="accuracy")
    assert [(p.value, p.trial.number) for p in points] == [(0.7, first), (0.9, best)]
    assert [p.value for p in study.cost_frontier("flops", objective=1)] == [5.0, 1.0]
    with pytest.raises(HyperlawError, match="'loss' is not one of"):
        study.cost_frontier("flops", objective="loss")
    assert cost_frontier(study.trials, "tokens") == []


# --- a known loss surface in model size, tokens, learning rate and batch size -----------------
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28  # Chinchilla's fit (Hoffmann et al.)
COMPUTE_EXPONENT = BETA / (ALPHA + BETA)  # N* ∝ C^(β/(α+β)) along the compute-optimal front


def surface(trial: hl.Trial) -> float:
    """Chinchilla's law plus penalties for a learning rate and a batch size off their optima
    (which move with N and D); the cost is 6·N·D FLOPs."""
    n, d = trial.params["n_params"], trial.params["n_tokens"]
    lr_star = 1.79 * n**-0.713 * d**0.307
    batch_star = 0.58 * d**0.3
    trial.add_cost(flops=6 * n * d)
    return (E + A / n**ALPHA + B / d**BETA + 0.02 * math.log(trial.params["lr"] / lr_star) ** 2
            + 0.01 * math.log(trial.params["batch_size"] / batch_star) ** 2)


SCALING_SPACE = {"n_params": hl.Float(1e5, 1e9, log=True),
                 "n_tokens": hl.Float(1e6, 1e11, log=True),
                 "lr": hl.Float(1e-5, 1e-1, log=True), "batch_size": hl.Int(8, 4096, log=True)}


def test_the_cost_aware_frontier_recovers_the_planted_compute_exponent(tmp_path: Path) -> None:
    study = hl.create_study(storage=f"sqlite:///{tmp_path / 'scaling.db'}",
                            space=SCALING_SPACE, seed=0,
                            sampler=CostAwareSampler(seed=0, cost="flops"))
    study.optimize(surface, n_trials=60, show_progress=False)
    records = frontier_records(study, cost="flops")
    assert [r["compute"] for r in records] == sorted(r["compute"] for r in records)
    assert set(records[0]) >= {"n_params", "n_tokens", "lr", "batch_size", "loss", "compute"}
    # the fit on the front where the box holds both N* and D* (6e12 to 6e19 FLOPs)
    inside = [r for r in records if 6e12 <= r["compute"] <= 6e19]
    assert len(inside) >= 15
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        law = fit(inside, target="n_params", features=("compute",), cell=("compute",),
                  n_bootstrap=50)
    assert law.exponents[0] == pytest.approx(COMPUTE_EXPONENT, abs=0.08)


def test_the_cost_aware_sampler_spreads_along_the_front() -> None:
    study = hl.create_study(space=SCALING_SPACE, seed=1,
                            sampler=CostAwareSampler(seed=1, cost="flops"))
    study.optimize(surface, n_trials=40, show_progress=False)
    costs = np.log10([t.cost["flops"] for t in study.trials[10:]])
    # past the random start, proposals cover decades of compute, not one band
    assert costs.max() - costs.min() > 3
    # the same seed proposes the same configurations
    again = hl.create_study(space=SCALING_SPACE, seed=1,
                            sampler=CostAwareSampler(seed=1, cost="flops"))
    again.optimize(surface, n_trials=14, show_progress=False)
    assert [t.params for t in again.trials] == [t.params for t in study.trials[:14]]


def test_frontier_records_name_a_missing_column() -> None:
    study = hl.create_study(space={"width": hl.Int(1, 8)})
    trial = study.ask()
    trial.add_cost(flops=10.0)
    study.tell(trial, 1.0)
    with pytest.raises(ScalingFitError, match="no parameter or user attribute 'n_params'"):
        frontier_records(study)
    assert frontier_records(study.trials, cost="tokens") == []


def test_the_cost_aware_sampler_names_a_cost_no_trial_reports() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1)},
                            sampler=CostAwareSampler(seed=0, cost="tokens", n_startup_trials=3))
    study.optimize(lambda t: t.params["x"], n_trials=3, show_progress=False)
    with pytest.raises(HyperlawError, match=r"trial.add_cost\(tokens=...\)"):
        study.ask()


def test_expected_hypervolume_improvement_of_a_certain_loss_is_the_improvement() -> None:
    from hyperlaw.pareto import hypervolume
    from hyperlaw.samplers.cost_aware import log_hypervolume_improvement

    front = np.array([[1.0, 3.0], [2.0, 2.0], [4.0, 1.0]])
    ref = np.array([5.0, 4.0])
    base = hypervolume(front, ref)
    for cost, loss in [(1.5, 1.5), (0.5, 3.5), (3.0, 0.5), (4.5, 2.0)]:
        improvement = np.exp(log_hypervolume_improvement(
            np.array([loss]), np.array([1e-4]), np.array([cost]), front[:, 0], front[:, 1],
            float(ref[0]), float(ref[1])))[0]
        expected = hypervolume(np.vstack([front, [cost, loss]]), ref) - base
        assert improvement == pytest.approx(expected, abs=1e-3)
