"""The progress bar of a running study: trials done, best value, elapsed time and ETA."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from hyperlaw.trial import TrialState


class StudyProgress:
    """A rich progress bar on stderr; silent when disabled or when stderr is not a terminal."""

    def __init__(self, name: str, total: int | None, maximize: bool,
                 enabled: bool | None = None) -> None:
        console = Console(file=sys.stderr, force_terminal=True if enabled else None)
        self.enabled = console.is_terminal if enabled is None else enabled
        self._maximize = maximize
        self.best: float | None = None
        self.done = 0
        self.counts = {s: 0 for s in TrialState}
        self._progress: Progress | None = None
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("trials  best {task.fields[best]}"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), console=console)
            self._task = self._progress.add_task(name, total=total, best="-")

    def __enter__(self) -> StudyProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def finished(self, state: TrialState, value: float | None) -> None:
        """Count one finished trial."""
        self.done += 1
        self.counts[state] += 1
        if state is TrialState.COMPLETE and value is not None and (
                self.best is None or (value > self.best if self._maximize
                                      else value < self.best)):
            self.best = value
        if self._progress is not None:
            self._progress.update(self._task, advance=1,
                                  best="-" if self.best is None else f"{self.best:.6g}")
