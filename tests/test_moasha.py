"""Early stopping with several objectives (MO-ASHA): the order of trials at a rung."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.history.rungs import Rung
from hyperlaw.lineage import PROMOTED_FROM, SUSPENDED
from hyperlaw.schedulers import ASHA, Hyperband
from hyperlaw.schedulers.rungs import kept, ranked_ahead, vector_standings
from hyperlaw.trial import TrialState


def test_a_dominated_trial_is_behind_every_trial_of_the_front() -> None:
    # (loss, size): the first three form the front, the last is dominated by (0.2, 2)
    y = np.array([[0.1, 9.0], [0.2, 2.0], [0.5, 1.0], [0.3, 3.0]])
    ahead = ranked_ahead(y)
    assert ahead[3] == 3
    assert max(ahead[:3]) < ahead[3]


def test_ties_within_a_front_go_to_the_larger_hypervolume_contribution() -> None:
    # one front of five, reference (1.1, 1.1): (0.5, 0.5) alone dominates a 0.4 x 0.4 square,
    # its neighbours 0.4 x 0.1 each, the two ends 0.1 x 0.1 (crowding distance would have put
    # the ends first, whatever their other value)
    y = np.array([[0.0, 1.0], [0.1, 0.9], [0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    ahead = ranked_ahead(y)
    assert ahead[2] == 0
    assert ahead[1] == ahead[3] == 1
    assert ahead[0] == ahead[4] == 3


def test_a_missing_value_puts_a_trial_last() -> None:
    y = np.array([[0.1, 1.0], [np.nan, 0.0], [0.5, 2.0]])
    assert ranked_ahead(y).tolist() == [0, 2, 1]


def test_one_objective_orders_as_the_value_does() -> None:
    values = np.array([0.3, 0.1, 0.2, 0.9])
    assert ranked_ahead(values[:, None]).tolist() == [2, 0, 1, 3]


def test_a_rung_keeps_the_front_not_the_dominated_trial() -> None:
    # eta = 2: of four trials at the rung, two continue; trial 7 is dominated by trial 5
    rung = Rung(1.0, values={5: 0.2, 6: 0.1, 7: 0.25, 8: 0.9},
                vectors={5: (0.2, 2.0), 6: (0.1, 9.0), 7: (0.25, 3.0), 8: (0.9, 1.0)})
    standings = vector_standings(rung, (1.0, 1.0))
    kept_ = {n for n, ahead in standings.items() if kept(ahead, len(standings), 2)}
    assert 7 not in kept_ and len(kept_) == 2
    # maximizing the second objective flips who dominates whom
    flipped = vector_standings(rung, (1.0, -1.0))
    assert flipped[6] == 0


def test_standings_count_only_the_members_of_a_bracket() -> None:
    rung = Rung(1.0, vectors={1: (0.1, 1.0), 2: (0.0, 0.0), 3: (0.2, 2.0)})
    assert vector_standings(rung, (1.0, 1.0), members=lambda n: n != 2) == {1: 0, 3: 1}


# --- through a real study -------------------------------------------------------------------
def _two_objective_study(scheduler: ASHA, tmp_path: Path, storage: str | None = None,
                         ) -> hl.Study:
    return hl.create_study(storage=storage, space={"q": hl.Float(0.0, 1.0),
                                                   "s": hl.Float(0.0, 1.0)},
                           objectives={"loss": "minimize", "size": "minimize"},
                           sampler="random", scheduler=scheduler, seed=3,
                           checkpoint_dir=str(tmp_path / "c"))


def test_a_dominated_trial_stops_where_ranking_by_the_first_objective_keeps_it(
        tmp_path: Path) -> None:
    # eta = 1.5 keeps the best 2 of 3: by loss alone C (0.2) is second and continues, but
    # A = (0.1, 9) dominates C = (0.2, 9.5) while B = (0.5, 1) is on the front with A
    study = _two_objective_study(ASHA(min_budget=1, max_budget=9, reduction_factor=1.5),
                                 tmp_path)
    a, b, c = study.ask(), study.ask(), study.ask()
    a.report((0.1, 9.0), 1)
    b.report((0.5, 1.0), 1)
    with pytest.raises(hl.TrialPruned):
        c.report((0.2, 9.5), 1)
    # the same values as one objective: C is second of three and continues
    single = hl.create_study(space={"q": hl.Float(0.0, 1.0)}, sampler="random",
                             scheduler=ASHA(min_budget=1, max_budget=9, reduction_factor=1.5))
    first, second, third = (single.ask() for _ in range(3))
    first.report(0.1, 1)
    with pytest.raises(hl.TrialPruned):  # second of two: by its loss alone it stops
        second.report(0.5, 1)
    third.report(0.2, 1)  # continues


def test_the_promotion_variant_continues_a_front_member_before_a_dominated_one(
        tmp_path: Path) -> None:
    # eta = 2. B = (0.5, 1) reaches rung 1 alone and pauses; A = (0.1, 9) joins it on the
    # front and runs on; C = (0.2, 9.5) and D = (0.9, 9.9), both dominated by A, pause. Of the
    # paused trials B is in the rung's top two and is continued first; ranked by the loss
    # alone (A, C, B, D) it would be C.
    scheduler = ASHA(min_budget=1, max_budget=9, reduction_factor=2, promotion=True)
    study = _two_objective_study(scheduler, tmp_path)
    a, b, c, d = (study.ask() for _ in range(4))
    for trial, values in ((b, (0.5, 1.0)), (a, (0.1, 9.0)), (c, (0.2, 9.5)), (d, (0.9, 9.9))):
        try:
            trial.report(values, 1, checkpoint={"step": 1})
        except hl.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
    paused = {t.number for t in study.trials if SUSPENDED in t.system_attrs}
    assert paused == {b.number, c.number, d.number}
    assert scheduler.promoted(study._history.refresh()) == b.number
    continued = study.ask()
    assert continued.system_attrs.get(PROMOTED_FROM) == b.number
    assert continued.params == b.params and continued.checkpoint.step == 1


MAX_STEP = 9


def two_objectives(trial: hl.Trial) -> tuple[float, float]:
    """Loss falls to the floor `q`; the size `s` is fixed; resumes exactly from a checkpoint."""
    q, s = trial.params["q"], trial.params["s"]
    start = trial.load_checkpoint()["step"] if trial.checkpoint is not None else -1
    if trial.checkpoint is not None:
        trial.set_user_attr("resumed_from", start)
    loss = 1.0 + q
    for step in range(start + 1, MAX_STEP + 1):
        loss = q + 1.0 / (step + 1)
        trial.report((loss, s), step, checkpoint={"step": step})
    return loss, s


def test_mo_asha_promotion_on_sqlite_with_worker_processes(sqlite_url: str,
                                                            tmp_path: Path) -> None:
    scheduler = ASHA(min_budget=1, max_budget=MAX_STEP, reduction_factor=3, promotion=True)
    study = _two_objective_study(scheduler, tmp_path, sqlite_url)
    study.optimize(two_objectives, n_trials=40, n_workers=2, show_progress=False)
    trials = hl.load_study(study.name, sqlite_url).trials
    assert not [t for t in trials if t.state is TrialState.FAILED]
    continued = [t for t in trials if PROMOTED_FROM in t.system_attrs]
    assert continued and [t for t in trials if SUSPENDED in t.system_attrs]
    parents = [t.system_attrs[PROMOTED_FROM] for t in continued]
    assert len(parents) == len(set(parents))  # no paused trial is continued twice
    for child in continued:
        parent = trials[child.system_attrs[PROMOTED_FROM]]
        assert child.params == parent.params
        assert child.user_attrs["resumed_from"] == parent.last_step
        assert child.intermediate_values[min(child.intermediate)][1] == parent.params["s"]
    front = hl.load_study(study.name, sqlite_url).best_trials
    assert front and all(t.last_step == MAX_STEP for t in front)


def test_hyperband_ranks_each_bracket_by_both_objectives(tmp_path: Path) -> None:
    scheduler = Hyperband(min_budget=1, max_budget=MAX_STEP, reduction_factor=3)
    study = _two_objective_study(scheduler, tmp_path)
    study.optimize(two_objectives, n_trials=30, show_progress=False)
    trials = study.trials
    assert not [t for t in trials if t.state is TrialState.FAILED]
    assert [t for t in trials if t.state is TrialState.PRUNED]
    history = study._history.refresh()
    memo = [key for key in history.memo if isinstance(key, tuple) and key[0] == "mo-standings"]
    assert {key[1] for key in memo} > {0}  # rungs of more than one bracket were ranked
