"""Samplers decide which configuration to try next. Any sampler works with any scheduler."""

from __future__ import annotations

from typing import Any

from hyperlaw.errors import HyperlawError
from hyperlaw.samplers.auto import AutoSampler
from hyperlaw.samplers.base import Sampler
from hyperlaw.samplers.gp import GPSampler
from hyperlaw.samplers.grid import GridSampler
from hyperlaw.samplers.random import RandomSampler
from hyperlaw.samplers.sobol import SobolSampler
from hyperlaw.samplers.tpe import TPESampler

SAMPLERS: dict[str, type[Sampler]] = {
    "random": RandomSampler,
    "sobol": SobolSampler,
    "grid": GridSampler,
    "tpe": TPESampler,
    "gp": GPSampler,
    "auto": AutoSampler,
}

__all__ = ["SAMPLERS", "AutoSampler", "GPSampler", "GridSampler", "RandomSampler", "Sampler",
           "SobolSampler", "TPESampler", "make_sampler"]


def make_sampler(sampler: str | Sampler | None, seed: int | None,
                 spec: dict[str, Any] | None = None) -> Sampler:
    """A sampler from a name or an instance; `spec` (as stored with a study) fills the gaps."""
    if isinstance(sampler, Sampler):
        return sampler
    options: dict[str, Any] = {}
    if sampler is None and spec:
        sampler = spec.get("name")
        options = {k: v for k, v in spec.items() if k not in ("name", "seed")}
        if seed is None:
            seed = spec.get("seed")
    name = sampler or "auto"
    cls = SAMPLERS.get(name)
    if cls is None:
        raise HyperlawError(
            f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)} or pass a "
            "hyperlaw.samplers.Sampler instance"
        )
    return cls(seed=seed, **options)
