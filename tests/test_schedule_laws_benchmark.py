"""benchmarks/schedule_laws.py on short curves: every (truth, law) row, and each law
predicting curves of its own kind."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "schedule_laws.py"


def test_rows_for_every_length_truth_and_law(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("schedule_laws", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "rows.json"
    rows = module.main(["--steps", "1000", "2000", "--repeats", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == rows
    assert [(r["steps"], r["truth"], r["law"]) for r in rows] == [
        (steps, truth, law) for steps in (1000, 2000) for truth in ("multi-power", "annealing")
        for law in ("annealing", "multi-power")]
    for row in rows:
        assert row["fit_seconds"] > 0
        if row["truth"] == row["law"]:  # a law on curves of its own kind, at 0.2% noise
            assert abs(row["wsd_error"]) < 0.01 and abs(row["step_error"]) < 0.01, row
