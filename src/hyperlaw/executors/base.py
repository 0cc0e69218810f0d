"""The Executor interface: where the trials of an `optimize` run run.

`Study.optimize` checks its arguments, builds the run's settings (its budget, progress bar,
`catch`, callbacks and failure limit) and hands them to an executor, which runs trials until the
budget grants no more. Every executor keeps the same promises: a ticket of the budget is spent
only on an outcome of the objective's own, each such outcome is counted in the progress bar and
given to the callbacks, and no trial of the run is left RUNNING.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import HyperlawError
from hyperlaw.executors.loop import Budget
from hyperlaw.progress import StudyProgress
from hyperlaw.trial import TrialRecord, TrialState

if TYPE_CHECKING:
    from hyperlaw.study import Study

Callback = Callable[["Study", TrialRecord], None]


@dataclass
class RunSettings:
    """What an executor needs of an `optimize` call besides the study and the objective."""

    budget: Budget
    progress: StudyProgress
    catch: tuple[type[BaseException], ...]
    callbacks: Sequence[Callback]
    max_consecutive_failures: int | None

    def delivered(self, study: Study, number: int, state: TrialState, value: float | None,
                  record: TrialRecord | None = None) -> None:
        """Trial `number` reached an outcome of the objective's own: count it in the
        progress bar and give its record (read from the store unless given) to the
        callbacks."""
        self.progress.finished(state, value)
        if not self.callbacks:
            return
        if record is None:
            record = study.store.get_trial(study.id, number)
        for callback in self.callbacks:
            callback(study, record)


class Executor(ABC):
    """Where trials run: in this process, in worker processes, on Ray actors, or on a
    simulated clock. Pass one to `Study.optimize(executor=...)`."""

    @abstractmethod
    def run(self, study: Study, objective: Any, settings: RunSettings) -> None:
        """Run trials of `study` while `settings.budget` grants tickets, and return when none
        runs any more. Errors that stop the run (WorkerError, an exception `catch` does not
        cover) propagate after the run's trials are finished."""


def check_n_workers(n_workers: Any) -> int:
    """`n_workers` if it is an int >= 1, else a named error."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise HyperlawError(f"n_workers must be an int >= 1, got {n_workers!r}")
    return n_workers
