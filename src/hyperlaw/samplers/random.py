"""Independent uniform sampling (log-uniform for log parameters)."""

from __future__ import annotations

from typing import Any

from hyperlaw.history import History
from hyperlaw.samplers.base import Sampler
from hyperlaw.space import Space


class RandomSampler(Sampler):
    """Each trial draws from a generator keyed on (seed, trial number)."""

    name = "random"
    keyed_on_number = True
    reads_history = False

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        return space.sample(self.rng(number))
