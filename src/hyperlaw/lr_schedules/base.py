"""The schedule contract: a pure, vectorized function from step (or tokens seen) to rate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hyperlaw.errors import ScheduleError


@dataclass(frozen=True, kw_only=True)
class Schedule(ABC):
    """A learning-rate schedule with a linear warmup.

    `schedule(step)` accepts an int or an array of steps and returns the learning rate(s).
    The counter may be optimizer steps or tokens seen, as long as every length of the schedule
    uses the same unit. During warmup the rate rises linearly, from `peak/warmup_steps` at step 0
    to the peak at step `warmup_steps - 1`; after warmup the family's own shape applies.
    """

    family: ClassVar[str] = ""

    peak_lr: float
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        check_positive(self, "peak_lr", self.peak_lr)
        check_non_negative(self, "warmup_steps", self.warmup_steps)

    def __call__(self, step: ArrayLike) -> Any:
        s = np.asarray(step, dtype=float)
        if np.any(s < 0) or not np.all(np.isfinite(s)):
            raise ScheduleError(f"{type(self).__name__}: steps must be finite and >= 0")
        lr = self._after_warmup(np.maximum(s, float(self.warmup_steps)))
        if self.warmup_steps > 0:
            ramp = self._warmup_target() * (s + 1.0) / self.warmup_steps
            lr = np.where(s < self.warmup_steps, ramp, lr)
        return float(lr) if np.ndim(lr) == 0 else np.asarray(lr, dtype=float)

    def values(self, n_steps: int) -> NDArray[np.float64]:
        """The learning rates of steps 0 .. n_steps-1 as an array."""
        return np.asarray(self(np.arange(int(n_steps))), dtype=float).reshape(-1)

    def _warmup_target(self) -> float:
        """The rate the warmup ramps to: the peak, unless the family caps it lower."""
        return self.peak_lr

    @abstractmethod
    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        """The rate at steps s >= warmup_steps."""

    def to_dict(self) -> dict[str, Any]:
        """The family name and parameters (JSON-serializable)."""
        return {"family": self.family, **{f.name: getattr(self, f.name) for f in fields(self)}}


def check_positive(obj: object, name: str, value: float) -> None:
    """Raise `ScheduleError` unless value is a finite number > 0."""
    if not np.isfinite(value) or value <= 0:
        raise ScheduleError(f"{type(obj).__name__}: {name} must be a positive number, "
                            f"got {value!r}")


def check_non_negative(obj: object, name: str, value: float) -> None:
    """Raise `ScheduleError` unless value is a finite number >= 0."""
    if not np.isfinite(value) or value < 0:
        raise ScheduleError(f"{type(obj).__name__}: {name} must be >= 0, got {value!r}")


def check_fraction(obj: object, name: str, value: float) -> None:
    """Raise `ScheduleError` unless 0 <= value <= 1."""
    if not 0 <= value <= 1:
        raise ScheduleError(f"{type(obj).__name__}: {name} must lie in [0, 1], got {value!r}")


def progress(s: NDArray[np.float64], start: float, end: float) -> NDArray[np.float64]:
    """Where s lies between start and end, clipped to [0, 1]."""
    if end <= start:
        return (s >= end).astype(float)
    return np.clip((s - start) / (end - start), 0.0, 1.0)
