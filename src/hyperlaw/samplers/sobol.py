"""Scrambled Sobol' quasi-random sampling (scipy's QMC): even coverage from the first trials."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hyperlaw.history import History
from hyperlaw.samplers.base import Sampler
from hyperlaw.space import Space


class SobolSampler(Sampler):
    """Trial number k takes point k of one scrambled Sobol' sequence over the unit cube.

    Conditional parameters keep their dimension; it is ignored when they are inactive.
    """

    name = "sobol"
    keyed_on_number = True
    reads_history = False

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._engine: Any = None  # scipy.stats.qmc.Sobol, imported on first use
        self._dim = -1
        self._position = 0

    def _point(self, dim: int, index: int) -> np.ndarray:
        if self._engine is None or dim != self._dim or index < self._position:
            from scipy.stats import qmc  # scipy.stats takes ~0.6 s to import

            self._engine = qmc.Sobol(dim, scramble=True, seed=self.seed)
            self._dim, self._position = dim, 0
        if index > self._position:
            self._engine.fast_forward(index - self._position)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # balance warning for n != 2**m
            point = self._engine.random(1)[0]
        self._position = index + 1
        return point

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        if space.dim == 0:
            return space.sample(self.rng(number))
        return space.decode(self._point(space.dim, number))

    def __getstate__(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["seed"])  # type: ignore[misc]
