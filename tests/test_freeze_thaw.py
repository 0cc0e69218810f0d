"""Freeze-thaw: trials pause at each increment and the scheduler continues the paused one with
the best predicted improvement per unit of cost, or starts a new one."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from crossprocess import first_to_create

import hyperlaw as hl
from hyperlaw.curves import extrapolate
from hyperlaw.history.observations import COMPLETE, observations
from hyperlaw.history.rungs import chains
from hyperlaw.lineage import SUSPENDED
from hyperlaw.samplers import TPESampler
from hyperlaw.samplers.budgets import fidelity
from hyperlaw.schedulers import FreezeThaw, make_scheduler
from hyperlaw.trial import TrialState

MAX_STEP = 16


def objective(trial: hl.Trial) -> float:
    """A deterministic curve falling towards the floor `q` (hopeless when q is high); resumes
    from its checkpoint exactly."""
    q = trial.params["q"]
    if trial.checkpoint is not None:
        state = trial.load_checkpoint()
        assert state["step"] == trial.checkpoint.step
        trial.set_user_attr("resumed_from", state["step"])
    else:
        state = {"step": 0}
    loss = 1.0 + q
    for step in range(state["step"] + 1, MAX_STEP + 1):
        loss = q + 1.0 / step
        trial.report(loss, step, checkpoint={"step": step})
    return loss


def signed_curve(sign: float) -> Callable[[hl.Trial], float]:
    """`objective`'s curves times `sign` (-1: to maximize), resumed from their checkpoints."""

    def signed(trial: hl.Trial) -> float:
        q = trial.params["q"]
        start = trial.checkpoint.step if trial.checkpoint is not None else 0
        for step in range(start + 1, MAX_STEP + 1):
            trial.report(sign * (q + 1.0 / step), step, checkpoint={"step": step})
        return sign * (q + 1.0 / MAX_STEP)

    return signed


def _scheduler() -> FreezeThaw:
    """Pausing and continuing by predicted improvement alone (no ranking at increment ends:
    its own test below), so that hopeless configurations stay paused."""
    return FreezeThaw(min_budget=3, max_budget=MAX_STEP, growth=2, n_startup_trials=4,
                      new_trial_weight=1, rank_from=None)


def test_paused_trials_resume_from_their_checkpoints_and_hopeless_ones_stay_paused(
        sqlite_url: str, tmp_path: Path) -> None:
    study = hl.create_study(storage=sqlite_url, space={"q": hl.Float(0.0, 1.0)},
                            sampler="random", seed=3, scheduler=_scheduler(),
                            checkpoint_dir=str(tmp_path / "c"))
    study.optimize(objective, n_trials=40, show_progress=False)
    trials = study.trials
    assert not [t for t in trials if t.state is TrialState.FAILED]
    continued = [t for t in trials if "promoted_from" in t.system_attrs]
    assert continued
    assert max(Counter(t.system_attrs["promoted_from"] for t in continued).values()) == 1
    for child in continued:  # each continuation starts right after its parent's checkpoint
        parent = trials[child.system_attrs["promoted_from"]]
        assert SUSPENDED in parent.system_attrs and child.params == parent.params
        assert child.user_attrs["resumed_from"] == parent.last_step
        assert min(child.intermediate) == parent.last_step + 1
    # new configurations were started while paused ones were left: the worst of them
    firsts = [t for t in trials if "promoted_from" not in t.system_attrs]
    left = [t for t in trials if SUSPENDED in t.system_attrs and
            t.number not in {c.system_attrs["promoted_from"] for c in continued}]
    assert len(firsts) > 10 and left
    worst = max(firsts, key=lambda t: t.params["q"])
    assert worst.last_step < MAX_STEP  # the most hopeless configuration never trained on
    # the best configuration sampled trained to the end, through its checkpoints
    best_q = min(t.params["q"] for t in firsts)
    assert study.best_trial.params["q"] == pytest.approx(best_q)
    assert study.best_trial.last_step == MAX_STEP
    assert make_scheduler(None, study.scheduler.spec()).options() == _scheduler().options()


def test_a_new_configuration_never_outweighs_finishing_the_first_one(
        sqlite_url: str, tmp_path: Path) -> None:
    """However much a new configuration is weighed, configurations are continued until one
    completes: before, a heavy weight kept every configuration paused at its first increment
    and the study never learned a value at the full budget."""
    scheduler = FreezeThaw(min_budget=3, max_budget=MAX_STEP, growth=2, n_startup_trials=4,
                           new_trial_weight=10)
    study = hl.create_study(storage=sqlite_url, space={"q": hl.Float(0.0, 1.0)},
                            sampler="random", seed=3, scheduler=scheduler,
                            checkpoint_dir=str(tmp_path / "c"))
    study.optimize(objective, n_trials=30, show_progress=False)
    complete = [t for t in study.trials if t.state is TrialState.COMPLETE]
    assert complete and all(t.last_step == MAX_STEP for t in complete)
    assert study.best_trial.state is TrialState.COMPLETE
    # and the weight still shows: most configurations stop at their first look
    firsts = [t for t in study.trials if "promoted_from" not in t.system_attrs]
    assert sum(t.last_step <= 6 for t in firsts) > len(firsts) / 2


def test_without_checkpoints_trials_go_on_or_stop_and_none_fails(sqlite_url: str) -> None:
    """With nothing paused (no checkpoint to pause at) a trial worth more than a new one goes
    on; the comparison once failed every such trial (a TypeError, no paused trial to weigh)."""

    def uncheckpointed(trial: hl.Trial) -> float:
        loss = 1.0
        for step in range(1, MAX_STEP + 1):
            loss = trial.params["q"] + 1.0 / step
            trial.report(loss, step)
            if trial.should_prune():
                raise hl.TrialPruned()
        return loss

    study = hl.create_study(storage=sqlite_url, space={"q": hl.Float(0.0, 1.0)},
                            sampler="random", seed=3, scheduler=_scheduler())
    study.optimize(uncheckpointed, n_trials=30, show_progress=False)
    states = Counter(t.state for t in study.trials)
    assert states[TrialState.FAILED] == 0
    assert states[TrialState.PRUNED] > 0
    # past the startup, some trial was judged worth going on and trained to the end
    assert any(t.state is TrialState.COMPLETE for t in study.trials[_scheduler().n_startup_trials:])
    assert not [t for t in study.trials if SUSPENDED in t.system_attrs]


def _history(direction: str, curves: dict[int, tuple[list[float], bool]]) -> hl.Study:
    """A study holding one trial per curve, told complete (True) or paused at its last step."""
    study = hl.create_study(space={"q": hl.Float(0.0, 1.0)}, direction=direction)
    sign = -1.0 if direction == "maximize" else 1.0
    for number, (values, complete) in curves.items():
        trial = study.ask({"q": number / 10})
        for step, value in enumerate(values, start=1):
            trial.report(sign * value, step)
        if complete:
            study.tell(trial, sign * values[-1])
        else:
            study.tell(trial, state=TrialState.PRUNED)
            study.store.set_trial_system_attr(study.id, trial.number, SUSPENDED,
                                              {"score": sign * values[-1]})
    return study


STEPS = np.arange(1, 17)
DONE = list(0.30 + 0.5 / STEPS)  # complete: ends at 0.33
PROMISING = list(0.05 + 1.5 / STEPS[:4])  # at step 4: 0.425, falling fast towards 0.05
HOPELESS = list(0.95 + 0.01 / STEPS[:4])  # flat far above the incumbent
WORSENED = [0.20, 0.22, 0.25, 0.28]  # rising, still below the incumbent


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_rule_continues_a_promising_paused_trial_and_starts_new_for_hopeless_ones(
        direction: str) -> None:
    scheduler = FreezeThaw(min_budget=2, max_budget=16, n_startup_trials=2)
    study = _history(direction, {0: (DONE, True), 1: (PROMISING, False),
                                 2: (HOPELESS, False)})
    history = study._history.refresh()
    worth = scheduler.worth(history)
    assert worth.paused[1] > worth.new > worth.paused[2] >= 0
    assert worth.paused[2] == pytest.approx(0.0, abs=1e-6)
    assert scheduler.promoted(history) == 1
    # with only a hopeless paused trial, a new configuration is worth more
    study = _history(direction, {0: (DONE, True), 1: (HOPELESS, False),
                                 2: (HOPELESS, False)})
    assert scheduler.promoted(study._history.refresh()) is None


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_paused_trial_that_worsened_but_leads_keeps_its_lead_in_the_forecast(
        direction: str) -> None:
    """The default curve model is told the study's direction: a loss that rose but still sits
    below the incumbent is forecast around its last value, so its expected gain is at least
    half its lead (along the rise it was about a tenth of it)."""
    scheduler = FreezeThaw(min_budget=2, max_budget=16, n_startup_trials=2)
    study = _history(direction, {0: (DONE, True), 1: (WORSENED, False),
                                 2: (HOPELESS, False)})
    history = study._history.refresh()
    gain = scheduler.worth(history).paused[1] * (16 - 4)  # per step unit still to train
    assert gain >= 0.5 * (DONE[-1] - WORSENED[-1])
    assert scheduler.promoted(history) == 1


def test_before_enough_configurations_nothing_is_continued() -> None:
    study = _history("minimize", {0: (DONE, True), 1: (PROMISING, False)})
    scheduler = FreezeThaw(min_budget=2, max_budget=16, n_startup_trials=3)
    assert scheduler.promoted(study._history.refresh()) is None


class Optimist:
    """A curve model of the test: every curve ends near -1, far below any value seen; counts
    its calls."""

    calls = 0

    def quantiles(self, q: Sequence[float]) -> np.ndarray:
        return -1.0 + 0.01 * (np.asarray(q) - 0.5)


def optimist(steps: Sequence[float], values: Sequence[float], at_step: float) -> Optimist:
    Optimist.calls += 1
    return Optimist()


def test_the_curve_model_is_pluggable_and_stored_by_name() -> None:
    study = _history("minimize", {0: (DONE, True), 1: (HOPELESS, False),
                                  2: (HOPELESS, False)})
    history = study._history.refresh()
    default = FreezeThaw(min_budget=2, max_budget=16, n_startup_trials=2)
    assert default.curve_model is extrapolate and default.promoted(history) is None
    model = FreezeThaw(min_budget=2, max_budget=16, n_startup_trials=2, curve_model=optimist,
                       new_trial_weight=1)
    assert model.promoted(history) == 1  # all equal, per cost: the lower number first
    assert Optimist.calls >= 2
    rebuilt = make_scheduler(None, model.spec())
    assert isinstance(rebuilt, FreezeThaw) and rebuilt.curve_model is optimist
    with pytest.raises(hl.HyperlawError, match="curve_model 'nowhere:model' cannot be imported"):
        FreezeThaw(curve_model="nowhere:model")


def test_a_worker_killed_mid_increment_loses_no_acknowledged_report(
        sqlite_url: str, tmp_path: Path) -> None:
    """Worker processes; one dies by SIGKILL between two reports of an increment of a
    continued trial: every report it made is kept, and its retry resumes from its newest
    checkpoint within the same configuration."""
    flag = str(tmp_path / "killed")
    study = hl.create_study("killed", storage=sqlite_url, space={"q": hl.Float(0.0, 1.0)},
                            sampler="random", seed=5, scheduler=_scheduler(), retry_stale=1,
                            checkpoint_dir=str(tmp_path / "c"))

    def dying(trial: hl.Trial) -> float:
        q = trial.params["q"]
        start = 0 if trial.checkpoint is None else trial.load_checkpoint()["step"]
        loss = 1.0 + q
        for step in range(start + 1, MAX_STEP + 1):
            loss = q + 1.0 / step
            trial.report(loss, step, checkpoint={"step": step})
            if step == 4 and "promoted_from" in trial.system_attrs and \
                    first_to_create(flag):
                os.kill(os.getpid(), signal.SIGKILL)  # mid-increment: between 3 and 6
        return loss

    study.optimize(dying, n_trials=24, n_workers=2, show_progress=False)
    assert os.path.exists(flag)
    trials = study.trials
    dead = [t for t in trials if t.state is TrialState.FAILED]
    assert len(dead) == 1 and dead[0].system_attrs["stale"] is True
    dead_trial = dead[0]
    assert dead_trial.intermediate == {4: dead_trial.params["q"] + 1.0 / 4}
    retry = [t for t in trials if t.system_attrs.get("retry_of") == dead_trial.number]
    assert len(retry) == 1 and retry[0].params == dead_trial.params
    assert min(retry[0].intermediate) == 5  # resumed after the dead trial's checkpoint
    assert retry[0].state is not TrialState.FAILED



def test_a_budget_aware_sampler_fits_the_values_at_the_increment_ends(tmp_path: Path) -> None:
    """The sampler learns from the paused configurations as under ASHA's rungs: each chain
    once, at the first value it reported at or after an increment's end."""
    space = hl.Space({"q": hl.Float(0.0, 1.0)})
    study = hl.create_study(space=space, seed=4, scheduler=_scheduler(),
                            sampler=TPESampler(seed=4, n_startup_trials=4, multi_fidelity=True),
                            checkpoint_dir=str(tmp_path / "c"))
    study.optimize(objective, n_trials=30, show_progress=False)
    history = study._history.refresh()
    assert history.rung_budgets == [1, 3, 6, 12, MAX_STEP]  # the screen (min_budget / 3) too
    found = chains(history)
    n_complete = len({found.roots.get(t.number, t.number) for t in history.trials
                      if t.state is TrialState.COMPLETE})
    level = fidelity(space, history, observations(space, history), True, n_complete + 1)
    assert level is not None and level.budget in (1, 3, 6, 12)
    rows = level.obs.x[level.obs.state == COMPLETE]
    assert len(rows) == level.n and len({tuple(r) for r in rows}) == len(rows)
    for row, loss in zip(rows, level.obs.loss[level.obs.state == COMPLETE], strict=True):
        assert loss == pytest.approx(row[0] + 1.0 / level.budget)  # the curve at that step


def test_a_horizon_judges_a_configuration_a_number_of_increments_ahead() -> None:
    ahead = FreezeThaw(min_budget=2, max_budget=16, n_startup_trials=2, horizon=1)
    assert [ahead.target(s, 16) for s in (2, 3, 4, 8, 12)] == [4, 4, 8, 16, 16]
    assert FreezeThaw(min_budget=2, max_budget=16, horizon=2).target(2, 16) == 8
    assert FreezeThaw(min_budget=2, max_budget=16).target(2, 16) == 16
    study = _history("minimize", {0: (DONE, True), 1: (PROMISING, False),
                                  2: (HOPELESS, False)})
    history = study._history.refresh()
    worth = ahead.worth(history)
    assert worth.paused[1] > worth.paused[2] >= 0 and ahead.promoted(history) == 1
    assert make_scheduler(None, ahead.spec()).options()["horizon"] == 1
    with pytest.raises(hl.HyperlawError, match="horizon must be a number of increments"):
        FreezeThaw(horizon=0)


def test_a_screen_stops_new_configurations_ranked_below_the_best_third_before_the_first_look(
        sqlite_url: str, tmp_path: Path) -> None:
    sign, direction = 1.0, "minimize"

    scheduler = FreezeThaw(min_budget=3, max_budget=MAX_STEP, growth=2, n_startup_trials=4)
    study = hl.create_study(storage=sqlite_url, space={"q": hl.Float(0.0, 1.0)},
                            sampler="random", seed=5, scheduler=scheduler, direction=direction,
                            checkpoint_dir=str(tmp_path / "c"))
    study.optimize(signed_curve(sign), n_trials=30, show_progress=False)
    firsts = [t for t in study.trials if "promoted_from" not in t.system_attrs]
    screened = [t for t in firsts if t.last_step == 1]
    assert screened and not [t for t in firsts if t.last_step == 2]
    for trial in screened:  # ranked at step 1 (q + 1) against the configurations before it
        earlier = [t.params["q"] for t in firsts if t.number < trial.number]
        better = sum(q < trial.params["q"] for q in earlier)
        assert better >= max((len(earlier) + 1) // 3, 1)
    best_q = min(t.params["q"] for t in firsts)
    assert study.best_trial.params["q"] == pytest.approx(best_q)
    assert study.best_trial.last_step == MAX_STEP
    assert make_scheduler(None, study.scheduler.spec()).options()["screen"] == "auto"
    assert scheduler.screen_step == 1 and FreezeThaw(min_budget=3, screen=None).screen_step is None
    assert 1 in study._history.refresh().rung_budgets
    with pytest.raises(hl.HyperlawError, match="screen must be a step between 0 and min_budget"):
        FreezeThaw(min_budget=3, screen=3)


class _Trending:
    """A curve model of the test: the curve goes on as it went, ten times as far."""

    def __init__(self, values: Sequence[float]) -> None:
        self.at = values[-1] + 10.0 * (values[-1] - values[0])

    def quantiles(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        return self.at + 0.01 * (np.asarray(q, dtype=float) - 0.5)


def trending(steps: Sequence[float], values: Sequence[float], at_step: float) -> _Trending:
    """A `curve_model` returning `_Trending`."""
    return _Trending(values)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_past_a_third_of_the_budget_a_configuration_outside_the_best_half_stops(
        direction: str, sqlite_url: str, tmp_path: Path) -> None:
    sign = -1.0 if direction == "maximize" else 1.0

    def run(rank_from: float | None) -> hl.Study:
        # every curve is predicted to go on improving fast, far past the incumbent: by the
        # predicted improvement alone a configuration is continued or paused, never stopped
        scheduler = FreezeThaw(min_budget=3, max_budget=MAX_STEP, growth=2,
                               n_startup_trials=4, screen=None, curve_model=trending,
                               rank_from=rank_from)
        study = hl.create_study(f"ranked-{rank_from}", storage=sqlite_url,
                                space={"q": hl.Float(0.0, 1.0)}, sampler="random", seed=3,
                                scheduler=scheduler, direction=direction,
                                checkpoint_dir=str(tmp_path / str(rank_from)))
        study.optimize(signed_curve(sign), n_trials=30, show_progress=False)
        return study

    def stopped_at_an_increment_end(study: hl.Study) -> list[hl.FrozenTrial]:
        return [t for t in study.trials if t.state is TrialState.PRUNED
                and SUSPENDED not in t.system_attrs and t.last_step in (3, 6, 12)]

    study = run(1 / 3)  # ranked at the increment ends at or past 16 / 3: 6 and 12
    stopped = stopped_at_an_increment_end(study)
    assert stopped and all(t.last_step in (6, 12) for t in stopped)
    roots = chains(study._history.refresh()).roots
    for trial in stopped:  # outside the best half of the configurations' values there
        at = trial.last_step
        there = {roots.get(t.number, t.number): t.intermediate[at] for t in study.trials
                 if t.number < trial.number and at in t.intermediate}
        mine = trial.intermediate[at]
        rivals = [v for root, v in there.items() if root != roots.get(trial.number)]
        better = sum(sign * v < sign * mine for v in rivals)
        assert better >= max((len(rivals) + 1) // 2, 1)
    assert make_scheduler(None, study.scheduler.spec()).options()["rank_from"] == 1 / 3
    assert not stopped_at_an_increment_end(run(None))
    with pytest.raises(hl.HyperlawError, match="rank_from must be a fraction of max_budget"):
        FreezeThaw(rank_from=0)


class _WideFirstLook:
    """A curve model wide at a first look (three points: uniform within 1 of the last value)
    and sure later (the last value): first looks promise improvements later points withdraw."""

    def __init__(self, values: Sequence[float]) -> None:
        self.last = float(values[-1])
        self.width = 1.0 if len(values) <= 3 else 0.0

    def quantiles(self, q: Sequence[float] | np.ndarray) -> np.ndarray:
        return self.last + self.width * (2 * np.asarray(q, dtype=float) - 1)


def wide_first_look(steps: Sequence[float], values: Sequence[float], at_step: float
                    ) -> _WideFirstLook:
    """A `curve_model` returning `_WideFirstLook`."""
    return _WideFirstLook(values)


def test_a_new_configuration_is_valued_by_what_earlier_draws_turned_out_to_offer() -> None:
    withdrawn = [0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]  # first look 0.5, then flat at 0.6
    promising = [0.4, 0.4, 0.4, 0.35, 0.32, 0.31, 0.30, 0.30]  # now below the incumbent
    study = _history("minimize", {0: (DONE, True), 1: (withdrawn, False),
                                  2: (withdrawn, False), 3: (withdrawn, False),
                                  4: (promising, False)})
    history = study._history.refresh()
    latest = FreezeThaw(min_budget=3, max_budget=16, n_startup_trials=2,
                        curve_model=wide_first_look)
    worth = latest.worth(history)
    assert worth.paused[4] > worth.new > 0 and worth.paused[1] == 0
    assert latest.promoted(history) == 4  # continue the one still ahead of the incumbent
    # valued by the first looks alone, new draws look better than anything paused
    first = FreezeThaw(min_budget=3, max_budget=16, n_startup_trials=2,
                       curve_model=wide_first_look, new_trial_value="first")
    assert first.worth(history).new > worth.paused[4] and first.promoted(history) is None
    assert make_scheduler(None, latest.spec()).options()["new_trial_value"] == "latest"
    with pytest.raises(hl.HyperlawError, match="new_trial_value must be"):
        FreezeThaw(new_trial_value="mean")
