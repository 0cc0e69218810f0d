"""The promotion variant of ASHA and Hyperband: pause at a rung, resume from the checkpoint."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.executors.simulated import ReplayCurve, StudyTuner, simulate
from hyperlaw.history.rungs import RungIndex, chains
from hyperlaw.schedulers import ASHA, Hyperband
from hyperlaw.trial import TrialState

MAX_STEP = 9


def objective(trial: hl.Trial) -> float:
    """A deterministic learning curve whose floor is the parameter `q`; resumes exactly."""
    q = trial.params["q"]
    if trial.checkpoint is not None:
        state = trial.load_checkpoint()
        assert state["step"] == trial.checkpoint.step
        trial.set_user_attr("resumed_from", state["step"])
    else:
        state = {"step": -1}
    loss = 1.0 + q
    for step in range(state["step"] + 1, MAX_STEP + 1):
        loss = q + 1.0 / (step + 1)
        trial.report(loss, step, checkpoint={"step": step})
    return loss


def _study(storage: str | None, tmp_path: Path, scheduler: ASHA) -> hl.Study:
    return hl.create_study(storage=storage, space={"q": hl.Float(0.0, 1.0)}, sampler="random",
                           scheduler=scheduler, seed=11, checkpoint_dir=str(tmp_path / "c"))


def test_asha_promotion_pauses_and_later_continues_from_the_checkpoint(
        storage: str | None, tmp_path: Path) -> None:
    study = _study(storage, tmp_path, ASHA(min_budget=1, max_budget=MAX_STEP,
                                           reduction_factor=3, promotion=True))
    study.optimize(objective, n_trials=30, show_progress=False)
    trials = study.trials
    assert not [t for t in trials if t.state is TrialState.FAILED]
    suspended = [t for t in trials if "suspended" in t.system_attrs]
    continued = [t for t in trials if "promoted_from" in t.system_attrs]
    assert suspended and continued
    parents = Counter(t.system_attrs["promoted_from"] for t in continued)
    assert max(parents.values()) == 1  # no paused trial is continued twice
    for child in continued:
        parent = trials[child.system_attrs["promoted_from"]]
        assert "suspended" in parent.system_attrs and child.params == parent.params
        assert child.user_attrs["resumed_from"] == parent.last_step
        assert min(child.intermediate) == parent.last_step + 1
    # a paused trial was promoted later: the variant's point (the stopping variant drops it)
    assert any(t.number < c.number - 1 for c in continued
               for t in [trials[c.system_attrs["promoted_from"]]])
    # every configuration counts once per rung, under its chain's first trial
    history = study._history.refresh()
    roots = chains(history).roots
    rungs = RungIndex([1.0, 3.0, 9.0]).refresh(history).rungs
    firsts = {t.number for t in trials if t.number not in roots}
    for rung in rungs:
        assert set(rung.values) <= firsts
    # the best configuration sampled trains to the end
    best_q = min(t.params["q"] for t in trials)
    assert study.best_trial.params["q"] == pytest.approx(best_q)
    assert study.best_trial.last_step == MAX_STEP


def test_without_a_checkpoint_the_promotion_variant_stops(tmp_path: Path) -> None:
    def no_checkpoints(trial: hl.Trial) -> float:
        for step in range(MAX_STEP + 1):
            trial.report(trial.params["q"] + 1.0 / (step + 1), step)
        return trial.params["q"]

    study = _study(None, tmp_path, ASHA(min_budget=1, max_budget=MAX_STEP, promotion=True))
    study.optimize(no_checkpoints, n_trials=12, show_progress=False)
    trials = study.trials
    assert [t for t in trials if t.state is TrialState.PRUNED]
    assert not [t for t in trials if "suspended" in t.system_attrs or
                "promoted_from" in t.system_attrs]


def test_hyperband_promotion_keeps_each_chain_in_its_bracket(sqlite_url: str,
                                                            tmp_path: Path) -> None:
    scheduler = Hyperband(min_budget=1, max_budget=MAX_STEP, reduction_factor=3,
                          promotion=True)
    study = _study(sqlite_url, tmp_path, scheduler)
    study.optimize(objective, n_trials=30, show_progress=False)
    trials = study.trials
    continued = [t for t in trials if "promoted_from" in t.system_attrs]
    assert continued and not [t for t in trials if t.state is TrialState.FAILED]
    history = study._history.refresh()
    roots = chains(history).roots
    for child in continued:
        assert scheduler.bracket_of(child.number, history) == scheduler.bracket_of(
            roots[child.number], history)
    assert hl.schedulers.make_scheduler(None, scheduler.spec()).options()["promotion"]


def test_a_rung_with_fewer_than_eta_trials_pauses_even_the_best(tmp_path: Path) -> None:
    """Li et al.'s rule: rung k promotes its top ⌊n/η⌋, none while n < η; the first arrivals
    pause (and are continued once rivals arrive) instead of running on unjudged."""
    study = _study(None, tmp_path, ASHA(min_budget=1, max_budget=MAX_STEP, reduction_factor=3,
                                        promotion=True))
    study.optimize(objective, n_trials=2, show_progress=False)
    for trial in study.trials:
        assert trial.state is TrialState.PRUNED and "suspended" in trial.system_attrs
        assert trial.last_step == 1
    study.optimize(objective, n_trials=2, show_progress=False)
    trials = study.trials
    rung = {t.number: t.intermediate[1] for t in trials[:3]}
    # the third arrival completes the rung: its best continues (straight on, or when promoted)
    best = min(rung, key=rung.__getitem__)
    went_on = trials[3].system_attrs.get("promoted_from") == best or (
        best == 2 and trials[2].last_step > 1)
    assert went_on


def test_simulated_workers_continue_paused_trials_from_their_checkpoints(
        tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    table = [0.1 + rng.uniform(0.1, 2.0) * np.arange(1, 10) ** -rng.uniform(0.2, 1.5)
             for _ in range(60)]
    study = hl.create_study(space={"curve": hl.Int(0, 59)}, sampler="random", seed=0,
                            checkpoint_dir=str(tmp_path / "c"),
                            scheduler=ASHA(min_budget=1, max_budget=9, promotion=True))

    def curve_for(params: dict) -> ReplayCurve:
        return ReplayCurve(list(range(1, 10)), list(table[params["curve"]]))

    result = simulate(StudyTuner(study, checkpoints=True), curve_for, n_workers=4,
                      max_spent=150)
    trials = study.trials
    continued = [t for t in trials if "promoted_from" in t.system_attrs]
    assert continued
    for child in continued:
        parent = trials[child.system_attrs["promoted_from"]]
        assert min(child.intermediate) == parent.last_step + 1  # resumed, not retrained
        assert child.intermediate[min(child.intermediate)] == pytest.approx(
            table[child.params["curve"]][parent.last_step])
    assert sum(len(t.intermediate) for t in trials) == result.spent <= 150
    assert any(f.complete for f in result.finished)
