"""The scheduler role: decide *when* a running trial continues, stops or hands off to a child
that resumes from a checkpoint, and whether `ask` may start new trials or continue a paused
one first."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from hyperlaw.history import History
from hyperlaw.space import Space
from hyperlaw.trial import TrialRecord


class Decision(enum.StrEnum):
    """What a running trial does after a report: go on, or stop. Pausing and exploiting are
    a `HandOff`; continuing a paused trial is `Scheduler.promoted`."""

    CONTINUE = "continue"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class HandOff:
    """End the reporting trial, to be continued from a checkpoint by another trial.

    ``exploit``: a child is queued that starts from a copy of trial `donor`'s newest
    checkpoint, with parameters from the scheduler's `explore` (population-based training).
    ``pause``: a child is queued that starts from the trial's own newest checkpoint with the
    same parameters, when a worker is free again (time sharing). ``suspend``: nothing is
    queued; the scheduler may continue the trial later (`promoted`, ASHA's promotion variant).
    """

    kind: Literal["exploit", "pause", "suspend"]
    donor: int
    member: int
    score: float


class NewTrials(enum.StrEnum):
    """Whether `ask` may start sampled trials: before queued ones, after them, or never."""

    FIRST = "first"
    ALLOWED = "allowed"
    CLOSED = "closed"


class Scheduler:
    """Asked after every intermediate report (`decide`) and by `ask` (`new_trials`,
    `promoted`, `explore`); the base scheduler never stops a trial and always lets new ones
    start."""

    name: ClassVar[str] = "fifo"

    def decide(self, trial: TrialRecord, step: int, history: History) -> Decision | HandOff:
        """The decision for `trial`, which has just reported at `step` (already in history)."""
        return Decision.CONTINUE

    @property
    def reads_history_to_start(self) -> bool:
        """Whether `new_trials` or `promoted` look at the history (see Sampler.reads_history)."""
        return False

    def new_trials(self, history: History) -> NewTrials:
        """Whether the study may start new sampled trials now (a population may be full)."""
        return NewTrials.ALLOWED

    def check_budget(self, n_trials: int | None) -> None:
        """Raise HyperlawError when `optimize(n_trials=...)` cannot give this scheduler what
        it needs to reach results (the error says what would)."""

    def promoted(self, history: History) -> int | None:
        """A suspended trial to continue now, before any new configuration is sampled."""
        return None

    def explore(self, space: Space, donor: TrialRecord, history: History,
                number: int) -> dict[str, Any]:
        """The parameters of a child that continues from trial `donor` (see HandOff)."""
        return dict(donor.params)

    def options(self) -> dict[str, Any]:
        """Constructor arguments, stored with the study."""
        return {}

    def spec(self) -> dict[str, Any]:
        """What the study stores to rebuild this scheduler: its name and options."""
        return {"name": self.name, **self.options()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


class NeverStop(Scheduler):
    """Every trial runs to the end (first in, first out)."""
