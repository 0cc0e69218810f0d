"""Schedules given as a table of rates, and the schedule refined from logged gradient norms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hyperlaw.lr_schedules.base import Schedule, ScheduleError


@dataclass(frozen=True, kw_only=True)
class Tabulated(Schedule):
    """A schedule given step by step; steps past the table keep its last rate."""

    family: ClassVar[str] = "tabulated"

    rates: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.rates:
            raise ScheduleError("Tabulated: rates is empty; pass at least one learning rate")
        table = np.asarray(self.rates, dtype=float)
        if not np.all(np.isfinite(table)) or np.any(table < 0):
            raise ScheduleError("Tabulated: rates must be finite and >= 0")

    @classmethod
    def from_rates(cls, rates: ArrayLike) -> Tabulated:
        """A table schedule from an array of per-step rates; the peak is their maximum."""
        table = tuple(float(x) for x in np.asarray(rates, dtype=float).reshape(-1))
        peak = max(table) if table else 0.0
        return cls(peak_lr=peak if peak > 0 else 1.0, rates=table)

    def _after_warmup(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        table = np.asarray(self.rates, dtype=float)
        index = np.minimum(np.floor(s).astype(int), len(table) - 1)
        return table[index]

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "rates": list(self.rates)}


def refine_from_grad_norms(grad_norms: ArrayLike, peak_lr: float, *, smoothing: float = 0.1,
                           norm: Literal["l2", "l1"] = "l2") -> Tabulated:
    """The schedule refined from the gradient norms a previous run logged at each step.

    The norms are median-filtered over a window of `smoothing` times the run length; the weight
    of step t is g_t^-p times the sum of g_s^-p over later steps (p = 2 for SGD-like optimizers
    and l2 norms, p = 1 for Adam-like optimizers and l1 norms), zero at the last step, and the
    rates are the weights scaled so their maximum is `peak_lr`. Constant norms give linear decay.
    """
    from scipy.ndimage import median_filter

    g = np.asarray(grad_norms, dtype=float).reshape(-1)
    if g.size < 2:
        raise ScheduleError("refine_from_grad_norms: need the norms of at least 2 steps")
    if not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ScheduleError("refine_from_grad_norms: gradient norms must be finite and > 0")
    if not 0 <= smoothing <= 1:
        raise ScheduleError(f"refine_from_grad_norms: smoothing must lie in [0, 1], got "
                            f"{smoothing!r}")
    if norm not in ("l2", "l1"):
        raise ScheduleError(f"refine_from_grad_norms: norm must be 'l2' or 'l1', got {norm!r}")
    width = max(1, int(smoothing * g.size))
    smooth = median_filter(g, size=width, mode="reflect") if width > 1 else g
    inverse = smooth ** (-2.0 if norm == "l2" else -1.0)
    later = np.concatenate([np.cumsum(inverse[::-1])[::-1][1:], [0.0]])
    weights = inverse * later
    rates = peak_lr * weights / weights.max()
    return Tabulated(peak_lr=peak_lr, rates=tuple(float(r) for r in rates))
