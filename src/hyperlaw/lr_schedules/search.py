"""Search over schedules in a `Space`: the family is a choice, its parameters conditional on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hyperlaw.lr_schedules.base import Schedule, ScheduleError
from hyperlaw.lr_schedules.families import COOLDOWNS, FAMILIES
from hyperlaw.space import Choice, Float, Param

SEARCHABLE: tuple[str, ...] = ("constant", "linear", "cosine", "wsd", "rex", "inverse_sqrt",
                               "power", "infinite")
_DECAYING = ("linear", "cosine", "wsd", "rex", "power", "infinite")  # to a minimum rate
_FINAL_DECAY = ("wsd", "power", "infinite")  # a last phase of `decay_fraction` of the steps


def schedule_space(families: Sequence[str] = SEARCHABLE, *, prefix: str = "schedule",
                   max_warmup_fraction: float = 0.1, max_min_lr_ratio: float = 0.1,
                   decay_fraction: tuple[float, float] = (0.05, 0.5)) -> dict[str, Param]:
    """Parameters to merge into a `Space`: `prefix` picks the family, the rest are conditional.

    `prefix` is a `Choice` of families; `prefix.warmup_fraction` applies to all of them,
    `prefix.min_lr_ratio` to those that decay to a minimum, `prefix.decay_fraction` (the last
    phase) to WSD, power and infinite, `prefix.cooldown` (its shape) to WSD and power;
    `prefix.power_a` and `prefix.power_b` to power (rate a * step^b, capped at the peak), and
    `prefix.constant_ratio` and `prefix.cooldown_fraction` to infinite (the constant phase's
    rate as a share of the peak, and the cosine from the peak to it). Turn a trial's
    parameters into a schedule with `schedule_from_params`.
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
    final = [f for f in families if f in _FINAL_DECAY]
    if final:
        params[f"{prefix}.decay_fraction"] = Float(*decay_fraction, when={prefix: final})
    shaped = [f for f in families if f in ("wsd", "power")]
    if shaped:
        params[f"{prefix}.cooldown"] = Choice(list(COOLDOWNS), when={prefix: shaped})
    if "power" in families:  # around the Power scheduler's a = 4, b = -0.51
        params[f"{prefix}.power_a"] = Float(0.5, 32.0, log=True, when={prefix: "power"})
        params[f"{prefix}.power_b"] = Float(-0.8, -0.3, when={prefix: "power"})
    if "infinite" in families:
        params[f"{prefix}.constant_ratio"] = Float(max_min_lr_ratio, 1.0,
                                                   when={prefix: "infinite"})
        params[f"{prefix}.cooldown_fraction"] = Float(0.0, 0.3, when={prefix: "infinite"})
    return params


def schedule_from_params(params: Mapping[str, Any], *, peak_lr: float, total_steps: int,
                         prefix: str = "schedule", tokens_per_step: float = 1.0) -> Schedule:
    """The schedule a trial's parameters (from `schedule_space`) describe. `tokens_per_step`
    is the power schedule's unit of progress (1: steps)."""
    if prefix not in params:
        raise ScheduleError(f"schedule_from_params: no parameter {prefix!r} in the trial's "
                            "parameters; add schedule_space(...) to the study's space")
    family = params[prefix]
    cls = FAMILIES.get(family)
    if cls is None or family not in SEARCHABLE:
        raise ScheduleError(f"schedule_from_params: unknown family {family!r}; choose among "
                            f"{list(SEARCHABLE)}")
    def get(name: str, default: Any) -> Any:
        return params.get(f"{prefix}.{name}", default)

    warmup = round(get("warmup_fraction", 0.0) * total_steps)
    kwargs: dict[str, Any] = {"peak_lr": peak_lr, "warmup_steps": warmup}
    if family in _DECAYING:
        kwargs["min_lr"] = peak_lr * get("min_lr_ratio", 0.0)
    if family in _DECAYING and family != "infinite":
        kwargs["total_steps"] = total_steps
    final_steps = round(get("decay_fraction", 0.1) * total_steps)
    if family == "wsd":
        kwargs["decay_fraction"] = get("decay_fraction", 0.1)
        kwargs["cooldown"] = get("cooldown", "linear")
    elif family == "power":
        kwargs.update(a=get("power_a", 4.0), b=get("power_b", -0.51),
                      tokens_per_step=tokens_per_step, decay_steps=final_steps,
                      cooldown=get("cooldown", "linear"))
    elif family == "infinite":
        cooldown = round(get("cooldown_fraction", 0.1) * total_steps)
        kwargs.update(constant_lr=max(peak_lr * get("constant_ratio", 0.5), kwargs["min_lr"]),
                      cooldown_steps=cooldown, anneal_steps=final_steps, anneal="linear",
                      anneal_start=max(total_steps - final_steps, warmup + cooldown))
    return cls(**kwargs)
