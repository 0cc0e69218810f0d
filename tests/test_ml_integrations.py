"""The ML integrations as a user meets them: `import hyperlaw` imports none of their
libraries, and the guide's examples for them run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import hyperlaw

LIBRARIES = {"sklearn", "xgboost", "lightgbm", "mlflow", "wandb", "tensorboard", "torch"}
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"
SECTION = "## Scikit-learn, XGBoost, LightGBM and experiment trackers"


def _imported_after(statement: str) -> list[str]:
    code = (f"import sys\n{statement}\n"
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {LIBRARIES!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return eval(out.stdout)  # a printed list of names


def test_importing_hyperlaw_and_the_callbacks_imports_no_library() -> None:
    assert _imported_after(
        "import hyperlaw, hyperlaw.integrations.mlflow, hyperlaw.integrations.wandb, "
        "hyperlaw.integrations.tensorboard, hyperlaw.integrations.lightgbm") == []
    assert _imported_after("import hyperlaw.integrations.sklearn") == ["sklearn"]


def test_the_guide_examples_run(tmp_path: Path) -> None:
    text = GUIDE.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ", len(SECTION))]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 3
    checks = """
assert search.best_score_ > 0.8 and len(pruned.trials_) == 6
assert [len(s.trials) for s in (study,)] == [3]
"""
    script = tmp_path / "guide.py"
    script.write_text("\n".join(blocks) + checks)  # one after another, as a reader runs them
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "WANDB_"))}
    env.update(WANDB_SILENT="true", OMP_NUM_THREADS="1",  # boosters spin on a busy machine
               PYTHONPATH=os.pathsep.join([str(Path(hyperlaw.__file__).parents[1]),
                                           env.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list((tmp_path / "tb-runs" / "tracked").iterdir())) == 3
    assert len(list((tmp_path / "wandb-runs" / "wandb").glob("offline-run-*"))) == 3
    assert (tmp_path / "mlruns").is_dir()
