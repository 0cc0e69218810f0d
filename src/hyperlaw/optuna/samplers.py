"""Optuna's samplers by their names, each built as the hyperlaw sampler that does the same
job (so `load_study` rebuilds it from the study's stored spec, like any hyperlaw sampler).

| Optuna               | hyperlaw                                                          |
|----------------------|-------------------------------------------------------------------|
| TPESampler           | TPESampler (Sobol' startup, multivariate, constant liar)          |
| RandomSampler        | RandomSampler                                                     |
| GPSampler            | GPSampler                                                         |
| QMCSampler           | SobolSampler (scrambled Sobol'; Halton is not offered)            |
| GridSampler          | GridSampler(values=search_space)                                  |
| BruteForceSampler    | GridSampler over the learned space (discrete parameters)         |
| CmaEsSampler         | AutoSampler (GP, then TPE), with a logged note                    |
| NSGAIISampler        | NSGA2Sampler ("nsga2"; RandomSampler with a note when absent)     |
| PartialFixedSampler  | the base sampler with some parameters pinned                      |

Options without a hyperlaw counterpart (`gamma`, `weights`, `consider_*`, ...) are ignored
with a logged note naming them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hyperlaw.history import History
from hyperlaw.samplers import (
    SAMPLERS,
    AutoSampler,
    RandomSampler,
    Sampler,
    SobolSampler,
)
from hyperlaw.samplers import GPSampler as _GPSampler
from hyperlaw.samplers import GridSampler as _GridSampler
from hyperlaw.samplers import TPESampler as _TPESampler
from hyperlaw.space import Param, Space

log = logging.getLogger("hyperlaw")

BaseSampler = Sampler

#: the attribute of a sampler holding Optuna's `constraints_func` (the study calls it after
#: each trial and records the values in `system_attrs["constraints"]`)
CONSTRAINTS_ATTR = "optuna_constraints_func"

__all__ = ["BaseSampler", "BruteForceSampler", "CmaEsSampler", "GPSampler", "GridSampler",
           "NSGAIIISampler", "NSGAIISampler", "PartialFixedSampler", "QMCSampler",
           "RandomSampler", "TPESampler"]


def _with_constraints(sampler: Sampler,
                      constraints_func: Callable[..., Sequence[float]] | None) -> Sampler:
    if constraints_func is not None:
        setattr(sampler, CONSTRAINTS_ATTR, constraints_func)
    return sampler


def _ignored(sampler: str, **options: Any) -> None:
    """Log the options given that hyperlaw's counterpart does not take."""
    given = sorted(k for k, v in options.items() if v not in (None, False))
    if given:
        log.info("%s: options %s have no hyperlaw counterpart and are ignored", sampler, given)


def TPESampler(*, consider_prior: bool | None = None,
               prior_weight: float | None = None, consider_magic_clip: bool | None = None,
               consider_endpoints: bool | None = None, n_startup_trials: int = 10,
               n_ei_candidates: int = 24, gamma: Callable[[int], int] | None = None,
               weights: Callable[[int], np.ndarray] | None = None, seed: int | None = None,
               multivariate: bool | None = None, group: bool = False,
               warn_independent_sampling: bool | None = None, constant_liar: bool = True,
               constraints_func: Callable[..., Sequence[float]] | None = None) -> Sampler:
    """hyperlaw's TPE (multivariate unless `multivariate=False`; groups of parameters that
    are active together are modelled jointly, as Optuna's `group=True`)."""
    _ignored("TPESampler", consider_prior=consider_prior, consider_magic_clip=consider_magic_clip,
             consider_endpoints=consider_endpoints, gamma=gamma, weights=weights)
    return _with_constraints(_TPESampler(
        seed, n_startup_trials=n_startup_trials, n_ei_candidates=n_ei_candidates,
        multivariate=multivariate is not False,
        prior_weight=1.0 if prior_weight is None else prior_weight,
        constant_liar=constant_liar), constraints_func)


def GPSampler(*, seed: int | None = None, independent_sampler: Sampler | None = None,
              n_startup_trials: int = 10, deterministic_objective: bool = False,
              constraints_func: Callable[..., Sequence[float]] | None = None,
              warn_independent_sampling: bool = True) -> Sampler:
    """hyperlaw's Gaussian-process sampler (log expected improvement)."""
    _ignored("GPSampler", independent_sampler=independent_sampler)
    return _with_constraints(_GPSampler(seed, n_startup_trials=n_startup_trials,
                                        deterministic_objective=deterministic_objective),
                             constraints_func)


def QMCSampler(*, qmc_type: str = "sobol", scramble: bool = False,
               seed: int | None = None, independent_sampler: Sampler | None = None,
               warn_asynchronous_seeding: bool = True,
               warn_independent_sampling: bool = True) -> Sampler:
    """hyperlaw's scrambled Sobol' sequence (also for `qmc_type="halton"`, with a note)."""
    if qmc_type != "sobol":
        log.info("QMCSampler(qmc_type=%r): hyperlaw draws a scrambled Sobol' sequence", qmc_type)
    return SobolSampler(seed)


def CmaEsSampler(*, x0: dict[str, Any] | None = None,
                 sigma0: float | None = None, n_startup_trials: int = 1,
                 independent_sampler: Sampler | None = None,
                 warn_independent_sampling: bool = True, seed: int | None = None,
                 **options: Any) -> Sampler:
    """No CMA-ES in hyperlaw: its AutoSampler (GP Bayesian optimization, TPE for large
    histories), which does as well on the continuous problems CMA-ES is used for."""
    log.info("CmaEsSampler: hyperlaw has no CMA-ES; using its AutoSampler (GP, then TPE)")
    return AutoSampler(seed)


def NSGAIISampler(*, population_size: int | None = None,
                  mutation_prob: float | None = None, crossover_prob: float = 0.9,
                  seed: int | None = None,
                  constraints_func: Callable[..., Sequence[float]] | None = None,
                  **options: Any) -> Sampler:
    """hyperlaw's NSGA-II ("nsga2"): its first generation is `population_size` quasi-random
    trials (hyperlaw's default population when not given), then crossover and mutation of
    the best ranked (feasible first). Without it in this hyperlaw, random sampling."""
    cls = SAMPLERS.get("nsga2")
    if cls is None:
        log.info("NSGAIISampler: this hyperlaw has no NSGA-II sampler; sampling at random")
        return _with_constraints(RandomSampler(seed), constraints_func)
    given: dict[str, Any] = {"mutation_prob": mutation_prob, "crossover_prob": crossover_prob}
    if population_size is not None:
        given.update(population_size=population_size, n_startup_trials=population_size)
    accepted = inspect.signature(cls).parameters
    _ignored("NSGAIISampler", **options)
    return _with_constraints(cls(seed=seed, **{k: v for k, v in given.items()
                                               if k in accepted}), constraints_func)


NSGAIIISampler = NSGAIISampler


def GridSampler(search_space: Mapping[str, Sequence[Any]],
                seed: int | None = None) -> Sampler:
    """Every combination of the listed values, once each, in a seeded random order; the
    study stops when all are taken."""
    values = {name: [v.item() if isinstance(v, np.generic) else v for v in choices]
              for name, choices in search_space.items()}
    return _GridSampler(seed=seed, values=values)


def BruteForceSampler(seed: int | None = None,
                      avoid_premature_stop: bool = False) -> Sampler:
    """Every point of the (discrete) space, once each."""
    return _GridSampler(seed=seed)


class PartialFixedSampler(Sampler):
    """`base_sampler` with the parameters of `fixed_params` pinned to their values.

    The study stores the base sampler's spec: a study loaded again samples every parameter.
    """

    def __init__(self, fixed_params: Mapping[str, Any], base_sampler: Sampler) -> None:
        super().__init__(base_sampler.seed)
        self.fixed_params = dict(fixed_params)
        self.base_sampler = base_sampler
        self.name = base_sampler.name  # type: ignore[misc]

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        return {**self.base_sampler.suggest(space, history, number), **self.fixed_params}

    def suggest_param(self, name: str, param: Param, history: History, number: int,
                      params: Mapping[str, Any]) -> Any:
        if name in self.fixed_params:
            return self.fixed_params[name]
        return self.base_sampler.suggest_param(name, param, history, number, params)

    def diverge(self) -> None:
        self.base_sampler.diverge()

    def is_exhausted(self, space: Space, history: History) -> bool:
        return self.base_sampler.is_exhausted(space, history)

    def options(self) -> dict[str, Any]:
        return self.base_sampler.options()

    def spec(self) -> dict[str, Any]:
        return self.base_sampler.spec()
