"""A prior on a law's exponents, combined with what the runs show.

A grid of a few small sizes pins a law's exponents poorly: two sizes fit any power law, and
the optima of small models scatter. The published exponents of a law fitted on far more runs
(the Step Law's, Li et al. 2025, arXiv 2503.04715: lr ∝ N^-0.713 · D^0.307, B ∝ D^0.571) are
a prior for each exponent, normal with standard deviation `sd`. The runs' evidence is the
bootstrap distribution of their own fit; the two combine as normals do (precision-weighted),
and each bootstrap draw is moved so that the draws have the combined spread. An exponent the
cells cannot measure (fewer than three values of its feature) is the prior's, with the prior's
spread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from hyperlaw.errors import ScalingFitError

#: the Step Law's published exponents (the means of its bootstrap fits), per target
STEP_LAW_EXPONENTS: dict[str, dict[str, float]] = {
    "lr": {"n_params": -0.713, "n_tokens": 0.307},
    "batch_size": {"n_tokens": 0.571},
}
#: under μP (Yang et al. 2022, arXiv 2203.03466) the optimal learning rate does not move as
#: the width grows: its exponent in model size is 0 (width only; nothing said of tokens)
MUP_EXPONENTS: dict[str, dict[str, float]] = {"lr": {"n_params": 0.0}}
#: the priors by name
NAMED_PRIORS = {"steplaw": STEP_LAW_EXPONENTS, "mup": MUP_EXPONENTS}
#: the prior's standard deviation on each exponent: how far another setup's exponent may lie
#: from the Step Law's. Published laws disagree by about this much: DeepSeek LLM's
#: lr ∝ C^-0.125 (C ∝ N·D) gives -0.125 in N and D, against the Step Law's -0.713 and
#: +0.307, and Bjorck et al. (arXiv 2409.19913) find the optimal lr falling with tokens.
#: benchmarks/scaling_holdout.py measures 0.2, 0.3 and 0.5.
DEFAULT_PRIOR_SD = 0.3
#: a feature needs this many distinct values across cells for its exponent to be measured
MIN_LEVELS = 3


def prior_exponents(prior: str | Mapping[str, float] | None, target: str,
                    features: Sequence[str]) -> dict[str, float]:
    """The prior's exponent for each feature of `features` it names: `"steplaw"` (the Step
    Law's exponents for `target`, measured in the standard parametrization), `"mup"` (the
    learning rate flat in model size, for models scaled in width under μP), none for a target
    the named prior has no law of; a mapping {feature: exponent}; or None (no prior)."""
    if prior is None:
        return {}
    if isinstance(prior, str):
        table = named_prior(prior).get(target, {})
        return {f: table[f] for f in features if f in table}
    unknown = [f for f in prior if f not in features]
    if unknown:
        raise ScalingFitError(f"prior names {unknown}, which are not features of the law "
                              f"({list(features)}); name only its features")
    return {f: float(e) for f, e in prior.items()}


def named_prior(name: str) -> dict[str, dict[str, float]]:
    """The exponents per target of the prior called `name`, or a clear error."""
    if name not in NAMED_PRIORS:
        raise ScalingFitError(f"unknown prior {name!r}; use one of {sorted(NAMED_PRIORS)}, a "
                              "mapping {feature: exponent}, or None")
    return NAMED_PRIORS[name]


def combine(coef: NDArray[np.float64], boot: NDArray[np.float64],
            means: NDArray[np.float64], sd: NDArray[np.float64],
            rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The posterior point and draws of [intercept, *exponents] from the data's fit `coef`
    and its bootstrap draws `boot`, under independent normal priors N(means, sd²) on the
    exponents (sd = inf: no prior on that one; the intercept is free).

    With S the draws' covariance and P the prior's precision, A = (I + S P)^-1 weighs the
    data: the point is A coef + (I - A) mean, and a draw b becomes A b + (I - A) m with m
    drawn from the prior, which gives the draws the posterior covariance (S^-1 + P)^-1.
    """
    precision = np.concatenate([[0.0], np.where(np.isfinite(sd), 1.0 / sd ** 2, 0.0)])
    center = np.concatenate([[0.0], np.where(np.isfinite(sd), means, 0.0)])
    spread = np.concatenate([[0.0], np.where(np.isfinite(sd), sd, 0.0)])
    cov = np.atleast_2d(np.cov(boot.T)) if len(boot) > 1 else np.zeros((len(coef),) * 2)
    weight = np.linalg.solve(np.eye(len(coef)) + cov * precision[None, :], np.eye(len(coef)))
    rest = np.eye(len(coef)) - weight
    prior_draws = center + rng.standard_normal(boot.shape) * spread
    return weight @ coef + rest @ center, boot @ weight.T + prior_draws @ rest.T


def unmeasured(levels: Mapping[str, int], means: Mapping[str, float]) -> list[str]:
    """The features with a prior whose cells hold fewer than MIN_LEVELS values."""
    return [f for f in means if levels.get(f, 0) < MIN_LEVELS]


def check_sd(sd: float) -> float:
    """`sd` as a positive float, or a clear error."""
    if not (isinstance(sd, int | float) and not isinstance(sd, bool) and np.isfinite(sd)
            and sd > 0):
        raise ScalingFitError(f"prior_sd must be a positive number, got {sd!r}")
    return float(sd)
