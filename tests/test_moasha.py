"""Early stopping with several objectives (MO-ASHA): the order of trials at a rung."""

from __future__ import annotations

import numpy as np

from hyperlaw.history.rungs import Rung
from hyperlaw.schedulers.rungs import kept, ranked_ahead, vector_standings


def test_a_dominated_trial_is_behind_every_trial_of_the_front() -> None:
    # (loss, size): the first three form the front, the last is dominated by (0.2, 2)
    y = np.array([[0.1, 9.0], [0.2, 2.0], [0.5, 1.0], [0.3, 3.0]])
    ahead = ranked_ahead(y)
    assert ahead[3] == 3
    assert max(ahead[:3]) < ahead[3]


def test_ties_within_a_front_go_to_the_larger_crowding_distance() -> None:
    # one front of five: the two ends have infinite crowding distance; of the middle three,
    # (0.1, 0.9) and (0.9, 0.1) crowd the ends, (0.5, 0.5) has the widest gap around it
    y = np.array([[0.0, 1.0], [0.1, 0.9], [0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    ahead = ranked_ahead(y)
    assert ahead[0] == ahead[4] == 0
    assert ahead[2] < min(ahead[1], ahead[3])


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
