"""The sampler role: decide *which* configuration a new trial tries."""

from __future__ import annotations

import secrets
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hyperlaw.history import History
from hyperlaw.history.observations import params_key
from hyperlaw.space import Param, Space


def name_key(name: str) -> int:
    """A stable integer for a parameter name (for seeding per-parameter draws)."""
    return zlib.crc32(name.encode())


class Sampler(ABC):
    """Suggests parameters from the space and the history.

    Determinism: the same seed, history and trial number give the same suggestion. When
    `keyed_on_number` is true the study calls `suggest` inside the store's write transaction,
    after the trial number is allocated, so concurrent workers never draw the same point.
    """

    name: ClassVar[str] = "sampler"
    keyed_on_number: ClassVar[bool] = False
    #: whether `suggest` looks at the history; when it does not (and the scheduler needs none
    #: to start a trial) `ask` starts trials without reading the store first
    reads_history: ClassVar[bool] = True

    def __init__(self, seed: int | None = None) -> None:
        self.seed = int(seed) if seed is not None else secrets.randbits(32)

    def rng(self, number: int, *salt: int) -> np.random.Generator:
        """A generator determined by the seed, the trial number and an optional salt."""
        return np.random.default_rng([self.seed, number, *salt])

    @abstractmethod
    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        """All active parameters of the trial numbered `number`."""

    def suggest_param(self, name: str, param: Param, history: History, number: int,
                      params: Mapping[str, Any]) -> Any:
        """One parameter unknown when the trial was asked (define-by-run)."""
        return param.sample(self.rng(number, name_key(name)))

    def diverge(self) -> None:  # noqa: B027 - samplers keyed on the number need nothing
        """Stop drawing the numbers another process with the same seed draws: the study calls
        this when another process started a trial between this one's read and its write.
        Samplers that propose before the trial number is allocated salt their generator."""

    def is_exhausted(self, space: Space, history: History) -> bool:
        """True when the sampler has nothing new left to suggest (a finished grid)."""
        return False

    def options(self) -> dict[str, Any]:
        """Constructor arguments besides the seed, stored with the study."""
        return {}

    def spec(self) -> dict[str, Any]:
        """What the study stores to rebuild this sampler: its name, seed and options."""
        return {"name": self.name, "seed": self.seed, **self.options()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {"seed": self.seed, **self.options()}.items())
        return f"{type(self).__name__}({args})"


def avoid_tried(space: Space, params: dict[str, Any], keys: frozenset[str],
                rng: np.random.Generator, limit: int = 100_000) -> dict[str, Any]:
    """`params`, or when they are among `keys` (tried or running) and the space is finite
    with at most `limit` configurations, a random untried one (for samplers whose re-draws
    keep landing on tried points of a nearly exhausted space)."""
    size = space.n_values
    if params_key(params) not in keys or not size or size > limit:
        return params
    free = [p for p in space.grid() if params_key(p) not in keys]
    return free[int(rng.integers(len(free)))] if free else params


class ReplicaSalt:
    """Mixin: a sampler that proposes for one of several processes sharing a study draws its
    own numbers.

    Model-based samplers are called before the store allocates a trial number, so two
    processes that read the same history at the same moment would otherwise propose the same
    point. A copy sent to a worker process is salted when unpickled; a sampler rebuilt by
    `load_study` in each of several processes is salted by `diverge`, which the study calls
    when it sees another process start a trial between its read and its write. Until then
    the salt is 0, keeping sequential runs reproducible.
    """

    _replica: int = 0

    def diverge(self) -> None:
        """Draw numbers of this process's own from now on (a no-op once salted)."""
        if not self._replica:
            self._replica = secrets.randbits(31) or 1

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._replica = 0
        self.diverge()
