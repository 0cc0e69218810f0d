"""Search over schedules in a `Space`: the family is a choice, its parameters conditional on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hyperlaw.lr_schedules.base import Schedule, ScheduleError
from hyperlaw.lr_schedules.families import COOLDOWNS, FAMILIES
from hyperlaw.space import Choice, Float, Param

SEARCHABLE: tuple[str, ...] = ("constant", "linear", "cosine", "wsd", "rex", "inverse_sqrt")
_DECAYING = ("linear", "cosine", "wsd", "rex")


def schedule_space(families: Sequence[str] = SEARCHABLE, *, prefix: str = "schedule",
                   max_warmup_fraction: float = 0.1, max_min_lr_ratio: float = 0.1,
                   decay_fraction: tuple[float, float] = (0.05, 0.5)) -> dict[str, Param]:
    """Parameters to merge into a `Space`: `prefix` picks the family, the rest are conditional.

    `prefix` is a `Choice` of families; `prefix.warmup_fraction` applies to all of them,
    `prefix.min_lr_ratio` to the decaying ones, `prefix.decay_fraction` and `prefix.cooldown`
    to WSD only. Turn a trial's parameters into a schedule with `schedule_from_params`.
    """
    unknown = [f for f in families if f not in SEARCHABLE]
    if unknown or not families:
        raise ScheduleError(f"schedule_space: cannot search families {unknown or '(none)'}; "
                            f"choose among {list(SEARCHABLE)}")
    params: dict[str, Param] = {
        prefix: Choice(list(families)),
        f"{prefix}.warmup_fraction": Float(0.0, max_warmup_fraction),
    }
    decaying = [f for f in families if f in _DECAYING]
    if decaying:
        params[f"{prefix}.min_lr_ratio"] = Float(0.0, max_min_lr_ratio,
                                                 when={prefix: decaying})
    if "wsd" in families:
        params[f"{prefix}.decay_fraction"] = Float(*decay_fraction, when={prefix: "wsd"})
        params[f"{prefix}.cooldown"] = Choice(list(COOLDOWNS), when={prefix: "wsd"})
    return params


def schedule_from_params(params: Mapping[str, Any], *, peak_lr: float, total_steps: int,
                         prefix: str = "schedule") -> Schedule:
    """The schedule a trial's parameters (from `schedule_space`) describe."""
    if prefix not in params:
        raise ScheduleError(f"schedule_from_params: no parameter {prefix!r} in the trial's "
                            "parameters; add schedule_space(...) to the study's space")
    family = params[prefix]
    cls = FAMILIES.get(family)
    if cls is None or family not in SEARCHABLE:
        raise ScheduleError(f"schedule_from_params: unknown family {family!r}; choose among "
                            f"{list(SEARCHABLE)}")
    warmup = round(params.get(f"{prefix}.warmup_fraction", 0.0) * total_steps)
    kwargs: dict[str, Any] = {"peak_lr": peak_lr, "warmup_steps": warmup}
    if family in _DECAYING:
        kwargs["total_steps"] = total_steps
        kwargs["min_lr"] = peak_lr * params.get(f"{prefix}.min_lr_ratio", 0.0)
    if family == "wsd":
        kwargs["decay_fraction"] = params.get(f"{prefix}.decay_fraction", 0.1)
        kwargs["cooldown"] = params.get(f"{prefix}.cooldown", "linear")
    return cls(**kwargs)
