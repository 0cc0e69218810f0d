"""Budget-aware observations for model-based samplers (the rule of BOHB, Falkner et al. 2018).

Under a multi-fidelity scheduler (ASHA, Hyperband) most trials stop early: few complete, but
many reported values at the rung budgets. A model then fits the observations of the largest
budget at which at least `min_observations` configurations were seen:

- levels, from the top: the complete trials (their final value: the top budget), then each
  rung budget downwards. A configuration's value at rung budget b is the value it reported at
  its first step >= b (`Rung.values`); a chain of continued trials (`lineage.PROMOTED_FROM`) is one
  configuration, with the parameters of its first trial.
- the rung budgets are those the scheduler of this process last published
  (`history.rung_budgets`, kept as a union so Hyperband's brackets add up). Before any
  scheduler decision in this process (a fresh worker), they are the steps at which at least two
  pruned trials stopped, when there are at most `MAX_DERIVED_BUDGETS` such steps (ASHA and
  Hyperband stop trials at their rungs); with more (stopping rules that stop anywhere) no
  budget is known and the sampler keeps its plain behaviour.
- `min_observations` is BOHB's N_min = d + 1 (d: number of dimensions), raised to the
  sampler's own startup count.

The fit set marks the configurations observed at the chosen budget as complete (their value
there as the loss); configurations that stopped below it and failed trials are marked failed
(TPE puts them in its "bad" density, as it does with pruned trials; the GP ignores them);
running trials stay running (constant liar, fantasies).

With several objectives (MO-ASHA) a level holds each configuration's vector of values there
(`Rung.vectors`; the final values for the complete trials), signed so that lower is better,
as the fit set's `objectives`: a sampler that ranks by non-dominated sorting (MOTPE) ranks the
rung as the scheduler does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.history.observations import (
    COMPLETE,
    FAILED,
    PRUNED,
    RUNNING,
    Observations,
    encode_row,
)
from hyperlaw.history.rungs import RungIndex, chains, objective_signs
from hyperlaw.space import Space
from hyperlaw.trial import TrialState

MultiFidelity = bool | Literal["auto"]

#: the most distinct stopping steps read as rung budgets when no scheduler published them
MAX_DERIVED_BUDGETS = 10

#: the budget of the top level: complete trials at their final value
TOP = math.inf


def check_multi_fidelity(value: Any, owner: str) -> MultiFidelity:
    """`value` when it is True, False or "auto"; else a HyperlawError naming `owner`."""
    if value is True or value is False or value == "auto":
        return value
    raise HyperlawError(f"{owner}: multi_fidelity must be True, False or 'auto' (learn from "
                        f"intermediate values when few trials are complete), got {value!r}")


def min_observations(space: Space, n_startup_trials: int) -> int:
    """Observations a budget needs before a model fits it: max(startup count, d + 1)."""
    return max(int(n_startup_trials), space.dim + 1)


@dataclass(frozen=True)
class Fidelity:
    """The budget a model fits, how many configurations were observed there, and the fit set."""

    budget: float  # TOP for the complete trials
    n: int
    obs: Observations


def fidelity(space: Space, history: History, obs: Observations, mode: MultiFidelity,
             n_min: int) -> Fidelity | None:
    """The observations to fit, or None for the plain behaviour (fit `obs` as it is).

    `mode` True: the largest budget with at least `n_min` observations (the top one included).
    "auto": the same, but only while fewer than `n_min` trials are complete and a rung budget
    below has enough. Without any intermediate value the answer is always None. Memoized per
    history version.
    """
    if mode is False or not history.by_step:
        return None
    if mode == "auto" and np.count_nonzero(obs.state == COMPLETE) >= n_min:
        return None
    key = ("hl.fidelity", space.hash, mode, n_min)
    cached = history.memo.get(key)
    if cached is not None and cached[0] == history.version:
        return cached[1]
    state = history.memoized(("hl.fidelity.state", space.hash), _State)
    found = state.select(space, history, obs, mode, n_min)
    history.memo[key] = (history.version, found)
    return found


class _State:
    """Per history and space: the rung budgets seen so far and the encoded rows of finished
    trials."""

    def __init__(self) -> None:
        self.budgets: set[float] = set()  # as published (the scheduler's index key)
        self.rows: dict[int, np.ndarray] = {}

    def rung_budgets(self, history: History, obs: Observations) -> list[float]:
        if history.rung_budgets:
            self.budgets.update(history.rung_budgets)
        if self.budgets:
            return sorted(self.budgets)
        stops, counts = np.unique(obs.step[obs.state == PRUNED], return_counts=True)
        derived = stops[counts >= 2]
        return [float(s) for s in derived] if len(derived) <= MAX_DERIVED_BUDGETS else []

    def row(self, space: Space, history: History, number: int) -> np.ndarray:
        found = self.rows.get(number)
        if found is None:
            record = history.trials[number]
            found = encode_row(space, record.params)
            if record.state.is_finished:  # a running trial may still add parameters
                self.rows[number] = found
        return found

    def select(self, space: Space, history: History, obs: Observations, mode: MultiFidelity,
               n_min: int) -> Fidelity | None:
        found = chains(history)
        roots, continued = found.roots, found.continued
        signs = objective_signs(history) or (history.sign(),)
        complete: dict[int, tuple[float, ...]] = {}
        ended: list[int] = []  # the last trial of each chain that stopped
        failed: list[int] = []
        running: list[int] = []
        for t in history.trials:
            if not t.params:
                continue
            state = t.state
            if state is TrialState.COMPLETE and t.values is not None:
                complete[roots.get(t.number, t.number)] = _signed(t.values, signs)
            elif state is TrialState.PRUNED and t.number not in continued:
                ended.append(t.number)
            elif state is TrialState.FAILED:
                failed.append(t.number)
            elif state is TrialState.RUNNING:
                running.append(t.number)
        level: tuple[float, dict[int, tuple[float, ...]]] | None = None
        if len(complete) >= n_min:
            if mode == "auto":
                return None
            level = (TOP, complete)
        else:
            level = self.rung_level(history, obs, signs, n_min)
        if level is None:
            return None
        budget, values = level
        observed = list(values)
        below = [n for n in ended if roots.get(n, n) not in values]
        numbers = observed + below + failed + running
        x = np.array([self.row(space, history, n) for n in numbers]).reshape(-1, space.dim)
        y = np.full((len(numbers), len(signs)), np.nan)
        if observed:
            y[:len(observed)] = np.array(list(values.values()), dtype=float)
        states = np.concatenate([np.full(len(observed), COMPLETE),
                                 np.full(len(below) + len(failed), FAILED),
                                 np.full(len(running), RUNNING)]).astype(np.int64)
        fit = Observations(x, y[:, 0].copy(), states,
                           np.full(len(numbers), -1, dtype=np.int64), obs.keys,
                           objectives=y if len(signs) > 1 else None)
        return Fidelity(budget, len(observed), fit)

    def rung_level(self, history: History, obs: Observations, signs: tuple[float, ...],
                   n_min: int) -> tuple[float, dict[int, tuple[float, ...]]] | None:
        """The highest rung with at least `n_min` configurations: its budget and their
        signed values there (all objectives' with several), or None."""
        budgets = self.rung_budgets(history, obs)
        if not budgets:
            return None
        index = history.memoized(("rungs", tuple(budgets)), lambda: RungIndex(budgets))
        for rung in reversed(index.refresh(history).rungs):
            if len(signs) > 1:
                found = {n: _signed(v, signs) for n, v in rung.vectors.items()
                         if len(v) == len(signs)}
            else:
                found = {n: (signs[0] * v,) for n, v in rung.values.items()}
            if len(found) >= n_min:
                return rung.budget, found
        return None


def _signed(values: tuple[float, ...], signs: tuple[float, ...]) -> tuple[float, ...]:
    """Values signed so that lower is better."""
    return tuple(s * float(v) for s, v in zip(signs, values, strict=False))
