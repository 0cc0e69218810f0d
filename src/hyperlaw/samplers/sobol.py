"""Scrambled Sobol' quasi-random sampling: even coverage from the first trials.

The points are those of `scipy.stats.qmc.Sobol(d, scramble=True, seed=seed)`, point for
point, computed here with numpy from the same direction numbers (Joe and Kuo's, which scipy
ships): importing `scipy.stats` costs 0.6 s on a quiet machine and several seconds on a busy
one, more than all the draws of a study.
"""

from __future__ import annotations

import functools
import importlib.resources
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from hyperlaw.errors import SearchExhaustedError
from hyperlaw.history import History
from hyperlaw.samplers.base import Sampler
from hyperlaw.space import Space

_BITS = 30  # bits of each coordinate (scipy's default): 2**30 points
_MSB_FIRST = np.arange(_BITS - 1, -1, -1, dtype=np.uint64)


class SobolSampler(Sampler):
    """Trial number k takes point k of one scrambled Sobol' sequence over the unit cube.

    Conditional parameters keep their dimension; it is ignored when they are inactive.
    """

    name = "sobol"
    keyed_on_number = True
    reads_history = False

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed)
        self._engine: ScrambledSobol | None = None

    def _point(self, dim: int, index: int) -> np.ndarray:
        if self._engine is None or self._engine.dim != dim:
            self._engine = ScrambledSobol(dim, self.seed)
        return self._engine.point(index)

    def suggest(self, space: Space, history: History, number: int) -> dict[str, Any]:
        if space.dim == 0:
            return space.sample(self.rng(number))
        return space.decode(self._point(space.dim, number))

    def __getstate__(self) -> dict[str, Any]:
        return {"seed": self.seed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["seed"])  # type: ignore[misc]


class ScrambledSobol:
    """A Sobol' sequence over [0, 1)^dim, scrambled by a random lower-triangular binary matrix
    and a random digital shift per dimension (drawn from `np.random.default_rng(seed)`).

    Point k is computed directly (Gray-code order), in O(dim * 30), without walking the
    sequence up to it.
    """

    def __init__(self, dim: int, seed: int | np.random.Generator | None) -> None:
        # from a Generator, the draws come from a child it spawns, as scipy's do (the
        # Generator's own stream is left as it was)
        rng = (seed.spawn(1)[0] if isinstance(seed, np.random.Generator)
               else np.random.default_rng(seed))
        self.dim = dim
        # the same draws, in the same order and width, as scipy's LMS + shift scrambling
        shift_bits = rng.integers(0, 2, size=(dim, _BITS), dtype=np.uint32)
        self._matrices = rng.integers(0, 2, size=(dim, _BITS, _BITS), dtype=np.uint32)
        self._shift = (shift_bits.astype(np.uint64)
                       << np.arange(_BITS, dtype=np.uint64)).sum(axis=1)
        # scrambled direction numbers, (dim, bits), computed for the bits points have used
        self._directions = np.zeros((dim, 0), dtype=np.uint64)

    def _scrambled_directions(self, bits: int) -> np.ndarray:
        """The first `bits` scrambled direction numbers of each dimension: the first 2**bits
        points need no more (most draws use a few, not all 30)."""
        if self._directions.shape[1] < bits:
            self._directions = _scrambled(_directions(self.dim)[:, :bits], self._matrices)
        return self._directions

    def point(self, index: int) -> np.ndarray:
        """Point `index` of the sequence (0 is the first)."""
        if not 0 <= index < 2**_BITS:
            raise SearchExhaustedError(
                f"the Sobol' sequence has 2**{_BITS} points; trial #{index} is past its end: "
                "use the random sampler for studies this large")
        gray = index ^ (index >> 1)
        directions = self._scrambled_directions(gray.bit_length())
        used = ((gray >> np.arange(directions.shape[1])) & 1).astype(bool)
        quasi = self._shift ^ np.bitwise_xor.reduce(directions[:, used], axis=1)
        return quasi.astype(np.float64) * (1.0 / 2**_BITS)

    def first(self, n: int) -> np.ndarray:
        """The first n points (n, dim), as `qmc.Sobol(...).random(n)` draws them."""
        if n <= 0:
            return np.zeros((0, self.dim))
        # in Gray-code order, point k differs from point k - 1 by the direction number of
        # k's lowest set bit: the points are running XORs of those direction numbers
        k = np.arange(1, n, dtype=np.int64)
        lowest_bit = np.frexp((k & -k).astype(np.float64))[1] - 1
        directions = self._scrambled_directions((n - 1).bit_length())
        steps = np.vstack([self._shift[None, :], directions[:, lowest_bit].T])
        quasi = np.bitwise_xor.accumulate(steps, axis=0)
        return quasi.astype(np.float64) * (1.0 / 2**_BITS)


@functools.cache
def _directions(dim: int) -> np.ndarray:
    """Direction numbers (dim, bits), each scaled to its bit (Bratley and Fox's recurrence
    on Joe and Kuo's primitive polynomials and initial numbers); read-only, as cached."""
    poly, initial = _joe_kuo()
    if dim > len(poly):
        raise SearchExhaustedError(
            f"Sobol' points have at most {len(poly)} dimensions; this space has {dim}: use "
            "the random sampler")
    out = np.ones((dim, _BITS), dtype=np.uint64)
    for d in range(1, dim):
        p = int(poly[d])
        degree = p.bit_length() - 1
        row = [int(v) for v in initial[d, :degree]]
        for j in range(degree, _BITS):
            new = row[j - degree]
            for k in range(degree):
                if (p >> (degree - 1 - k)) & 1:
                    new ^= row[j - k - 1] << (k + 1)
            row.append(new)
        out[d] = row
    out <<= _MSB_FIRST
    out.flags.writeable = False
    return out


def _scrambled(directions: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Left-multiply each direction number's bits (most significant first) by its
    dimension's lower-triangular matrix with a unit diagonal, over GF(2); `directions` may
    hold the first few direction numbers of each dimension only."""
    lower = np.tril(matrices).astype(np.float64)
    lower[:, np.arange(_BITS), np.arange(_BITS)] = 1.0
    bits = ((directions[:, :, None] >> _MSB_FIRST) & 1).astype(np.float64)
    # sums of at most 30 products of 0 and 1: exact in floating point, by one batched product
    product = (bits @ lower.transpose(0, 2, 1)).astype(np.uint64) & np.uint64(1)
    return (product << _MSB_FIRST).sum(axis=2)


def _joe_kuo() -> tuple[np.ndarray, np.ndarray]:
    """The primitive polynomials and initial direction numbers scipy ships, read from its
    data file without importing `scipy.stats` (3 MB: not kept, `_directions` is)."""
    spec = importlib.util.find_spec("scipy")
    roots = spec.submodule_search_locations if spec is not None else None
    path = Path(roots[0], "stats", "_sobol_direction_numbers.npz") if roots else None
    if path is None or not path.is_file():  # another layout: ask scipy.stats for it
        path = Path(str(importlib.resources.files("scipy.stats")
                        .joinpath("_sobol_direction_numbers.npz")))
    with np.load(path) as data:
        return data["poly"], data["vinit"]
