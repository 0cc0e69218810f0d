"""The schedule families: constant, linear, cosine, WSD, REX, inverse sqrt, power, infinite."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar, Literal

import numpy as np
from numpy.typing import NDArray

from hyperlaw.lr_schedules.base import (
    Schedule,
    ScheduleError,
    check_fraction,
    check_non_negative,
    check_positive,
    progress,
)

Cooldown = Literal["linear", "cosine", "1-sqrt", "exponential"]
COOLDOWNS: tuple[str, ...] = ("linear", "cosine", "1-sqrt", "exponential")
EXPONENTIAL_FLOOR = 1e-3  # exponential cooldowns with min_lr = 0 end at peak * this


@dataclass(frozen=True, kw_only=True)
class Constant(Schedule):
    """Warmup, then the peak rate forever."""

    family: ClassVar[str] = "constant"

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.full_like(s, self.peak_lr)


@dataclass(frozen=True, kw_only=True)
class _Decaying(Schedule):
    """A schedule that decays from the peak to `min_lr` at `total_steps`."""

    total_steps: int
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "total_steps", self.total_steps)
        check_non_negative(self, "min_lr", self.min_lr)
        if self.min_lr > self.peak_lr:
            raise ScheduleError(f"{type(self).__name__}: min_lr ({self.min_lr}) must not exceed "
                                f"peak_lr ({self.peak_lr})")
        if self.warmup_steps > self.total_steps:
            raise ScheduleError(f"{type(self).__name__}: warmup_steps ({self.warmup_steps}) "
                                f"must not exceed total_steps ({self.total_steps})")

    def _between(self, fraction_left: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.min_lr + (self.peak_lr - self.min_lr) * fraction_left


@dataclass(frozen=True, kw_only=True)
class Linear(_Decaying):
    """Warmup, then a straight line from the peak to `min_lr` at `total_steps`."""

    family: ClassVar[str] = "linear"

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        return self._between(1.0 - progress(s, self.warmup_steps, self.total_steps))


@dataclass(frozen=True, kw_only=True)
class Cosine(_Decaying):
    """Warmup, then half a cosine from the peak to `min_lr` at `total_steps`."""

    family: ClassVar[str] = "cosine"

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        p = progress(s, self.warmup_steps, self.total_steps)
        return self._between(0.5 * (1.0 + np.cos(np.pi * p)))


@dataclass(frozen=True, kw_only=True)
class REX(_Decaying):
    """Warmup, then REX: (1 - z) / (1/2 + (1 - z)/2) of the way from `min_lr` to the peak."""

    family: ClassVar[str] = "rex"

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        left = 1.0 - progress(s, self.warmup_steps, self.total_steps)
        return self._between(left / (0.5 + 0.5 * left))


def cooldown_shape(kind: str, p: NDArray[np.float64], floor: float) -> NDArray[np.float64]:
    """The fraction of the peak-to-floor gap left after a fraction p of a cooldown.

    `floor` is the end rate relative to the peak; only the exponential shape depends on it.
    """
    if kind == "linear":
        return 1.0 - p
    if kind == "cosine":
        return 0.5 * (1.0 + np.cos(np.pi * p))
    if kind == "1-sqrt":
        return 1.0 - np.sqrt(p)
    if kind == "exponential":
        floor = max(floor, EXPONENTIAL_FLOOR)
        return (floor**p - floor) / (1.0 - floor)
    raise ScheduleError(f"unknown cooldown {kind!r}; choose one of {list(COOLDOWNS)}")


@dataclass(frozen=True, kw_only=True)
class WSD(_Decaying):
    """Warmup-stable-decay: warmup, the peak, then a cooldown over the last `decay_fraction`.

    Cooldown shapes: "linear", "cosine", "1-sqrt" and "exponential" (geometric from the peak to
    `min_lr`, or to a thousandth of the peak when `min_lr` is 0).
    """

    family: ClassVar[str] = "wsd"

    decay_fraction: float = 0.1
    cooldown: Cooldown = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(self, "decay_fraction", self.decay_fraction)
        if self.cooldown not in COOLDOWNS:
            raise ScheduleError(f"WSD: unknown cooldown {self.cooldown!r}; choose one of "
                                f"{list(COOLDOWNS)}")

    @property
    def decay_start(self) -> float:
        """The step at which the cooldown begins."""
        start = self.total_steps * (1.0 - self.decay_fraction)
        return max(start, float(self.warmup_steps))

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        p = progress(s, self.decay_start, self.total_steps)
        floor = self.min_lr / self.peak_lr
        if self.cooldown == "exponential":
            return self.peak_lr * np.maximum(floor, EXPONENTIAL_FLOOR) ** p
        return self._between(cooldown_shape(self.cooldown, p, floor))


@dataclass(frozen=True, kw_only=True)
class InverseSqrt(Schedule):
    """Warmup, then peak * sqrt(warmup_steps / step) (the peak for a zero warmup's first step)."""

    family: ClassVar[str] = "inverse_sqrt"

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        scale = max(float(self.warmup_steps), 1.0)
        return self.peak_lr * np.sqrt(scale / np.maximum(s, scale))


@dataclass(frozen=True, kw_only=True)
class Power(Schedule):
    """The power schedule: min(peak, a * (tokens_per_step * step)^b), with warmup.

    `a` absorbs any batch-size factor. An optional final decay (`decay_steps` before
    `total_steps`, shape `cooldown`) anneals from the power curve to `min_lr`.
    """

    family: ClassVar[str] = "power"

    a: float = 4.0
    b: float = -0.51
    tokens_per_step: float = 1.0
    total_steps: int | None = None
    decay_steps: int = 0
    cooldown: Cooldown = "linear"
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "a", self.a)
        check_positive(self, "tokens_per_step", self.tokens_per_step)
        check_non_negative(self, "decay_steps", self.decay_steps)
        if self.b >= 0:
            raise ScheduleError(f"Power: exponent b must be negative, got {self.b!r}")
        if self.decay_steps and self.total_steps is None:
            raise ScheduleError("Power: decay_steps needs total_steps; pass total_steps=...")
        if self.cooldown not in COOLDOWNS:
            raise ScheduleError(f"Power: unknown cooldown {self.cooldown!r}; choose one of "
                                f"{list(COOLDOWNS)}")

    def _curve(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        tokens = np.maximum(self.tokens_per_step * s, 1.0)
        return np.minimum(self.peak_lr, self.a * tokens**self.b)

    def _warmup_target(self) -> float:
        return float(self._curve(np.asarray(float(max(self.warmup_steps, 1)))))

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        lr = self._curve(s)
        if not self.decay_steps or self.total_steps is None:
            return lr
        start = float(self.total_steps - self.decay_steps)
        p = progress(s, start, self.total_steps)
        top = self._curve(np.asarray(max(start, 1.0)))
        floor = self.min_lr / float(top)
        decayed = self.min_lr + (top - self.min_lr) * cooldown_shape(self.cooldown, p, floor)
        return np.where(s >= start, decayed, lr)


@dataclass(frozen=True, kw_only=True)
class Infinite(Schedule):
    """The "infinite" schedule of continual pre-training.

    Warmup to the peak; a cosine cooldown over `cooldown_steps` to `constant_lr`; the constant
    rate for as long as training goes on; and, from `anneal_start` on (None: never), an anneal
    to `min_lr` over `anneal_steps` (exponential with time constant `tau`, or linear). Call
    `anneal_at(step)` to schedule the anneal when a checkpoint is needed.
    """

    family: ClassVar[str] = "infinite"

    constant_lr: float
    cooldown_steps: int = 0
    anneal_start: int | None = None
    anneal_steps: int = 0
    anneal: Literal["exponential", "linear"] = "exponential"
    tau: float | None = None
    min_lr: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "constant_lr", self.constant_lr)
        check_non_negative(self, "cooldown_steps", self.cooldown_steps)
        check_non_negative(self, "anneal_steps", self.anneal_steps)
        check_non_negative(self, "min_lr", self.min_lr)
        if not self.min_lr <= self.constant_lr <= self.peak_lr:
            raise ScheduleError("Infinite: need min_lr <= constant_lr <= peak_lr; got "
                                f"{self.min_lr}, {self.constant_lr}, {self.peak_lr}")
        if self.anneal not in ("exponential", "linear"):
            raise ScheduleError(f"Infinite: anneal must be 'exponential' or 'linear', got "
                                f"{self.anneal!r}")
        if self.tau is not None:
            check_positive(self, "tau", self.tau)
        if self.anneal_start is not None and self.anneal_start < self.cooldown_end:
            raise ScheduleError(f"Infinite: anneal_start ({self.anneal_start}) must come after "
                                f"warmup and cooldown (step {self.cooldown_end})")

    @property
    def cooldown_end(self) -> int:
        """The first step of the constant phase."""
        return self.warmup_steps + self.cooldown_steps

    def anneal_at(self, step: int, anneal_steps: int | None = None) -> Infinite:
        """The same schedule with its anneal starting at `step`."""
        steps = self.anneal_steps if anneal_steps is None else anneal_steps
        return replace(self, anneal_start=int(step), anneal_steps=int(steps))

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        p = progress(s, self.warmup_steps, self.cooldown_end)
        gap = self.peak_lr - self.constant_lr
        lr = self.constant_lr + gap * 0.5 * (1.0 + np.cos(np.pi * p))
        if self.anneal_start is None:
            return lr
        since = np.maximum(s - self.anneal_start, 0.0)
        drop = self.constant_lr - self.min_lr
        if self.anneal == "linear":
            annealed = self.min_lr + drop * (1.0 - progress(since, 0.0, self.anneal_steps))
        else:
            tau = self.tau or max(self.anneal_steps, 1) / 5.0
            annealed = self.min_lr + drop * np.exp(-since / tau)
        return np.where(s >= self.anneal_start, annealed, lr)


FAMILIES: dict[str, type[Schedule]] = {
    cls.family: cls
    for cls in (Constant, Linear, Cosine, WSD, REX, InverseSqrt, Power, Infinite)
}
