"""A sweep described in a YAML file, for `hyperlaw optimize --config` and `hyperlaw ask`.

    study: mlp-sweep
    storage: sqlite:///sweep.db
    command: python train.py --lr {lr} --width {width}
    metric: val_loss
    direction: minimize
    space:
      lr: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
      width: {type: int, low: 16, high: 256, log: true}
    sampler: tpe
    scheduler: {name: asha, max_budget: 20}
    n_trials: 50

Every key is optional in the file; options given on the command line win over it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperlaw.errors import HyperlawError, SpaceError
from hyperlaw.samplers import Sampler, make_sampler
from hyperlaw.schedulers import Scheduler, make_scheduler
from hyperlaw.space import Space

#: what each key of the file must hold, for the error that names a wrong one
KEYS: dict[str, str] = {
    "study": "the study's name", "storage": "a storage URL", "command": "the command line",
    "metric": "the key of the command's JSON lines", "direction": "minimize or maximize",
    "space": "a mapping of parameter name to description",
    "sampler": "a sampler name, or a mapping with its 'name' and options",
    "scheduler": "a scheduler name, or a mapping with its 'name' and options",
    "seed": "an int", "n_trials": "an int",
    "timeout": "seconds", "n_workers": "an int", "cwd": "a directory",
    "env": "a mapping of variable to value",
}


@dataclass(frozen=True)
class SweepConfig:
    """The settings a sweep file gives (None where it gives none)."""

    path: Path
    values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, given: Any = None) -> Any:
        """The command line's value if given, else the file's (or None)."""
        return given if given is not None else self.values.get(key)

    @property
    def space(self) -> Space | None:
        """The declared space, or None."""
        raw = self.values.get("space")
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or not raw:
            raise self.error("space", raw)
        try:
            return Space.from_dict({"params": {name: _numbers(desc)
                                               for name, desc in raw.items()}})
        except SpaceError as exc:
            raise HyperlawError(f"{self.path}: 'space' is invalid: {exc}") from None

    def sampler(self, given: str | None, seed: int | None) -> str | Sampler | None:
        """The command line's sampler name, else the file's name or configured instance."""
        value = self.get("sampler", given)
        if not isinstance(value, Mapping):
            return value
        with self._building("sampler", value):
            return make_sampler(None, seed, dict(value))

    def scheduler(self, given: str | None) -> str | Scheduler | None:
        """The command line's scheduler name, else the file's name or configured instance."""
        value = self.get("scheduler", given)
        if not isinstance(value, Mapping):
            return value
        with self._building("scheduler", value):
            return make_scheduler(None, dict(value))

    @contextlib.contextmanager
    def _building(self, key: str, value: Mapping[str, Any]) -> Iterator[None]:
        if "name" not in value:
            raise HyperlawError(f"{self.path}: {key!r} is a mapping without a 'name'; write "
                                f"e.g. {key}: {{name: ..., option: value}}")
        try:
            yield
        except (TypeError, HyperlawError) as exc:
            raise HyperlawError(f"{self.path}: cannot build the {key} {dict(value)!r}: "
                                f"{exc}") from None

    def error(self, key: str, value: Any) -> HyperlawError:
        """The error for a key that holds the wrong kind of value."""
        return HyperlawError(f"{self.path}: {key!r} must be {KEYS[key]}, got {value!r}")


def load_config(path: str | Path) -> SweepConfig:
    """Read and check a sweep file (unknown keys are refused by name)."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise HyperlawError(f"cannot read the sweep file {str(file)!r} ({exc.strerror}); "
                            "check the path given to --config") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HyperlawError(f"{file} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise HyperlawError(f"{file} must hold a mapping of settings (study, command, metric, "
                            f"space, ...), got a {type(data).__name__}")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise HyperlawError(f"{file}: unknown keys {unknown}; the keys a sweep file takes are "
                            f"{sorted(KEYS)}")
    config = SweepConfig(file, dict(data))
    _check_types(config)
    return config


def _check_types(config: SweepConfig) -> None:
    kinds: dict[str, type | tuple[type, ...]] = {
        "study": str, "storage": str, "command": str, "metric": str, "direction": str,
        "sampler": (str, Mapping), "scheduler": (str, Mapping), "seed": int, "n_trials": int,
        "timeout": (int, float), "n_workers": int, "cwd": str, "env": Mapping}
    for key, kind in kinds.items():
        value = config.values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise config.error(key, value)


def _numbers(desc: Any) -> Any:
    """YAML 1.1 reads `1e-4` (no dot) as a string: read the numeric fields as numbers."""
    if not isinstance(desc, Mapping):
        return desc
    out = dict(desc)
    for key in ("low", "high", "step"):
        value = out.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not a number: the space's check says so
                out[key] = float(value)
    return out
