"""Population-based training (Jaderberg et al. 2017) and PB2 (Parker-Holder et al. 2020).

A population of `population_size` members trains in parallel. A member is *ready* each time
it crosses a multiple of `interval` steps; it is then ranked against the other members by
their latest reported values. A member in the bottom `quantile_fraction` (truncation
selection) or one that loses a binary tournament is *exploited*: its trial ends and a child
trial is queued that starts from a copy of the donor's newest checkpoint with the donor's
hyperparameters, *explored* by perturbation (x0.8 / x1.2, neighbouring choice, or a fresh
draw with `resample_probability`) or, with ``explore="pb2"``, by a time-varying GP bandit.

Every member is therefore a chain of trials in the store, each with fixed hyperparameters;
the ``pbt`` system attribute of a child names its member, its donor and the donor's step, so
the schedule a final member followed can be rebuilt (`pbt_schedule`) and replayed.
Defaults follow Ray Tune's PBT (quantile 0.25, resample probability 0.25, factors 0.8/1.2).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.history import History
from hyperlaw.lineage import RETRY_OF, Checkpoint, pbt_link, recorded, resume_point, retried_trials
from hyperlaw.schedulers.base import Decision, HandOff, NewTrials, Scheduler
from hyperlaw.space import Choice, Const, Float, Int, Param, Space
from hyperlaw.trial import TrialRecord, TrialState

log = logging.getLogger("hyperlaw")

_SELECTIONS = ("truncation", "tournament")
_EXPLORERS = ("perturb", "pb2")


class PBT(Scheduler):
    """Population-based training; ``explore="pb2"`` makes it PB2.

    `hyperparams` names the parameters that explore may change (default: every parameter
    that is not a constant). With `synchronous`, a ready member waits (up to `sync_timeout`
    seconds) until every other running member reached the same boundary, so all are ranked
    on equal footing; that needs as many workers as members.
    """

    name = "pbt"

    def __init__(self, population_size: int = 8, interval: int = 1, *,
                 quantile_fraction: float = 0.25, resample_probability: float = 0.25,
                 perturbation_factors: Sequence[float] = (0.8, 1.2),
                 selection: str = "truncation", explore: str = "perturb",
                 synchronous: bool = False, hyperparams: Sequence[str] | None = None,
                 seed: int | None = None, sync_timeout: float = 600.0) -> None:
        if not isinstance(population_size, int) or population_size < 2:
            raise HyperlawError(f"PBT needs population_size >= 2, got {population_size!r}")
        if not isinstance(interval, int) or interval < 1:
            raise HyperlawError(
                f"PBT interval must be a positive int number of steps, got {interval!r}")
        if not 0 < quantile_fraction <= 0.5:
            raise HyperlawError(
                f"quantile_fraction must be in (0, 0.5], got {quantile_fraction!r}: the bottom "
                "fraction copies from the top fraction, so both must fit in the population")
        if not 0 <= resample_probability <= 1:
            raise HyperlawError(
                f"resample_probability must be in [0, 1], got {resample_probability!r}")
        if selection not in _SELECTIONS:
            raise HyperlawError(f"selection must be one of {_SELECTIONS}, got {selection!r}")
        if explore not in _EXPLORERS:
            raise HyperlawError(f"explore must be one of {_EXPLORERS}, got {explore!r}")
        self.population_size = population_size
        self.interval = interval
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability
        self.perturbation_factors = tuple(float(f) for f in perturbation_factors)
        self.selection = selection
        self.explore_method = explore
        self.synchronous = synchronous
        self.hyperparams = None if hyperparams is None else list(hyperparams)
        self.seed = seed
        self.sync_timeout = sync_timeout

    def options(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "interval": self.interval,
                "quantile_fraction": self.quantile_fraction,
                "resample_probability": self.resample_probability,
                "perturbation_factors": list(self.perturbation_factors),
                "selection": self.selection, "explore": self.explore_method,
                "synchronous": self.synchronous, "hyperparams": self.hyperparams,
                "seed": self.seed, "sync_timeout": self.sync_timeout}

    # --- population ----------------------------------------------------------------------
    @property
    def reads_history_to_start(self) -> bool:
        return True

    def new_trials(self, history: History) -> NewTrials:
        """The population is started first; afterwards only queued children run."""
        if Population.of(history).n_roots < self.population_size:
            return NewTrials.FIRST
        return NewTrials.CLOSED

    def check_budget(self, n_trials: int | None) -> None:
        """A member is a chain of trials, one more per pause or exploit, so no trial count
        fixed in advance is sure to let every member train to its end: a run stopped by
        `n_trials` leaves members paused (their continuations WAITING), maybe with no
        complete trial at all. PBT runs take no `n_trials`."""
        if n_trials is None or n_trials == 0:
            return
        raise HyperlawError(
            f"PBT trains its population of {self.population_size} members to the end, in one "
            f"trial per member plus one per hand-off (a pause or an exploit, possible every "
            f"{self.interval} step(s)), so how many trials that takes depends on how long the "
            f"objective trains and cannot be fixed in advance: n_trials={n_trials} would stop "
            "it with members paused mid-training and perhaps no complete trial. Pass "
            "n_trials=None (optimize then returns when every member has finished) and, to "
            "bound the run, timeout=SECONDS"
        )

    def _rng(self, number: int, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed or 0, number, salt])

    # --- decision ------------------------------------------------------------------------
    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision | HandOff:
        boundary = self._boundary(trial, step, history.trials)
        if boundary is None:
            return Decision.CONTINUE
        resumed = boundary == self._paused_at(trial)  # ranked again just after resuming
        if self.synchronous:
            self._wait_for_population(trial.number, boundary, history)
        population = Population.of(history)
        member = population.member[trial.number]
        scores = population.scores(boundary)
        started = population.n_roots >= self.population_size  # rank the whole population
        if started and member in scores and len(scores) >= 2:
            rng = self._rng(trial.number, step + 1)
            donor = self._select(member, scores, population, rng, history.maximize, boundary)
            if donor is not None:
                return HandOff("exploit", donor.number, member,
                               scores[population.member[donor.number]])
        if not resumed and not self.synchronous and self._others_waiting(
                population, member, boundary, trial):
            return HandOff("pause", trial.number, member, scores.get(member, math.nan))
        return Decision.CONTINUE

    def _boundary(self, trial: TrialRecord, step: int,
                  trials: Sequence[TrialRecord]) -> int | None:
        """The boundary at which the trial is ranked after its report at `step`, or None.

        A trial is ready when the report crosses a multiple of `interval`. A member that
        paused at a boundary is ranked again at its first report after resuming: by then
        the members that were behind it have caught up, so the ranking is fair. A trial's
        first report counts from the step it started after (see `_start_step`).
        """
        earlier = [s for s in trial.intermediate if s < step]
        paused_at = self._paused_at(trial)
        if not earlier and paused_at is not None and paused_at % self.interval == 0 \
                and paused_at >= self.interval:
            return paused_at
        previous = max(earlier) if earlier else _start_step(trial, trials)
        if step >= self.interval and step // self.interval > previous // self.interval:
            return step - step % self.interval
        return None

    @staticmethod
    def _paused_at(trial: TrialRecord) -> int | None:
        """The step a member paused at, for the trial that resumes it (else None)."""
        link = pbt_link(trial.system_attrs)
        return link.step if link and link.kind == "pause" else None

    def _others_waiting(self, population: Population, member: int, boundary: int,
                        trial: TrialRecord) -> bool:
        """Whether a member that no worker runs is behind this one's boundary (so this one
        pauses to free its worker: members take turns interval by interval), and this trial
        can resume later."""
        if _newest_checkpoint(trial, population.trials) is None:
            return False
        if population.n_roots < self.population_size:
            return True
        for m, head in population.head.items():
            if m == member or head.state is not TrialState.WAITING:
                continue
            if population.progress(head) < boundary:
                return True
        return False

    def _copyable(self, donor: TrialRecord, boundary: int, population: Population) -> bool:
        """Whether the donor still trains (a finished one leaves nothing to continue) and has
        a checkpoint at or past this member's boundary: copying one from behind would set
        the member back, spend compute twice and let it be judged at the same boundary
        again."""
        if donor.state.is_finished:
            return False
        checkpoint = _newest_checkpoint(donor, population.trials)
        return checkpoint is not None and checkpoint.step >= boundary

    def _select(self, member: int, scores: dict[int, float], population: Population,
                rng: np.random.Generator, maximize: bool,
                boundary: int) -> TrialRecord | None:
        order = sorted(scores, key=lambda m: scores[m], reverse=not maximize)  # worst first
        if self.selection == "tournament":
            rival = int(rng.choice([m for m in order if m != member]))
            better = scores[rival] > scores[member] if maximize else scores[rival] < scores[member]
            candidates = [rival] if better else []
        else:
            n = math.ceil(len(order) * self.quantile_fraction)
            n = min(n, len(order) // 2)
            if n == 0 or member not in order[:n]:
                return None
            candidates = order[-n:]
        donors = [population.head[m] for m in candidates
                  if m != member and self._copyable(population.head[m], boundary, population)]
        if not donors:
            return None  # no exploit without a checkpoint to copy
        return donors[int(rng.integers(len(donors)))]

    def _wait_for_population(self, number: int, boundary: int, history: History) -> None:
        deadline = time.monotonic() + self.sync_timeout
        while True:
            population = Population.of(history)
            behind = [t.number for t in population.head.values()
                      if t.number != number and t.state is not TrialState.FAILED
                      and not t.state.is_finished and (t.last_step or -1) < boundary]
            if not behind and population.n_roots >= self.population_size:
                return
            if time.monotonic() >= deadline:
                log.warning("PBT: the population did not reach step %d within %g s (behind: "
                            "trials %s, %d of %d members started); ranking without waiting "
                            "(synchronous PBT needs one worker per member)", boundary,
                            self.sync_timeout, behind, population.n_roots,
                            self.population_size)
                return
            time.sleep(0.2)
            history.refresh()

    # --- explore -------------------------------------------------------------------------
    def explore(self, space: Space, donor: TrialRecord, history: History,
                number: int) -> dict[str, Any]:
        """The child's hyperparameters: the donor's, explored."""
        rng = self._rng(number, 0)
        params = dict(donor.params)
        names = [n for n in (self.hyperparams or list(params))
                 if n in params and n in space and not isinstance(space[n], Const)]
        if self.explore_method == "pb2":
            from hyperlaw.schedulers.pb2 import pb2_explore

            params.update(pb2_explore(space, names, donor, history, self.interval, rng))
            names = [n for n in names if isinstance(space[n], Choice)]
        for name in names:
            params[name] = self._perturb(space[name], params[name], rng)
        active = space.active_names(params)
        return space.complete({k: v for k, v in params.items() if k in active}, rng)

    def _perturb(self, param: Param, value: Any, rng: np.random.Generator) -> Any:
        if rng.random() < self.resample_probability:
            return param.sample(rng)
        if isinstance(param, Choice):
            index = list(param.values).index(value) + int(rng.choice([-1, 1]))
            return param.values[min(max(index, 0), len(param.values) - 1)]
        factor = float(rng.choice(self.perturbation_factors))
        if isinstance(param, Int):
            new = int(value * factor)
            return min(max(new, param.low), param.high)
        if isinstance(param, Float):
            new = min(max(value * factor, param.low), param.high)
            return param.from_unit(param.to_unit(new)) if param.step else new
        return value


@dataclass
class Population:
    """Which member every trial belongs to, and each member's newest trial (its head)."""

    member: dict[int, int]
    head: dict[int, TrialRecord]
    n_roots: int
    trials: list[TrialRecord]

    @classmethod
    def of(cls, history: History) -> Population:
        cached = history.memo.get("pbt-population")
        if cached is not None and cached[0] == history.version:
            return cached[1]
        member: dict[int, int] = {}
        head: dict[int, TrialRecord] = {}
        roots = 0
        for t in history.trials:
            link = pbt_link(t.system_attrs)
            origin = t.system_attrs.get(RETRY_OF)
            if link is not None:
                m = link.member
            elif origin is not None and origin in member:
                m = member[origin]
            else:
                m, roots = roots, roots + 1
            member[t.number] = m
            head[m] = t
        population = cls(member, head, roots, history.trials)
        history.memo["pbt-population"] = (history.version, population)
        return population

    def scores(self, at: int) -> dict[int, float]:
        """Each live member's latest value at step `at` or before: its head trial's, else
        (for a retry) that of the trials it retries, else the score its lineage recorded."""
        out: dict[int, float] = {}
        for m, t in self.head.items():
            if t.state is TrialState.FAILED:
                continue
            for source in (t, *retried_trials(t.number, t.system_attrs, self.trials)[::-1]):
                steps = [s for s in source.intermediate if s <= at]
                if steps:
                    out[m] = source.intermediate[max(steps)]
                    break
            else:
                link = pbt_link(t.system_attrs)
                if link is not None and not math.isnan(link.score):
                    out[m] = link.score
        return out

    @staticmethod
    def progress(head: TrialRecord) -> int:
        """The last step a member's head trial reached (or starts after)."""
        if head.intermediate:
            return max(head.intermediate)
        link = pbt_link(head.system_attrs)
        return link.step if link else -1


def _newest_checkpoint(trial: TrialRecord, trials: list[TrialRecord]) -> Checkpoint | None:
    return resume_point(trial.number, trial.system_attrs, trials)


def _start_step(trial: TrialRecord, trials: Sequence[TrialRecord]) -> int:
    """The step a trial starts after: for a retry, the newest checkpoint of the trials it
    retries (they were ranked up to there before their worker died); for a PBT child, the
    step it was handed off at; else -1 (from scratch)."""
    inherited = [c.step for t in retried_trials(trial.number, trial.system_attrs, trials)
                 for c in recorded(t)]
    if inherited:
        return max(inherited)
    link = pbt_link(trial.system_attrs)
    return link.step if link else -1


@dataclass(frozen=True, slots=True)
class Segment:
    """From `start` (a step) on, the member trained with `params` (in trial `trial`)."""

    start: int
    trial: int
    params: Mapping[str, Any]


def pbt_schedule(trials: Sequence[TrialRecord], number: int) -> list[Segment]:
    """The hyperparameter schedule trial `number` followed since step 0, oldest first.

    A child's schedule is its donor's up to the copied checkpoint's step, then its own
    parameters; a retried trial follows the trial it retries.
    """
    segments: list[Segment] = []
    record = trials[number]
    limit: int | None = None
    while True:
        link = pbt_link(record.system_attrs)
        start = link.step + 1 if link else 0
        if limit is None or start <= limit:
            segments.append(Segment(start, record.number, dict(record.params)))
        if not link:
            break
        limit = link.step
        record = trials[link.parent]
    segments.reverse()
    return [s for i, s in enumerate(segments)
            if i + 1 == len(segments) or segments[i + 1].start > s.start]


def params_at(schedule: Sequence[Segment], step: int) -> Mapping[str, Any]:
    """The hyperparameters a replay of `schedule` uses at `step`."""
    current = schedule[0].params
    for segment in schedule:
        if segment.start > step:
            break
        current = segment.params
    return current
