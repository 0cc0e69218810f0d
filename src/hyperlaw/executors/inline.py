"""Run trials one after another in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyperlaw.executors.base import Executor, RunSettings
from hyperlaw.executors.loop import run_worker
from hyperlaw.trial import TrialRecord

if TYPE_CHECKING:
    from hyperlaw.study import Objective, Study


class InlineExecutor(Executor):
    """Runs trials one after another in this process (`executor="inline"`, and the default
    with `n_workers=1`)."""

    def __repr__(self) -> str:
        return "InlineExecutor()"

    def run(self, study: Study, objective: Objective, settings: RunSettings) -> None:
        def done(record: TrialRecord) -> None:
            settings.delivered(study, record.number, record.state, record.value, record)

        run_worker(study, objective, settings.budget, settings.catch,
                   settings.max_consecutive_failures, on_done=done)
