"""What every `hyperlaw` command shares: the storage and study options, opening the store,
console output, importing the user's objective, and keeping passwords out of messages.

The command modules of this package (`studies`, `optimize`, `worker`, `dashboard`, `scaling`)
import from here, never from each other.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import click
from rich.console import Console

from hyperlaw.errors import HyperlawError
from hyperlaw.store import Store, open_store
from hyperlaw.store.common import mask_url
from hyperlaw.trial import TrialState

if TYPE_CHECKING:
    from hyperlaw.store.sql import OpenMode

ENV = "HYPERLAW_STORAGE"
URL_KEY = "hyperlaw.storage_url"  # click context meta: the URL whose password to hide
STATE_ORDER = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED,
               TrialState.RUNNING, TrialState.WAITING)  # the order commands print states in


def scrub(message: str, url: str | None) -> str:
    """`message` with the password of `url` (if any) replaced by ***."""
    if not url:
        return message
    message = message.replace(url, mask_url(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        return message
    if password:
        for form in {password, unquote(password)}:
            message = message.replace(form, "***")
    return message


def storage_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """The `--storage URL` option (or HYPERLAW_STORAGE)."""
    return click.option(
        "--storage", metavar="URL", envvar=ENV, show_envvar=True,
        help="Storage URL, e.g. sqlite:///hyperlaw.db or postgresql://user@host/db.")(f)


def study_option(f: Callable[..., Any], *, required: bool = True) -> Callable[..., Any]:
    """The `--study NAME` option (required unless a sweep file may name the study)."""
    return click.option("--study", "study_name", metavar="NAME", required=required,
                        help="Name of the study." if required else
                        "Name of the study (default: the sweep file's 'study').")(f)


@contextmanager
def opened(storage: str | None, mode: OpenMode = "read") -> Iterator[Store]:
    """The store of the `--storage` URL (or of HYPERLAW_STORAGE), closed afterwards. A
    reading command ("read") never creates or changes the database."""
    if not storage:
        raise click.UsageError(
            f"no storage given: pass --storage sqlite:///hyperlaw.db or set {ENV}")
    click.get_current_context().meta[URL_KEY] = storage
    store = open_store(storage, mode=mode)
    try:
        yield store
    finally:
        store.close()


def console() -> Console:
    """A console on stdout; without a terminal it is plain and never wraps tables."""
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=100_000, no_color=True)
    return out


def echo_json(data: Any) -> None:
    """Print `data` as indented JSON."""
    click.echo(json.dumps(data, indent=2))


def add_cwd_to_path() -> None:
    """Make modules of the current directory importable (as `python` itself does)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_ref(ref: str, option: str, form: str) -> Any:
    """The object that `module:attribute` or `path/to/file.py:attribute` names."""
    source, sep, attr = ref.rpartition(":")
    if not sep or not source or not attr:
        raise HyperlawError(f"{option} must look like {form} (or path/to/file.py:NAME), "
                            f"got {ref!r}")
    if source.endswith(".py") or "/" in source or os.sep in source:
        module = _load_file(source, ref, option)
    else:
        module = _import_module(source, ref, option)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise HyperlawError(
                f"{option} {ref!r}: {source!r} has no attribute {attr!r}; check the name after "
                "the ':'") from None
    return obj


def _import_module(name: str, ref: str, option: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise HyperlawError(
            f"{option} {ref!r}: cannot import module {name!r}: {exc}; run hyperlaw from the "
            "directory that contains it, pass the file's path (dir/train.py:NAME), or install "
            "it") from None
    except Exception as exc:  # the module itself raised while being imported
        raise HyperlawError(f"{option} {ref!r}: importing module {name!r} raised "
                            f"{type(exc).__name__}: {exc}; fix the module") from None


def _load_file(source: str, ref: str, option: str) -> ModuleType:
    """Load a .py file as the module of its stem, with its directory on sys.path (so that it
    imports its neighbours, and worker processes import it by name)."""
    path = Path(source).expanduser().resolve()
    if not path.is_file():
        raise HyperlawError(
            f"{option} {ref!r}: no file {str(path)!r} (from {source!r} in {os.getcwd()!r}); "
            "check the path, or pass a module path (package.module:NAME)")
    if path.suffix != ".py":
        raise HyperlawError(f"{option} {ref!r}: {str(path)!r} is not a .py file; pass a Python "
                            "file or a module path")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) == str(path):
        return loaded
    if loaded is not None:
        raise HyperlawError(
            f"{option} {ref!r}: a module named {name!r} is already imported from "
            f"{getattr(loaded, '__file__', None)!r}; rename {path.name} or pass a module path")
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise HyperlawError(f"{option} {ref!r}: loading {str(path)!r} raised "
                            f"{type(exc).__name__}: {exc}; fix the file") from None
    return module
