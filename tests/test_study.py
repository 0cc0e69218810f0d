"""Study behaviour through the public API, on memory and on SQLite."""

from __future__ import annotations

import math

import pytest

import hyperlaw as hl
from hyperlaw import TrialState


def quadratic(trial: hl.Trial) -> float:
    return (math.log10(trial.params["lr"]) + 3) ** 2 + trial.params["layers"]


def test_contract_example_runs(storage: str | None, contract_space: hl.Space) -> None:
    study = hl.create_study("mlp-digits", storage=storage, space=contract_space,
                            direction="minimize", sampler="sobol", seed=0,
                            load_if_exists=True)

    def objective(trial: hl.Trial) -> float:
        loss = 0.0
        for epoch in range(5):
            loss = quadratic(trial) + 1.0 / (epoch + 1)
            trial.report(loss, step=epoch)
        return loss

    study.optimize(objective, n_trials=12, show_progress=False)
    trials = study.trials
    assert [t.number for t in trials] == list(range(12))
    assert all(t.state is TrialState.COMPLETE for t in trials)
    assert all(sorted(t.intermediate) == [0, 1, 2, 3, 4] for t in trials)
    for t in trials:  # only active parameters are present
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
    best = min(trials, key=lambda t: t.value)
    assert study.best_trial.number == best.number
    assert study.best_value == best.value
    assert study.best_params == best.params
    frame = study.to_dataframe()
    assert len(frame) == 12 and {"number", "state", "value", "params_lr"} <= set(frame.columns)

    t = study.ask()
    record = study.tell(t, 0.42)
    assert record.value == 0.42 and record.state is TrialState.COMPLETE
    number = study.enqueue({"lr": 3e-4, "width": 64, "layers": 2, "optimizer": "adamw"})
    t = study.ask()
    assert t.number == number
    assert t.params == {"lr": 3e-4, "width": 64, "layers": 2, "optimizer": "adamw"}
    study.tell(t, 1.0)


def test_load_study_continues_numbering(sqlite_url: str, contract_space: hl.Space) -> None:
    study = hl.create_study("s", storage=sqlite_url, space=contract_space, seed=3)
    study.optimize(quadratic, n_trials=5, show_progress=False)
    again = hl.load_study("s", storage=sqlite_url)
    assert again.space == contract_space
    assert again.sampler.seed == 3 and again.sampler.name == study.sampler.name
    again.optimize(quadratic, n_trials=5, show_progress=False)
    assert [t.number for t in again.trials] == list(range(10))
    resumed = hl.create_study("s", storage=sqlite_url, space=contract_space,
                              load_if_exists=True)
    assert len(resumed.trials) == 10


def test_maximize(storage: str | None) -> None:
    study = hl.create_study(storage=storage, direction="maximize",
                            space={"x": hl.Float(0, 1)}, seed=0)
    study.optimize(lambda t: t.params["x"], n_trials=20, show_progress=False)
    assert study.best_value == max(t.value for t in study.trials)


def test_define_by_run_learns_space_and_keeps_only_used_params(storage: str | None) -> None:
    study = hl.create_study(storage=storage, sampler="random", seed=0)

    def objective(trial: hl.Trial) -> float:
        opt = trial.suggest_categorical("optimizer", ["adamw", "sgd"])
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        momentum = trial.suggest_float("momentum", 0.0, 0.99) if opt == "sgd" else 0.0
        layers = trial.suggest_int("layers", 1, 4)
        return lr * layers + momentum

    study.optimize(objective, n_trials=30, show_progress=False)
    assert set(study.space) == {"optimizer", "lr", "momentum", "layers"}
    for t in study.trials:
        assert ("momentum" in t.params) == (t.params["optimizer"] == "sgd")
        assert 1e-4 <= t.params["lr"] <= 1e-1
        assert t.params["layers"] in (1, 2, 3, 4)
    assert {t.params["optimizer"] for t in study.trials} == {"adamw", "sgd"}


def test_same_seed_same_suggestions(storage: str | None, contract_space: hl.Space) -> None:
    runs = []
    for name in ("a", "b"):
        study = hl.create_study(name, storage=storage, space=contract_space,
                                sampler="random", seed=7)
        study.optimize(quadratic, n_trials=8, show_progress=False)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]
    other = hl.create_study("c", storage=storage, space=contract_space, sampler="random",
                            seed=8)
    other.optimize(quadratic, n_trials=8, show_progress=False)
    assert [t.params for t in other.trials] != runs[0]


def test_objective_failures_are_recorded(storage: str | None) -> None:
    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)}, seed=0)
    outcomes = iter([None, float("nan"), float("inf"), "oops", 0.5])

    def objective(trial: hl.Trial) -> object:
        out = next(outcomes)
        if out == 0.5:
            raise RuntimeError("CUDA out of memory (simulated)")
        return out

    study.optimize(objective, n_trials=5, show_progress=False)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.FAILED] * 5
    assert "None" in trials[0].error and "finite" in trials[0].error
    assert "nan" in trials[1].error
    assert "inf" in trials[2].error
    assert "'oops'" in trials[3].error
    assert "RuntimeError: CUDA out of memory" in trials[4].error


def test_uncaught_exception_propagates_after_recording(storage: str | None) -> None:
    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)}, seed=0)

    def objective(trial: hl.Trial) -> float:
        raise ValueError("bad config")

    with pytest.raises(ValueError, match="bad config"):
        study.optimize(objective, n_trials=3, catch=(), show_progress=False)
    assert [t.state for t in study.trials] == [TrialState.FAILED]


def test_consecutive_failures_stop_the_study(storage: str | None) -> None:
    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)}, seed=0)

    def objective(trial: hl.Trial) -> float:
        raise ZeroDivisionError("always")

    with pytest.raises(hl.WorkerError, match="3 trials failed in a row") as info:
        study.optimize(objective, n_trials=10, max_consecutive_failures=3,
                       show_progress=False)
    assert "ZeroDivisionError: always" in str(info.value)
    assert len(study.trials) == 3


def test_keyboard_interrupt_stops_cleanly(storage: str | None) -> None:
    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)}, seed=0)

    def objective(trial: hl.Trial) -> float:
        if trial.number == 3:
            raise KeyboardInterrupt
        return trial.params["x"]

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=10, show_progress=False)
    trials = study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3 + [TrialState.FAILED]
    assert "interrupted" in trials[3].error
    study.optimize(objective, n_trials=0, show_progress=False)
    assert len(study.trials) == 4


def test_tell_states_and_errors(storage: str | None) -> None:
    study = hl.create_study("s", storage=storage, space={"x": hl.Float(0, 1)}, seed=0)
    t = study.ask()
    t.report(0.9, step=1)
    t.report(0.7, step=2)
    pruned = study.tell(t, state="pruned")
    assert pruned.state is TrialState.PRUNED and pruned.value == 0.7
    with pytest.raises(hl.TrialStateError, match=r"trial #0 .*pruned.*not running"):
        study.tell(t, 0.1)
    t2 = study.ask()
    with pytest.raises(hl.InvalidValueError, match=r"trial #1 of study 's'.*nan"):
        study.tell(t2, float("nan"))
    assert study.trials[1].state is TrialState.FAILED  # recorded, not lost
    t3 = study.ask()
    with pytest.raises(hl.InvalidValueError, match="got 'abc'"):
        study.tell(t3, "abc")  # type: ignore[arg-type]
    with pytest.raises(hl.InvalidValueError, match="step must be a non-negative int"):
        study.ask().report(1.0, step=-1)
    assert len(study.trials) == 4


def test_pruning_by_median_rule(storage: str | None) -> None:
    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)}, sampler="sobol",
                            scheduler=hl.schedulers.MedianStopping(n_startup_trials=3), seed=0)

    def objective(trial: hl.Trial) -> float:
        value = 0.0
        for step in range(10):
            value = trial.params["x"] + 1.0 / (step + 1)
            trial.report(value, step)
        return value

    study.optimize(objective, n_trials=20, show_progress=False)
    pruned = study.get_trials(states=["pruned"])
    complete = study.get_trials(states=["complete"])
    assert pruned, "the median rule should stop some of 20 trials"
    # the rule stops the worse configurations: pruned ones have larger x on average,
    # and none is better than the best complete trial
    mean = lambda ts: sum(t.params["x"] for t in ts) / len(ts)  # noqa: E731
    assert mean(pruned) > mean(complete)
    assert all(t.params["x"] > min(c.params["x"] for c in complete) for t in pruned)
    assert all(t.value == t.intermediate[max(t.intermediate)] for t in pruned)


def test_user_attrs(storage: str | None) -> None:
    study = hl.create_study("attrs", storage=storage, space={"x": hl.Float(0, 1)})
    study.set_user_attr("dataset", "digits")
    t = study.ask()
    t.set_user_attr("seed", 11)
    assert t.user_attrs == {"seed": 11}
    study.tell(t, 1.0)
    assert study.trials[0].user_attrs == {"seed": 11}
    assert study.user_attrs == {"dataset": "digits"}


def test_grid_sampler_is_exhaustive_and_stops(storage: str | None) -> None:
    space = hl.Space({"opt": hl.Choice(["adam", "sgd"]),
                      "momentum": hl.Choice([0.0, 0.9], when={"opt": "sgd"}),
                      "layers": hl.Int(1, 3)})
    study = hl.create_study(storage=storage, space=space, sampler="grid", seed=0)
    study.optimize(lambda t: t.params["layers"], n_trials=100, show_progress=False)
    combos = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(combos) == 9 == len(set(combos))  # (1 + 2) * 3, each once, then it stops


def test_grid_sampler_needs_resolution_for_continuous() -> None:
    study = hl.create_study(space={"lr": hl.Float(1e-4, 1e-1, log=True)}, sampler="grid")
    with pytest.raises(hl.SpaceError, match="resolution"):
        study.ask()
    gridded = hl.create_study(space={"lr": hl.Float(1e-4, 1e-1, log=True)},
                              sampler=hl.samplers.GridSampler(resolution=4, seed=0))
    gridded.optimize(lambda t: t.params["lr"], n_trials=10, show_progress=False)
    assert sorted(round(math.log10(t.params["lr"])) for t in gridded.trials) == [-4, -3, -2, -1]


def test_sobol_covers_the_space_evenly() -> None:
    study = hl.create_study(space={"x": hl.Float(0, 1), "y": hl.Float(0, 1)}, sampler="sobol",
                            seed=0)
    study.optimize(lambda t: 0.0, n_trials=64, show_progress=False)
    xs = [t.params["x"] for t in study.trials]
    counts = [sum(k / 8 <= x < (k + 1) / 8 for x in xs) for k in range(8)]
    assert counts == [8] * 8  # a scrambled Sobol' sequence is stratified


def test_timeout_stops_starting_trials(storage: str | None) -> None:
    """A trial that outlasts the timeout is finished, and no trial starts after it: the
    outcome does not depend on how fast the machine is."""
    import time

    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)})

    def objective(trial: hl.Trial) -> float:
        time.sleep(0.5)  # longer than the whole timeout
        return 0.0

    study.optimize(objective, timeout=0.2, show_progress=False)
    assert [t.state for t in study.trials] == [hl.TrialState.COMPLETE]


def test_callbacks_and_stop(storage: str | None) -> None:
    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)})
    seen: list[int] = []

    def callback(s: hl.Study, record: hl.TrialRecord) -> None:
        seen.append(record.number)
        if len(seen) == 4:
            s.stop()

    study.optimize(lambda t: 1.0, n_trials=50, callbacks=[callback], show_progress=False)
    assert seen == [0, 1, 2, 3] and len(study.trials) == 4


def test_progress_bar_renders(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    study = hl.create_study(storage=sqlite_url, space={"x": hl.Float(0, 1)})
    study.optimize(lambda t: t.params["x"], n_trials=5, show_progress=True)
    err = capsys.readouterr().err
    assert "5/5" in err and "best" in err


def test_a_trial_pruned_by_the_objective_keeps_its_last_value(storage: str | None) -> None:
    """Also when the trial started without a read of the store (random sampler, no scheduler)."""
    study = hl.create_study(storage=storage, space={"x": hl.Float(0, 1)}, sampler="random",
                            seed=1)

    def objective(trial: hl.Trial) -> float:
        for step in range(3):
            trial.report(trial.params["x"] + step, step)
        raise hl.TrialPruned()

    study.optimize(objective, n_trials=4, show_progress=False)
    trials = study.trials
    assert [t.state for t in trials] == [hl.TrialState.PRUNED] * 4
    assert all(t.value == t.params["x"] + 2 for t in trials)
