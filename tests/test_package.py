"""The package as users install it: the wheel's contents and the extras' requirements."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The file names in a wheel built from a copy of the checkout (the tree stays clean)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out), str(tree)], check=True)
    (wheel,) = out.glob("hyperlaw-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_wheel_ships_type_information_and_license(wheel_names: set[str]) -> None:
    assert "hyperlaw/py.typed" in wheel_names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names)


def test_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "Copyright 2026 The hyperlaw authors" in text


def test_no_extra_pins_torch_and_pandas_is_optional() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = [(extra, req) for extra, reqs in project["optional-dependencies"].items()
              for req in reqs if "==" in req]
    assert pinned == [], "extras take ranges; the test environment pins in the Makefile"
    assert not any(req.startswith("pandas") for req in project["dependencies"])
    assert project["optional-dependencies"]["pandas"] == ["pandas>=2.0"]


# Run where `import pandas` fails, as on a machine without it.
WITHOUT_PANDAS = """
import sys
sys.modules["pandas"] = None
import hyperlaw as hl
from hyperlaw.cli import cli

url = "sqlite:///" + sys.argv[1] + "/s.db"
study = hl.create_study("s", storage=url, space=hl.Space({"x": hl.Float(0, 1)}), seed=0)
study.optimize(lambda t: t.params["x"] ** 2, n_trials=3)
cli(["export", "--storage", url, "--study", "s", "--format", "csv",
      "--out", sys.argv[1] + "/s.csv"], standalone_mode=False)
try:
    study.to_dataframe()
except hl.HyperlawError as exc:
    print(exc)
"""


def test_csv_export_without_pandas_and_a_clear_error_from_to_dataframe(
        tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(WITHOUT_PANDAS),
                             str(tmp_path)], capture_output=True, text=True, check=True)
    assert "pip install 'hyperlaw[pandas]'" in result.stdout, result.stdout + result.stderr
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].startswith("number,state,value,params_x,")
    assert len(lines) == 4 and lines[1].startswith("0,complete,")
