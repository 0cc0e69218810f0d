"""Samplers decide which configuration to try next. Any sampler works with any scheduler."""

from __future__ import annotations

from typing import Any

from hyperlaw.registry import resolve
from hyperlaw.samplers.auto import AutoSampler
from hyperlaw.samplers.base import Sampler
from hyperlaw.samplers.cost_aware import CostAwareSampler
from hyperlaw.samplers.gp import GPSampler
from hyperlaw.samplers.grid import GridSampler
from hyperlaw.samplers.nsga2 import NSGA2Sampler
from hyperlaw.samplers.priorband import PriorBandSampler
from hyperlaw.samplers.random import RandomSampler
from hyperlaw.samplers.sobol import SobolSampler
from hyperlaw.samplers.tpe import TPESampler

SAMPLERS: dict[str, type[Sampler]] = {
    "random": RandomSampler,
    "sobol": SobolSampler,
    "grid": GridSampler,
    "tpe": TPESampler,
    "gp": GPSampler,
    "nsga2": NSGA2Sampler,
    "auto": AutoSampler,
    "cost_aware": CostAwareSampler,
    "priorband": PriorBandSampler,
}

__all__ = ["SAMPLERS", "AutoSampler", "CostAwareSampler", "GPSampler", "GridSampler",
           "NSGA2Sampler", "PriorBandSampler", "RandomSampler", "Sampler", "SobolSampler",
           "TPESampler", "make_sampler"]


def make_sampler(sampler: str | Sampler | None, seed: int | None,
                 spec: dict[str, Any] | None = None) -> Sampler:
    """A sampler from a name or an instance; `spec` (as stored with a study) fills the gaps."""
    if isinstance(sampler, Sampler):
        return sampler
    cls, options = resolve("sampler", SAMPLERS, sampler, spec, "auto", ("name", "seed"))
    if seed is None and sampler is None and spec:
        seed = spec.get("seed")
    return cls(seed=seed, **options)
