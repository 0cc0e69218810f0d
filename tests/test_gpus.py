"""`gpus_per_trial`: each worker process sees its own devices through CUDA_VISIBLE_DEVICES.

These machines have no GPU, so the tests read the variable inside real worker processes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import hyperlaw as hl
from hyperlaw.errors import HyperlawError
from hyperlaw.executors.devices import device_slots


def test_slots_are_disjoint_runs_of_the_visible_devices():
    env = {"CUDA_VISIBLE_DEVICES": "3,5,GPU-abc,7"}
    assert device_slots(2, 2, env) == ["3,5", "GPU-abc,7"]
    assert device_slots(3, 1, env) == ["3", "5", "GPU-abc"]
    with pytest.raises(HyperlawError, match=r"needs 6 GPUs, but 4 are visible"):
        device_slots(3, 2, env)
    with pytest.raises(HyperlawError, match="needs 1 GPUs, but 0 are visible"):
        device_slots(1, 1, {"CUDA_VISIBLE_DEVICES": ""})


def _record_devices(trial: hl.Trial) -> float:
    trial.set_user_attr("devices", os.environ.get("CUDA_VISIBLE_DEVICES"))
    trial.set_user_attr("pid", os.getpid())
    return trial.suggest_float("x", 0.0, 1.0)


def test_each_worker_sees_its_own_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    study = hl.create_study("gpus", storage=f"sqlite:///{tmp_path}/s.db")
    study.optimize(_record_devices, n_trials=6, n_workers=2, gpus_per_trial=2,
                   show_progress=False)
    seen = {(t.user_attrs["pid"], t.user_attrs["devices"]) for t in study.trials}
    assert len([t for t in study.trials if t.state is hl.TrialState.COMPLETE]) == 6
    assert {devices for _, devices in seen} <= {"0,1", "2,3"}
    by_pid: dict[int, set[str]] = {}
    for pid, devices in seen:
        by_pid.setdefault(pid, set()).add(devices)
    assert all(len(sets) == 1 for sets in by_pid.values())  # a worker keeps its devices
    assert len({d for sets in by_pid.values() for d in sets}) == len(by_pid)  # none shared


def test_one_worker_with_devices_runs_in_a_process_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    study = hl.create_study("one", storage=f"sqlite:///{tmp_path}/s.db")
    study.optimize(_record_devices, n_trials=2, gpus_per_trial=1, show_progress=False)
    assert {t.user_attrs["devices"] for t in study.trials} == {"4"}
    assert {t.user_attrs["pid"] for t in study.trials} != {os.getpid()}


def test_a_replacement_worker_gets_the_devices_of_the_one_it_replaces(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    died, replaced = tmp_path / "died", tmp_path / "replaced"

    def objective(trial: hl.Trial) -> float:
        devices = os.environ["CUDA_VISIBLE_DEVICES"]
        trial.set_user_attr("devices", devices)
        if devices == "1":
            if not died.exists():
                died.touch()
                os._exit(1)  # the worker on device 1 dies once
            replaced.touch()
        else:  # the worker on device 0 waits until device 1's replacement has run a trial
            deadline = time.monotonic() + 120
            while not replaced.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return 0.0

    study = hl.create_study("replace", storage=f"sqlite:///{tmp_path}/s.db")
    study.optimize(objective, n_trials=4, n_workers=2, gpus_per_trial=1, show_progress=False)
    complete = [t for t in study.trials if t.state is hl.TrialState.COMPLETE]
    assert len(complete) == 4
    assert died.exists() and replaced.exists()
    assert {t.user_attrs["devices"] for t in complete} <= {"0", "1"}


def test_devices_are_refused_where_they_cannot_apply(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    study = hl.create_study("refused", storage=f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(HyperlawError, match="needs 2 GPUs, but 1 are visible"):
        study.optimize(_record_devices, n_trials=1, n_workers=2, gpus_per_trial=1,
                       show_progress=False)
    with pytest.raises(HyperlawError, match="executor='inline'"):
        study.optimize(_record_devices, n_trials=1, executor="inline", gpus_per_trial=1)
    with pytest.raises(HyperlawError, match="positive int"):
        study.optimize(_record_devices, n_trials=1, gpus_per_trial=0)
    assert not study.trials  # nothing was started
    assert Path(tmp_path / "s.db").exists()
