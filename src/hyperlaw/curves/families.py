"""Parametric learning-curve families (Domhan, Springenberg and Hutter 2015, and AutoLRS).

Each family is a function of the training progress `t` (> 0) and its parameters. They are
written for curves that rise to an asymptote (accuracy); a loss curve is the same shape with
the sign of the scale parameter flipped, which the fitter in `hyperlaw.curves.extrapolate`
allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


def pow3(t: Array, c: float, a: float, alpha: float) -> Array:
    """c − a·t^(−α)."""
    return c - a * np.power(t, -alpha)


def pow4(t: Array, c: float, a: float, b: float, alpha: float) -> Array:
    """c − (a·t + b)^(−α)."""
    return c - np.power(a * t + b, -alpha)


def ilog2(t: Array, c: float, a: float) -> Array:
    """c − a / ln(t + 1)."""
    return c - a / np.log(t + 1.0)


def janoschek(t: Array, alpha: float, beta: float, kappa: float, delta: float) -> Array:
    """α − (α − β)·exp(−κ·t^δ)."""
    return alpha - (alpha - beta) * np.exp(-kappa * np.power(t, delta))


def weibull(t: Array, alpha: float, beta: float, kappa: float, delta: float) -> Array:
    """α − (α − β)·exp(−(κ·t)^δ)."""
    return alpha - (alpha - beta) * np.exp(-np.power(kappa * t, delta))


def mmf(t: Array, alpha: float, beta: float, kappa: float, delta: float) -> Array:
    """Morgan-Mercer-Flodin: α − (α − β) / (1 + (κ·t)^δ)."""
    return alpha - (alpha - beta) / (1.0 + np.power(kappa * t, delta))


def dr_hill(t: Array, alpha: float, theta: float, eta: float, kappa: float) -> Array:
    """Dose-response Hill: α + (θ − α)·t^η / (κ^η + t^η)."""
    return alpha + (theta - alpha) * np.power(t, eta) / (kappa**eta + np.power(t, eta))


def log_power(t: Array, a: float, b: float, c: float) -> Array:
    """a / (1 + (t / e^b)^(−c))."""
    return a / (1.0 + np.power(t / np.exp(b), -c))


def exp3(t: Array, c: float, a: float, b: float) -> Array:
    """c − a·exp(−b·t): the AutoLRS forecast model (there with b > 0 and a loss curve)."""
    return c - a * np.exp(-b * t)


def exp4(t: Array, c: float, a: float, b: float, alpha: float) -> Array:
    """c − exp(−a·t^α + b)."""
    return c - np.exp(-a * np.power(t, alpha) + b)


def vap(t: Array, a: float, b: float, c: float) -> Array:
    """Vapor pressure: exp(a + b/t + c·ln t)."""
    return np.exp(a + b / t + c * np.log(t))


def loglog_linear(t: Array, a: float, b: float) -> Array:
    """ln(a·ln(t) + b)."""
    return np.log(a * np.log(t) + b)


@dataclass(frozen=True)
class Family:
    """A named curve family: its function and the names of its parameters, in order."""

    name: str
    function: Callable[..., Array]
    parameters: tuple[str, ...]

    def __call__(self, t: Array | float, *params: float) -> Array:
        return self.function(np.asarray(t, dtype=float), *params)


FAMILIES: dict[str, Family] = {
    family.name: family for family in (
        Family("pow3", pow3, ("c", "a", "alpha")),
        Family("pow4", pow4, ("c", "a", "b", "alpha")),
        Family("ilog2", ilog2, ("c", "a")),
        Family("janoschek", janoschek, ("alpha", "beta", "kappa", "delta")),
        Family("weibull", weibull, ("alpha", "beta", "kappa", "delta")),
        Family("mmf", mmf, ("alpha", "beta", "kappa", "delta")),
        Family("dr_hill", dr_hill, ("alpha", "theta", "eta", "kappa")),
        Family("log_power", log_power, ("a", "b", "c")),
        Family("exp3", exp3, ("c", "a", "b")),
        Family("exp4", exp4, ("c", "a", "b", "alpha")),
        Family("vap", vap, ("a", "b", "c")),
        Family("loglog_linear", loglog_linear, ("a", "b")),
    )
}
