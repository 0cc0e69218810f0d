"""Search spaces: plain, validated, serializable descriptions of the parameters to tune.

A parameter is one of `Float`, `Int`, `Choice` or `Const`. Each may carry a `when`
condition, ``when={"optimizer": "sgd"}``: the parameter is active only when every
listed parent is active and takes the given value (or one of a given list of values).

A `Space` maps names to parameters; a value may also be a nested `Space` (a reusable group,
its names prefixed ``group.name``) or a `Repeat` of one (a variable number of copies, e.g.
layers, each with its own values). Both are spelled out as flat, dotted, conditional
parameters, so every sampler handles them; `nest` (and `Trial.params[group]`) reads a flat
configuration back as nested dicts and lists.

Every non-constant parameter is a dimension of
the unit cube ``[0, 1]^dim`` used by samplers (`Space.encode` / `Space.decode`); a
NaN coordinate marks a dimension that is inactive for that configuration.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import heapq
import json
import linecache
import math
import numbers
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass, field
from difflib import get_close_matches
from types import FrameType
from typing import Any, ClassVar

import numpy as np

from hyperlaw.errors import ConditionError, SpaceError, SpaceMismatchError

__all__ = [
    "Choice",
    "Const",
    "Float",
    "Int",
    "Param",
    "Params",
    "Repeat",
    "Space",
    "nest",
    "param_context",
    "param_from_dict",
    "param_matches",
]

_MISSING: Any = object()
_BOOL_TAG = "\x00bool"
_SCALAR_HINT = (
    "use strings or numbers (str, int, float, bool or None) and map them to objects "
    "inside the objective"
)


# --- helpers --------------------------------------------------------------------------


def _tkey(value: Any) -> tuple[str, Any]:
    """Signature key of a plain scalar: equal only for the same type and value."""
    return (type(value).__name__, value)


def _vkey(value: Any) -> Any:
    """Lookup key for a scalar value: bools stay distinct from the ints 0 and 1."""
    if value is True or value is False:
        return (_BOOL_TAG, value)
    if isinstance(value, np.bool_):
        return (_BOOL_TAG, bool(value))
    return value


def _scalar(value: Any, what: str) -> Any:
    """Return `value` as a plain JSON scalar or raise SpaceError naming it."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if value is None:
        return None
    if isinstance(value, bool):  # subclasses (e.g. enums) become plain scalars
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SpaceError(f"{what} {value!r} is not a finite number; {_SCALAR_HINT}")
        return float(value) + 0.0  # -0.0 -> 0.0
    raise SpaceError(
        f"{what} {value!r} ({type(value).__name__}) is not a JSON scalar; {_SCALAR_HINT}"
    )


def _is_real(value: Any) -> bool:
    if type(value) is float or type(value) is int:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_integer(value: Any) -> bool:
    if type(value) is int:
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _call_repr(cls: str, *, low: Any, high: Any, log: Any, step: Any) -> str:
    text = f"{cls}(low={low!r}, high={high!r}"
    text += f", log={log!r}" if log else ""
    text += f", step={step!r}" if step is not None and (cls == "Float" or step != 1) else ""
    return text + ")"


def _real(value: Any, label: str, prefix: Callable[[], str]) -> float:
    if type(value) is float and value - value == 0.0 and value != 0.0:
        return value  # finite and not -0.0
    if not _is_real(value):
        raise SpaceError(f"{prefix()}: {label} must be a number, got {value!r}; pass a float")
    try:
        number = float(value) + 0.0
    except OverflowError:
        raise SpaceError(f"{prefix()}: {label} is too large for a float; pass a bound below "
                         "1.8e308") from None
    if not math.isfinite(number):
        raise SpaceError(f"{prefix()}: {label}={number} is not finite; pass finite bounds")
    return number


#: the largest magnitude of an Int bound (integers beyond it are not exact as floats)
_MAX_EXACT_INT = 2**53


def _integer(value: Any, label: str, prefix: Callable[[], str]) -> int:
    if _is_integer(value):
        return int(value)
    if _is_real(value):
        if not math.isfinite(value):
            raise SpaceError(f"{prefix()}: {label}={value} is not finite; pass finite bounds")
        if float(value).is_integer():
            return int(value)
    raise SpaceError(
        f"{prefix()}: {label} must be an integer, got {value!r}; pass an int "
        "(use Float for real-valued parameters)"
    )


def _decimals(x: float) -> int:
    """Number of decimal places in the shortest repr of `x`."""
    mantissa, _, exponent = repr(x).partition("e")
    frac = mantissa.partition(".")[2].rstrip("0")
    return max(len(frac) - (int(exponent) if exponent else 0), 0)


def _clip_unit(u: float) -> float:
    if u > 0.0:
        return 1.0 if u > 1.0 else u
    if u != u:
        raise SpaceError("unit coordinate is NaN; pass a number in [0, 1]")
    return 0.0


def _spread_indices(targets: Iterable[float], n: int) -> list[int]:
    """Round target indices in [0, n-1] to distinct ints (requires len(targets) <= n)."""
    idx = [min(max(round(t), 0), n - 1) for t in targets]
    k = len(idx)
    for i in range(1, k):
        if idx[i] <= idx[i - 1]:
            idx[i] = idx[i - 1] + 1
    for i in range(k):
        idx[i] = min(idx[i], n - k + i)
    return idx


def _check_resolution(resolution: int | None) -> None:
    if resolution is not None and (
        isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1
    ):
        raise SpaceError(
            f"resolution must be a positive int or None, got {resolution!r}; pass e.g. "
            "resolution=5"
        )


def _fmt_when(when: Mapping[str, tuple[Any, ...]]) -> str:
    parts = {k: (v[0] if len(v) == 1 else list(v)) for k, v in when.items()}
    return repr(parts)


class _FrozenMap(Mapping[str, tuple[Any, ...]]):
    """Read-only mapping used for normalized `when` conditions."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, tuple[Any, ...]]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> tuple[Any, ...]:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenMap, (self._data,))


def _normalize_when(when: Any, prefix: Callable[[], str]) -> tuple[_FrozenMap | None, frozenset]:
    """Validate a `when` argument; return (normalized mapping, comparison signature)."""
    if when is None:
        return None, frozenset()
    hint = "pass a mapping of parent name to value(s), e.g. when={'optimizer': 'sgd'}"
    if not isinstance(when, Mapping):
        raise SpaceError(f"{prefix()}: when={when!r} is not a mapping; {hint}")
    data: dict[str, tuple[Any, ...]] = {}
    for parent, raw in when.items():
        if not isinstance(parent, str) or not parent:
            raise SpaceError(
                f"{prefix()}: when has key {parent!r}; keys must be parameter names "
                f"(non-empty str); {hint}"
            )
        if isinstance(raw, list | tuple):
            if not raw:
                raise SpaceError(
                    f"{prefix()}: when[{parent!r}] is an empty list; list at least one value "
                    "of the parent"
                )
            values = tuple(_scalar(v, f"when[{parent!r}] value") for v in raw)
        elif isinstance(raw, Mapping | set | frozenset):
            raise SpaceError(
                f"{prefix()}: when[{parent!r}]={raw!r} is neither a value nor a list of values; "
                f"{hint}"
            )
        else:
            values = (_scalar(raw, f"when[{parent!r}] value"),)
        data[parent] = values
    if not data:
        return None, frozenset()
    sig = frozenset((p, frozenset(_tkey(v) for v in vs)) for p, vs in data.items())
    return _FrozenMap(data), sig


def _when_to_json(when: Mapping[str, tuple[Any, ...]] | None) -> dict[str, list[Any]] | None:
    if when is None:
        return None
    return {
        parent: sorted(values, key=lambda v: json.dumps(v)) for parent, values in when.items()
    }


# --- parameters -----------------------------------------------------------------------

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_DICT_KEY = re.compile(r"""(['"])([^'"]+)\1\s*:\s*$""")
_KEYWORD = re.compile(r"[(,]\s*([A-Za-z_]\w*)\s*=\s*$")  # \s spans line breaks


def _named_by_caller(post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    """Prefix a parameter's construction error with the name the caller gives it, when the
    call sits in a dict literal (`"lr": Float(1.0, 0.1)`) or a keyword argument
    (`Space(lr=Float(1.0, 0.1))`): a space of twenty parameters names the wrong one."""

    @functools.wraps(post_init)
    def checked(self: Any) -> None:
        try:
            post_init(self)
        except SpaceError as exc:
            name = _caller_key()
            if name is None:
                raise
            raise _named(exc, name) from None

    return checked


def _caller_key() -> str | None:
    """The dict key or keyword the parameter being built is given in the user's source."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or frame.f_code.co_filename.startswith("<")):
        frame = frame.f_back  # this module, then the dataclass's generated __init__
    if frame is None or os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        return None  # hyperlaw's own calls name the parameter with param_context
    positions = list(frame.f_code.co_positions())
    index = frame.f_lasti // 2
    if index >= len(positions):
        return None
    line, _, column, _ = positions[index]
    if line is None or column is None:
        return None
    filename = frame.f_code.co_filename
    text = linecache.getline(filename, line).encode("utf-8")[:column].decode("utf-8", "ignore")
    for previous in range(line - 1, max(line - 3, 0), -1):  # the key may be a line above
        text = linecache.getline(filename, previous) + text
    match = _DICT_KEY.search(text) or _KEYWORD.search(text)
    return None if match is None else match.group(match.lastindex or 1)


class Param:
    """Base class of the parameter types `Float`, `Int`, `Choice` and `Const`."""

    __slots__ = ()
    kind: ClassVar[str] = ""
    is_dim: ClassVar[bool] = True
    when: Mapping[str, tuple[Any, ...]] | None
    _sig: tuple[Any, ...]
    _when_sig: frozenset

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._sig == other._sig and self._when_sig == other._when_sig

    def __hash__(self) -> int:
        return hash((self.kind, self._sig, self._when_sig))

    def _when_repr(self) -> str:
        return "" if self.when is None else f", when={_fmt_when(self.when)}"

    @property
    def is_finite(self) -> bool:
        """Whether the domain has finitely many values."""
        return self.n_values is not None

    @property
    def n_values(self) -> int | None:
        """Number of values in the domain; None when continuous."""
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw a value from the domain."""
        return self.from_unit(rng.random())

    def contains(self, value: Any) -> bool:
        """Whether `value` belongs to the domain."""
        raise NotImplementedError

    def to_unit(self, value: Any) -> float:
        """Map a domain value to [0, 1]."""
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        """Map a number in [0, 1] (clipped) back to a domain value."""
        raise NotImplementedError

    def grid(self, resolution: int | None = None) -> list[Any]:
        """Values to enumerate in a grid search."""
        raise NotImplementedError

    def describe(self) -> str:
        """Human-readable description of the domain."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable description; inverse of `param_from_dict`."""
        raise NotImplementedError

    def canonical(self, value: Any) -> Any:
        """The domain's own representation of a contained `value`."""
        return value


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Float(Param):
    """A real number in [low, high]; log-uniform when `log`, on a grid when `step`.

    Attributes:
        low: Lower bound (included).
        high: Upper bound (included).
        log: Sample on a log scale (needs `low > 0`).
        step: Values on the grid `low, low + step, ...` (it must divide the range).
        when: Condition on other parameters, `{parent: value}` or `{parent: [values]}`: the
            parameter is active only when every parent is active and takes one of them.

    Example:
        >>> import hyperlaw as hl
        >>> hl.Float(1e-5, 1e-1, log=True).contains(3e-4)
        True
        >>> hl.Float(0.0, 0.5, step=0.25).grid()
        [0.0, 0.25, 0.5]
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None
    _: KW_ONLY
    when: Mapping[str, Any] | None = None
    _sig: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    _when_sig: frozenset = field(init=False, repr=False, compare=False)
    _n: int = field(init=False, repr=False, compare=False)
    _a: float = field(init=False, repr=False, compare=False)
    _span: float = field(init=False, repr=False, compare=False)
    _grid_info: tuple[int | None, float] = field(init=False, repr=False, compare=False)

    kind: ClassVar[str] = "float"

    @_named_by_caller
    def __post_init__(self) -> None:
        low, high, log, step = self.low, self.high, self.log, self.step

        def prefix() -> str:
            return _call_repr("Float", low=low, high=high, log=log, step=step)

        low = _real(low, "low", prefix)
        high = _real(high, "high", prefix)
        if not isinstance(log, bool | np.bool_):
            raise SpaceError(f"{prefix()}: log must be True or False, got {log!r}")
        log = bool(log)
        if low >= high:
            fix = "swap the bounds" if low > high else "use Const for a fixed value"
            raise SpaceError(f"{prefix()}: low must be below high; {fix}")
        if log and low <= 0:
            raise SpaceError(
                f"{prefix()}: log=True needs low > 0; raise low to a small positive number "
                "(e.g. 1e-6) or drop log"
            )
        n = 0
        decimals: int | None = None
        tol = 0.0
        if step is not None:
            if log:
                raise SpaceError(
                    f"{prefix()}: step and log cannot be combined; drop one of them "
                    "(Int(..., log=True) covers log-spaced integers)"
                )
            step = _real(step, "step", prefix)
            if step <= 0:
                raise SpaceError(f"{prefix()}: step must be positive; pass step > 0 or None")
            ratio = (high - low) / step
            nearest = round(ratio)
            if nearest < 1:
                raise SpaceError(
                    f"{prefix()}: step exceeds high - low = {high - low!r}; use a smaller step"
                )
            d = max(_decimals(low), _decimals(step))
            decimals = d if d <= 15 else None
            if abs(ratio - nearest) > 1e-9 * max(1.0, ratio):
                fixed = low + math.floor(ratio) * step
                fixed = fixed if decimals is None else round(fixed, decimals)
                raise SpaceError(
                    f"{prefix()}: step does not divide high - low = {high - low!r}; pick a "
                    f"step that divides the range or set high={fixed!r}"
                )
            n = int(nearest) + 1
            tol = min(1e-9 * max(abs(low), abs(high), step), 1e-6 * step)
        when, when_sig = _normalize_when(self.when, prefix)
        a, span = (math.log(low), math.log(high) - math.log(low)) if log else (low, high - low)
        setattr_ = object.__setattr__
        if low is not self.low:
            setattr_(self, "low", low)
        if high is not self.high:
            setattr_(self, "high", high)
        if log is not self.log:
            setattr_(self, "log", log)
        if step is not self.step:
            setattr_(self, "step", step)
        if when is not None:
            setattr_(self, "when", when)
        setattr_(self, "_sig", (low, high, log, step))
        setattr_(self, "_when_sig", when_sig)
        setattr_(self, "_n", n)
        setattr_(self, "_a", a)
        setattr_(self, "_span", span)
        setattr_(self, "_grid_info", (decimals, tol))

    def __repr__(self) -> str:
        extra = ", log=True" if self.log else ""
        extra += f", step={self.step!r}" if self.step is not None else ""
        return f"Float({self.low!r}, {self.high!r}{extra}{self._when_repr()})"

    @property
    def n_values(self) -> int | None:
        return self._n or None

    def _grid_value(self, i: int) -> float:
        if i >= self._n - 1:
            return self.high
        v = self.low + i * self.step  # type: ignore[operator]
        decimals = self._grid_info[0]
        return v if decimals is None else round(v, decimals)

    def contains(self, value: Any) -> bool:
        if not _is_real(value):
            return False
        v = float(value)
        if self.step is None:
            return self.low <= v <= self.high
        if not math.isfinite(v):
            return False
        i = round((v - self.low) / self.step)
        return 0 <= i < self._n and abs(v - self._grid_value(i)) <= self._grid_info[1]

    def canonical(self, value: Any) -> float:
        if self.step is None:
            return float(value)
        return self._grid_value(round((float(value) - self.low) / self.step))

    def to_unit(self, value: Any) -> float:
        if self.step is not None:
            i = min(max(round((value - self.low) / self.step), 0), self._n - 1)
            return (i + 0.5) / self._n
        if self.log:
            if value <= self.low:
                return 0.0
            u = (math.log(value) - self._a) / self._span
        else:
            u = (value - self._a) / self._span
        return 0.0 if u < 0.0 else (1.0 if u > 1.0 else float(u))

    def from_unit(self, u: float) -> float:
        u = _clip_unit(u)
        if self.step is not None:
            return self._grid_value(int(u * self._n))
        v = math.exp(self._a + u * self._span) if self.log else self._a + u * self._span
        if v <= self.low or u == 0.0:
            return self.low
        return self.high if v >= self.high or u == 1.0 else v

    def grid(self, resolution: int | None = None) -> list[float]:
        _check_resolution(resolution)
        if self.step is not None:
            n = self._n
            if resolution is None or n <= resolution:
                return [self._grid_value(i) for i in range(n)]
            targets = np.linspace(0, n - 1, resolution).tolist()
            return [self._grid_value(i) for i in _spread_indices(targets, n)]
        if resolution is None:
            raise SpaceError(
                f"{self!r}: parameter is continuous; pass resolution=k to grid it (or give it "
                "a step)"
            )
        if resolution == 1:
            return [self.from_unit(0.5)]
        units = np.linspace(0.0, 1.0, resolution).tolist()
        values = [self.from_unit(u) for u in units]
        values[0], values[-1] = self.low, self.high
        return values

    def describe(self) -> str:
        return _describe_range("a float", self, self.step is not None)

    def to_dict(self) -> dict[str, Any]:
        return _range_dict("float", self)


def _describe_range(kind: str, p: Float | Int, stepped: bool) -> str:
    text = f"{kind} in [{p.low!r}, {p.high!r}]"
    if stepped:
        text += f" on the grid low + k * {p.step!r}"
    return text + (" (log scale)" if p.log else "")


def _range_dict(kind: str, p: Float | Int) -> dict[str, Any]:
    return {"type": kind, "low": p.low, "high": p.high, "log": p.log, "step": p.step,
            "when": _when_to_json(p.when)}


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Int(Param):
    """An integer in [low, high] with a step; log-uniform when `log` (needs step=1).

    Attributes:
        low: Lower bound (included).
        high: Upper bound (included).
        log: Sample on a log scale (needs `low > 0` and `step=1`).
        step: Distance between the values (it must divide the range).
        when: Condition on other parameters, `{parent: value}` or `{parent: [values]}`: the
            parameter is active only when every parent is active and takes one of them.

    Example:
        >>> import hyperlaw as hl
        >>> hl.Int(16, 64, step=16).grid()
        [16, 32, 48, 64]
    """

    low: int
    high: int
    log: bool = False
    step: int = 1
    _: KW_ONLY
    when: Mapping[str, Any] | None = None
    _sig: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    _when_sig: frozenset = field(init=False, repr=False, compare=False)
    _n: int = field(init=False, repr=False, compare=False)
    _a: float = field(init=False, repr=False, compare=False)
    _span: float = field(init=False, repr=False, compare=False)

    kind: ClassVar[str] = "int"

    @_named_by_caller
    def __post_init__(self) -> None:
        low, high, log, step = self.low, self.high, self.log, self.step

        def prefix() -> str:
            return _call_repr("Int", low=low, high=high, log=log, step=step)

        low = _integer(low, "low", prefix)
        high = _integer(high, "high", prefix)
        if not isinstance(log, bool | np.bool_):
            raise SpaceError(f"{prefix()}: log must be True or False, got {log!r}")
        log = bool(log)
        step = _integer(step, "step", prefix)
        if low > high:
            raise SpaceError(f"{prefix()}: low must not exceed high; swap the bounds")
        if max(abs(low), abs(high)) > _MAX_EXACT_INT:
            raise SpaceError(f"{prefix()}: bounds beyond 2**53 cannot be sampled exactly; use "
                             "Float(log=True) for such magnitudes")
        if step < 1:
            raise SpaceError(f"{prefix()}: step must be a positive integer; pass step >= 1")
        if log and step != 1:
            raise SpaceError(
                f"{prefix()}: log=True requires step=1; drop step or drop log"
            )
        if log and low <= 0:
            raise SpaceError(
                f"{prefix()}: log=True needs low >= 1; raise low to 1 or drop log"
            )
        if (high - low) % step:
            fixed = low + (high - low) // step * step
            raise SpaceError(
                f"{prefix()}: step does not divide high - low = {high - low}; set high={fixed} "
                "or pick a step that divides the range"
            )
        when, when_sig = _normalize_when(self.when, prefix)
        if log:
            a = math.log(low - 0.5)
            span = math.log(high + 0.5) - a
        else:
            a, span = 0.0, 0.0
        setattr_ = object.__setattr__
        if low is not self.low:
            setattr_(self, "low", low)
        if high is not self.high:
            setattr_(self, "high", high)
        if log is not self.log:
            setattr_(self, "log", log)
        if step is not self.step:
            setattr_(self, "step", step)
        if when is not None:
            setattr_(self, "when", when)
        setattr_(self, "_sig", (low, high, log, step))
        setattr_(self, "_when_sig", when_sig)
        setattr_(self, "_n", (high - low) // step + 1)
        setattr_(self, "_a", a)
        setattr_(self, "_span", span)

    def __repr__(self) -> str:
        extra = ", log=True" if self.log else ""
        extra += f", step={self.step!r}" if self.step != 1 else ""
        return f"Int({self.low!r}, {self.high!r}{extra}{self._when_repr()})"

    @property
    def n_values(self) -> int:
        return self._n

    def contains(self, value: Any) -> bool:
        if not _is_integer(value):
            return False
        v = int(value)
        return self.low <= v <= self.high and (v - self.low) % self.step == 0

    def canonical(self, value: Any) -> int:
        return int(value)

    def to_unit(self, value: Any) -> float:
        if self.log:
            v = min(max(value, self.low), self.high)
            center = 0.5 * (math.log(v - 0.5) + math.log(v + 0.5))
            return (center - self._a) / self._span
        i = min(max((value - self.low) // self.step, 0), self._n - 1)
        return (i + 0.5) / self._n

    def from_unit(self, u: float) -> int:
        u = _clip_unit(u)
        if self.log:
            v = math.floor(math.exp(self._a + u * self._span) + 0.5)
            return self.low if v < self.low else (self.high if v > self.high else v)
        i = int(u * self._n)
        return self.low + self.step * (i if i < self._n else self._n - 1)

    def grid(self, resolution: int | None = None) -> list[int]:
        _check_resolution(resolution)
        n = self._n
        if resolution is None or n <= resolution:
            return list(range(self.low, self.high + 1, self.step))
        if self.log:
            targets = (np.geomspace(self.low, self.high, resolution) - self.low).tolist()
        else:
            targets = np.linspace(0, n - 1, resolution).tolist()
        return [self.low + self.step * i for i in _spread_indices(targets, n)]

    def describe(self) -> str:
        return _describe_range("an int", self, self.step != 1)

    def to_dict(self) -> dict[str, Any]:
        return _range_dict("int", self)


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Choice(Param):
    """One of an ordered list of JSON scalars (str, int, float, bool, None), kept as a tuple.

    Attributes:
        values: The choices, in a fixed order, without duplicates.
        when: Condition on other parameters, `{parent: value}` or `{parent: [values]}`: the
            parameter is active only when every parent is active and takes one of them.

    Example:
        >>> import hyperlaw as hl
        >>> hl.Choice(["adamw", "sgd"]).values
        ('adamw', 'sgd')
    """

    values: Sequence[Any]
    _: KW_ONLY
    when: Mapping[str, Any] | None = None
    _sig: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    _when_sig: frozenset = field(init=False, repr=False, compare=False)
    _index: dict[Any, int] = field(init=False, repr=False, compare=False)
    _k: int = field(init=False, repr=False, compare=False)

    kind: ClassVar[str] = "choice"

    @_named_by_caller
    def __post_init__(self) -> None:
        raw = self.values

        def prefix() -> str:
            return f"Choice({raw!r})"

        if isinstance(raw, np.ndarray):
            raw = raw.tolist()
        if type(raw) is not list and type(raw) is not tuple and (
            isinstance(raw, str | bytes) or not isinstance(raw, Sequence)
        ):
            raise SpaceError(
                f"{prefix()}: values must be a list of choices, got {type(raw).__name__}; "
                "pass e.g. Choice(['adam', 'sgd'])"
            )
        if len(raw) == 0:
            raise SpaceError(f"{prefix()}: no values; pass at least one choice")
        values = tuple(_scalar(v, "choice value") for v in raw)
        index: dict[Any, int] = {}
        for i, v in enumerate(values):
            key = _vkey(v)
            if key in index:
                raise SpaceError(f"{prefix()}: duplicate value {v!r}; list each value once")
            index[key] = i
        when, when_sig = _normalize_when(self.when, prefix)
        setattr_ = object.__setattr__
        setattr_(self, "values", values)
        setattr_(self, "when", when)
        setattr_(self, "_sig", tuple(_tkey(v) for v in values))
        setattr_(self, "_when_sig", when_sig)
        setattr_(self, "_index", index)
        setattr_(self, "_k", len(values))

    def __repr__(self) -> str:
        return f"Choice({list(self.values)!r}{self._when_repr()})"

    @property
    def n_values(self) -> int:
        return self._k

    def index(self, value: Any) -> int:
        """Position of `value` in `values`; raise SpaceError if absent."""
        try:
            return self._index[_vkey(value)]
        except (KeyError, TypeError):
            raise SpaceError(
                f"{value!r} is not one of {list(self.values)!r}; pass one of the listed values"
            ) from None

    def contains(self, value: Any) -> bool:
        try:
            return _vkey(value) in self._index
        except TypeError:
            return False

    def canonical(self, value: Any) -> Any:
        return self.values[self.index(value)]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / self._k

    def from_unit(self, u: float) -> Any:
        i = int(_clip_unit(u) * self._k)
        return self.values[i if i < self._k else self._k - 1]

    def grid(self, resolution: int | None = None) -> list[Any]:
        _check_resolution(resolution)
        return list(self.values)

    def describe(self) -> str:
        return f"one of {list(self.values)!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values), "when": _when_to_json(self.when)}


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class Const(Param):
    """A fixed value recorded with every trial; not a dimension of the search.

    Attributes:
        value: The value, a JSON scalar.
        when: Condition on other parameters, `{parent: value}` or `{parent: [values]}`: the
            parameter is active only when every parent is active and takes one of them.
    """

    value: Any
    _: KW_ONLY
    when: Mapping[str, Any] | None = None
    _sig: tuple[Any, ...] = field(init=False, repr=False, compare=False)
    _when_sig: frozenset = field(init=False, repr=False, compare=False)

    kind: ClassVar[str] = "const"
    is_dim: ClassVar[bool] = False

    @_named_by_caller
    def __post_init__(self) -> None:
        raw = self.value

        def prefix() -> str:
            return f"Const({raw!r})"

        value = _scalar(raw, "constant value")
        when, when_sig = _normalize_when(self.when, prefix)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "when", when)
        object.__setattr__(self, "_sig", (_tkey(value),))
        object.__setattr__(self, "_when_sig", when_sig)

    def __repr__(self) -> str:
        return f"Const({self.value!r}{self._when_repr()})"

    @property
    def n_values(self) -> int:
        return 1

    def sample(self, rng: np.random.Generator) -> Any:
        return self.value

    def contains(self, value: Any) -> bool:
        try:
            return bool(_vkey(value) == _vkey(self.value))
        except (TypeError, ValueError):
            return False

    def canonical(self, value: Any) -> Any:
        return self.value

    def to_unit(self, value: Any) -> float:
        return 0.5

    def from_unit(self, u: float) -> Any:
        return self.value

    def grid(self, resolution: int | None = None) -> list[Any]:
        return [self.value]

    def describe(self) -> str:
        return f"the constant {self.value!r}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "const", "value": self.value, "when": _when_to_json(self.when)}


_FIELDS: dict[str, tuple[type[Param], frozenset[str], frozenset[str]]] = {
    "float": (Float, frozenset({"low", "high"}), frozenset({"log", "step", "when"})),
    "int": (Int, frozenset({"low", "high"}), frozenset({"log", "step", "when"})),
    "choice": (Choice, frozenset({"values"}), frozenset({"when"})),
    "const": (Const, frozenset({"value"}), frozenset({"when"})),
}


def param_from_dict(d: Mapping[str, Any]) -> Param:
    """Build a parameter from its `to_dict` form."""
    if not isinstance(d, Mapping):
        raise SpaceError(
            f"parameter description must be a mapping, got {d!r}; pass e.g. "
            "{'type': 'float', 'low': 0.0, 'high': 1.0}"
        )
    kind = d.get("type")
    if kind not in _FIELDS:
        raise SpaceError(
            f"unknown parameter type {kind!r}; use one of {sorted(_FIELDS)} as 'type'"
        )
    cls, required, optional = _FIELDS[kind]
    keys = set(d) - {"type"}
    missing = required - keys
    if missing:
        raise SpaceError(f"{kind} parameter is missing {sorted(missing)}; add them")
    unknown = keys - required - optional
    if unknown:
        raise SpaceError(
            f"{kind} parameter has unknown keys {sorted(unknown)}; allowed keys are "
            f"{sorted(required | optional)}"
        )
    kwargs = {k: d[k] for k in keys if not (k in optional and d[k] is None)}
    return cls(**kwargs)


def param_matches(declared: Param, requested: Param) -> bool:
    """Whether two parameters define the same domain, ignoring `when`."""
    return type(declared) is type(requested) and declared._sig == requested._sig


@contextmanager
def param_context(name: str) -> Iterator[None]:
    """Prefix SpaceErrors raised inside the block with ``parameter '<name>': ``."""
    try:
        yield
    except SpaceError as exc:
        raise _named(exc, name) from None


def _named(exc: SpaceError, name: str) -> SpaceError:
    message = str(exc)
    if message.startswith(f"parameter {name!r}"):
        return exc
    try:
        return type(exc)(f"parameter {name!r}: {message}")
    except Exception:  # pragma: no cover - subclasses with custom signatures
        return SpaceError(f"parameter {name!r}: {message}")


# --- space ----------------------------------------------------------------------------

_Cond = tuple[tuple[str, frozenset], ...]


def _conds_hold(conds: _Cond, active: Mapping[str, Any]) -> bool:
    for parent, allowed in conds:
        value = active.get(parent, _MISSING)
        if value is _MISSING:
            return False
        try:
            if _vkey(value) not in allowed:
                return False
        except TypeError:
            return False
    return True


def _continuous_parent_message(name: str, parent: str, values: tuple[Any, ...],
                               parent_param: Param) -> str:
    """Why `name` cannot be conditioned on the continuous `parent`, and what to write."""
    shown = values[0] if len(values) == 1 else list(values)
    return (
        f"parameter {name!r}: when={{{parent!r}: {shown!r}}} conditions on parent {parent!r}, "
        f"which is {parent_param.describe()}: a condition means 'equals one of these values' "
        "(never a range), and a continuous parent almost never equals one, so "
        f"{name!r} would almost never be active. To tie {name!r} to a range of {parent!r}, "
        f"add a Choice such as {parent + '_range'!r}: Choice(['low', 'high']), condition "
        f"{name!r} on it, and split {parent!r} into one Float per range (each with its own "
        f"when); or give {parent!r} a step so that it takes a few exact values"
    )


#: the parameter holding how many copies a `Repeat` has: ``<name>.count``
REPEAT_COUNT = "count"


@dataclass(frozen=True)
class Repeat:
    """A variable number of copies of a sub-space, each with its own values (e.g. layers).

    ``"layers": Repeat(Space({"width": Int(8, 512, log=True), "act": Choice(["relu",
    "tanh"])}), min=1, max=4)`` is spelled out as ``layers.count`` (an `Int` from `min` to
    `max`) and ``layers.<i>.width``, ``layers.<i>.act`` for i < `max`, the copies beyond
    `min` active only when ``layers.count`` exceeds i. ``trial.params["layers"]`` reads them
    back as a list of ``layers.count`` dicts. `template` may itself hold nested spaces and
    repeats.
    """

    template: Any
    min: int = 1
    max: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.template, Space):
            if not isinstance(self.template, Mapping):
                raise SpaceError(f"Repeat expects a Space (or a mapping of parameters) to "
                                 f"repeat, got {type(self.template).__name__}")
            object.__setattr__(self, "template", Space(self.template))
        for label, value in (("min", self.min), ("max", self.max)):
            if not _is_integer(value) or value < 0:
                raise SpaceError(f"Repeat {label} must be an int >= 0, got {value!r}")
        if self.max < 1 or self.min > self.max:
            raise SpaceError(f"Repeat needs 0 <= min <= max and max >= 1, got min={self.min} "
                             f"and max={self.max}")
        if not len(self.template):
            raise SpaceError("Repeat of an empty Space: give the copies at least one parameter")


def _spell_out(items: Mapping[str, Any]) -> dict[str, Any]:
    """The flat parameters of a space whose values may be nested spaces and repeats."""
    flat: dict[str, Any] = {}
    for name, value in items.items():
        if isinstance(value, Space):
            flat.update(_prefixed(value, f"{name}.", None))
        elif isinstance(value, Repeat):
            count = f"{name}.{REPEAT_COUNT}"
            flat[count] = (Int(value.min, value.max) if value.min < value.max
                           else Const(value.min))
            for i in range(value.max):
                active = None if i < value.min else {count: list(range(i + 1, value.max + 1))}
                flat.update(_prefixed(value.template, f"{name}.{i}.", active))
        else:
            flat[name] = value
    return flat


def _prefixed(space: Space, prefix: str,
              active: Mapping[str, list[int]] | None) -> dict[str, Param]:
    """`space`'s parameters under `prefix`, conditions on their siblings renamed, and
    `active` (the condition that the copy exists) added."""
    out: dict[str, Param] = {}
    for name in space._params:
        param = space._params[name]
        when = {(prefix + parent if parent in space._params else parent): list(values)
                for parent, values in (param.when or {}).items()}
        when.update(active or {})
        out[prefix + name] = dataclasses.replace(param, when=when or None)  # type: ignore[type-var]
    return out


def nest(params: Mapping[str, Any]) -> dict[str, Any]:
    """A flat configuration with dotted names read as nested dicts, and each `Repeat`
    (``name.count`` beside ``name.0.*``, ``name.1.*``...) as a list of ``count`` dicts.

        >>> nest({"lr": 0.1, "layers.count": 2, "layers.0.width": 64, "layers.1.width": 8})
        {'lr': 0.1, 'layers': [{'width': 64}, {'width': 8}]}
    """
    root: dict[str, Any] = {}
    for name, value in params.items():
        node = root
        *groups, leaf = str(name).split(".")
        for group in groups:
            node = node.setdefault(group, {})
            if not isinstance(node, dict):
                break  # a flat name that is also a group's prefix: kept flat only
        else:
            node[leaf] = value
    return _as_lists(root)


def _as_lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    node = {key: _as_lists(value) for key, value in node.items()}
    count = node.get(REPEAT_COUNT)
    copies = [key for key in node if key != REPEAT_COUNT]
    if _is_integer(count) and all(key.isdigit() for key in copies):
        return [node.get(str(i), {}) for i in range(count)]
    return node


def _flat_values(params: Mapping[str, Any], known: Mapping[str, Param],
                 prefix: str = "") -> dict[str, Any]:
    """A configuration given with nested groups (a dict per nested space, a list of dicts per
    `Repeat`, as `nest` reads it) in the flat names of the space's parameters."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if name in known:
            flat[name] = value
        elif isinstance(value, Mapping):
            flat.update(_flat_values(value, known, f"{name}."))
        elif isinstance(value, list | tuple) and f"{name}.{REPEAT_COUNT}" in known:
            count = known[f"{name}.{REPEAT_COUNT}"]
            if not count.contains(len(value)):
                raise SpaceError(f"{name!r} has {len(value)} copies; the space allows "
                                 f"{count.describe()}: give a list of that length")
            flat[f"{name}.{REPEAT_COUNT}"] = len(value)
            for i, copy in enumerate(value):
                if not isinstance(copy, Mapping):
                    raise SpaceError(f"{name}[{i}] must be a dict of the repeated "
                                     f"parameters, got {copy!r}")
                flat.update(_flat_values(copy, known, f"{name}.{i}."))
        else:
            flat[name] = value
    return flat


class Params(dict[str, Any]):
    """A configuration: its flat parameter names, and the groups of nested spaces and
    repeats by their own name (``params["layers"]`` is the list `nest` gives)."""

    def __missing__(self, key: str) -> Any:
        if isinstance(key, str) and "." not in key:
            nested = nest(self)
            if key in nested:
                return nested[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key` (a flat name or a group), else `default`."""
        try:
            return self[key]
        except KeyError:
            return default


class Space(Mapping[str, Param]):
    """An immutable, validated mapping of parameter names to parameters.

    Iteration follows `order` (parents before children, otherwise insertion order).
    Equality and `hash` ignore the insertion order. A space validates itself when built and
    raises `SpaceError` (or `ConditionError`) naming the parameter and the fix.

    Args:
        params: A mapping of names to parameters.
        **kwargs: More parameters by name.

    Example:
        >>> import hyperlaw as hl
        >>> space = hl.Space({
        ...     "lr": hl.Float(1e-5, 1e-1, log=True),
        ...     "optimizer": hl.Choice(["adamw", "sgd"]),
        ...     "momentum": hl.Float(0.0, 0.99, when={"optimizer": "sgd"}),
        ... })
        >>> space.active_names({"optimizer": "adamw"})
        ('lr', 'optimizer')
        >>> hl.Space.from_json(space.to_json()) == space
        True
    """

    __slots__ = (
        "_canon",
        "_conds",
        "_dims",
        "_hash",
        "_order",
        "_params",
        "_plan",
    )

    def __init__(self, params: Mapping[str, Param] | None = None, /, **kwargs: Param) -> None:
        items: dict[str, Param] = {}
        if params is not None:
            if not isinstance(params, Mapping):
                raise SpaceError(
                    f"Space expects a mapping of name to parameter, got {type(params).__name__}; "
                    "pass e.g. Space({'lr': Float(1e-4, 1e-1, log=True)})"
                )
            items.update(params)
        items.update(kwargs)
        items = _spell_out(items)
        for name, param in items.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(
                    f"parameter name {name!r} is invalid; names must be non-empty strings"
                )
            if not isinstance(param, Param):
                hint = (
                    "; use Space.from_dict for dict descriptions"
                    if isinstance(param, Mapping)
                    else ""
                )
                raise SpaceError(
                    f"parameter {name!r}: expected Float, Int, Choice, Const, a nested Space "
                    f"or a Repeat, got {param!r}{hint}"
                )
        self._params = items
        self._check_conditions()
        self._order = self._topological_order()
        self._dims = tuple(n for n in self._order if items[n].is_dim)
        dim_index = {n: j for j, n in enumerate(self._dims)}
        self._conds: dict[str, _Cond] = {
            name: tuple(
                (parent, frozenset(_vkey(v) for v in values))
                for parent, values in (param.when or {}).items()
            )
            for name, param in items.items()
        }
        self._plan = tuple(
            (n, items[n], dim_index.get(n, -1), self._conds[n]) for n in self._order
        )
        canon = sorted(({"name": n, **p.to_dict()} for n, p in items.items()),
                       key=lambda e: e["name"])
        self._canon = json.dumps({"params": canon}, sort_keys=True, separators=(",", ":"))
        self._hash = hashlib.sha256(self._canon.encode()).hexdigest()

    # --- construction checks ---
    def _check_conditions(self) -> None:
        items = self._params
        known = list(items)
        for name, param in items.items():
            for parent, values in (param.when or {}).items():
                if parent == name:
                    raise SpaceError(
                        f"parameter {name!r}: when refers to {name!r} itself; a parameter "
                        "cannot depend on its own value, remove it from `when`"
                    )
                if parent not in items:
                    raise SpaceError(
                        f"parameter {name!r}: when refers to unknown parent {parent!r}; add "
                        f"{parent!r} to the space or fix the name (known: {known})"
                    )
                parent_param = items[parent]
                if not parent_param.is_finite:
                    raise ConditionError(_continuous_parent_message(name, parent, values,
                                                                    parent_param))
                for v in values:
                    if not parent_param.contains(v):
                        raise SpaceError(
                            f"parameter {name!r}: when requires {parent!r} == {v!r}, but "
                            f"parent {parent!r} is {parent_param.describe()}; use a value "
                            "the parent can take"
                        )

    def _topological_order(self) -> tuple[str, ...]:
        names = list(self._params)
        position = {n: i for i, n in enumerate(names)}
        children: dict[str, list[str]] = {n: [] for n in names}
        indegree = dict.fromkeys(names, 0)
        for name, param in self._params.items():
            for parent in param.when or {}:
                children[parent].append(name)
                indegree[name] += 1
        heap = [position[n] for n in names if indegree[n] == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            name = names[heapq.heappop(heap)]
            order.append(name)
            for child in children[name]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(heap, position[child])
        if len(order) < len(names):
            remaining = {n for n in names if indegree[n] > 0}
            path: list[str] = []
            node = next(n for n in names if n in remaining)
            while node not in path:
                path.append(node)
                node = next(p for p in self._params[node].when or {} if p in remaining)
            cycle = [*path[path.index(node):], node]
            raise SpaceError(
                f"parameters {' -> '.join(repr(n) for n in cycle)} form a cycle of `when` "
                "conditions (each depends on the next); remove one of these conditions"
            )
        return tuple(order)

    # --- mapping protocol ---
    def __getitem__(self, name: str) -> Param:
        return self._params[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Space):
            return NotImplemented
        return self._canon == other._canon

    def __hash__(self) -> int:
        return hash(self._canon)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {self._params[n]!r}" for n in self._params)
        return f"Space({{{inner}}})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Space, (dict(self._params),))

    # --- structure ---
    @classmethod
    def empty(cls) -> Space:
        """A space with no parameters."""
        return cls({})

    @property
    def order(self) -> tuple[str, ...]:
        """Names in topological order: parents before children, otherwise insertion order."""
        return self._order

    @property
    def dims(self) -> tuple[str, ...]:
        """Names of the non-constant parameters, in `order`; the columns of `encode`."""
        return self._dims

    @property
    def dim(self) -> int:
        """Number of dimensions."""
        return len(self._dims)

    @property
    def n_values(self) -> int | None:
        """Number of combinations of parameter values (an upper bound when some parameters
        are conditional); None when a parameter is continuous."""
        sizes = [self._params[name].n_values for name in self._dims]
        counts = [size for size in sizes if size is not None]
        return math.prod(counts) if len(counts) == len(sizes) else None

    @property
    def hash(self) -> str:
        """SHA-256 hex digest of the canonical JSON (independent of insertion order)."""
        return self._hash

    def with_param(self, name: str, param: Param) -> Space:
        """Return a space that also holds `param` under `name`.

        Returns `self` when `name` already holds an equal parameter (a `param`
        without `when` matches a declared conditional one); raises
        SpaceMismatchError when the definitions differ.
        """
        existing = self._params.get(name)
        if existing is not None:
            if existing == param or (param.when is None and param_matches(existing, param)):
                return self
            raise SpaceMismatchError(
                f"parameter {name!r} is declared as {existing!r} but requested as {param!r}; "
                "keep the suggest call's arguments identical to the declared space (or drop "
                "the declaration)"
            )
        return Space({**self._params, name: param})

    # --- activity ---
    def _conds_of(self, name: str) -> _Cond:
        try:
            return self._conds[name]
        except KeyError:
            raise self._unknown(name) from None

    def _unknown(self, name: Any) -> SpaceError:
        known = list(self._params)
        close = get_close_matches(str(name), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return SpaceError(f"unknown parameter {name!r}; {hint}known parameters: {known}")

    def is_active(self, name: str, params: Mapping[str, Any]) -> bool:
        """Whether `name` is active given the parent values in `params`."""
        for parent, allowed in self._conds_of(name):
            if not self.is_active(parent, params):
                return False
            value = params.get(parent, _MISSING)
            if value is _MISSING:
                parent_param = self._params[parent]
                if not isinstance(parent_param, Const):
                    return False
                value = parent_param.value
            try:
                if _vkey(value) not in allowed:
                    return False
            except TypeError:
                return False
        return True

    def active_names(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Names (in `order`) of the parameters active given `params`."""
        return tuple(n for n in self._order if self.is_active(n, params))

    # --- sampling ---
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw a configuration: only active parameters, in `order`."""
        out: dict[str, Any] = {}
        for name, param, _, conds in self._plan:
            if conds and not _conds_hold(conds, out):
                continue
            out[name] = param.sample(rng)
        return out

    def complete(self, params: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Validate a partial configuration and sample its missing active parameters."""
        given = self.validate_params(params, partial=True)
        out: dict[str, Any] = {}
        for name, param, _, conds in self._plan:
            if conds and not _conds_hold(conds, out):
                continue
            value = given.get(name, _MISSING)
            out[name] = param.sample(rng) if value is _MISSING else value
        return out

    # --- unit-cube encoding ---
    def _encode_row(self, params: Mapping[str, Any]) -> list[float]:
        row = [math.nan] * len(self._dims)
        active: dict[str, Any] = {}
        for name, param, j, conds in self._plan:
            if conds and not _conds_hold(conds, active):
                continue
            if j < 0:
                value = params.get(name, param.value)  # type: ignore[attr-defined]
            else:
                value = params.get(name, _MISSING)
                if value is _MISSING:
                    raise SpaceError(
                        f"parameter {name!r} is active but missing from {dict(params)!r}; "
                        "pass a complete configuration (see Space.complete)"
                    )
                try:
                    row[j] = param.to_unit(value)
                except SpaceError as exc:
                    raise _named(exc, name) from None
            active[name] = value
        return row

    def _decode_row(self, row: list[float]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, param, j, conds in self._plan:
            if conds and not _conds_hold(conds, out):
                continue
            if j < 0:
                out[name] = param.value  # type: ignore[attr-defined]
                continue
            u = row[j]
            if u != u:
                raise SpaceError(
                    f"parameter {name!r} is active but its coordinate {j} is NaN; NaN marks "
                    "inactive dimensions only, pass a number in [0, 1]"
                )
            out[name] = param.from_unit(u)
        return out

    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """Map a configuration to a float64 vector of shape (dim,) in [0, 1].

        Columns follow `dims`; NaN marks a dimension that is inactive.
        """
        return np.array(self._encode_row(params), dtype=np.float64)

    def encode_many(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Encode several configurations into an array of shape (n, dim)."""
        rows = [self._encode_row(p) for p in configs]
        if not rows:
            return np.empty((0, len(self._dims)), dtype=np.float64)
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(self._dims))

    def _check_width(self, width: int) -> None:
        if width != len(self._dims):
            raise SpaceError(
                f"expected {len(self._dims)} coordinates (one per dimension {list(self._dims)}), "
                f"got {width}; pass a vector from this space's encode"
            )

    def decode(self, u: np.ndarray | Sequence[float]) -> dict[str, Any]:
        """Map a unit-cube vector back to a configuration of the active parameters.

        Coordinates of inactive dimensions are ignored; a NaN in an active one is an error.
        """
        arr = np.asarray(u, dtype=np.float64)
        if arr.ndim != 1:
            raise SpaceError(f"decode expects a 1-d vector, got shape {arr.shape}; use "
                             "decode_many for a 2-d array")
        self._check_width(arr.shape[0])
        return self._decode_row(arr.tolist())

    def decode_many(self, u: np.ndarray) -> list[dict[str, Any]]:
        """Decode an array of shape (n, dim) into a list of configurations."""
        arr = np.asarray(u, dtype=np.float64)
        if arr.ndim != 2:
            raise SpaceError(f"decode_many expects a 2-d array, got shape {arr.shape}; use "
                             "decode for a single vector")
        self._check_width(arr.shape[1])
        decode_row = self._decode_row
        return [decode_row(row) for row in arr.tolist()]

    # --- validation ---
    def validate_params(
        self, params: Mapping[str, Any], *, partial: bool = False
    ) -> dict[str, Any]:
        """Check a configuration against the space and return it ordered by `order`.

        Values are normalized (e.g. numpy scalars to Python ones) and constants are
        filled in. With `partial`, missing active parameters are allowed.
        """
        if not isinstance(params, Mapping):
            raise SpaceError(
                f"params must be a mapping of name to value, got {type(params).__name__}"
            )
        params = _flat_values(params, self._params)
        for key in params:
            if key not in self._params:
                raise self._unknown(key)
        out: dict[str, Any] = {}
        undecided: set[str] = set()  # activity unknown: a parent is missing (partial only)
        for name, param, _, conds in self._plan:
            state: bool | None = True  # None: undecided
            for parent, allowed in conds:
                if parent in undecided:
                    state = None
                    continue
                value = out.get(parent, _MISSING)
                if value is _MISSING or _vkey(value) not in allowed:
                    state = False
                    break
            given = name in params
            if state is False:
                if given:
                    raise SpaceError(
                        f"parameter {name!r} was given but is inactive: it requires "
                        f"{_fmt_when(param.when or {})}; remove it from the configuration "
                        "or change its parent"
                    )
                continue
            if state is None:
                if given:
                    missing = [p for p, _ in conds if p not in out]
                    raise SpaceError(
                        f"parameter {name!r} was given without its parent(s) {missing}; "
                        "pass the parent values too so that its activity is known"
                    )
                undecided.add(name)
                continue
            if given:
                value = params[name]
                if not param.contains(value):
                    raise SpaceError(
                        f"parameter {name!r}: value {value!r} is outside its domain "
                        f"{param!r}; pass {param.describe()}"
                    )
                out[name] = param.canonical(value)
            elif isinstance(param, Const):
                out[name] = param.value
            elif partial:
                undecided.add(name)
            else:
                raise SpaceError(
                    f"parameter {name!r} is active but missing; pass a value "
                    f"({param.describe()}) or use partial=True"
                )
        return out

    # --- grid ---
    def grid(self, resolution: int | None = None) -> list[dict[str, Any]]:
        """All combinations of active-parameter values, in a deterministic order.

        Inactive parameters are not enumerated. Continuous floats need `resolution`;
        integers with more than `resolution` values are thinned to `resolution` values.
        """
        _check_resolution(resolution)
        values: list[list[Any]] = []
        for name, param, _, _ in self._plan:
            try:
                values.append(param.grid(resolution))
            except SpaceError as exc:
                raise _named(exc, name) from None
        plan = self._plan
        out: list[dict[str, Any]] = []
        current: dict[str, Any] = {}

        def walk(i: int) -> None:
            if i == len(plan):
                out.append(dict(current))
                return
            name, _, _, conds = plan[i]
            if conds and not _conds_hold(conds, current):
                walk(i + 1)
                return
            for value in values[i]:
                current[name] = value
                walk(i + 1)
            del current[name]

        walk(0)
        return out

    # --- serialization ---
    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable description, parameters in insertion order."""
        return {"params": [{"name": n, **p.to_dict()} for n, p in self._params.items()]}

    def to_json(self) -> str:
        """Canonical JSON of `to_dict` (sorted keys, compact separators)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Space:
        """Inverse of `to_dict`; ``params`` may also be a mapping of name to description."""
        if not isinstance(d, Mapping) or "params" not in d:
            raise SpaceError(
                "a space description must be a mapping with a 'params' entry; pass the "
                "output of Space.to_dict()"
            )
        raw = d["params"]
        entries: list[tuple[Any, Any]]
        if isinstance(raw, Mapping):
            entries = list(raw.items())
        elif isinstance(raw, list):
            entries = []
            for entry in raw:
                if not isinstance(entry, Mapping) or "name" not in entry:
                    raise SpaceError(
                        f"space entry {entry!r} has no 'name'; each entry needs a 'name' "
                        "and a 'type'"
                    )
                entries.append((entry["name"], {k: v for k, v in entry.items() if k != "name"}))
        else:
            raise SpaceError(
                "'params' must be a list of parameter descriptions or a mapping of name to "
                "description"
            )
        params: dict[str, Param] = {}
        for name, desc in entries:
            if name in params:
                raise SpaceError(f"parameter {name!r} is listed twice; keep one entry")
            with param_context(str(name)):
                params[name] = param_from_dict(desc)
        return cls(params)

    @classmethod
    def from_json(cls, text: str) -> Space:
        """Inverse of `to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpaceError(
                f"space JSON is malformed ({exc}); pass the output of Space.to_json()"
            ) from None
        return cls.from_dict(data)
