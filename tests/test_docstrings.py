"""Docstrings: every public member of the modules of the API reference (mkdocs.yml) has one,
and every example in a docstring of the package runs (as a doctest) and shows what it
prints."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import warnings
from pathlib import Path
from typing import Any

import pytest

import hyperlaw as hl


def _public_members(cls: type) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in vars(cls).items()
            if not name.startswith("_") and (callable(value) or isinstance(
                value, property | classmethod | staticmethod))]


def _doc(owner: type, name: str) -> str | None:
    """The docstring of a class member, inherited from a base class that documents it."""
    return inspect.getdoc(getattr(owner, name, None)) or next(
        (inspect.getdoc(vars(base)[name]) for base in owner.__mro__[1:]
         if name in vars(base) and inspect.getdoc(vars(base)[name])), None)


def _reference_modules() -> list[str]:
    """The modules of the API reference: the `reference/<module>.md` lines of mkdocs.yml."""
    text = (Path(__file__).resolve().parent.parent / "mkdocs.yml").read_text()
    return re.findall(r"reference/(hyperlaw[\w.]*)\.md", text)


def _public_names(module: Any) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items()
                 if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__]
    return [n for n in names if not n.startswith("__")]


def test_the_reference_lists_the_top_level_and_its_modules() -> None:
    modules = _reference_modules()
    assert modules[0] == "hyperlaw"
    assert {"hyperlaw.study", "hyperlaw.space", "hyperlaw.trial"} <= set(modules)


@pytest.mark.parametrize("module", _reference_modules())
def test_every_public_member_of_a_reference_module_has_a_docstring(module: str) -> None:
    mod = importlib.import_module(module)
    missing = []
    for name in _public_names(mod):
        obj = getattr(mod, name)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            missing += [f"{name}.{member}" for member, _ in _public_members(obj)
                        if not _doc(obj, member)]
    assert missing == [], f"public members of {module} without a docstring: {missing}"


def _modules() -> list[str]:
    """Every module of the package but the deprecated alias `hyperlaw.schedules`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        names = [info.name for info in pkgutil.walk_packages(hl.__path__, "hyperlaw.")]
    return sorted(n for n in names if not n.startswith("hyperlaw.schedules"))


@pytest.mark.parametrize("module", ["hyperlaw", *_modules()])
def test_docstring_examples_run(module: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Each module's doctests, in an empty working directory (examples that write files
    leave nothing behind)."""
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(module)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(mod, module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module} failed"
