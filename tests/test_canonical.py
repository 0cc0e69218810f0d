"""Equivalent configurations run once: canonical keys, and reuse across worker processes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import hyperlaw as hl
from hyperlaw import TrialState
from hyperlaw.analysis.cost import trial_cost
from hyperlaw.canonical import REUSED_FROM, canonical_key

SPACE = hl.Space({
    "opt": hl.Choice(["adam", "sgd"]),
    "momentum": hl.Float(0.0, 0.9, step=0.1, when={"opt": "sgd"}),
    "width": hl.Int(8, 64, step=8),
    "lr": hl.Float(1e-4, 1e-1, log=True),
})


def test_key_drops_inactive_parameters_and_snaps_values() -> None:
    base = {"opt": "adam", "width": 16, "lr": 0.01}
    assert canonical_key(SPACE, base) == canonical_key(SPACE, {**base, "momentum": 0.5})
    sgd = {"opt": "sgd", "momentum": 0.30000000000000004, "width": 16.0, "lr": 0.01}
    assert canonical_key(SPACE, sgd) == canonical_key(
        SPACE, {"opt": "sgd", "momentum": 0.3, "width": 16, "lr": 0.01})
    assert canonical_key(SPACE, {**sgd, "momentum": 0.4}) != canonical_key(SPACE, sgd)


def test_key_applies_user_equivalence_and_keeps_seeds_apart() -> None:
    def rounded(p: dict) -> dict:
        return {**p, "lr": round(p["lr"], 3)}

    a = {"opt": "adam", "width": 16, "lr": 0.0101}
    b = {**a, "lr": 0.0099}
    assert canonical_key(SPACE, a) != canonical_key(SPACE, b)
    assert canonical_key(SPACE, a, canonical=rounded) == canonical_key(SPACE, b,
                                                                       canonical=rounded)
    assert canonical_key(SPACE, a, seed=1) != canonical_key(SPACE, a, seed=2)


def test_key_errors_name_the_canonical_function() -> None:
    def broken(p: dict) -> dict:
        return p["missing"]

    with pytest.raises(hl.InvalidValueError, match="canonical function broken raised"):
        canonical_key(SPACE, {"opt": "adam", "width": 16, "lr": 0.01}, canonical=broken)
    with pytest.raises(hl.InvalidValueError, match="not JSON-serializable"):
        canonical_key(SPACE, {"opt": "adam", "width": 16, "lr": 0.01}, canonical=lambda p: {1j})


def test_enqueued_repeats_reuse_the_first_result(storage: str | None) -> None:
    calls: list[dict] = []
    study = hl.create_study(storage=storage, space=SPACE, sampler="random", seed=0,
                            constraints=lambda r: [r.params["width"] - 32])

    def objective(trial: hl.Trial) -> float:
        calls.append(dict(trial.params))
        trial.set_user_attr("accuracy", 0.9)
        trial.add_cost(flops=5.0)
        return trial.params["lr"] * trial.params["width"]

    config = {"opt": "adam", "width": 16, "lr": 0.01}
    for seed in (None, None, 7, None):
        study.enqueue(config, user_attrs=None if seed is None else {"seed": seed})
    study.optimize(objective, n_trials=4, show_progress=False)
    trials = study.trials
    assert len(calls) == 2  # the first, and the one on seed 7
    assert [t.system_attrs.get(REUSED_FROM) for t in trials] == [None, 0, None, 0]
    assert all(t.state is TrialState.COMPLETE and t.value == pytest.approx(0.16)
               for t in trials)
    assert trials[1].user_attrs["accuracy"] == 0.9 and "flops" not in trials[1].cost
    assert trials[1].constraints == trials[0].constraints
    assert trials[2].user_attrs["seed"] == 7


def test_a_reused_trial_costs_only_what_it_spent(storage: str | None) -> None:
    study = hl.create_study(storage=storage, space=SPACE, dedup=True)

    def objective(trial: hl.Trial) -> float:
        time.sleep(0.3)  # a wall time that a lookup of the stored result does not take
        trial.add_cost(flops=100.0)
        return 1.0

    for _ in range(3):
        study.enqueue({"opt": "adam", "width": 16, "lr": 0.01})
    study.optimize(objective, n_trials=3, show_progress=False)
    ran, *reused = study.trials
    assert [t.system_attrs.get(REUSED_FROM) for t in reused] == [ran.number] * 2
    assert sum(t.cost.get("flops", 0.0) for t in study.trials) == 100.0
    for t in reused:  # its own wall time, not the evaluation's
        assert t.cost["seconds"] == pytest.approx(t.finished_at - t.started_at)
        assert trial_cost(t, "seconds") is None and trial_cost(t, "flops") is None
    assert trial_cost(ran, "flops") == 100.0
    for cost in ("seconds", "flops"):  # the evaluation is on the frontier once, as it ran
        assert [(p.trial.number, p.cost) for p in study.cost_frontier(cost)] == [
            (ran.number, ran.cost[cost])]


def test_dedup_off_runs_every_trial_and_is_stored(sqlite_url: str) -> None:
    calls = []
    study = hl.create_study("off", storage=sqlite_url, space=SPACE, dedup=False)
    for _ in range(3):
        study.enqueue({"opt": "adam", "width": 16, "lr": 0.01})
    study.optimize(lambda t: calls.append(1) or 1.0, n_trials=3, show_progress=False)
    assert len(calls) == 3
    assert hl.load_study("off", sqlite_url).dedup is False
    assert hl.create_study("on", storage=sqlite_url, space=SPACE).dedup is True


def test_canonical_function_declares_equivalences() -> None:
    calls = []
    study = hl.create_study(space=SPACE, canonical=lambda p: {k: v for k, v in p.items()
                                                              if k != "width"})
    study.enqueue({"opt": "adam", "width": 16, "lr": 0.01})
    study.enqueue({"opt": "adam", "width": 40, "lr": 0.01})
    study.optimize(lambda t: calls.append(1) or 1.0, n_trials=2, show_progress=False)
    assert len(calls) == 1 and study.trials[1].system_attrs[REUSED_FROM] == 0


def test_several_objectives_are_reused_together() -> None:
    study = hl.create_study(space=SPACE, objectives={"loss": "minimize", "ms": "minimize"})
    for _ in range(2):
        study.enqueue({"opt": "adam", "width": 16, "lr": 0.01})
    calls = []
    study.optimize(lambda t: calls.append(1) or (0.5, 3.0), n_trials=2, show_progress=False)
    assert len(calls) == 1 and study.trials[1].values == (0.5, 3.0)


def _race(url: str, marks: Path, fail_first: bool) -> hl.Study:
    """Four equivalent enqueued trials run by two worker processes at once."""
    study = hl.create_study("race", storage=url, space=SPACE, sampler="random", seed=0)
    for _ in range(4):
        study.enqueue({"opt": "adam", "width": 16, "lr": 0.01})

    def objective(trial: hl.Trial) -> float:
        first = not marks.exists()
        with open(marks, "a") as f:
            f.write(f"{trial.number} {os.getpid()}\n")
        time.sleep(1.0)  # long enough for the other worker to start an equivalent trial
        if fail_first and first:
            raise RuntimeError("the first evaluation fails")
        return 1.5

    study.optimize(objective, n_trials=4, n_workers=2, show_progress=False)
    return study


@pytest.mark.parametrize("fail_first", [False, True])
def test_two_workers_evaluate_an_equivalent_configuration_once(
        sqlite_url: str, tmp_path: Path, fail_first: bool) -> None:
    marks = tmp_path / "evaluations.txt"
    study = _race(sqlite_url, marks, fail_first)
    runs = marks.read_text().splitlines()
    trials = study.trials
    if not fail_first:
        assert len(runs) == 1
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
        assert [t.system_attrs.get(REUSED_FROM) for t in trials] == [None, 0, 0, 0]
    else:  # the waiting trial runs itself once the first fails; the rest reuse it
        assert len(runs) == 2 and trials[0].state is TrialState.FAILED
        assert [t.system_attrs.get(REUSED_FROM) for t in trials[2:]] == [1, 1]


def test_two_workers_on_postgres_evaluate_once(postgres_url: str, tmp_path: Path) -> None:
    marks = tmp_path / "evaluations.txt"
    study = _race(postgres_url, marks, fail_first=False)
    assert len(marks.read_text().splitlines()) == 1
    assert sum(REUSED_FROM in t.system_attrs for t in study.trials) == 3
