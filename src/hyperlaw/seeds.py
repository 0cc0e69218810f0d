"""Multi-seed tuning: each configuration trained on several tuning seeds, judged together.

The landscape of a noisy training (reinforcement learning above all) depends on its seed, so
tuning on one seed overfits it (Eimer, Lindauer and Raileanu 2023). With
`optimize(..., seeds_per_config=k)` a trial runs the objective once per tuning seed, in
lockstep threads of the trial's worker: each run reads its seed as `trial.seed` and reports
as usual; when every seed has reported a step, the trial reports the aggregate of their values
(mean by default) to the scheduler, so early stopping judges the seeds together and stops
them together. The trial's value is the aggregate of the runs' results; the seeds and each
one's result are in its `user_attrs` ("seeds", "seed_values"). Test seeds stay apart:
`Study.reevaluate` refuses a seed used for tuning.

Only this module's coordinator (the trial's own thread) touches the trial and its store; the
runs talk to it through queues.
"""

from __future__ import annotations

import queue
import statistics
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
        self.aggregate_name = aggregate if isinstance(aggregate, str) else "custom"
        self.aggregate = aggregate_of(aggregate)

    def __call__(self, trial: Trial) -> float:
        if len(trial.study.directions) > 1:
            raise HyperlawError("seeds_per_config needs a study with one objective")
        return _Lockstep(trial, self).run()


@dataclass
class _Step:
    values: dict[int, float] = field(default_factory=dict)
    checkpoints: dict[int, Any] = field(default_factory=dict)
    decision: str | None = None  # "go" or "stop"


class _Abort(Exception):
    """Raised in a seed's run when another seed's run failed."""


class _Lockstep:
    """Runs the seeds in threads and reports their aggregate steps from the trial's thread."""

    def __init__(self, trial: Trial, group: SeedGroup) -> None:
        self.trial = trial
        self.group = group
        self.events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        self.replies = {j: queue.Queue[str]() for j in range(len(group.seeds))}
        self.steps: dict[int, _Step] = {}
        self.running = set(range(len(group.seeds)))
        self.waiting: dict[int, int] = {}  # seed index -> the step it waits at
        self.results: dict[int, float] = {}
        self.error: BaseException | None = None
        self.stopped_at: int | None = None

    def run(self) -> float:
        state = self.trial.load_checkpoint()
        checkpoint = self.trial.checkpoint
        if state is not None and not (isinstance(state, dict) and
                                      set(state) >= set(self.group.seeds)):
            raise HyperlawError(
                f"trial #{self.trial.number}: its checkpoint does not hold one state per tuning "
                f"seed {list(self.group.seeds)}; a multi-seed study resumes only from "
                "checkpoints its own seeds reported")
        threads = [threading.Thread(target=self._run_seed, daemon=True,
                                    args=(j, None if state is None else state[seed], checkpoint),
                                    name=f"hyperlaw-seed-{seed}")
                   for j, seed in enumerate(self.group.seeds)]
        for thread in threads:
            thread.start()
        try:
            while self.running:
                self._handle(*self.events.get())
        except BaseException as exc:  # KeyboardInterrupt in the trial's thread
            self.error = self.error or exc
            self._release("abort")
            raise
        for thread in threads:
            thread.join()
        return self._outcome()

    # --- the seeds' threads ----------------------------------------------------------------
    def _run_seed(self, j: int, state: Any, checkpoint: Checkpoint | None) -> None:
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
    def _handle(self, kind: str, j: int, payload: Any) -> None:
        if kind == "report":
            step, value, checkpoint = payload
            if self.error is not None:
                self.replies[j].put("abort")
                return
            if self.stopped_at is not None and step >= self.stopped_at:
                self.replies[j].put("stop")
                return
            entry = self.steps.setdefault(step, _Step())
            entry.values[j] = float(value)
            if checkpoint is not None:
                entry.checkpoints[j] = checkpoint
            self.waiting[j] = step
        else:
            self.running.discard(j)
            self.waiting.pop(j, None)
            if kind == "done":
                self.results[j] = payload
            elif not isinstance(payload, TrialPruned | _Abort) and self.error is None:
                self.error = payload
                self._release("abort")
        self._decide()

    def _decide(self) -> None:
        """Report every step that each running seed has reached, in order."""
        while self.error is None and self.waiting and set(self.waiting) == self.running:
            step = min(self.waiting.values())
            entry = self.steps[step]
            values = [entry.values[j] for j in sorted(entry.values)]
            # a checkpoint only when every seed saved one: a resume needs them all
            saved = ({self.group.seeds[j]: c for j, c in entry.checkpoints.items()}
                     if entry.checkpoints and len(entry.checkpoints) == len(values) else None)
            try:
                self.trial.report(self.group.aggregate(values), step, checkpoint=saved)
                entry.decision = "go"
            except TrialPruned:
                entry.decision = "stop"
                self.stopped_at = step
            except BaseException as exc:
                self.error = exc
                self._release("abort")
                return
            for k in [k for k, at in self.waiting.items() if at == step]:
                del self.waiting[k]
                self.replies[k].put(entry.decision)

    def _release(self, answer: str) -> None:
        for k in list(self.waiting):
            self.replies[k].put(answer)
        self.waiting.clear()

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
        self.trial.set_user_attr("seeds", list(self.group.seeds))
        self.trial.set_user_attr("seed_values", values)
        self.trial.set_user_attr("seed_aggregate", self.group.aggregate_name)
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
