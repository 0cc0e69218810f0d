"""Run trials one after another in this process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hyperlaw.executors.loop import Budget, run_worker
from hyperlaw.progress import StudyProgress
from hyperlaw.trial import TrialRecord

if TYPE_CHECKING:
    from hyperlaw.study import Objective, Study


def run_inline(study: Study, objective: Objective, budget: Budget,
               catch: tuple[type[BaseException], ...], progress: StudyProgress,
               callbacks: Sequence[Callable[[Study, TrialRecord], None]],
               max_consecutive_failures: int | None) -> None:
    def done(record: TrialRecord) -> None:
        progress.finished(record.state, record.value)
        for callback in callbacks:
            callback(study, record)

    run_worker(study, objective, budget, catch, max_consecutive_failures, on_done=done)
