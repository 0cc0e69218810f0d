"""Schedulers: ASHA, Hyperband, curve-based stopping and the simple rules, on real studies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.executors.simulated import ReplayCurve, simulate
from hyperlaw.schedulers import (
    ASHA,
    CurveStopping,
    Decision,
    Hyperband,
    PatienceStopping,
    PercentileStopping,
    ThresholdStopping,
    make_scheduler,
)

INDEX_SPACE = hl.Space({"curve": hl.Int(0, 10_000)})


def run_curves(curves: list[list[float]], scheduler: hl.schedulers.Scheduler,
               storage: str | None = None, *, steps: list[int] | None = None,
               direction: str = "minimize") -> hl.Study:
    """Report the given curves one trial after the other through ask/report/tell."""
    study = hl.create_study(storage=storage, space=INDEX_SPACE, scheduler=scheduler,
                            direction=direction)
    for curve in curves:
        trial = study.ask()
        the_steps = steps or list(range(1, len(curve) + 1))
        try:
            for step, value in zip(the_steps, curve, strict=True):
                trial.report(value, step)
        except hl.TrialPruned:
            study.tell(trial, state="pruned")
        else:
            study.tell(trial, curve[-1])
    return study


def states(study: hl.Study) -> list[tuple[str, int | None]]:
    return [(t.state.value, t.last_step) for t in study.trials]


# --- the required end-to-end test: a real tiny model, ASHA, study.optimize ----------------------
def test_asha_stops_real_training_and_records_pruned_trials(sqlite_url: str) -> None:
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import log_loss
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, y_train, x_valid, y_valid = x[:1000], y[:1000], x[1000:1400], y[1000:1400]
    classes = np.arange(10)

    def objective(trial: hl.Trial) -> float:
        model = MLPClassifier(hidden_layer_sizes=(trial.params["width"],),
                              learning_rate_init=trial.params["lr"], batch_size=64,
                              random_state=trial.number)
        loss = float("nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for epoch in range(1, 10):
                model.partial_fit(x_train, y_train, classes=classes)
                loss = log_loss(y_valid, model.predict_proba(x_valid), labels=classes)
                trial.report(loss, step=epoch)
        return loss

    space = hl.Space({"lr": hl.Float(1e-5, 0.5, log=True), "width": hl.Int(4, 64, log=True)})
    study = hl.create_study(storage=sqlite_url, space=space, sampler="random", seed=3,
                            scheduler=ASHA(min_budget=1, max_budget=9, reduction_factor=3))
    study.optimize(objective, n_trials=14)

    reloaded = hl.load_study(study.name, sqlite_url)
    assert isinstance(reloaded.scheduler, ASHA) and reloaded.scheduler.max_budget == 9
    trials = reloaded.trials
    pruned = [t for t in trials if t.state is hl.TrialState.PRUNED]
    complete = [t for t in trials if t.state is hl.TrialState.COMPLETE]
    assert pruned and complete
    for t in pruned:
        assert t.last_step in (1, 3), "ASHA stops a trial only when it reaches a rung"
        assert t.value == t.intermediate[t.last_step]
        assert sorted(t.intermediate) == list(range(1, t.last_step + 1))
    for t in complete:
        assert t.last_step == 9 and t.value == t.intermediate[9]
    # every trial that went past rung 1 was among the best third of those at rung 1 then
    at_rung_1 = {t.number: t.intermediate[1] for t in trials}
    for t in trials:
        if t.last_step > 1:
            earlier = [v for n, v in at_rung_1.items() if n <= t.number]
            better = sum(v < at_rung_1[t.number] for v in earlier)
            assert better < max(len(earlier) // 3, 1)


# --- ASHA rule -----------------------------------------------------------------------------------
def test_asha_keeps_the_best_third_at_each_rung(storage: str | None) -> None:
    asha = ASHA(min_budget=1, max_budget=9, reduction_factor=3)
    flat = [[v] * 9 for v in (5.0, 6.0, 4.0, 7.0, 8.0, 3.0)]
    study = run_curves(flat, asha, storage)
    # 5: alone, continues; 6: n=2, keep 1, worse -> stop at 1; 4: best -> continues;
    # 7, 8: worse; 3: best of 6, keep 2 -> continues
    assert states(study) == [("complete", 9), ("pruned", 1), ("complete", 9), ("pruned", 1),
                             ("pruned", 1), ("complete", 9)]
    rungs = asha.rungs(study._history)
    assert [r.budget for r in rungs] == [1, 3, 9]
    assert rungs[0].values == {0: 5.0, 1: 6.0, 2: 4.0, 3: 7.0, 4: 8.0, 5: 3.0}
    assert set(rungs[2].values) == {0, 2, 5}
    from hyperlaw.history.rungs import RungIndex  # what a sampler can read without ASHA

    history = study._history
    again = RungIndex(history.rung_budgets).refresh(history).rungs
    assert [r.values for r in again] == [r.values for r in rungs]


def test_asha_maximize_and_rung_three(storage: str | None) -> None:
    asha = ASHA(min_budget=1, max_budget=9, reduction_factor=3)
    curves = [[1.0] * 9, [2.0, 2.0, 0.5] + [0.5] * 6, [3.0, 3.0, 3.0] + [3.0] * 6]
    study = run_curves(curves, asha, storage, direction="maximize")
    # trial 1 passes rung 1 (best), then at rung 3 is worse than trial 0 -> stopped at 3
    assert states(study) == [("complete", 9), ("pruned", 3), ("complete", 9)]


def test_asha_budget_in_tokens_and_sparse_steps() -> None:
    tokens = [4096 * k for k in range(1, 28)]
    asha = ASHA(min_budget=4096, max_budget=4096 * 27)
    study = run_curves([[2.0] * 27, [3.0] * 27], asha, steps=tokens)
    assert states(study) == [("complete", 4096 * 27), ("pruned", 4096)]
    # reports every 5 units: the rung of 3 units is reached at step 5, judged once
    sparse = ASHA(min_budget=1, max_budget=27)
    steps = [1, 5, 10, 15, 20, 27]
    study = run_curves([[1.0] * 6, [0.5, 2.0, 2.0, 2.0, 2.0, 2.0]], sparse, steps=steps)
    assert states(study) == [("complete", 27), ("pruned", 5)]


def test_asha_without_max_budget_waits_for_a_complete_trial() -> None:
    asha = ASHA()
    study = hl.create_study(space=INDEX_SPACE, scheduler=asha)
    first, second = study.ask(), study.ask()
    for step in range(1, 10):
        first.report(1.0, step)
        second.report(2.0, step)  # nothing completed yet: never stopped
    study.tell(first, 1.0)
    study.tell(second, 2.0)
    assert asha.resolved_max_budget(study._history) == 9
    late = study.ask()
    with pytest.raises(hl.TrialPruned):
        late.report(5.0, 1)


# --- Hyperband -----------------------------------------------------------------------------------
def test_hyperband_brackets_follow_hyperband_proportions() -> None:
    hyperband = Hyperband(min_budget=1, max_budget=27, reduction_factor=3)
    sequence = hyperband.bracket_sequence(27)
    counts = [sequence.count(b) for b in range(4)]
    assert counts == [27, 12, 6, 4]  # Hyperband's n for s = 3, 2, 1, 0 with η = 3, R = 27


def test_hyperband_compares_trials_within_their_bracket(storage: str | None) -> None:
    hyperband = Hyperband(min_budget=1, max_budget=9, reduction_factor=3)
    sequence = hyperband.bracket_sequence(9)  # s_max = 2: [0]*9 + [1]*5 + [2]*3
    assert [sequence.count(b) for b in range(3)] == [9, 5, 3]
    study = hl.create_study(storage=storage, space=INDEX_SPACE, scheduler=hyperband)
    values = [float(10 - i) for i in range(len(sequence))] + [100.0] * len(sequence)
    for value in values:  # ever better values, then a whole period of bad ones
        trial = study.ask()
        try:
            for step in range(1, 10):
                trial.report(value, step)
        except hl.TrialPruned:
            study.tell(trial, state="pruned")
        else:
            study.tell(trial, value)
    trials = study.trials
    period = len(sequence)
    for t in trials[period:]:
        bracket = hyperband.bracket_of(t.number, study._history)
        if bracket == 2:  # the last bracket runs every trial to the end
            assert t.state is hl.TrialState.COMPLETE
        else:  # its first rung is min_budget·η^bracket; worse than all before there
            assert t.state is hl.TrialState.PRUNED and t.last_step == 3**bracket


# --- curve-based stopping ------------------------------------------------------------------------
def test_curve_stopping_stops_hopeless_curves_and_keeps_promising_ones(storage: str | None) -> None:
    curve = CurveStopping(max_budget=30, threshold=0.05)
    steps = np.arange(1, 31)
    good = 0.2 + 1.0 * steps**-0.8
    hopeless = 1.5 + 1.0 * steps**-0.8  # the same shape, far above
    promising = 0.1 + 2.0 * steps**-0.8  # worse early, better at the end
    study = run_curves([list(good), list(hopeless), list(promising)], curve, storage)
    result = states(study)
    assert result[0] == ("complete", 30)
    assert result[1][0] == "pruned" and result[1][1] <= 15  # within half the budget
    assert result[2] == ("complete", 30)
    chance = curve.probability_of_improvement(study.trials[1], study._history)
    assert chance is not None and chance < 0.05


# --- simple rules --------------------------------------------------------------------------------
def test_percentile_threshold_patience(storage: str | None) -> None:
    percentile = PercentileStopping(percentile=25, n_startup_trials=4)
    curves = [[float(v)] * 5 for v in (1, 2, 3, 4)] + [[2.5] * 5, [1.2] * 5]
    assert states(run_curves(curves, percentile, storage))[4:] == [("pruned", 1),
                                                                     ("complete", 5)]
    threshold = ThresholdStopping(upper=10.0, n_warmup_steps=2)
    study = run_curves([[50.0, 50.0, 50.0, 1.0], [1.0, 1.0, 1.0, 1.0]], threshold, storage)
    assert states(study) == [("pruned", 2), ("complete", 4)]
    patience = PatienceStopping(patience=3, min_delta=0.01)
    plateau = [1.0, 0.5, 0.4, 0.399, 0.398, 0.397, 0.3]
    study = run_curves([plateau, [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]], patience, storage)
    assert states(study) == [("pruned", 6), ("complete", 7)]  # no gain in steps 4, 5, 6


def test_schedulers_by_name_with_stored_options(sqlite_url: str) -> None:
    for name in ("asha", "hyperband", "curve", "percentile", "patience", "successive_halving"):
        assert make_scheduler(name).name == name
    study = hl.create_study("s", storage=sqlite_url, space=INDEX_SPACE,
                            scheduler=CurveStopping(max_budget=12, threshold=0.1))
    again = hl.load_study("s", sqlite_url)
    assert isinstance(again.scheduler, CurveStopping)
    assert again.scheduler.options() == study.scheduler.options()


@pytest.mark.parametrize("make", [
    lambda: ASHA(min_budget=0),
    lambda: ASHA(min_budget=3, max_budget=2),
    lambda: ASHA(reduction_factor=1),
    lambda: Hyperband(max_budget=-1),
    lambda: CurveStopping(threshold=1.5),
    lambda: PercentileStopping(percentile=120),
    lambda: ThresholdStopping(),
    lambda: PatienceStopping(patience=0),
])
def test_bad_options_raise_hyperlaw_errors(make) -> None:
    with pytest.raises(hl.HyperlawError):
        make()


# --- the simulated executor ----------------------------------------------------------------------
def test_simulated_workers_replay_curves_through_a_study() -> None:
    rng = np.random.default_rng(0)
    table = [0.1 + rng.uniform(0.1, 2.0) * np.arange(1, 10) ** -rng.uniform(0.2, 1.5)
             for _ in range(40)]
    space = hl.Space({"curve": hl.Int(0, 39)})
    study = hl.create_study(space=space, sampler="random", seed=0,
                            scheduler=ASHA(min_budget=1, max_budget=9))

    def curve_for(params: dict) -> ReplayCurve:
        return ReplayCurve(list(range(1, 10)), list(table[params["curve"]]),
                           seconds_per_step=1.0 + params["curve"] % 3)

    result = simulate(study, curve_for, n_workers=4, max_spent=120)
    assert result.spent <= 120
    trials = study.trials
    assert sum(len(t.intermediate) for t in trials) == result.spent
    assert sum(f.complete for f in result.finished) == sum(
        t.state is hl.TrialState.COMPLETE for t in trials)
    assert any(not f.complete for f in result.finished)
    times = [f.time for f in result.finished]
    assert times == sorted(times) and result.time <= 120 / 4 * 3 + 3
    assert all(t.state is not hl.TrialState.RUNNING for t in trials)


def test_decision_enum_is_unchanged() -> None:
    assert {d.value for d in Decision} >= {"continue", "stop"}
