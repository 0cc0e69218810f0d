"""The demo's objective really trains a network and its study behaves as the README says."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import hyperlaw as hl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import mlp_digits  # scikit-learn comes with the dev extra


def test_demo_study_trains_and_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mlp_digits, "EPOCHS", 3)
    study = mlp_digits.main(n_trials=4, n_workers=1)
    assert Path("hyperlaw-demo.db").exists()
    trials = hl.load_study("mlp-digits", storage=mlp_digits.STORAGE).trials
    assert len(trials) == 4
    complete = [t for t in trials if t.state is hl.TrialState.COMPLETE]
    assert complete, "a configuration is trained to the end"
    for t in complete:
        steps = set(t.intermediate)  # a continued trial holds the steps after its checkpoint
        parent = t.system_attrs.get("promoted_from")
        while parent is not None:
            assert trials[parent].params == t.params
            steps |= set(trials[parent].intermediate)
            parent = trials[parent].system_attrs.get("promoted_from")
        assert sorted(steps) == [0, 1, 2]
        assert 0.0 < t.value < 5.0  # a cross-entropy over 10 classes, after real training
        assert 0.0 <= t.user_attrs["accuracy"] <= 1.0
    assert study.best_trial.user_attrs["accuracy"] > 0.5  # it learned to read digits
