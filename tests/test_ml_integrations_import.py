"""Importing hyperlaw, or a tracker callback module, imports no ML library or tracker."""

from __future__ import annotations

import subprocess
import sys

LIBRARIES = {"sklearn", "xgboost", "lightgbm", "mlflow", "wandb", "tensorboard", "torch"}


def _imported_after(statement: str) -> list[str]:
    code = (f"import sys\n{statement}\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(LIBRARIES)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return eval(out.stdout)  # a printed list of names


def test_importing_hyperlaw_and_the_callbacks_imports_no_library() -> None:
    assert _imported_after("import hyperlaw, hyperlaw.integrations") == []
    assert _imported_after(
        "import hyperlaw.integrations.mlflow, hyperlaw.integrations.wandb, "
        "hyperlaw.integrations.tensorboard, hyperlaw.integrations.lightgbm") == []
