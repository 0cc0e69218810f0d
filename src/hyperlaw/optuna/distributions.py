"""Optuna's distribution classes, as far as scripts build them (`ask(fixed_distributions=)`,
`create_trial`, `FrozenTrial.distributions`), converted to and from hyperlaw parameters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyperlaw.optuna_import import param_from_distribution
from hyperlaw.space import Choice, Const, Float, Int, Param

if TYPE_CHECKING:
    from hyperlaw.optuna.trial import Trial

CategoricalChoiceType = None | bool | int | float | str

__all__ = ["BaseDistribution", "CategoricalChoiceType", "CategoricalDistribution",
           "DiscreteUniformDistribution", "FloatDistribution", "IntDistribution",
           "IntLogUniformDistribution", "IntUniformDistribution", "LogUniformDistribution",
           "UniformDistribution", "distribution_to_json", "from_param",
           "json_to_distribution", "to_param"]


class BaseDistribution:
    """The base of Optuna's distributions."""

    def single(self) -> bool:
        """Whether the distribution holds one value only."""
        return False

    def _suggest(self, trial: Trial, name: str) -> Any:
        raise NotImplementedError

    def _asdict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FloatDistribution(BaseDistribution):
    """A float in [low, high], log-scaled with `log`, on a grid with `step`."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def single(self) -> bool:
        return self.low == self.high

    def _suggest(self, trial: Trial, name: str) -> Any:
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class IntDistribution(BaseDistribution):
    """An int in [low, high], log-scaled with `log`, on a grid of `step`."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def single(self) -> bool:
        return self.low == self.high

    def _suggest(self, trial: Trial, name: str) -> Any:
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class CategoricalDistribution(BaseDistribution):
    """One of `choices` (None, bool, int, float or str)."""

    choices: Sequence[CategoricalChoiceType]

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))

    def single(self) -> bool:
        return len(self.choices) == 1

    def _suggest(self, trial: Trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)


def UniformDistribution(low: float, high: float) -> FloatDistribution:
    """Deprecated in Optuna: `FloatDistribution(low, high)`."""
    return FloatDistribution(low, high)


def LogUniformDistribution(low: float, high: float) -> FloatDistribution:
    """Deprecated in Optuna: `FloatDistribution(low, high, log=True)`."""
    return FloatDistribution(low, high, log=True)


def DiscreteUniformDistribution(low: float, high: float,
                                q: float) -> FloatDistribution:
    """Deprecated in Optuna: `FloatDistribution(low, high, step=q)`."""
    return FloatDistribution(low, high, step=q)


def IntUniformDistribution(low: int, high: int, step: int = 1) -> IntDistribution:
    """Deprecated in Optuna: `IntDistribution(low, high, step=step)`."""
    return IntDistribution(low, high, step=step)


def IntLogUniformDistribution(low: int, high: int,
                              step: int = 1) -> IntDistribution:
    """Deprecated in Optuna: `IntDistribution(low, high, log=True)`."""
    return IntDistribution(low, high, log=True, step=step)


def to_param(distribution: BaseDistribution) -> Param:
    """The hyperlaw parameter of an Optuna-style distribution."""
    return param_from_distribution(type(distribution).__name__, distribution._asdict())


def from_param(param: Param) -> BaseDistribution:
    """The Optuna-style distribution of a hyperlaw parameter."""
    if isinstance(param, Choice):
        return CategoricalDistribution(list(param.values))
    if isinstance(param, Int):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Float):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, Const):
        value = param.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return FloatDistribution(float(value), float(value))
        return CategoricalDistribution([value])
    raise TypeError(f"no Optuna distribution for {param!r}")


def distribution_to_json(distribution: BaseDistribution) -> str:
    """Optuna's JSON form of a distribution."""
    attributes = distribution._asdict()
    if isinstance(distribution, CategoricalDistribution):
        attributes = {"choices": list(distribution.choices)}
    return json.dumps({"name": type(distribution).__name__, "attributes": attributes})


def json_to_distribution(text: str) -> BaseDistribution:
    """A distribution from Optuna's JSON form (deprecated class names included)."""
    spec = json.loads(text)
    return from_param(param_from_distribution(spec["name"], spec["attributes"]))
