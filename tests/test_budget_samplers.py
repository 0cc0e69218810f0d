"""Budget-aware TPE and GP: they fit the largest budget with enough observations (BOHB's rule),
count a promotion chain once with its first trial's parameters, and change nothing without
intermediate values."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.errors import HyperlawError
from hyperlaw.executors.simulated import simulate
from hyperlaw.history.observations import COMPLETE, FAILED, RUNNING, encode_row, observations
from hyperlaw.history.rungs import chains
from hyperlaw.samplers import AutoSampler, GPSampler, RandomSampler, TPESampler
from hyperlaw.samplers.budgets import TOP, fidelity, min_observations
from hyperlaw.schedulers import ASHA
from hyperlaw.trial import TrialState

SPACE = hl.Space({"x": hl.Float(0.0, 1.0), "y": hl.Float(0.0, 1.0)})
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def floor_of(params: dict) -> float:
    return (params["x"] - 0.3) ** 2 + (params["y"] - 0.6) ** 2


def run_asha(study: hl.Study, n_trials: int, max_step: int = 9) -> None:
    """Trials through the real ask/report/tell; ASHA stops most of them at a rung."""
    for _ in range(n_trials):
        trial = study.ask()
        floor = floor_of(trial.params)
        for step in range(1, max_step + 1):
            try:
                trial.report(floor + 1.0 / step, step)
            except hl.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, floor + 1.0 / max_step)


def test_fits_the_highest_budget_with_enough_observations() -> None:
    sampler = TPESampler(seed=3, n_startup_trials=12, multi_fidelity=True)
    scheduler = ASHA(min_budget=1, max_budget=9, reduction_factor=3)
    study = hl.create_study(space=SPACE, sampler=sampler, scheduler=scheduler)
    run_asha(study, 30)
    history = study._history.refresh()
    rungs = {r.budget: r for r in scheduler.rungs(history)}
    n_complete = sum(t.state is TrialState.COMPLETE for t in history.trials)
    n_min = min_observations(SPACE, 12)
    assert n_min == 12
    # the history this test is about: too few complete trials, enough at budget 3
    assert n_complete < n_min <= len(rungs[3].values)
    obs = observations(SPACE, history)
    found = fidelity(SPACE, history, obs, True, n_min)
    assert found is not None and found.budget == 3
    assert found.n == len(rungs[3].values) == 14
    fit = found.obs
    assert np.count_nonzero(fit.state == COMPLETE) == found.n
    # the rows are the configurations that reached budget 3, with their value there
    expected = {tuple(encode_row(SPACE, history.trials[n].params)): v
                for n, v in rungs[3].values.items()}
    for row, loss in zip(fit.x[fit.state == COMPLETE], fit.loss[fit.state == COMPLETE],
                         strict=True):
        assert expected[tuple(row)] == pytest.approx(loss)
    # every other finished trial stopped below 3 and sits on the bad side
    assert np.count_nonzero(fit.state == FAILED) == len(history) - found.n
    assert sampler.fit_observations(SPACE, history, obs) is fit
    # "auto" agrees while few trials are complete; False keeps the plain observations
    auto = fidelity(SPACE, history, obs, "auto", n_min)
    assert auto is not None and (auto.budget, auto.n) == (3, 14)
    assert TPESampler(multi_fidelity=False).fit_observations(SPACE, history, obs) is obs
    # with a lower bar the rung at 9 (or the complete trials) is used instead
    higher = fidelity(SPACE, history, obs, True, n_complete)
    assert higher is not None and higher.budget == TOP and higher.n == n_complete


def test_auto_falls_back_to_plain_once_enough_trials_complete() -> None:
    sampler = TPESampler(seed=1, n_startup_trials=3)
    study = hl.create_study(space=SPACE, sampler=sampler,
                            scheduler=ASHA(min_budget=1, max_budget=9))
    run_asha(study, 40)
    history = study._history.refresh()
    obs = observations(SPACE, history)
    n_complete = int(np.count_nonzero(obs.state == COMPLETE))
    assert fidelity(SPACE, history, obs, "auto", n_complete) is None
    assert fidelity(SPACE, history, obs, "auto", n_complete + 1) is not None
    assert fidelity(SPACE, history, obs, True, n_complete).budget == TOP


def test_several_objectives_fit_the_rung_vectors() -> None:
    """Under MO-ASHA, MOTPE fits the highest rung with enough configurations, by their
    vectors of values there, signed like the scheduler's (lower is better)."""
    sampler = TPESampler(seed=3, n_startup_trials=12, multi_fidelity="auto")
    scheduler = ASHA(min_budget=1, max_budget=9, reduction_factor=3)
    study = hl.create_study(space=SPACE, directions=["minimize", "maximize"], sampler=sampler,
                            scheduler=scheduler)
    for _ in range(30):  # the loss falls to floor_of(params); the second objective is y
        trial = study.ask()
        floor, y = floor_of(trial.params), trial.params["y"]
        for step in range(1, 10):
            try:
                trial.report((floor + 1.0 / step, y), step)
            except hl.TrialPruned:
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, (floor + 1.0 / 9, y))
    history = study._history.refresh()
    obs = observations(SPACE, history)
    rungs = {r.budget: r for r in scheduler.rungs(history)}
    assert np.count_nonzero(obs.state == COMPLETE) < 12 <= len(rungs[3].vectors)
    fit = sampler.fit_observations(SPACE, history, obs)
    assert fit is not obs and fit.objectives is not None and fit.objectives.shape[1] == 2
    done = fit.state == COMPLETE
    expected = {tuple(encode_row(SPACE, history.trials[n].params)): (v[0], -v[1])
                for n, v in rungs[3].vectors.items()}
    assert int(done.sum()) == len(expected)
    for row, vector in zip(fit.x[done], fit.objectives[done], strict=True):
        assert tuple(vector) == pytest.approx(expected[tuple(row)])
    assert np.isnan(fit.objectives[~done]).all()
    # the good group is the rung's leading front: no configuration there dominates one of it
    good, _ = sampler.split(fit)
    y = fit.objectives
    rest = np.setdiff1d(np.flatnonzero(done), good)
    assert not any(((y[r] <= y[g]).all() and (y[r] < y[g]).any()) for r in rest for g in good)
    assert set(study.ask().params) == {"x", "y"}


def promoted_objective(trial: hl.Trial) -> float:
    """A deterministic curve with floor `q` that resumes exactly from its checkpoint."""
    q = trial.params["q"]
    start = trial.load_checkpoint()["step"] if trial.checkpoint is not None else 0
    loss = 1.0 + q
    for step in range(start + 1, 10):
        loss = q + 1.0 / step
        trial.report(loss, step, checkpoint={"step": step})
    return loss


def test_promotion_chains_count_once_with_their_first_trials_params(tmp_path: Path) -> None:
    space = hl.Space({"q": hl.Float(0.0, 1.0)})
    sampler = TPESampler(seed=2, n_startup_trials=3, multi_fidelity=True)
    scheduler = ASHA(min_budget=1, max_budget=9, reduction_factor=3, promotion=True)
    study = hl.create_study(space=space, sampler=sampler, scheduler=scheduler, seed=2,
                            checkpoint_dir=str(tmp_path / "c"))
    study.optimize(promoted_objective, n_trials=40, show_progress=False)
    history = study._history.refresh()
    roots = chains(history).roots
    assert roots, "the study should have continued paused trials"
    obs = observations(space, history)
    first_params = {tuple(encode_row(space, t.params)) for t in history.trials
                    if t.number not in roots}

    # top level: a chain that completes counts once, under its first trial
    complete_chains = {roots.get(t.number, t.number) for t in history.trials
                       if t.state is TrialState.COMPLETE}
    assert any(t.number in roots for t in history.trials if t.state is TrialState.COMPLETE)
    top = fidelity(space, history, obs, True, 1)
    assert top is not None and top.budget == TOP and top.n == len(complete_chains)
    top_rows = top.obs.x[top.obs.state == COMPLETE]
    assert {tuple(r) for r in top_rows} == {
        tuple(encode_row(space, history.trials[n].params)) for n in complete_chains}
    # a continued (paused) trial is not also counted as stopped below the top
    assert np.count_nonzero(top.obs.state == FAILED) == sum(
        t.state is TrialState.PRUNED and t.number not in chains(history).continued
        for t in history.trials)

    # rung levels: one observation per chain, with the first trial's parameters
    rungs = {r.budget: r for r in scheduler.rungs(history)}
    level = fidelity(space, history, obs, True, len(complete_chains) + 1)
    assert level is not None and level.budget in rungs
    values = rungs[level.budget].values
    assert level.n == len(values) and not set(values) & set(roots)
    rows = level.obs.x[level.obs.state == COMPLETE]
    assert len({tuple(r) for r in rows}) == len(rows)  # no configuration twice
    assert {tuple(r) for r in rows} <= first_params
    for n, v in values.items():
        i = int(np.flatnonzero((rows == encode_row(space, history.trials[n].params)).all(1))[0])
        assert level.obs.loss[i] == pytest.approx(v)


def test_nothing_changes_without_intermediate_values() -> None:
    def sphere(trial: hl.Trial) -> float:
        return floor_of(trial.params)

    for make in (lambda mf: TPESampler(seed=4, n_startup_trials=5, multi_fidelity=mf),
                 lambda mf: GPSampler(seed=4, n_startup_trials=5, multi_fidelity=mf)):
        runs = []
        for mode in (False, "auto", True):
            study = hl.create_study(space=SPACE, sampler=make(mode))
            study.optimize(sphere, n_trials=14, show_progress=False)
            runs.append([t.params for t in study.trials])
        assert runs[0] == runs[1] == runs[2]


def test_reports_without_stopped_trials_change_nothing_in_auto_mode() -> None:
    def reporting(trial: hl.Trial) -> float:
        for step in range(1, 4):
            trial.report(floor_of(trial.params) + 1.0 / step, step)
        return floor_of(trial.params)

    runs = []
    for mode in (False, "auto"):
        study = hl.create_study(space=SPACE, sampler=TPESampler(seed=5, multi_fidelity=mode))
        study.optimize(reporting, n_trials=16, show_progress=False)
        runs.append([t.params for t in study.trials])
    assert runs[0] == runs[1]


def test_gp_fits_rung_values_and_running_trials_stay_fantasies() -> None:
    sampler = GPSampler(seed=6, n_startup_trials=12, multi_fidelity=True)
    scheduler = ASHA(min_budget=1, max_budget=9)
    # the history this test is about (too few complete trials, enough at a lower rung) is
    # made by random search: a GP's own trials near the optimum would all reach the top
    study = hl.create_study(space=SPACE, sampler=RandomSampler(seed=6), scheduler=scheduler)
    run_asha(study, 30)
    pending = study.ask()
    history = study._history.refresh()
    obs = observations(SPACE, history)
    found = fidelity(SPACE, history, obs, True, min_observations(SPACE, 12))
    assert found is not None and found.budget < TOP
    assert np.count_nonzero(found.obs.state == RUNNING) == 1
    assert np.count_nonzero(obs.state == COMPLETE) < 12  # the plain GP would still be starting
    params = sampler.suggest(SPACE, history, len(history))
    assert SPACE.validate_params(params) == params and params != pending.params
    # the hyperparameters of a level are kept apart from those of the complete trials
    assert ("hl.gp.hyper", SPACE.hash, found.budget) in history.memo


def test_option_is_checked_and_survives_a_reload(tmp_path: Path) -> None:
    with pytest.raises(HyperlawError, match="multi_fidelity"):
        TPESampler(multi_fidelity="yes")  # type: ignore[arg-type]
    url = f"sqlite:///{tmp_path / 's.db'}"
    for name, sampler in (("t", TPESampler(seed=1, multi_fidelity=False)),
                          ("g", GPSampler(seed=1, multi_fidelity=True)),
                          ("a", AutoSampler(seed=1, multi_fidelity=False))):
        hl.create_study(name, storage=url, space=SPACE, sampler=sampler)
        loaded = hl.load_study(name, url).sampler
        assert type(loaded) is type(sampler)
        assert loaded.multi_fidelity == sampler.multi_fidelity
    assert AutoSampler(multi_fidelity=False).tpe.multi_fidelity is False
    assert TPESampler().multi_fidelity == "auto"


def _benchmark() -> object:
    spec = importlib.util.spec_from_file_location("hl_multifidelity",
                                                  BENCHMARKS / "multifidelity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_budget_aware_tpe_with_asha_on_replayed_curves() -> None:
    """On real MLP curves (benchmarks/multifidelity.py's tabular problem with nearest-row
    replay, 4 simulated workers, 30 full trials' budget), learning from rung values finds
    good configurations sooner: over seeds 0-4 the median regret at a third of the budget is
    0.0138 against 0.0227 for plain TPE + ASHA. At the full budget both reach 0.0138, so only
    "no worse" is asserted there. (With the benchmark's default replay, which never gives a
    run the same row twice, plain TPE gets out of its rut too and both are level on MLP.)"""
    bench = _benchmark()
    table = bench.Table.load(np.load(BENCHMARKS / "data" / "curves.npz"), "mlp_digits")
    budget = 30 * float(table.steps[-1])
    regrets: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for seed in range(5):
        for mode in regrets:
            study = hl.create_study(space=table.space, seed=seed, scheduler=bench.asha(table),
                                    sampler=TPESampler(seed=seed, multi_fidelity=mode))
            result = simulate(study, table.curve_for, n_workers=4, max_spent=budget)
            regrets[mode].append(bench.regret_curve(result, table, budget))
    aware, plain = (np.median(np.array(regrets[m]), axis=0) for m in (True, False))
    third = bench.CHECKPOINTS.index(1 / 3)
    assert np.isfinite(aware[third]) and aware[third] < plain[third]
    assert aware[-1] <= plain[-1] + 0.005


def test_distinct_replay_gives_a_new_configuration_an_unused_row() -> None:
    """The benchmark's default replay: the same configuration gets the same recorded curve, a
    new one the nearest curve the run has not used, however close it is to a used one."""
    bench = _benchmark()
    table = bench.Table.load(np.load(BENCHMARKS / "data" / "curves.npz"), "mlp_digits")
    lookup = table.distinct_lookup()
    rng = np.random.default_rng(0)
    base = table.space.sample(rng)
    first = lookup(base)
    assert lookup(dict(base)).values == first.values  # the same configuration again
    nudged = {**base, "lr": base["lr"] * 1.0001}
    assert table.curve_for(nudged).values == first.values  # nearest-row replay repeats it
    assert lookup(nudged).values != first.values
    rows = {tuple(lookup(table.space.sample(rng)).values) for _ in range(50)}
    assert len(rows) == 50 and tuple(first.values) not in rows
