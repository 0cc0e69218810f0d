"""Online tuning over a stream of problem instances ("Learning to Relax", Khodak et al.).

For users who solve many similar problems one after another (linear systems, optimization
problems, simulations) and set one solver parameter per problem: `OnlineTuner` picks the
parameter of each arriving instance from a contextual bandit that reads the instance's
features, then learns from the cost it observes (iterations, seconds).

    tuner = hl.online.OnlineTuner(hl.Float(1.0, 1.95), features={"shift": (0.0, 4.0)})
    for system in stream:
        omega = tuner.suggest({"shift": system.shift})
        tuner.observe(iterations_of_sor(system, omega))

The parameter is discretised into arms (`n_arms` grid points of a Float; every value of an
Int or Choice). The contextual methods predict each arm's log cost from Chebyshev
polynomials of the features by online ridge regression (as ChebCB in the paper), then
`method="linucb"` (the default) picks the arm whose prediction less `exploration` times its
standard error is lowest (optimism where an arm has not been tried on such instances), and
`"squarecb"` picks by inverse-gap weighting (SquareCB, Foster & Rakhlin 2020, the paper's
exploration): mostly the arm predicted cheapest, the others with a probability that falls
with their predicted gap. `"ucb"` and `"thompson"` ignore the features (instance-blind
bandits over the same arms), as baselines. Costs must be positive; the tuner compares them
by ratio (it models log cost).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from hyperlaw.errors import HyperlawError, InvalidValueError
from hyperlaw.space import Float, Param

Method = Literal["linucb", "squarecb", "ucb", "thompson"]
METHODS = ("linucb", "squarecb", "ucb", "thompson")
CONTEXTUAL = ("linucb", "squarecb")


class OnlineTuner:
    """A contextual bandit choosing one parameter per problem instance (see the module).

    Args:
        param: The parameter: a `hl.Float` (discretised into `n_arms` grid points, or its
            steps), `hl.Int` or `hl.Choice`, or a sequence of candidate values.
        features: The instance features and their ranges, e.g. `{"shift": (0.0, 4.0)}`;
            values outside a range count as its nearest end. Needed by the contextual methods.
        method: "linucb" or "squarecb" (contextual), "ucb" or "thompson" (instance-blind).
        n_arms: How many values of a continuous Float to choose among.
        degree: Degree of the Chebyshev polynomials of each feature (contextual methods).
        exploration: "linucb": how many standard errors (of the predicted log cost)
            optimism subtracts.
        gamma_scale: SquareCB's gamma at the t-th instance is `gamma_scale * sqrt(n_arms *
            t)`: an arm predicted worse than the best by a log cost gap g is tried with
            probability 1 / (n_arms + gamma * g); larger exploits more.
        seed: Seed of the tuner's random choices.

    Attributes:
        arms: The candidate values.
        costs: Every observed cost, in order.
        choices: The arm index chosen for each observed instance.
    """

    def __init__(self, param: Param | Sequence[Any], *,
                 features: Mapping[str, tuple[float, float]] | None = None,
                 method: Method = "linucb", n_arms: int = 16, degree: int = 3,
                 exploration: float = 0.3, gamma_scale: float = 100.0,
                 seed: int | None = 0) -> None:
        if method not in METHODS:
            raise HyperlawError(f"OnlineTuner method must be one of {list(METHODS)}, got "
                                f"{method!r}")
        self.arms = _arms(param, n_arms)
        self.features = _feature_ranges(features, method)
        if isinstance(degree, bool) or not isinstance(degree, int) or degree < 1:
            raise HyperlawError(f"OnlineTuner degree must be an int >= 1, got {degree!r}")
        for name, value in (("exploration", exploration), ("gamma_scale", gamma_scale)):
            if isinstance(value, bool) or not isinstance(value, int | float) or \
                    not value > 0:
                raise HyperlawError(f"OnlineTuner {name} must be a positive number, got "
                                    f"{value!r}")
        self.exploration = float(exploration)
        self.method = method
        self.degree = degree
        self.gamma_scale = float(gamma_scale)
        self.costs: list[float] = []
        self.choices: list[int] = []
        self._rng = np.random.default_rng(seed)
        k, d = len(self.arms), 1 + len(self.features) * degree
        self._gram = np.repeat(np.eye(d)[None], k, axis=0)  # ridge: lambda = 1
        self._moment = np.zeros((k, d))  # per arm: sum of phi * log cost
        self._phi_sum = np.zeros((k, d))  # per arm: sum of phi (to center the log costs)
        self._pending: tuple[int, np.ndarray] | None = None

    def __repr__(self) -> str:
        return (f"OnlineTuner({len(self.arms)} arms, features={list(self.features)}, "
                f"method={self.method!r}, {len(self.costs)} observed)")

    @property
    def cumulative_cost(self) -> float:
        """The sum of the observed costs."""
        return float(sum(self.costs))

    def suggest(self, features: Mapping[str, float] | Sequence[float] | None = None) -> Any:
        """The parameter value for the next instance, given its features (a dict by name,
        or values in the declared order); then `observe` its cost."""
        if self._pending is not None:
            raise HyperlawError(
                "OnlineTuner.suggest was called twice without observe: observe the cost of "
                f"the instance suggested {self.arms[self._pending[0]]!r} first")
        phi = self._phi(features)
        arm = self._choose(phi)
        self._pending = (arm, phi)
        return self.arms[arm]

    def observe(self, cost: float) -> None:
        """Learn from the cost of the instance last suggested (positive; lower is better)."""
        if self._pending is None:
            raise HyperlawError("OnlineTuner.observe was called without a suggestion; call "
                                "suggest(features) for the instance first")
        if isinstance(cost, bool) or not isinstance(cost, int | float | np.number) or \
                not math.isfinite(cost) or cost <= 0:
            raise InvalidValueError(
                f"OnlineTuner.observe got cost {cost!r} for arm {self.arms[self._pending[0]]!r};"
                " pass a finite positive number (e.g. the iterations or seconds it took)")
        arm, phi = self._pending
        self._pending = None
        self._gram[arm] += np.outer(phi, phi)
        self._moment[arm] += phi * math.log(cost)
        self._phi_sum[arm] += phi
        self.costs.append(float(cost))
        self.choices.append(arm)

    # --- internals ---------------------------------------------------------------------
    def _phi(self, features: Mapping[str, float] | Sequence[float] | None) -> np.ndarray:
        """Chebyshev features of the instance: 1, then T_1..T_degree of each feature."""
        values = _feature_values(features, self.features)
        out = [1.0]
        for x, (low, high) in zip(values, self.features.values(), strict=True):
            z = float(np.clip(2.0 * (x - low) / (high - low) - 1.0, -1.0, 1.0))
            out.extend(math.cos(j * math.acos(z)) for j in range(1, self.degree + 1))
        return np.asarray(out)

    def _predictions(self, phi: np.ndarray) -> np.ndarray:
        """Predicted log cost of each arm: ridge regression on the features of the log costs
        less their mean over all arms, so an arm seldom tried is predicted near that mean."""
        center = float(np.mean(np.log(self.costs))) if self.costs else 0.0
        target = self._moment - center * self._phi_sum
        theta = np.linalg.solve(self._gram, target[..., None])[..., 0]
        return center + theta @ phi

    def _choose(self, phi: np.ndarray) -> int:
        counts = np.array([self.choices.count(a) for a in range(len(self.arms))])
        untried = np.flatnonzero(counts == 0)
        if self.method not in CONTEXTUAL:
            if untried.size:
                return int(untried[0])
            mean, se = self._blind_predictions()
            if self.method == "ucb":
                t = len(self.costs) + 1
                return int(np.argmin(mean - se * math.sqrt(2 * math.log(t))))
            return int(np.argmin(self._rng.normal(mean, se)))
        mean = self._predictions(phi)
        if self.method == "linucb":
            spread = np.einsum("i,kij,j->k", phi, np.linalg.inv(self._gram), phi)
            return int(np.argmin(mean - self.exploration * np.sqrt(spread)))
        k, t = len(self.arms), len(self.costs) + 1
        gamma = self.gamma_scale * math.sqrt(k * t)
        best = int(np.argmin(mean))
        probs = 1.0 / (k + gamma * (mean - mean[best]))
        probs[best] = 0.0
        probs[best] = 1.0 - probs.sum()
        return int(self._rng.choice(k, p=probs))

    def _blind_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean log cost of each arm and its standard error (instance-blind methods)."""
        logs = np.log(self.costs)
        choices = np.asarray(self.choices)
        mean = np.array([logs[choices == a].mean() for a in range(len(self.arms))])
        scale = float(np.std(logs)) or 1.0
        se = np.array([scale / math.sqrt(np.sum(choices == a)) for a in range(len(self.arms))])
        return mean, se


def _arms(param: Param | Sequence[Any], n_arms: int) -> list[Any]:
    if isinstance(n_arms, bool) or not isinstance(n_arms, int) or n_arms < 2:
        raise HyperlawError(f"OnlineTuner n_arms must be an int >= 2, got {n_arms!r}")
    if isinstance(param, Param):
        if isinstance(param, Float) and param.step is None:
            return list(param.grid(n_arms))
        if param.n_values is not None and param.n_values > 10_000:
            raise HyperlawError(f"OnlineTuner: {param!r} has {param.n_values} values; a "
                                "bandit needs few arms: use a Float with n_arms, or a step")
        return list(param.grid())
    if isinstance(param, str | bytes) or not isinstance(param, Sequence) or len(param) < 2:
        raise HyperlawError(f"OnlineTuner needs a parameter (hl.Float, hl.Int, hl.Choice) or "
                            f"a sequence of at least 2 candidate values, got {param!r}")
    return list(param)


def _feature_ranges(features: Mapping[str, tuple[float, float]] | None,
                    method: str) -> dict[str, tuple[float, float]]:
    if features is None:
        if method in CONTEXTUAL:
            raise HyperlawError(
                f"OnlineTuner(method={method!r}) reads instance features: declare them with "
                "their ranges, e.g. features={'shift': (0.0, 4.0)}, or use method='ucb' or "
                "'thompson' (instance-blind)")
        return {}
    if not isinstance(features, Mapping):
        raise HyperlawError(f"OnlineTuner features must be a dict of name -> (low, high), got "
                            f"{features!r}")
    out = {}
    for name, bounds in features.items():
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise HyperlawError(f"feature {name!r}: its range must be (low, high), got "
                                f"{bounds!r}") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise HyperlawError(f"feature {name!r}: its range ({low}, {high}) must be finite "
                                "with low < high")
        out[str(name)] = (low, high)
    return out


def _feature_values(given: Mapping[str, float] | Sequence[float] | None,
                    declared: Mapping[str, tuple[float, float]]) -> list[float]:
    """The instance's feature values in the declared order; errors name what is wrong."""
    names = list(declared)
    if given is None:
        given = {}
    if isinstance(given, Mapping):
        missing, extra = set(names) - set(given), set(given) - set(names)
        if missing or extra:
            raise InvalidValueError(
                f"OnlineTuner.suggest got features {sorted(given)}, the tuner declares "
                f"{names}" + (f" (missing {sorted(missing)})" if missing else "")
                + (f" (unknown {sorted(extra)})" if extra else ""))
        values = [given[n] for n in names]
    else:
        values = list(given)
        if len(values) != len(names):
            raise InvalidValueError(f"OnlineTuner.suggest got {len(values)} feature values, "
                                    f"the tuner declares {len(names)}: {names}")
    for name, v in zip(names, values, strict=True):
        if isinstance(v, bool) or not isinstance(v, int | float | np.number) or \
                not math.isfinite(v):
            raise InvalidValueError(f"OnlineTuner.suggest: feature {name!r} is {v!r}; pass a "
                                    "finite number")
    return [float(v) for v in values]
