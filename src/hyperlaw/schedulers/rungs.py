"""The rules of successive halving: rung budgets, their checks, and who is kept at a rung.

The rung values themselves (`Rung`, `RungIndex`, promotion chains) are kept by
`hyperlaw.history.rungs`, where samplers read them too.

With several objectives (MO-ASHA, Schmucker et al. 2021, "Multi-objective Asynchronous
Successive Halving") the trials at a rung are ordered by non-dominated front (Deb et al. 2002),
and within a front by their exclusive hypervolume contribution, larger first, with the
reference point at the rung's worst value in each objective plus a tenth of its range (the
S-metric selection of SMS-EMOA, Beume et al. 2007). NSGA-II's crowding distance was the first
choice: it needs no reference point, but it gives the extremes of a front an infinite
distance, so the smallest model at a rung always continued however bad its loss; on the
replayed curves of `benchmarks/mo_asha.py` (10 seeds) the contribution took the promotion
variant to random search's full-budget hypervolume in 30% / 50% / 30% of the budget on the
three families instead of 43% / 60% / 47%. `ranked_ahead` is that order as "how many rivals
are ahead", the quantity `kept` takes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.history.rungs import Rung
from hyperlaw.pareto import hypervolume_contributions, non_dominated_ranks
from hyperlaw.trial import TrialState

_COMPLETE = TrialState.COMPLETE


def check_budgets(min_budget: float, max_budget: float | None, reduction_factor: float,
                  owner: str) -> None:
    """Raise a HyperlawError naming `owner` when the budget options make no sense."""
    if not (isinstance(min_budget, int | float) and min_budget > 0):
        raise HyperlawError(f"{owner}: min_budget must be a positive number of steps, got "
                            f"{min_budget!r}")
    if max_budget is not None and not (isinstance(max_budget, int | float)
                                       and max_budget >= min_budget):
        raise HyperlawError(f"{owner}: max_budget must be a number >= min_budget "
                            f"({min_budget}), got {max_budget!r}; or None to take it from the "
                            "first complete trial")
    if not (isinstance(reduction_factor, int | float) and reduction_factor > 1):
        raise HyperlawError(f"{owner}: reduction_factor must be > 1 (3 keeps a third of the "
                            f"trials at each rung), got {reduction_factor!r}")


def rung_budgets(min_budget: float, max_budget: float | None, reduction_factor: float,
                 rate: int = 0, limit: float | None = None) -> list[float]:
    """Budgets min_budget·η^(rate+k) up to max_budget (inclusive), or up to `limit`."""
    top = max_budget if max_budget is not None else limit
    budgets = []
    k = rate
    while True:
        budget = min_budget * reduction_factor**k
        if top is not None and budget > top * (1 + 1e-9):
            break
        budgets.append(budget)
        k += 1
        if top is None and k > rate + 64:
            break
    return budgets


class CompletedSteps:
    """The largest last step of any complete trial (for `max_budget=None`), kept incrementally."""

    def __init__(self) -> None:
        self.known: set[int] = set()
        self.largest: int | None = None

    def refresh(self, history: History) -> int | None:
        known = self.known
        for record in history.trials:
            if record.state is _COMPLETE and record.number not in known:
                known.add(record.number)
                last = record.last_step
                if last is not None and (self.largest is None or last > self.largest):
                    self.largest = last
        return self.largest


def crossed(intermediate: dict[int, float], step: int, budgets: list[float],
            after: int | None = None) -> list[float]:
    """The budgets that the report at `step` reaches for the first time for this trial (which
    continues a chain from step `after`, when given)."""
    previous = max((s for s in intermediate if s < step), default=after)
    return [b for b in budgets if step >= b - 1e-9 and (previous is None or previous < b - 1e-9)]


def kept(better: int, n: int, reduction_factor: float, strict: bool = False) -> bool:
    """ASHA's rule for a value that `better` of the `n` values at its rung (itself included)
    beat: is it among the best ⌊n/η⌋? Unless `strict`, the best one is kept even when n < η
    (the stopping variant's rule, which has no later chance to give); `strict` keeps none then
    (the promotion variant's rule)."""
    keep = int(n // reduction_factor)
    return better < (keep if strict else max(keep, 1))


def within_top(value: float, rivals: list[float], reduction_factor: float,
               maximize: bool, strict: bool = False) -> bool:
    """`kept` for `value` among `rivals` (which include it)."""
    if maximize:
        better = sum(1 for v in rivals if v > value)
    else:
        better = sum(1 for v in rivals if v < value)
    return kept(better, len(rivals), reduction_factor, strict)


def ranked_ahead(y: np.ndarray) -> np.ndarray:
    """For each row of `y` (n, k; lower is better in every column), how many rows rank strictly
    ahead of it: every row of an earlier non-dominated front, and the rows of its own front
    with a larger exclusive hypervolume contribution to that front (reference: the worst
    value of all rows in each column plus a tenth of its range). Rows with a NaN (a value
    not reported) come after all others and are ahead of none."""
    y = np.asarray(y, dtype=float).reshape(len(y), -1)
    rank = non_dominated_ranks(y)  # rows with a NaN: one rank past the last front
    known = ~np.isnan(y).any(axis=1)
    share = np.zeros(len(y))
    if known.any():
        low, high = y[known].min(axis=0), y[known].max(axis=0)
        reference = high + 0.1 * np.where(high > low, high - low, 1.0)
        for front in np.unique(rank[known]):
            members = np.flatnonzero(known & (rank == front))
            share[members] = hypervolume_contributions(y[members], reference)
    earlier = rank[None, :] < rank[:, None]
    larger = (rank[None, :] == rank[:, None]) & (share[None, :] > share[:, None])
    return np.count_nonzero(earlier | larger, axis=1)


def vector_standings(rung: Rung, signs: Sequence[float],
                     members: Callable[[int], bool] | None = None) -> dict[int, int]:
    """For each trial with a vector at `rung` (that `members` accepts, when given), how many of
    those trials rank ahead of it (`ranked_ahead`, values multiplied by `signs`)."""
    numbers = [n for n in rung.vectors if members is None or members(n)]
    if not numbers:
        return {}
    y = np.array([rung.vectors[n] for n in numbers], dtype=float) * np.asarray(signs)
    return dict(zip(numbers, ranked_ahead(y).tolist(), strict=True))
