"""The history as arrays (`observations`): rows of finished trials are kept between asks."""

from __future__ import annotations

import numpy as np

import hyperlaw as hl
from hyperlaw.history import History
from hyperlaw.history.observations import COMPLETE, PRUNED, RUNNING, observations
from hyperlaw.store.memory import MemoryStore
from hyperlaw.trial import TrialRecord, TrialState

SPACE = hl.Space({"x": hl.Float(0.0, 1.0), "y": hl.Float(0.0, 1.0)})


def test_kept_rows_follow_replaced_records_and_late_reports() -> None:
    history = History(MemoryStore(), 0, False)
    history.put(TrialRecord(0, TrialState.COMPLETE, {"x": 0.25, "y": 0.5}, value=3.0))
    pruned = TrialRecord(1, TrialState.PRUNED, {"x": 0.75, "y": 0.5}, value=5.0,
                         intermediate={1: 6.0, 2: 5.0})
    history.put(pruned)
    history.put(TrialRecord(2, TrialState.RUNNING, {"x": 0.5, "y": 0.25}))
    first = observations(SPACE, history)
    assert first.state.tolist() == [COMPLETE, PRUNED, RUNNING]
    assert first.step.tolist() == [-1, 2, -1]
    assert np.allclose(first.x[1], [0.75, 0.5])

    # a late report on the pruned trial moves its last step
    history.add_report(1, 3, 4.5)
    assert observations(SPACE, history).step.tolist() == [-1, 3, -1]
    # a finished trial read again with a new value (a new record) is not served stale
    history.put(TrialRecord(0, TrialState.COMPLETE, {"x": 0.25, "y": 0.5}, value=2.0))
    # the running trial completes; a new one starts
    history.put(TrialRecord(2, TrialState.COMPLETE, {"x": 0.5, "y": 0.25}, value=1.0))
    history.put(TrialRecord(3, TrialState.RUNNING, {"x": 0.1, "y": 0.9}))
    last = observations(SPACE, history)
    assert last.loss[[0, 2]].tolist() == [2.0, 1.0]
    assert last.state.tolist() == [COMPLETE, PRUNED, COMPLETE, RUNNING]
    assert len(last.keys) == 4
    # the same arrays as a history read afresh
    fresh = History(MemoryStore(), 0, False)
    for t in history.trials:
        fresh.put(t)
    again = observations(SPACE, fresh)
    for name in ("x", "loss", "state", "step", "objectives", "violation"):
        assert np.array_equal(getattr(again, name), getattr(last, name), equal_nan=True), name
