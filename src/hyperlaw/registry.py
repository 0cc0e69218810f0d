"""Name -> class lookups for samplers and schedulers, shared by both registries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from hyperlaw.errors import HyperlawError

T = TypeVar("T")


def resolve(kind: str, registry: Mapping[str, type[T]], name: str | None,
            spec: Mapping[str, Any] | None, default: str,
            reserved: tuple[str, ...] = ("name",)) -> tuple[type[T], dict[str, Any]]:
    """The class named `name`, or (without a name) the one of a stored `spec` with its
    options (every key but the `reserved` ones); `default` when neither says."""
    options: dict[str, Any] = {}
    if name is None and spec:
        name = spec.get("name")
        options = {k: v for k, v in spec.items() if k not in reserved}
    name = name or default
    cls = registry.get(name)
    if cls is None:
        raise HyperlawError(
            f"unknown {kind} {name!r}; choose one of {sorted(registry)} or pass a "
            f"hyperlaw.{kind}s.{kind.capitalize()} instance"
        )
    return cls, options
