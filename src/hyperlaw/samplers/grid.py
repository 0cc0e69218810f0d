"""Exhaustive grid search over a finite (or discretized) space, in a seeded shuffled order."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hyperlaw.history import History
from hyperlaw.samplers.base import Sampler
from hyperlaw.space import Space
from hyperlaw.trial import TrialState


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


class GridSampler(Sampler):
    """Tries every grid point once. Continuous parameters need `resolution` points each.

    `values` ({name: [values]}) gives the grid itself instead, as every combination of the
    listed values (Optuna's GridSampler): the objective's suggest calls then take them.

    A point counts as taken once any trial (running or finished) has it; when every point is
    taken the sampler is exhausted and the study stops asking.
    """

    name = "grid"
    keyed_on_number = True

    def __init__(self, seed: int | None = None, resolution: int | None = None,
                 shuffle: bool = True, values: Mapping[str, Sequence[Any]] | None = None
                 ) -> None:
        super().__init__(seed)
        self.resolution = resolution
        self.shuffle = shuffle
        self.values = None if values is None else {k: list(v) for k, v in values.items()}
        self._cache: tuple[str, list[dict[str, Any]], list[str]] | None = None

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"resolution": self.resolution, "shuffle": self.shuffle}
        if self.values is not None:
            options["values"] = self.values
        return options

    def points(self, space: Space) -> tuple[list[dict[str, Any]], list[str]]:
        """The grid of `space` (or of the listed `values`) in this sampler's order, and each
        point's key (cached)."""
        key = "values" if self.values is not None else space.hash
        if self._cache is None or self._cache[0] != key:
            grid = (space.grid(self.resolution) if self.values is None else
                    [dict(zip(self.values, p, strict=True))
                     for p in itertools.product(*self.values.values())])
            if self.shuffle:
                order = np.random.default_rng(self.seed).permutation(len(grid))
                grid = [grid[i] for i in order]
            self._cache = (key, grid, [_key(p) for p in grid])
        return self._cache[1], self._cache[2]

    def _free(self, space: Space, history: History) -> list[dict[str, Any]]:
        grid, keys = self.points(space)
        names = self.values
        taken = {_key(t.params if names is None else {n: t.params.get(n) for n in names})
                 for t in history.trials if t.state is not TrialState.WAITING}
        return [p for p, k in zip(grid, keys, strict=True) if k not in taken]

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        free = self._free(space, history)
        if not free:  # every point is taken: repeat one (the study stops before this)
            grid, _ = self.points(space)
            return dict(grid[number % len(grid)])
        # workers that raced with the same history hold different numbers: spread them
        return dict(free[(number - len(history.trials)) % len(free)])

    def is_exhausted(self, space: Space, history: History) -> bool:
        return not self._free(space, history)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.options(), "seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]
