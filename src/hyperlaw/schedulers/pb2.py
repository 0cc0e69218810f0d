"""PB2's explore step: the population's history as bandit data, the GP bandit's choice back
as parameters. The model itself is pure math in `hyperlaw.models.pb2`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from hyperlaw.history import History
from hyperlaw.models.pb2 import pb2_select
from hyperlaw.space import Float, Int, Space
from hyperlaw.trial import TrialRecord, TrialState


def continuous(space: Space, names: Sequence[str]) -> list[str]:
    """The names PB2 models: floats and ints (choices keep PBT's perturbation)."""
    return [n for n in names if isinstance(space[n], Float | Int)]


def bandit_data(space: Space, names: Sequence[str], history: History,
                interval: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows (time in intervals, unit-cube x, reward change over one interval) of every trial,
    and the unit-cube x of the running trials."""
    times: list[float] = []
    rows: list[list[float]] = []
    changes: list[float] = []
    running: list[list[float]] = []
    sign = 1.0 if history.maximize else -1.0
    for t in history.trials:
        if t.state is TrialState.WAITING or any(n not in t.params for n in names):
            continue
        x = [space[n].to_unit(t.params[n]) for n in names]
        if t.state is TrialState.RUNNING:
            running.append(x)
        steps = sorted(s for s in t.intermediate if s % interval == 0)
        for before, after in itertools.pairwise(steps):
            times.append(after / interval)  # in intervals, the unit of the kernel's decay
            rows.append(x)
            changes.append(sign * (t.intermediate[after] - t.intermediate[before]))
    d = len(names)
    return (np.asarray(times, float), np.asarray(rows, float).reshape(-1, d),
            np.asarray(changes, float), np.asarray(running, float).reshape(-1, d))


def pb2_explore(space: Space, names: Sequence[str], donor: TrialRecord, history: History,
                interval: int, rng: np.random.Generator) -> dict[str, Any]:
    """New values of the continuous parameters among `names`, chosen by the GP bandit at the
    donor's current step."""
    names = continuous(space, names)
    if not names:
        return {}
    times, x, y, running = bandit_data(space, names, history, interval)
    now = (donor.last_step or 0) / interval
    u = pb2_select(times, x, y, running, now, rng)
    return {n: space[n].from_unit(float(v)) for n, v in zip(names, u, strict=True)}
