"""Pareto fronts and hypervolume, checked against brute force and hand-worked cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hyperlaw.pareto import (
    constrained_ranks,
    crowding_distance,
    default_reference,
    hypervolume,
    hypervolume_contributions,
    hypervolume_history,
    non_dominated_ranks,
    pareto_mask,
)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_ranks(points: np.ndarray) -> np.ndarray:
    ranks = np.full(len(points), -1)
    rank = 0
    while (ranks < 0).any():
        left = np.flatnonzero(ranks < 0)
        front = [i for i in left if not any(dominates(points[j], points[i]) for j in left)]
        ranks[front] = rank
        rank += 1
    return ranks


def inclusion_exclusion(points: np.ndarray, ref: np.ndarray) -> float:
    """The volume of the union of the boxes [p, ref], by inclusion–exclusion (exact)."""
    points = points[np.all(points < ref, axis=1)]
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * float(np.prod(ref - corner))
    return total


def test_a_hand_worked_two_objective_front():
    points = np.array([[1.0, 5.0], [2.0, 3.0], [4.0, 1.0], [3.0, 4.0], [5.0, 5.0]])
    assert pareto_mask(points).tolist() == [True, True, True, False, False]
    assert non_dominated_ranks(points).tolist() == [0, 0, 0, 1, 2]
    # boxes to (6, 6): [1,6]x[5,6] + [2,6]x[3,5] + [4,6]x[1,3] = 5 + 8 + 4
    assert hypervolume(points, [6.0, 6.0]) == pytest.approx(17.0)


def test_equal_points_share_the_front_and_count_once():
    points = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0]])
    assert pareto_mask(points).all()
    assert hypervolume(points, [3.0, 3.0]) == pytest.approx(3.0)
    assert hypervolume_contributions(points, [3.0, 3.0])[:2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_hypervolume_matches_inclusion_exclusion(k):
    rng = np.random.default_rng(k)
    for _ in range(20):
        points = rng.random((int(rng.integers(1, 9)), k))
        ref = np.full(k, 1.1)
        assert hypervolume(points, ref) == pytest.approx(inclusion_exclusion(points, ref))


@pytest.mark.parametrize("k", [2, 3])
def test_ranks_match_brute_force(k):
    rng = np.random.default_rng(10 + k)
    for _ in range(10):
        points = rng.integers(0, 5, size=(30, k)).astype(float)  # many ties
        assert non_dominated_ranks(points).tolist() == brute_ranks(points).tolist()


def test_unknown_rows_rank_last_and_add_nothing():
    points = np.array([[1.0, 1.0], [np.nan, 0.0], [2.0, 0.5]])
    assert pareto_mask(points).tolist() == [True, False, True]
    assert non_dominated_ranks(points).tolist() == [0, 1, 0]
    assert hypervolume(points, [3.0, 3.0]) == pytest.approx(hypervolume(points[[0, 2]],
                                                                       [3.0, 3.0]))


def test_points_outside_the_reference_box_add_nothing():
    assert hypervolume([[2.0, 0.0], [0.5, 0.5]], [1.0, 1.0]) == pytest.approx(0.25)
    assert hypervolume(np.empty((0, 3)), [1.0, 1.0, 1.0]) == 0.0


def test_constrained_ranks_put_feasible_first_then_by_violation():
    points = np.array([[1.0, 1.0], [5.0, 5.0], [0.0, 0.0], [0.0, 0.0], [4.0, 6.0]])
    violation = np.array([0.0, np.nan, 2.0, 0.5, 0.0])
    # feasible: rows 0, 1 (no constraints), 4; rows 0 and 4 on the first front? 4 is dominated
    # by 0, and 1 by 0 as well: fronts 0 -> {0}, 1 -> {1, 4}; then violation 0.5, then 2.0
    assert constrained_ranks(points, violation).tolist() == [0, 1, 3, 2, 1]


def test_crowding_distance_is_infinite_at_the_extremes():
    front = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    distance = crowding_distance(front)
    assert np.isinf(distance[[0, 3]]).all()
    # row 1: (3 - 0)/4 + (4 - 1)/4; row 2: (4 - 1)/4 + (2 - 0)/4
    assert distance[1] == pytest.approx(1.5)
    assert distance[2] == pytest.approx(1.25)


def test_contributions_are_what_each_point_alone_adds():
    rng = np.random.default_rng(3)
    points = rng.random((7, 3))
    ref = np.full(3, 1.0)
    total = hypervolume(points, ref)
    contributions = hypervolume_contributions(points, ref)
    for i in range(len(points)):
        without = hypervolume(np.delete(points, i, axis=0), ref)
        assert contributions[i] == pytest.approx(total - without, abs=1e-12)


def test_history_grows_to_the_total():
    rng = np.random.default_rng(4)
    points = rng.random((25, 2))
    ref = np.array([1.0, 1.0])
    history = hypervolume_history(points, ref)
    assert np.all(np.diff(history) >= 0)
    assert history[-1] == pytest.approx(hypervolume(points, ref))
    for i in (0, 5, 12):
        assert history[i] == pytest.approx(hypervolume(points[: i + 1], ref))


def test_default_reference_bounds_the_front():
    points = np.array([[1.0, 5.0], [3.0, 1.0], [9.0, 9.0]])
    ref = default_reference(points)
    assert ref.tolist() == pytest.approx([3.2, 5.4])
    assert hypervolume(points, ref) > 0
    assert default_reference([[2.0, 0.0]]).tolist() == pytest.approx([2.2, 0.1])
    with pytest.raises(ValueError, match="no point"):
        default_reference([[np.nan, 1.0]])


def test_a_bad_reference_point_names_the_shape_expected():
    with pytest.raises(ValueError, match="2 finite numbers"):
        hypervolume([[1.0, 2.0]], [1.0])
