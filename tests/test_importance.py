"""PED-ANOVA parameter importance on studies whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.analysis import StudyColumns, ped_anova
from hyperlaw.errors import HyperlawError
from hyperlaw.trial import TrialRecord, TrialState


def _columns(values: list[float], params: list[dict], direction: str = "minimize",
             space: hl.Space | None = None) -> StudyColumns:
    records = [TrialRecord(i, TrialState.COMPLETE, p, v)
               for i, (p, v) in enumerate(zip(params, values, strict=True))]
    return StudyColumns.from_trials(records, direction, space)


def _random_params(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"x": float(rng.uniform(-1, 1)), "noise": float(rng.uniform(-1, 1)),
             "lr": float(10 ** rng.uniform(-5, -1)),
             "opt": str(rng.choice(["adam", "sgd", "rmsprop"]))} for _ in range(n)]


def test_the_parameter_the_objective_depends_on_ranks_first() -> None:
    params = _random_params(400)
    scores = ped_anova(_columns([p["x"] ** 2 for p in params], params))
    assert next(iter(scores)) == "x"
    assert scores["x"] > 0.7
    assert sum(scores.values()) == pytest.approx(1.0)


def test_log_parameters_are_judged_on_the_log_scale() -> None:
    params = _random_params(400, seed=1)
    values = [(np.log10(p["lr"]) + 3) ** 2 for p in params]
    space = hl.Space({"lr": hl.Float(1e-5, 1e-1, log=True), "x": hl.Float(-1, 1),
                      "noise": hl.Float(-1, 1), "opt": hl.Choice(["adam", "sgd", "rmsprop"])})
    scores = ped_anova(_columns(values, params, space=space))
    assert next(iter(scores)) == "lr" and scores["lr"] > 0.6


def test_categorical_parameters_and_maximization() -> None:
    params = _random_params(600, seed=2)
    rng = np.random.default_rng(6)
    gain = {"adam": 1.0, "sgd": 0.0, "rmsprop": 0.5}
    values = [gain[p["opt"]] + rng.normal(0, 0.3) for p in params]
    scores = ped_anova(_columns(values, params, direction="maximize"))
    assert next(iter(scores)) == "opt" and scores["opt"] > 0.5
    minimized = ped_anova(_columns(values, params, direction="minimize"))
    assert next(iter(minimized)) == "opt"  # the best now concentrate on sgd


def test_no_dependence_gives_no_clear_winner() -> None:
    params = _random_params(2000, seed=3)
    rng = np.random.default_rng(4)
    scores = ped_anova(_columns(list(rng.normal(size=2000)), params))
    assert max(scores.values()) < 0.6


def test_too_few_trials_give_nothing_and_bad_quantiles_are_refused() -> None:
    params = _random_params(3)
    assert ped_anova(_columns([1.0, 2.0, 3.0], params)) == {}
    with pytest.raises(HyperlawError, match="quantile"):
        ped_anova(_columns([1.0, 2.0, 3.0], params), quantile=1.5)


def test_fast_on_a_large_study() -> None:
    params = _random_params(100_000, seed=5)
    columns = _columns([p["x"] ** 2 + 0.1 * p["noise"] for p in params], params)
    scores = ped_anova(columns)
    assert list(scores)[:2] == ["x", "noise"]
