"""Multi-seed tuning: each configuration trained on several tuning seeds, judged together.

The landscape of a noisy training (reinforcement learning above all) depends on its seed, so
tuning on one seed overfits it (Eimer, Lindauer and Raileanu 2023). With
`optimize(..., seeds_per_config=k)` a trial runs the objective once per tuning seed, in threads
of the trial's worker that take turns step by step: each run reads its seed as `trial.seed`
and reports as usual; when every seed has reported a step, the trial reports the aggregate of
their values (mean by default) to the scheduler, so early stopping judges the seeds together
and stops them together. One run trains at a time, with its own copy of the global random
states (Python's, NumPy's, torch's), so each seed's run gives what it would alone. The
trial's value is the aggregate of the runs' results; the seeds and each one's result are in
its `user_attrs` ("seeds", "seed_values", and "seed_aggregate": the aggregate's name, or a
custom function's qualified name). Its result depends on the seeds and the aggregate, so a
study's dedup (`hyperlaw.canonical`) reuses it only for the same seeds and aggregate; a lambda
or nested function cannot be told from another of its name, so its results are reused only
within the `optimize` call that passed it. Test seeds stay apart: `Study.reevaluate` refuses
a seed used for tuning.

Only this module's coordinator (the trial's own thread) touches the trial and its store; the
runs talk to it through queues.
"""

from __future__ import annotations

import queue
import random
import statistics
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperlaw.errors import HyperlawError, TrialPruned

if TYPE_CHECKING:
    from hyperlaw.lineage import Checkpoint
    from hyperlaw.study import Study
    from hyperlaw.trial import Trial

#: how the seeds' values combine, by name
AGGREGATES: dict[str, Callable[[Sequence[float]], float]] = {
    "mean": statistics.fmean, "median": statistics.median, "min": min, "max": max}


def tuning_seeds(seeds_per_config: int | Sequence[int]) -> tuple[int, ...]:
    """The tuning seeds `seeds_per_config` names: 0..k-1 for an int k, else those given."""
    if isinstance(seeds_per_config, bool):
        raise HyperlawError(f"seeds_per_config must be an int >= 1 or a list of seeds, got "
                            f"{seeds_per_config!r}")
    if isinstance(seeds_per_config, int):
        if seeds_per_config < 1:
            raise HyperlawError(f"seeds_per_config must be >= 1, got {seeds_per_config}")
        return tuple(range(seeds_per_config))
    seeds = tuple(seeds_per_config)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise HyperlawError(f"seeds_per_config must be an int >= 1 or a non-empty list of int "
                            f"seeds, got {seeds_per_config!r}")
    if len(set(seeds)) != len(seeds):
        raise HyperlawError(f"seeds_per_config lists a seed twice: {list(seeds)}")
    return seeds


def aggregate_of(aggregate: str | Callable[[Sequence[float]], float]
                 ) -> Callable[[Sequence[float]], float]:
    """The function combining the seeds' values: a name in AGGREGATES or a callable."""
    if callable(aggregate):
        return aggregate
    if aggregate not in AGGREGATES:
        raise HyperlawError(f"seed_aggregate must be one of {sorted(AGGREGATES)} or a "
                            f"function of a list of values, got {aggregate!r}")
    return AGGREGATES[aggregate]


class SeedGroup:
    """An objective run once per tuning seed in each trial (see the module's docstring)."""

    def __init__(self, objective: Callable[[Any], Any], seeds: Sequence[int],
                 aggregate: str | Callable[[Sequence[float]], float] = "mean") -> None:
        self.objective = objective
        self.seeds = tuple(seeds)
        self.aggregate_name = aggregate if isinstance(aggregate, str) else _name_of(aggregate)
        self.aggregate = aggregate_of(aggregate)

    @property
    def attrs(self) -> dict[str, Any]:
        """The user attributes every trial records: its tuning seeds and their aggregate
        (what its result depends on besides its configuration)."""
        return {"seeds": list(self.seeds), "seed_aggregate": self.aggregate_name}

    def __call__(self, trial: Trial) -> float:
        if len(trial.study.directions) > 1:
            raise HyperlawError("seeds_per_config needs a study with one objective")
        return _Lockstep(trial, self).run()


def _name_of(function: Callable[..., Any]) -> str:
    """A custom aggregate's name: its qualified name, with a token unique to this run for a
    lambda or nested function (two of them can share a name and differ)."""
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", type(function).__qualname__)
    name = f"{module}.{qualname}" if module else qualname
    return f"{name}#{uuid.uuid4().hex[:12]}" if "<" in qualname else name


class _Abort(Exception):
    """Raised in a seed's run when another seed's run failed."""


def _rng_state() -> tuple[Any, ...]:
    """The process's global random states: Python's, NumPy's and (if imported) torch's."""
    torch = sys.modules.get("torch")
    return (random.getstate(), np.random.get_state(),
            None if torch is None else torch.get_rng_state(),
            None if torch is None or not torch.cuda.is_available()
            else torch.cuda.get_rng_state_all())


def _set_rng_state(state: tuple[Any, ...]) -> None:
    torch = sys.modules.get("torch")
    random.setstate(state[0])
    np.random.set_state(state[1])
    if torch is not None and state[2] is not None:
        torch.set_rng_state(state[2])
    if torch is not None and state[3] is not None:
        torch.cuda.set_rng_state_all(state[3])


class _Lockstep:
    """Runs the seeds in threads that take turns, one step each per round: seed 0 trains
    until its report of step s, then seed 1 until its report of step s, and so on; the
    trial's thread then reports their aggregate and hands the decision back. One seed runs
    at a time and each has its own copy of the global random states (swapped at every turn),
    so a seed's run gives what it gives alone, whatever the others do."""

    def __init__(self, trial: Trial, group: SeedGroup) -> None:
        self.trial = trial
        self.group = group
        self.events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self.replies = {j: queue.Queue[str]() for j in range(len(group.seeds))}
        self.results: dict[int, float] = {}
        self.error: BaseException | None = None
        self.stopped_at: int | None = None

    def run(self) -> float:
        seeds = self.group.seeds
        state = self.trial.load_checkpoint()
        checkpoint = self.trial.checkpoint
        if state is not None and not (isinstance(state, dict) and set(state) >= set(seeds)):
            raise HyperlawError(
                f"trial #{self.trial.number}: its checkpoint does not hold one state per tuning "
                f"seed {list(seeds)}; a multi-seed study resumes only from checkpoints its own "
                "seeds reported")
        threads = [threading.Thread(target=self._run_seed, daemon=True,
                                    args=(j, None if state is None else state[seed], checkpoint),
                                    name=f"hyperlaw-seed-{seed}")
                   for j, seed in enumerate(seeds)]
        rng = dict.fromkeys(range(len(seeds)), _rng_state())
        outer = _rng_state()
        for thread in threads:
            thread.start()
        answers = dict.fromkeys(range(len(seeds)), "go")  # what each seed is told next
        try:
            while answers and self.error is None:
                reports: dict[int, tuple[int, float, Any]] = {}
                for j in sorted(answers):
                    _set_rng_state(rng[j])
                    self.replies[j].put(answers[j])
                    kind, _, payload = self.events.get()  # only seed j runs now
                    rng[j] = _rng_state()
                    if kind == "report":
                        reports[j] = payload
                    elif kind == "done":
                        self.results[j] = payload
                    elif not isinstance(payload, TrialPruned | _Abort):
                        self.error = payload
                        break
                answers = {j: "abort" for j in reports} if self.error else self._decide(reports)
        except BaseException as exc:  # KeyboardInterrupt in the trial's thread
            self.error = self.error or exc
            raise
        finally:
            _set_rng_state(outer)
            for j in range(len(seeds)):  # free any run still waiting for its turn
                self.replies[j].put("abort")
            for thread in threads:
                thread.join()
        return self._outcome()

    # --- the seeds' threads ----------------------------------------------------------------
    def _run_seed(self, j: int, state: Any, checkpoint: Checkpoint | None) -> None:
        if self.replies[j].get() != "go":
            return
        view = SeedTrial(self, j, state, checkpoint)
        try:
            result = self.group.objective(view)
        except BaseException as exc:  # reported to the trial's thread, which decides
            self.events.put(("error", j, exc))
        else:
            self.events.put(("done", j, result))

    def report(self, j: int, value: float, step: int, checkpoint: Any) -> None:
        """A seed's report: wait until the trial reported this step, then go on or stop."""
        self.events.put(("report", j, (step, value, checkpoint)))
        answer = self.replies[j].get()
        if answer == "stop":
            raise TrialPruned(f"trial #{self.trial.number} stopped by the scheduler at step "
                              f"{step} on the evidence of its {len(self.group.seeds)} seeds")
        if answer == "abort":
            raise _Abort

    # --- the trial's thread ----------------------------------------------------------------
    def _decide(self, reports: dict[int, tuple[int, float, Any]]) -> dict[int, str]:
        """Report the round's step (the aggregate of the seeds' values) and return what each
        seed that reported is told: go on or stop."""
        if not reports:
            return {}
        steps = {step for step, _, _ in reports.values()}
        if len(steps) > 1:
            seen = ", ".join(f"seed {self.group.seeds[j]} step {reports[j][0]}"
                             for j in sorted(reports))
            self.error = HyperlawError(
                f"trial #{self.trial.number}: the seeds' runs reported different steps in one "
                f"round ({seen}); with seeds_per_config every seed reports the same steps")
            return {j: "abort" for j in reports}
        step = steps.pop()
        values = [reports[j][1] for j in sorted(reports)]
        saved = {self.group.seeds[j]: reports[j][2] for j in reports}
        # a checkpoint only when every seed saved one: a resume needs them all
        checkpoint = saved if all(c is not None for c in saved.values()) else None
        try:
            self.trial.report(self.group.aggregate(values), step, checkpoint=checkpoint)
        except TrialPruned:
            self.stopped_at = step
            return {j: "stop" for j in reports}
        except BaseException as exc:
            self.error = exc
            return {j: "abort" for j in reports}
        return {j: "go" for j in reports}

    def _outcome(self) -> float:
        if self.error is not None:
            raise self.error
        if self.stopped_at is not None or len(self.results) < len(self.group.seeds):
            raise TrialPruned(f"trial #{self.trial.number} stopped by the scheduler at step "
                              f"{self.stopped_at}")
        values = []
        for j, seed in enumerate(self.group.seeds):
            result = self.results[j]
            if isinstance(result, bool) or not isinstance(result, int | float):
                raise HyperlawError(
                    f"trial #{self.trial.number}, seed {seed}: the objective returned "
                    f"{result!r}; with seeds_per_config it must return one number")
            values.append(float(result))
        for key, value in {**self.group.attrs, "seed_values": values}.items():
            self.trial.set_user_attr(key, value)
        return float(self.group.aggregate(values))


class SeedTrial:
    """What the objective sees in one seed's run: the trial's parameters and number, its
    `seed`, and `report`, `should_prune` and `load_checkpoint`/`checkpoint` for this seed."""

    def __init__(self, lockstep: _Lockstep, index: int, state: Any,
                 checkpoint: Checkpoint | None) -> None:
        self._lockstep = lockstep
        self._index = index
        self._state = state
        self._checkpoint = checkpoint
        self._stopped = False
        self.seed = lockstep.group.seeds[index]
        self.number = lockstep.trial.number
        self.params = lockstep.trial.params
        self.user_attrs = dict(lockstep.trial.user_attrs)

    @property
    def study(self) -> Study:
        """The study (read it only: the trial's thread writes to the store)."""
        return self._lockstep.trial.study

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The checkpoint this seed's run continues from, or None for a fresh start."""
        return self._checkpoint

    def load_checkpoint(self) -> Any:
        """This seed's state in the checkpoint the trial continues from, or None."""
        return self._state

    def report(self, value: float, step: int, *, checkpoint: Any = None) -> None:
        """Report this seed's value at `step`; returns once every seed has reported it and
        the trial has reported their aggregate; raises TrialPruned when that stops it."""
        try:
            self._lockstep.report(self._index, value, step, checkpoint)
        except TrialPruned:
            self._stopped = True
            raise

    def should_prune(self) -> bool:
        """Whether the scheduler stopped the trial at this seed's last report."""
        return self._stopped

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(
            f"trial.{name} is not available in one seed's run of a multi-seed trial; it "
            "offers params, number, seed, report, should_prune, checkpoint and "
            "load_checkpoint")
