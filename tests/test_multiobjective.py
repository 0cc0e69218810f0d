"""Several objectives, constraints and cost: the study API, the record in every store (memory,
a real SQLite file, a real PostgreSQL server), worker processes, history arrays, export and
the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import hyperlaw as hl
from hyperlaw.cli import cli
from hyperlaw.errors import HyperlawError, InvalidValueError, NoFeasibleTrialError
from hyperlaw.history.observations import observations
from hyperlaw.transfer import copy_study

#: a hand-checkable front (both minimized): A, B and D are on it; C is dominated by B, F by all
POINTS = {"A": (1.0, 5.0), "B": (2.0, 3.0), "C": (3.0, 4.0), "D": (4.0, 1.0), "F": (5.0, 5.0)}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    if request.param == "memory":
        return None
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mo.db'}"
    return request.getfixturevalue("postgres_url")


def _told(study: hl.Study, points: dict[str, tuple[float, float]]) -> dict[str, int]:
    numbers = {}
    for label, values in points.items():
        trial = study.ask()
        trial.set_user_attr("label", label)
        study.tell(trial, values)
        numbers[label] = trial.number
    return numbers


def test_front_hypervolume_and_select_on_a_hand_checked_case(storage: str | None) -> None:
    study = hl.create_study(storage=storage, objectives={"loss": "minimize",
                                                         "latency": "minimize"})
    numbers = _told(study, POINTS)
    assert [t.number for t in study.best_trials] == [numbers[k] for k in "ABD"]
    # A adds 1 x 1, B 2 x 3, D 2 x 5 below the reference (6, 6)
    assert study.hypervolume((6.0, 6.0)) == pytest.approx(17.0)
    # normalized over the front: A (0, 1), B (1/3, 1/2), D (1, 0)
    assert study.select().number == numbers["B"]
    assert study.select(weights={"loss": 1.0}).number == numbers["A"]
    assert study.select(limits={"latency": (None, 2.0)}).number == numbers["D"]
    with pytest.raises(InvalidValueError, match="latency") as caught:
        study.select(limits={"latency": (None, 0.5)})
    assert "<= 0.5" in str(caught.value)
    with pytest.raises(HyperlawError, match="best_trials"):
        _ = study.best_trial
    with pytest.raises(HyperlawError, match="directions"):
        _ = study.direction


def test_a_maximized_objective_is_flipped(storage: str | None) -> None:
    study = hl.create_study(storage=storage, directions=["minimize", "maximize"])
    numbers = _told(study, {k: (a, -b) for k, (a, b) in POINTS.items()})
    assert [t.number for t in study.best_trials] == [numbers[k] for k in "ABD"]
    assert study.hypervolume((6.0, -6.0)) == pytest.approx(17.0)
    assert study.directions == ("minimize", "maximize")
    assert study.objective_names is None and study.is_multi_objective


def test_objectives_return_tuples_or_dicts_and_wrong_shapes_fail_the_trial(
        storage: str | None) -> None:
    study = hl.create_study(storage=storage, objectives={"a": "minimize", "b": "maximize"})
    results = iter([(1.0, 2.0), {"b": 4.0, "a": 3.0}, (1.0, 2.0, 3.0), {"a": 1.0, "c": 2.0},
                    0.5, [5.0, 6.0]])
    study.optimize(lambda t: next(results), n_trials=6, show_progress=False)
    trials = study.trials
    assert [t.values for t in trials if t.state is hl.TrialState.COMPLETE] == [
        (1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]
    failed = [t.error for t in trials if t.state is hl.TrialState.FAILED]
    assert "returned 3 values" in failed[0] and "a (minimize), b (maximize)" in failed[0]
    assert "['a', 'c']" in failed[1] and "['a', 'b']" in failed[1]
    assert "one value" in failed[2] and "2 objectives" in failed[2]
    assert trials[0].value == 1.0  # `value` is the first objective's


def test_tell_takes_tuples_and_dicts(storage: str | None) -> None:
    study = hl.create_study(storage=storage, objectives={"a": "minimize", "b": "minimize"})
    trial = study.ask()
    study.tell(trial, {"a": 1.0, "b": 2.0})
    with pytest.raises(InvalidValueError, match=r"study\.tell got 1 values"):
        study.tell(study.ask(), [1.0])
    trial = study.ask()
    with pytest.raises(InvalidValueError, match=r"trial.report got keys \['a'\]"):
        trial.report({"a": 1.0}, 1)
    trial.report({"a": 1.0, "b": 0.5}, 1)  # the step was not spent by the refused report
    assert [t.values for t in study.trials] == [(1.0, 2.0), None, None]
    assert study.trials[2].intermediate_values == {1: (1.0, 0.5)}


def test_create_and_load_study_check_the_objectives(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with pytest.raises(HyperlawError, match="direction and directions"):
        hl.create_study(storage=url, direction="minimize", directions=["minimize"])
    with pytest.raises(HyperlawError, match="'up'"):
        hl.create_study(storage=url, directions=["minimize", "up"])
    hl.create_study("s", storage=url, objectives={"loss": "minimize", "ms": "minimize"})
    loaded = hl.load_study("s", url)
    assert loaded.objective_names == ("loss", "ms")
    assert loaded.directions == ("minimize", "minimize")
    again = hl.create_study("s", storage=url, load_if_exists=True,
                            directions=["minimize", "minimize"])
    assert again.objective_names == ("loss", "ms")
    with pytest.raises(HyperlawError) as caught:
        hl.create_study("s", storage=url, load_if_exists=True, direction="minimize")
    assert "objectives {'loss': 'minimize', 'ms': 'minimize'}" in str(caught.value)
    assert "not direction 'minimize'" in str(caught.value)
    with pytest.raises(HyperlawError, match="'latency'"):
        hl.create_study("s", storage=url, load_if_exists=True,
                        objectives={"loss": "minimize", "latency": "minimize"})
    hl.create_study("one", storage=url)
    with pytest.raises(HyperlawError, match="exists with direction 'minimize', not "
                                            r"directions \['minimize', 'maximize'\]"):
        hl.create_study("one", storage=url, load_if_exists=True,
                        directions=["minimize", "maximize"])


def test_per_objective_reports_round_trip(any_storage: str | None, tmp_path: Path) -> None:
    study = hl.create_study("r", storage=any_storage, directions=["minimize", "maximize"])
    trial = study.ask()
    trial.report((1.0, 10.0), 1)
    trial.report((0.5, 20.0), 2)
    study.tell(trial, state="pruned")
    single = study.ask()
    study.tell(single, (0.1, 0.2))
    if any_storage is not None:  # a fresh reader of the same storage
        study = hl.load_study("r", any_storage)
    record = study.store.get_trial(study.id, 0)
    for seen in (record, study.trials[0]):
        assert seen.intermediate == {1: 1.0, 2: 0.5}
        assert seen.intermediate_values == {1: (1.0, 10.0), 2: (0.5, 20.0)}
        assert seen.values == (0.5, 20.0)  # a pruned trial keeps its last report
    columnar = study.store.changes_since_columnar(study.id, 0)
    assert columnar.report_objective_values is not None
    assert columnar.report_objective_values.tolist() == [[1.0, 10.0], [0.5, 20.0]]
    target = hl.create_study(storage=f"sqlite:///{tmp_path / 'copy.db'}").store
    copy_study(study.store, "r", target, "copied")
    copied = hl.load_study("copied", target)
    assert copied.directions == ("minimize", "maximize")
    assert [(t.values, t.intermediate_values) for t in copied.trials] == [
        (t.values, t.intermediate_values) for t in study.trials]


def test_one_objective_reads_no_per_objective_values(storage: str | None) -> None:
    study = hl.create_study(storage=storage)
    trial = study.ask()
    trial.report(0.3, 1)
    study.tell(trial, 0.2)
    assert study.trials[0].intermediate_values == {}
    assert study.trials[0].values == (0.2,)
    assert study.store.changes_since_columnar(study.id, 0).report_objective_values is None


def _constrained(trial: hl.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.constrain("memory_gb", 20 * x, max=16)
    trial.add_cost(tokens=1000, flops=2.5e9)
    trial.add_cost(tokens=500)
    return x, 1 - x


def test_constrain_records_infeasible_trials_off_the_front(storage: str | None) -> None:
    study = hl.create_study(storage=storage, directions=["minimize", "minimize"])
    for x in (0.1, 0.5, 0.9, 0.95):
        study.enqueue({"x": x})
    study.optimize(_constrained, n_trials=4, show_progress=False)
    trials = study.trials
    assert all(t.state is hl.TrialState.COMPLETE for t in trials)
    assert [t.feasible for t in trials] == [True, True, False, False]
    assert trials[2].violation == pytest.approx(2.0)
    assert trials[2].constraints == {"memory_gb": (pytest.approx(18.0), None, 16.0)}
    assert [t.number for t in study.best_trials] == [0, 1]
    assert trials[0].cost["tokens"] == 1500 and trials[0].cost["flops"] == 2.5e9
    frame = study.to_dataframe()
    assert {"values_0", "values_1", "constraint_memory_gb", "violation", "cost_tokens",
            "cost_seconds"} <= set(frame.columns)


def test_an_infeasible_trial_is_never_the_best_of_one_objective(storage: str | None) -> None:
    study = hl.create_study(storage=storage)
    for x in (0.2, 0.9):
        study.enqueue({"x": x})
    study.optimize(lambda t: _constrained(t)[1], n_trials=2, show_progress=False)
    assert study.best_trial.number == 0  # 1 - 0.9 is lower, but it misses its limit
    assert [t.number for t in study.best_trials] == [0]


def test_a_study_with_nothing_feasible_names_the_least_violating(storage: str | None) -> None:
    study = hl.create_study(storage=storage)
    for x in (0.9, 0.85, 1.0, 0.95):
        study.enqueue({"x": x})
    study.optimize(lambda t: _constrained(t)[0], n_trials=4, show_progress=False)
    for read in (lambda: study.best_trial, lambda: study.best_trials):
        with pytest.raises(NoFeasibleTrialError) as caught:
            read()
        message = str(caught.value)
        assert "no feasible trial" in message and "all 4 complete trials" in message
        assert "#1 (violation 1" in message and message.index("#1") < message.index("#0")
        assert "memory_gb=17 > max 16" in message
        assert [t.number for t in caught.value.least_violating] == [1, 0, 3]


def _x_at_most_half(record: hl.TrialRecord) -> list[float]:
    return [record.params["x"] - 0.5, record.values[1] - 10.0]


def _with_cost(trial: hl.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", 0.0, 1.0)
    trial.add_cost(tokens=100 * (trial.number + 1))
    return x, 1 - x


def test_constraints_function_and_cost_reach_worker_processes(storage: str | None) -> None:
    study = hl.create_study(storage=storage, directions=["minimize", "minimize"],
                            constraints=_x_at_most_half, sampler="random", seed=3)
    study.optimize(_with_cost, n_trials=8, n_workers=2, show_progress=False)
    trials = study.trials if storage is None else hl.load_study(study.name, storage).trials
    assert len(trials) == 8 and all(t.state is hl.TrialState.COMPLETE for t in trials)
    for t in trials:
        assert set(t.constraints) == {"c0", "c1"}
        assert t.constraints["c0"] == (pytest.approx(t.params["x"] - 0.5), None, 0.0)
        assert t.feasible == (t.params["x"] <= 0.5)
        assert t.cost["tokens"] == 100 * (t.number + 1)
        assert t.cost["seconds"] == pytest.approx(t.duration) and t.cost["seconds"] > 0
    assert all(t.params["x"] <= 0.5 for t in study.best_trials)


def test_constraints_given_to_optimize_and_applied_by_tell(storage: str | None) -> None:
    study = hl.create_study(storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3,
                   constraints=lambda r: [r.value - 2.0], show_progress=False)
    assert all(t.constraints["c0"][2] == 0.0 and t.feasible for t in study.trials)
    asked = hl.create_study(storage=storage, constraints=lambda r: [r.value - 2.0])
    trial = asked.ask()
    asked.tell(trial, 3.0)
    assert asked.trials[0].violation == pytest.approx(1.0)


def test_several_objectives_with_worker_processes_on_postgres(postgres_url: str) -> None:
    study = hl.create_study(storage=postgres_url, objectives={"a": "minimize", "b": "minimize"},
                            sampler="random", seed=0)

    def objective(trial: hl.Trial) -> dict[str, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report({"a": x, "b": 2.0}, 1)
        trial.add_cost(tokens=7)
        return {"a": x, "b": (1 - x) ** 2}

    study.optimize(objective, n_trials=6, n_workers=2, show_progress=False)
    trials = hl.load_study(study.name, postgres_url).trials
    assert len(trials) == 6
    for t in trials:
        assert t.values == (t.params["x"], pytest.approx((1 - t.params["x"]) ** 2))
        assert t.intermediate_values == {1: (t.params["x"], 2.0)}
        assert t.cost["tokens"] == 7
    assert len(study.best_trials) == 6  # x trades a against b: every trial is on the front


def test_observations_hold_every_objective_and_rank_infeasible_last(
        storage: str | None) -> None:
    study = hl.create_study(storage=storage, directions=["minimize", "maximize"])
    for x in (0.1, 0.95, 0.5):
        study.enqueue({"x": x})
    study.optimize(_constrained, n_trials=3, show_progress=False)
    obs = observations(study.space, study._history.refresh())
    np.testing.assert_allclose(obs.objectives, [[0.1, -0.9], [0.95, -0.05], [0.5, -0.5]])
    assert obs.violation.tolist() == pytest.approx([0.0, 3.0, 0.0])
    # the infeasible trial ranks after the worst feasible one (0.5), by its violation
    assert obs.loss.tolist() == pytest.approx([0.1, 3.5, 0.5])
    assert study._history.directions == ("minimize", "maximize")
    plain = hl.create_study(storage=storage)
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2, show_progress=False)
    plain_obs = observations(plain.space, plain._history.refresh())
    assert np.isnan(plain_obs.violation).all()
    assert plain_obs.objectives[:, 0].tolist() == plain_obs.loss.tolist()


def test_cli_best_prints_the_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    study = hl.create_study("mo", storage=url, objectives={"loss": "minimize",
                                                           "latency": "minimize"})
    numbers = _told(study, POINTS)
    result = CliRunner().invoke(cli, ["best", "--storage", url, "--study", "mo", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["directions"] == ["minimize", "minimize"]
    assert printed["objectives"] == ["loss", "latency"]
    assert [t["number"] for t in printed["front"]] == [numbers[k] for k in "ABD"]
    assert printed["front"][1]["values"] == [2.0, 3.0]
    result = CliRunner().invoke(cli, ["best", "--storage", url, "--study", "mo"])
    assert result.exit_code == 0, result.output
    assert "Pareto front: 3 trial(s)" in result.output and "latency" in result.output
