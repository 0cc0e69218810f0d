"""What the experiment-tracker callbacks share: one run per finished trial, logged once."""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import HyperlawError
from hyperlaw.trial import TrialRecord

if TYPE_CHECKING:
    from hyperlaw.study import Study


@dataclass(frozen=True)
class TrialRun:
    """What a tracker logs about one finished trial."""

    study: str
    direction: str
    record: TrialRecord

    @property
    def number(self) -> int:
        return self.record.number

    @property
    def name(self) -> str:
        """The run's name: "trial-<number>"."""
        return f"trial-{self.record.number}"

    @property
    def curve(self) -> list[tuple[int, float]]:
        """The intermediate values, by step."""
        return sorted(self.record.intermediate.items())

    @property
    def final(self) -> dict[str, float]:
        """The final value(s) by name suffix: {"": value}, or {"_0": v0, "_1": v1, ...} for a
        record with several values; empty for a failed trial."""
        values = getattr(self.record, "values", None)
        if isinstance(values, Sequence) and len(values) > 1:
            return {f"_{i}": float(v) for i, v in enumerate(values) if v is not None}
        return {} if self.record.value is None else {"": float(self.record.value)}

    @property
    def last_step(self) -> int:
        return self.record.last_step or 0

    @property
    def error_line(self) -> str:
        """The last line of a failed trial's error ("" otherwise)."""
        lines = (self.record.error or "").strip().splitlines()
        return lines[-1][:500] if lines else ""


def scalar(value: Any) -> str | int | float | bool:
    """A parameter value as a scalar trackers accept (anything else as JSON text)."""
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, default=str)


def slug(name: str, limit: int = 40) -> str:
    """`name` with only letters, digits, '.', '_', '=' and '-' (others become '_'), with a
    short hash of `name` added when it had to change, so distinct names stay distinct."""
    clean = re.sub(r"[^A-Za-z0-9._=-]", "_", name)[:limit]
    if clean == name:
        return clean
    return f"{clean}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise HyperlawError(f"{what} must be a non-empty string, got {value!r}")
    return value


class TrialLogger(ABC):
    """A callback for `Study.optimize(callbacks=[...])` that logs each finished trial as one
    run of an experiment tracker. The callbacks run in the process that called `optimize`
    (worker processes and Ray actors send their outcomes there), so they work with any
    executor and any number of workers. Logging a trial a second time changes nothing.

    `metric_name` names the final value, `curve_name` the intermediate values (by step).
    `log_study(study)` logs the finished trials of a study run without the callback."""

    def __init__(self, metric_name: str = "value",
                 curve_name: str = "intermediate_value") -> None:
        self.metric_name = check_name(metric_name, "metric_name")
        self.curve_name = check_name(curve_name, "curve_name")

    def __call__(self, study: Study, record: TrialRecord) -> None:
        if record.state.is_finished:
            self.log(TrialRun(study.name, study.direction, record))

    def log_study(self, study: Study) -> None:
        """Log every finished trial of `study` that is not logged yet."""
        for record in study.trials:
            self(study, record)

    @abstractmethod
    def log(self, run: TrialRun) -> None:
        """Log `run` unless it is logged already."""
