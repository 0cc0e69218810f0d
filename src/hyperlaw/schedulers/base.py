"""The scheduler role: decide *when* a running trial continues or stops."""

from __future__ import annotations

import enum
from typing import Any, ClassVar

from hyperlaw.history import History
from hyperlaw.trial import TrialRecord


class Decision(enum.StrEnum):
    """What a running trial does after a report. Later schedulers add pause and promote."""

    CONTINUE = "continue"
    STOP = "stop"


class Scheduler:
    """Called after every intermediate report; the base scheduler never stops a trial."""

    name: ClassVar[str] = "fifo"

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision:
        """The decision for `trial`, which has just reported at `step` (already in history)."""
        return Decision.CONTINUE

    def options(self) -> dict[str, Any]:
        """Constructor arguments, stored with the study."""
        return {}

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, **self.options()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


class NeverStop(Scheduler):
    """Every trial runs to the end (first in, first out)."""
