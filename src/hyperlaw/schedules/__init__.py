"""Deprecated name of `hyperlaw.lr_schedules`, the learning-rate schedules.

The package was renamed so that it cannot be mistaken for `hyperlaw.schedulers` (which decide
when a trial stops). `hyperlaw.schedules` and its submodules (`base`, `families`, `refined`,
`search`, `torch`) still import, as the very modules of `hyperlaw.lr_schedules`, with a
DeprecationWarning; import `hyperlaw.lr_schedules` instead.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any

from hyperlaw import lr_schedules

__all__ = lr_schedules.__all__

warnings.warn("hyperlaw.schedules is deprecated: import hyperlaw.lr_schedules instead (the same "
              "schedules under a name that differs from hyperlaw.schedulers)",
              DeprecationWarning, stacklevel=2)

for _name in ("base", "families", "refined", "search", "torch"):  # torch is imported on use
    _module = importlib.import_module(f"hyperlaw.lr_schedules.{_name}")
    sys.modules[f"{__name__}.{_name}"] = _module
    globals()[_name] = _module


def __getattr__(name: str) -> Any:
    return getattr(lr_schedules, name)
