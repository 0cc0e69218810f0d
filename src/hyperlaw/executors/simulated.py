"""A simulated executor: replay recorded learning curves on a simulated clock with several
asynchronous workers, through a real study (ask, report, tell), for benchmarks of schedulers.

Each worker takes a trial, looks up the recorded curve of its configuration, and "trains" it:
the k-th report arrives after the recorded cost of its steps. Events are handled in simulated
time order, so workers finish out of step exactly as real ones would; the scheduler sees the
same history it would see live. Nothing sleeps.

`study.optimize(curve_for, executor=SimulatedExecutor(...))` runs it through `optimize`
(progress bar and callbacks included); `simulate` is the engine, which also drives tuners of
other libraries. With `checkpoints=True` (of either) every report saves a (tiny) checkpoint,
so the promotion variants of ASHA and Hyperband can pause trials; a trial that continues a
paused one replays the same curve from the step after its checkpoint, paying only for the
steps it adds.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hyperlaw.errors import HyperlawError, TrialPruned
from hyperlaw.executors.base import Executor, RunSettings, check_n_workers
from hyperlaw.executors.loop import Tickets
from hyperlaw.study import Study
from hyperlaw.trial import Trial, TrialRecord, TrialState


@dataclass(frozen=True)
class ReplayCurve:
    """A recorded curve: the steps, the value at each, and the seconds one step unit costs."""

    steps: Sequence[int]
    values: Sequence[float]
    seconds_per_step: float = 1.0


@dataclass(frozen=True)
class Finished:
    """A trial as it ended in the simulation."""

    params: dict[str, Any]
    value: float
    last_step: int
    complete: bool
    time: float  # simulated seconds at the end
    spent: float  # step units trained by all workers up to the end


class Tuner(Protocol):
    """What the simulation drives: start a trial, report to it, finish it. A tuner whose
    trials can continue paused ones also has `resume_step(handle) -> int | None`."""

    def start(self) -> tuple[Any, dict[str, Any]]: ...

    def report(self, handle: Any, step: int, value: float) -> bool:
        """Record the value; True when the trial must stop."""

    def finish(self, handle: Any, value: float, complete: bool) -> object: ...


class StudyTuner:
    """A hyperlaw study as a Tuner: the real ask, report (with its scheduler) and tell; with
    `checkpoints`, a checkpoint at every report (the step, nothing more to save)."""

    def __init__(self, study: Study, checkpoints: bool = False) -> None:
        self.study = study
        self.checkpoints = checkpoints

    def start(self) -> tuple[Trial, dict[str, Any]]:
        trial = self.study.ask()
        return trial, dict(trial.params)

    def resume_step(self, handle: Trial) -> int | None:
        """The step a trial that continues another one starts after (None: a fresh start)."""
        start = handle.checkpoint if self.checkpoints else None
        return None if start is None else start.step

    def report(self, handle: Trial, step: int, value: float) -> bool:
        try:
            handle.report(value, step, checkpoint={"step": step} if self.checkpoints else None)
        except TrialPruned:
            return True
        return False

    def finish(self, handle: Trial, value: float, complete: bool) -> TrialRecord:
        if complete:
            return self.study.tell(handle, value)
        return self.study.tell(handle, state=TrialState.PRUNED)


@dataclass
class Simulation:
    """The outcome: finished trials in order, the step units spent and the simulated time."""

    finished: list[Finished] = field(default_factory=list)
    spent: float = 0.0
    time: float = 0.0


@dataclass(order=True)
class _Running:
    at: float
    order: int
    handle: Any = field(compare=False)
    params: dict[str, Any] = field(compare=False)
    curve: ReplayCurve = field(compare=False)
    index: int = field(compare=False, default=0)


CurveFor = Callable[[dict[str, Any]], ReplayCurve]


def simulate(tuner: Tuner | Study, curve_for: CurveFor, *, n_workers: int = 4,
             max_spent: float | None = None, max_trials: int | None = None,
             tickets: Tickets | None = None) -> Simulation:
    """Run trials until `max_spent` step units were trained (all workers together),
    `max_trials` started, or `tickets` grants no more; trials still running at the end are
    told pruned."""
    if max_spent is None and max_trials is None and tickets is None:
        raise HyperlawError("simulate needs max_spent= (step units) or max_trials= to end")
    if n_workers < 1:
        raise HyperlawError(f"simulate: n_workers must be >= 1, got {n_workers!r}")
    if isinstance(tuner, Study):
        tuner = StudyTuner(tuner)
    result = Simulation()
    queue: list[_Running] = []
    started = 0
    resume_step = getattr(tuner, "resume_step", lambda handle: None)

    def launch(now: float) -> None:
        nonlocal started
        if max_trials is not None and started >= max_trials:
            return
        if tickets is not None and not tickets.take():
            return
        started += 1
        handle, params = tuner.start()
        curve = curve_for(params)
        if not curve.steps:
            raise HyperlawError(f"simulate: the curve for {params} has no steps")
        after = resume_step(handle)
        first = 0 if after is None else bisect.bisect_right(curve.steps, after)
        if first >= len(curve.steps):
            raise HyperlawError(f"simulate: trial {params} resumes after step {after}, the "
                                "last step of its curve")
        running = _Running(now, started, handle, params, curve, first)
        running.at = now + _cost(curve, first)
        heapq.heappush(queue, running)

    for _ in range(n_workers):
        launch(0.0)
    while queue:
        running = heapq.heappop(queue)
        curve, k = running.curve, running.index
        step = int(curve.steps[k])
        units = step - (int(curve.steps[k - 1]) if k else 0)
        if max_spent is not None and result.spent + units > max_spent:
            heapq.heappush(queue, running)
            break
        result.spent += units
        result.time = running.at
        value = float(curve.values[k])
        stop = tuner.report(running.handle, step, value)
        last = k == len(curve.steps) - 1
        if stop or last:
            tuner.finish(running.handle, value, complete=not stop)
            result.finished.append(Finished(running.params, value, step, not stop,
                                            running.at, result.spent))
            launch(running.at)
        else:
            running.index = k + 1
            running.at += _cost(curve, k + 1)
            heapq.heappush(queue, running)
    for running in queue:  # the budget ran out under them
        k = running.index
        if k:
            tuner.finish(running.handle, float(running.curve.values[k - 1]), complete=False)
        else:
            tuner.finish(running.handle, float(running.curve.values[0]), complete=False)
    return result


class SimulatedExecutor(Executor):
    """Replays recorded learning curves on a simulated clock with `n_workers` asynchronous
    workers (`executor="simulated"`), for benchmarks of samplers and schedulers. With it, the
    objective given to `optimize` is not trained: it maps a configuration (a dict of
    parameters) to its recorded `ReplayCurve`. The run ends when `n_trials` started, the
    `timeout` passed (in real seconds), or `max_spent` step units were trained by all workers
    together; trials still running then are told pruned. With `checkpoints`, every report
    saves a (tiny) checkpoint, so promotion variants can pause and continue trials (see
    `StudyTuner`). The last run's `Simulation` is kept in `result`."""

    def __init__(self, n_workers: int = 4, max_spent: float | None = None,
                 checkpoints: bool = False) -> None:
        self.n_workers = check_n_workers(n_workers)
        self.max_spent = max_spent
        self.checkpoints = checkpoints
        self.result: Simulation | None = None

    def __repr__(self) -> str:
        return (f"SimulatedExecutor(n_workers={self.n_workers}, max_spent={self.max_spent!r}, "
                f"checkpoints={self.checkpoints})")

    def run(self, study: Study, objective: CurveFor, settings: RunSettings) -> None:
        budget = settings.budget
        if self.max_spent is None and budget.remaining is None and budget.deadline is None:
            raise HyperlawError(
                f"study {study.name!r}: a simulated run needs an end; pass n_trials= or "
                "timeout= to optimize, or SimulatedExecutor(max_spent=...) (step units)")
        tuner = _DeliveringTuner(study, self.checkpoints, settings)
        self.result = simulate(tuner, objective, n_workers=self.n_workers,
                               max_spent=self.max_spent, tickets=budget)


class _DeliveringTuner(StudyTuner):
    """A StudyTuner that counts each finished trial in the run's progress bar and gives it
    to the run's callbacks."""

    def __init__(self, study: Study, checkpoints: bool, settings: RunSettings) -> None:
        super().__init__(study, checkpoints)
        self.settings = settings

    def finish(self, handle: Trial, value: float, complete: bool) -> TrialRecord:
        record = super().finish(handle, value, complete)
        self.settings.delivered(self.study, record.number, record.state, record.value, record)
        return record


def _cost(curve: ReplayCurve, k: int) -> float:
    previous = int(curve.steps[k - 1]) if k else 0
    return (int(curve.steps[k]) - previous) * curve.seconds_per_step
