"""Online tuning over a stream of linear systems: real SOR solves, contextual vs blind."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.online import CONTEXTUAL, OnlineTuner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import online_sor  # scipy comes with the dev extra


def test_sor_converges_faster_near_the_optimal_omega() -> None:
    rng = np.random.default_rng(0)
    a, b = online_sor.poisson_system(8, 1e-3, rng)
    rho = online_sor.jacobi_radius(8, 1e-3)
    best = 2.0 / (1.0 + np.sqrt(1.0 - rho ** 2))
    assert np.max(np.abs(np.linalg.eigvals(np.eye(64) - a / np.diag(a)[:, None]))) == \
        pytest.approx(rho, rel=1e-6)
    gauss_seidel, relaxed = (online_sor.sor_iterations(a, b, w) for w in (1.0, best))
    assert relaxed < gauss_seidel / 2  # over-relaxation pays off on a nearly singular system
    assert online_sor.sor_iterations(a, b, 1.0, maxiter=5) == 5


def _bimodal_stream(n_systems: int, seed: int) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Systems that need very different omegas: shift 1e-3 (rho 0.94) or 4 (rho 0.47)."""
    rng = np.random.default_rng(seed)
    out = []
    for shift in rng.choice([1e-3, 4.0], n_systems):
        a, b = online_sor.poisson_system(8, float(shift), rng)
        out.append((online_sor.jacobi_radius(8, float(shift)), a, b))
    return out


def _cumulative(method: str, systems: list, seed: int) -> float:
    features = {"rho": online_sor.RHO_RANGE} if method in CONTEXTUAL else None
    tuner = OnlineTuner(online_sor.OMEGA, features=features, method=method,  # type: ignore[arg-type]
                        n_arms=8, seed=seed)
    for rho, a, b in systems:
        omega = tuner.suggest({"rho": rho} if features else None)
        tuner.observe(online_sor.sor_iterations(a, b, omega))
    assert len(tuner.costs) == len(systems) and len(tuner.choices) == len(systems)
    return tuner.cumulative_cost


@pytest.mark.parametrize("method", CONTEXTUAL)
def test_contextual_tuner_beats_instance_blind_bandit(method: str) -> None:
    contextual = blind = 0.0
    for seed in range(3):  # measured with squarecb: 0.59 to 0.80 of UCB's cost per seed
        systems = _bimodal_stream(150, seed)
        contextual += _cumulative(method, systems, seed)
        blind += _cumulative("ucb", systems, seed)
    assert contextual < 0.85 * blind


def test_tuner_arms_from_parameters_and_values() -> None:
    assert len(OnlineTuner(hl.Float(1.0, 1.9), method="ucb", n_arms=10).arms) == 10
    assert OnlineTuner(hl.Int(1, 4), method="ucb").arms == [1, 2, 3, 4]
    assert OnlineTuner(["a", "b"], method="thompson").arms == ["a", "b"]
    tuner = OnlineTuner([1.0, 1.5], features={"x": (0, 1)})
    value = tuner.suggest([0.5])
    assert value in (1.0, 1.5)
    tuner.observe(3)
    assert "1 observed" in repr(tuner)


def test_input_errors_name_the_problem() -> None:
    with pytest.raises(hl.HyperlawError, match="declare them with their ranges"):
        OnlineTuner(hl.Float(1.0, 1.9))
    with pytest.raises(hl.HyperlawError, match="method must be one of"):
        OnlineTuner(hl.Float(1.0, 1.9), method="eps")  # type: ignore[arg-type]
    with pytest.raises(hl.HyperlawError, match="feature 'x': its range"):
        OnlineTuner(hl.Float(1.0, 1.9), features={"x": (1.0, 1.0)})
    with pytest.raises(hl.HyperlawError, match="at least 2 candidate values"):
        OnlineTuner([1.0], method="ucb")
    tuner = OnlineTuner(hl.Float(1.0, 1.9), features={"rho": (0.0, 1.0)})
    with pytest.raises(hl.HyperlawError, match="without a suggestion"):
        tuner.observe(10)
    with pytest.raises(hl.InvalidValueError, match=r"missing \['rho'\].*unknown \['rh'\]"):
        tuner.suggest({"rh": 0.5})
    with pytest.raises(hl.InvalidValueError, match="feature 'rho' is nan"):
        tuner.suggest({"rho": float("nan")})
    tuner.suggest({"rho": 0.5})
    with pytest.raises(hl.HyperlawError, match="twice without observe"):
        tuner.suggest({"rho": 0.5})
    with pytest.raises(hl.InvalidValueError, match="got cost -1"):
        tuner.observe(-1)
    tuner.observe(12)
