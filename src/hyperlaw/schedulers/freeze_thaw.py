"""Freeze-thaw multi-fidelity (in the spirit of Swersky et al. 2014, DyHPO and ifBO): trials
train in short increments and pause at each increment's end; whenever a worker is free, the
scheduler continues the paused trial whose predicted improvement per unit of cost is highest,
or lets the sampler start a new trial when a new one is worth more.

A configuration is a chain of trials (the first, then each trial that continued it from its
checkpoint; `lineage.PROMOTED_FROM`), paused and continued with the same machinery as ASHA's
promotion variant. Its curve so far (all the chain's reports) goes to the curve model, which
predicts the value at `max_budget`. With the incumbent y* the best complete value (before
one completes, the best value reported; lower is better, signs are flipped for a maximized
objective):

- a paused configuration at step s is worth EI / (max_budget - s): the expected improvement of
  its predicted final value over y*, per step unit still to train;
- a new configuration is worth `new_trial_weight` times the mean EI, per full budget, of
  every configuration that had its first look (its first increment, at least three reports),
  each predicted from all its reports now: a draw of the sampler is valued as the draws
  before it turned out so far; until some configuration has completed it is worth nothing,
  so paused ones are continued until the full budget's incumbent is known (a heavy weight
  or a near horizon otherwise kept every configuration paused for good).

With `horizon` h (DyHPO looks one increment ahead), both are read at a nearer budget: a
configuration at step s at the h-th increment end after s (at most `max_budget`), its EI over
the best value any configuration reported there, per step unit to get there; a new one at the
h-th increment end, per step unit from scratch.

With `screen` b (a step before `min_budget`; by default min_budget / 3), a new configuration is
first ranked at step b, where the curve model has too few points to predict from: it goes on
to its first look only if its value there is among the best 1/`SCREEN_REDUCTION` of the values
reported at b (ASHA's rule, `rungs.within_top`), so a first look costs about
b + (min_budget - b) / 3 steps instead of min_budget, and about twice as many configurations
get one.

From `rank_from` of `max_budget` on (a third by default), a configuration also has to rank
among the best half of the values reported at an increment's end (`RANK_REDUCTION`, ASHA's
rule) to go on: the longer the curves, the better their order foretells the final one, while
the expected improvement per cost keeps continuing configurations the field has passed when
new draws are worth little.

A new configuration is worth what the configurations drawn so far offer as known now: the
mean, over them, of the expected improvement of the value at the first look's budget predicted
from all their reports (the value itself once reached), per full budget. Valued by their first
looks instead (`new_trial_value="first"`, the former rule), new draws carry the width of a
three-point prediction, which outweighs any later, narrower one.

Costs are step units. The predictive distribution is read through `quantiles` only, so any
model returning such a prediction plugs in (`curve_model`).
"""

from __future__ import annotations

import bisect
import importlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hyperlaw.curves import extrapolate
from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.history.rungs import chains
from hyperlaw.lineage import RESUME, RETRY_OF, SUSPENDED, Checkpoint, resume_point
from hyperlaw.schedulers.base import Decision, HandOff, Scheduler
from hyperlaw.schedulers.rungs import CompletedSteps, check_budgets, crossed, within_top
from hyperlaw.trial import TrialRecord, TrialState


class Predictive(Protocol):
    """What a curve model returns: a predictive distribution with quantiles."""

    def quantiles(self, q: Sequence[float] | np.ndarray) -> Any: ...


#: reports a configuration needs before its first look counts (a curve needs three points)
MIN_POINTS = 3

#: under `screen`, a new configuration goes on to its first look when among the best 1/this
SCREEN_REDUCTION = 3.0

#: from `rank_from` of the full budget on, a configuration goes on past an increment's end
#: only when among the best 1/this of the values reported there
RANK_REDUCTION = 2.0

#: (steps, values, at_step) -> the predictive distribution of the value at at_step
CurveModel = Callable[[Sequence[float], Sequence[float], float], Predictive]


class FreezeThaw(Scheduler):
    """Freeze-thaw: run trials in increments, pause them (checkpointed) at each increment's end,
    and continue the paused trial with the best predicted improvement per unit of cost, or
    start a new trial when a new one is worth more (see the module docstring for the rule).

    Increments end at `min_budget`·`growth`^k (in step units) and at `max_budget`
    (`None`: the last step of the first complete trial; nothing pauses before one completes).
    Until `n_startup_trials` configurations have had their first look (the first increment,
    at least three reports), every trial pauses at its increment's end and new trials start.
    `curve_model(steps, values, at_step)` predicts a curve's final value (default
    `hyperlaw.curves.extrapolate`, told the study's direction; a "module:function" string
    names one).
    `new_trial_weight` scales a new trial's worth (above 1 explores more). `horizon` (None:
    `max_budget`) reads the predicted improvement that many increments ahead. `screen` ("auto":
    `min_budget` / 3; None: off) is a step before `min_budget` where a new configuration is
    ranked against the values reported there and stopped unless among the best third (a
    configuration whose first report is past it is not screened). `new_trial_value` ("latest"
    or "first") values a new configuration by what earlier ones offer as known now, or by
    their first looks. `rank_from` (a fraction of `max_budget`; None: off) is where the
    ranking at increment ends starts: from there a configuration outside the best half of
    the values reported at an increment's end stops there.

    A trial pauses only with a checkpoint at or after its increment's end; one without goes on
    when it is worth at least a new trial and stops otherwise. One objective only.
    """

    name = "freeze_thaw"

    def __init__(self, min_budget: float = 1, max_budget: float | None = None,
                 growth: float = 2.0, curve_model: CurveModel | str | None = None,
                 n_startup_trials: int = 8, new_trial_weight: float = 1.0,
                 n_quantiles: int = 12, horizon: int | None = None,
                 screen: float | str | None = "auto", new_trial_value: str = "latest",
                 rank_from: float | None = 1 / 3) -> None:
        check_budgets(min_budget, max_budget, growth, type(self).__name__)
        if n_startup_trials < 1 or n_quantiles < 4 or not new_trial_weight > 0:
            raise HyperlawError("FreezeThaw needs n_startup_trials >= 1, n_quantiles >= 4 and "
                                f"new_trial_weight > 0, got {n_startup_trials!r}, "
                                f"{n_quantiles!r}, {new_trial_weight!r}")
        if horizon is not None and not (isinstance(horizon, int) and horizon >= 1):
            raise HyperlawError("FreezeThaw: horizon must be a number of increments >= 1, or "
                                f"None for max_budget, got {horizon!r}")
        if screen not in (None, "auto") and not (
                isinstance(screen, int | float) and 0 < screen < min_budget):
            raise HyperlawError("FreezeThaw: screen must be a step between 0 and min_budget "
                                f"({min_budget!r}), 'auto' or None, got {screen!r}")
        if rank_from is not None and not (isinstance(rank_from, int | float)
                                          and 0 < rank_from <= 1):
            raise HyperlawError("FreezeThaw: rank_from must be a fraction of max_budget in "
                                f"(0, 1], or None for no ranking, got {rank_from!r}")
        if new_trial_value not in ("latest", "first"):
            raise HyperlawError("FreezeThaw: new_trial_value must be 'latest' (every "
                                "configuration as known now) or 'first' (their first looks), "
                                f"got {new_trial_value!r}")
        self.horizon = horizon
        self.screen = screen
        self.new_trial_value = new_trial_value
        self.rank_from = None if rank_from is None else float(rank_from)
        self.min_budget = min_budget
        self.max_budget = max_budget
        self.growth = growth
        self.curve_model: CurveModel = _model(curve_model)
        self.n_startup_trials = int(n_startup_trials)
        self.new_trial_weight = float(new_trial_weight)
        self.n_quantiles = int(n_quantiles)

    def options(self) -> dict[str, Any]:
        model = self.curve_model
        name = None if model is extrapolate else f"{model.__module__}:{model.__qualname__}"
        return {"min_budget": self.min_budget, "max_budget": self.max_budget,
                "growth": self.growth, "curve_model": name,
                "n_startup_trials": self.n_startup_trials,
                "new_trial_weight": self.new_trial_weight, "n_quantiles": self.n_quantiles,
                "horizon": self.horizon, "screen": self.screen,
                "new_trial_value": self.new_trial_value, "rank_from": self.rank_from}

    # --- structure -----------------------------------------------------------------------
    @property
    def screen_step(self) -> float | None:
        """The step new configurations are ranked at before their first look (None: none)."""
        if self.screen == "auto":
            return self.min_budget / SCREEN_REDUCTION
        return None if self.screen is None else float(self.screen)

    def resolved_max_budget(self, history: History) -> float | None:
        """max_budget, or the last step of the first complete trials when it was not given."""
        if self.max_budget is not None:
            return self.max_budget
        return history.memoized("completed-steps", CompletedSteps).refresh(history)

    def budgets(self, top: float) -> list[float]:
        """The steps where increments end, below `top` (the full budget)."""
        found, budget = [], float(self.min_budget)
        while budget < top - 1e-9:
            found.append(budget)
            budget *= self.growth
        return found

    def target(self, step: float, top: float) -> float:
        """The budget a configuration at `step` is judged at: the `horizon`-th increment end
        after it, at most `top`."""
        if self.horizon is None:
            return top
        ends = [*self.budgets(top), top]
        i = bisect.bisect_right(ends, step + 1e-9) + self.horizon - 1
        return ends[min(i, len(ends) - 1)]

    # --- the rule ------------------------------------------------------------------------
    def worth(self, history: History, deciding: int | None = None) -> Worth:
        """Every configuration's predicted improvement per unit of cost, and a new one's
        (`deciding`: the configuration whose trial is deciding now, by its first trial)."""
        top = self.resolved_max_budget(history)
        if top is None:
            return Worth({}, {}, 0.0, 0)
        if len(history.directions) > 1:
            raise HyperlawError("FreezeThaw schedules studies of one objective; use ASHA "
                                "(MO-ASHA) for several")
        # budget-aware samplers fit the values at these steps, as under ASHA's rungs
        screen = self.screen_step
        history.rung_budgets = [*([] if screen is None else [screen]), *self.budgets(top), top]
        sign = -1.0 if history.maximize else 1.0
        configs = _configurations(history)
        # a configuration's prediction is redone when its curve grew, except while another
        # worker trains it (then its last one stands in, until it pauses or decides); its
        # first look (from its first increment) is made once
        cache: dict[Any, tuple[int, float, tuple[float, ...]]] = history.memoized(
            ("freeze-thaw", self.curve_model, self.n_quantiles, self.min_budget, top,
             self.horizon), dict)
        incumbents = _Incumbents(configs.values(), sign, top)
        per_cost: dict[int, float] = {}
        first_gains: list[float] = []
        draw_gains: list[float] = []  # each configuration's gain as known now, per full cost
        for root, config in configs.items():
            upto = max(bisect.bisect_right(config.steps, self.min_budget + 1e-9), MIN_POINTS)
            if len(config.steps) < upto and not config.complete:
                continue
            first = cache.get(("first", root))
            if first is None:
                at = self.target(self.min_budget, top)
                first = cache["first", root] = (upto, at, self._final(config, at, sign, upto))
            first_gains.append(_gain(incumbents.at(first[1]), first[2]) / first[1])
            reached = bisect.bisect_left(config.steps, first[1] - 1e-9)
            if reached < len(config.steps):  # its value there is known
                draw_gains.append(_gain(incumbents.at(first[1]),
                                        (sign * config.values[reached],)) / first[1])
            if config.complete or config.steps[-1] >= top:
                continue
            known = cache.get(root)
            if known is None or (known[0] != len(config.steps) and
                                 (not config.running or root == deciding)):
                at = self.target(config.steps[-1], top)
                known = cache[root] = (len(config.steps), at,
                                       self._final(config, at, sign, len(config.steps)))
            per_cost[root] = _gain(incumbents.at(known[1]), known[2]) / max(
                known[1] - config.steps[-1], 1e-12)
            if reached >= len(config.steps):
                latest = known[2] if known[1] == first[1] else self._latest(
                    cache, root, config, first[1], sign)
                draw_gains.append(_gain(incumbents.at(first[1]), latest) / first[1])
        paused = {c.paused: per_cost.get(root, 0.0) for root, c in configs.items()
                  if c.paused is not None}
        gains = draw_gains if self.new_trial_value == "latest" else first_gains
        # until one completes, a new configuration is worth nothing: the full budget's
        # incumbent comes first
        completed = any(c.complete for c in configs.values())
        new = self.new_trial_weight * float(np.mean(gains)) if gains and completed else 0.0
        started = len(first_gains)
        return Worth(per_cost, paused, new, started)

    def _latest(self, cache: dict[Any, Any], root: int, config: _Configuration, at: float,
                sign: float) -> tuple[float, ...]:
        """The configuration's predicted value at `at` from all its reports (cached)."""
        known = cache.get(("latest", root))
        if known is None or (known[0] != len(config.steps) and not config.running):
            known = cache["latest", root] = (
                len(config.steps), self._final(config, at, sign, len(config.steps)))
        return known[1]

    def _final(self, config: _Configuration, at: float, sign: float, upto: int
               ) -> tuple[float, ...]:
        """Quantiles of the configuration's value at step `at` predicted from its first
        `upto` reports (sign-adjusted)."""
        levels = (np.arange(self.n_quantiles) + 0.5) / self.n_quantiles
        steps, values = config.steps[:upto], config.values[:upto]
        prediction = (extrapolate(steps, values, at, direction="maximize" if sign < 0 else
                                  "minimize")
                      if self.curve_model is extrapolate else self.curve_model(steps, values, at))
        return tuple(np.sort(sign * np.asarray(prediction.quantiles(levels), dtype=float)).tolist())

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision | HandOff:
        top = self.resolved_max_budget(history)
        if top is None or step >= top:
            return Decision.CONTINUE
        start = trial.system_attrs.get(RESUME)
        after = None if start is None else Checkpoint.from_json(start).step
        screen = self.screen_step
        if screen is not None and step < self.min_budget - 1e-9 and \
                crossed(trial.intermediate, step, [screen], after):
            kept = self._ranked(trial, step, screen, SCREEN_REDUCTION, history)
            return Decision.CONTINUE if kept else Decision.STOP
        ends = self.budgets(top)
        if not crossed(trial.intermediate, step, ends, after):
            return Decision.CONTINUE
        if self.rank_from is not None:
            ranked = [b for b in ends if b >= self.rank_from * top - 1e-9
                      and crossed(trial.intermediate, step, [b], after)]
            if ranked and not self._ranked(trial, step, ranked[-1], RANK_REDUCTION, history):
                return Decision.STOP
        root = _root(trial, chains(history).roots)
        worth = self.worth(history, root)
        own = worth.per_cost.get(root, 0.0)
        startup = worth.started < self.n_startup_trials
        if not startup and own > 0 and own >= max([worth.new, *worth.paused.values()]):
            return Decision.CONTINUE
        checkpoint = resume_point(trial.number, trial.system_attrs, history.trials)
        if checkpoint is not None and checkpoint.step >= max(b for b in self.budgets(top)
                                                             if b <= step + 1e-9):
            return HandOff("suspend", trial.number, root, trial.intermediate[step])
        return Decision.STOP if not startup and own < worth.new else Decision.CONTINUE

    @staticmethod
    def _ranked(trial: TrialRecord, step: int, at: float, reduction: float,
                history: History) -> bool:
        """Whether the trial's value at `step` (its first report at or past `at`) is among the
        best 1/`reduction` of every configuration's first value reported at or past `at`."""
        own = _root(trial, chains(history).roots)
        mine = trial.intermediate[step]
        rivals = [mine, *(c.values[i] for root, c in _configurations(history).items()
                          if root != own and (i := bisect.bisect_left(c.steps, at - 1e-9))
                          < len(c.steps) and c.steps[i] <= step)]
        return within_top(mine, rivals, reduction, history.maximize)

    @property
    def reads_history_to_start(self) -> bool:
        return True

    def promoted(self, history: History) -> int | None:
        """The paused trial worth the most, when it is worth more than a new trial."""
        worth = self.worth(history)
        if worth.started < self.n_startup_trials or not worth.paused:
            return None
        number, best = max(worth.paused.items(), key=lambda item: (item[1], -item[0]))
        return number if best > worth.new else None


@dataclass(frozen=True)
class Worth:
    """Predicted improvement per unit of cost: of each unfinished configuration (by its first
    trial), of each paused trial (by its number), and of a new configuration; `started`
    counts the configurations that reached the first increment."""

    per_cost: dict[int, float]
    paused: dict[int, float]
    new: float
    started: int


@dataclass
class _Configuration:
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    complete: bool = False
    running: bool = False
    paused: int | None = None  # the paused trial that would continue it


def _configurations(history: History) -> dict[int, _Configuration]:
    """Each configuration's curve (its chain's reports) and state, by its first trial."""
    found = chains(history)
    merged: dict[int, dict[int, float]] = {}
    configs: dict[int, _Configuration] = {}
    for record in history.trials:
        root = _root(record, found.roots)
        config = configs.setdefault(root, _Configuration())
        curve = merged.setdefault(root, {})
        curve.update((s, v) for s, v in record.intermediate.items() if math.isfinite(v))
        config.running = record.state is TrialState.RUNNING
        if record.state is TrialState.COMPLETE:
            config.complete = True
        elif record.state is TrialState.PRUNED and SUSPENDED in record.system_attrs and \
                record.number not in found.continued:
            config.paused = record.number
    for root, curve in merged.items():
        steps = sorted(curve)
        configs[root].steps = steps
        configs[root].values = [curve[s] for s in steps]
    return configs


class _Incumbents:
    """The values to beat (sign-adjusted). At the full budget: the best complete value, else
    the best reported. At a budget below: the best value reported at the first step at or
    after it, else the one at the full budget."""

    def __init__(self, configs: Iterable[_Configuration], sign: float, top: float) -> None:
        self.configs = list(configs)
        self.sign = sign
        self.top = top
        self.known: dict[float, float] = {}
        finals = [sign * c.values[-1] for c in self.configs if c.complete and c.values]
        self.final = min(finals) if finals else min(
            (sign * v for c in self.configs for v in c.values), default=math.inf)

    def at(self, budget: float) -> float:
        if budget >= self.top - 1e-9:
            return self.final
        found = self.known.get(budget)
        if found is None:
            reached = [self.sign * c.values[i] for c in self.configs
                       if (i := bisect.bisect_left(c.steps, budget - 1e-9)) < len(c.steps)]
            found = self.known[budget] = min(reached, default=self.final)
        return found


def _gain(incumbent: float, final: tuple[float, ...]) -> float:
    """The expected improvement over `incumbent` of a value with these quantiles."""
    return sum(incumbent - q for q in final if q < incumbent) / len(final)


def _root(record: TrialRecord, roots: dict[int, int]) -> int:
    """The first trial of a trial's configuration: through promotions and, for a retry of a
    trial whose worker died, through the trial it retries."""
    origin = record.system_attrs.get(RETRY_OF, record.number)
    return roots.get(origin, origin)


def _model(model: CurveModel | str | None) -> CurveModel:
    """The curve model: the default, a callable, or one named "module:function"."""
    if model is None:
        return extrapolate
    if callable(model):
        return model
    module, _, attr = str(model).partition(":")
    try:
        found = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise HyperlawError(f"FreezeThaw: curve_model {model!r} cannot be imported ({exc}); "
                            "pass a callable or 'module:function'") from exc
    if not callable(found):
        raise HyperlawError(f"FreezeThaw: curve_model {model!r} is not callable")
    return found
