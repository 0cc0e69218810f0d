"""Trial logging to MLflow (a local file store), Weights & Biases (offline) and TensorBoard
(event files), read back with each tool's own reader."""

from __future__ import annotations

import glob
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata
from tensorboard.util import tensor_util
from wandb.proto import wandb_internal_pb2

import hyperlaw as hl
from hyperlaw.integrations.mlflow import MLflowCallback
from hyperlaw.integrations.tensorboard import TensorBoardCallback
from hyperlaw.integrations.wandb import WandbCallback

SPACE = hl.Space({"x": hl.Float(0.0, 1.0), "opt": hl.Choice(["adam", "sgd"])})
#: x -> the trial's outcome (see `objective`)
PLAN = {0.5: "complete", 0.9: "pruned", 0.05: "failed"}


def make_objective() -> Any:
    """The objective: complete, pruned or failed by x (see PLAN). Made here, not at module
    level, so that worker processes receive it by value and need not import this module
    (and the trackers with it)."""

    def objective(trial: hl.Trial) -> float:
        x = trial.params["x"]
        for step in range(3):
            trial.report(x * (3 - step), step=step * 10)
            if x > 0.8 and step == 1:
                raise hl.TrialPruned
        if x < 0.1:
            raise ValueError("diverged")
        return x

    return objective


@pytest.fixture
def trackers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3's directory store
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    return {"mlflow": MLflowCallback((tmp_path / "mlruns").as_uri()),
            "wandb": WandbCallback(project="hl-test", dir=tmp_path / "wandb"),
            "tensorboard": TensorBoardCallback(tmp_path / "tb")}


def _study(tmp_path: Path, name: str = "tracked") -> hl.Study:
    study = hl.create_study(name, storage=f"sqlite:///{tmp_path}/study.db", space=SPACE,
                            direction="maximize")
    for x in PLAN:
        study.enqueue({"x": x, "opt": "sgd"})
    return study


def test_two_workers_log_one_run_per_trial_to_each_tracker(
        tmp_path: Path, trackers: dict[str, Any]) -> None:
    study = _study(tmp_path)
    study.optimize(make_objective(), n_trials=3, n_workers=2, callbacks=list(trackers.values()))
    trials = {t.params["x"]: t for t in study.trials}
    assert {x: t.state.value for x, t in trials.items()} == PLAN
    _check_mlflow(trackers["mlflow"], trials)
    _check_wandb(trackers["wandb"], trials)
    _check_tensorboard(trackers["tensorboard"], trials)


def test_logging_a_trial_again_changes_nothing(tmp_path: Path,
                                               trackers: dict[str, Any]) -> None:
    study = _study(tmp_path, "again")
    study.optimize(make_objective(), n_trials=3, callbacks=[trackers["mlflow"]])
    for tracker in trackers.values():
        tracker.log_study(study)  # the other two log the study after the fact
        tracker.log_study(study)
        fresh = type(tracker)(**_settings(tracker))  # another process, say
        fresh(study, study.trials[0])
    client = MlflowClient(trackers["mlflow"].tracking_uri)
    experiment = client.get_experiment_by_name("again").experiment_id
    assert len(client.search_runs([experiment])) == 3
    assert len(glob.glob(f"{trackers['wandb'].dir}/wandb/offline-run-*")) == 3
    assert len(glob.glob(f"{trackers['tensorboard'].log_dir}/again/trial-*/*")) == 3
    trials = {t.params["x"]: t for t in study.trials}
    _check_mlflow(trackers["mlflow"], trials, "again")
    _check_tensorboard(trackers["tensorboard"], trials, "again")


def _settings(tracker: Any) -> dict[str, Any]:
    if isinstance(tracker, MLflowCallback):
        return {"tracking_uri": tracker.tracking_uri}
    if isinstance(tracker, WandbCallback):
        return {"project": tracker.project, "dir": tracker.dir}
    return {"log_dir": tracker.log_dir}


def _same_curve(logged: list[tuple[int, float]], trial: hl.TrialRecord) -> bool:
    """Whether `logged` holds the trial's intermediate values, step by step."""
    steps, values = sorted(trial.intermediate), [trial.intermediate[s] for s in
                                                  sorted(trial.intermediate)]
    ordered = sorted(logged)
    return [s for s, _ in ordered] == steps and [v for _, v in ordered] == pytest.approx(values)


def _check_mlflow(tracker: MLflowCallback, trials: dict[float, hl.TrialRecord],
                  name: str = "tracked") -> None:
    client = MlflowClient(tracker.tracking_uri)
    experiment = client.get_experiment_by_name(name)  # the study is the experiment
    runs = {run.data.params["x"]: run for run in client.search_runs([experiment.experiment_id])}
    assert len(runs) == 3
    for x, trial in trials.items():
        run = runs[str(x)]
        assert run.data.params == {"x": str(x), "opt": "sgd"}
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.data.tags["hyperlaw.trial"] == str(trial.number)
        assert run.data.tags["hyperlaw.state"] == trial.state.value
        assert run.info.status == {"complete": "FINISHED", "pruned": "KILLED",
                                   "failed": "FAILED"}[trial.state.value]
        history = client.get_metric_history(run.info.run_id, "intermediate_value")
        assert _same_curve([(m.step, m.value) for m in history], trial)
        if trial.value is None:
            assert "value" not in run.data.metrics
            assert "diverged" in run.data.tags["hyperlaw.error"]
        else:
            assert run.data.metrics["value"] == pytest.approx(trial.value)


def _wandb_records(path: str) -> Iterator[Any]:
    """The records of a W&B transaction log (.wandb): a 7-byte header, then LevelDB-style
    chunks (checksum, length, type) in 32 KiB blocks."""
    data = Path(path).read_bytes()
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a chunk header: padding
            pos += 32768 - pos % 32768
            continue
        length, kind = struct.unpack("<HB", data[pos + 4:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _check_wandb(tracker: WandbCallback, trials: dict[float, hl.TrialRecord]) -> None:
    for trial in trials.values():
        run_id = WandbCallback.run_id("tracked", trial.number)
        [path] = glob.glob(f"{tracker.dir}/wandb/offline-run-*-{run_id}/run-{run_id}.wandb")
        config: dict[str, Any] = {}
        summary: dict[str, Any] = {}
        history: list[tuple[int, float]] = []
        for record in _wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                assert (record.run.run_group, record.run.display_name) == (
                    "tracked", f"trial-{trial.number}")
                assert list(record.run.tags) == [trial.state.value]
                config = {u.key: json.loads(u.value_json) for u in record.run.config.update}
            elif kind == "history":
                items = {i.nested_key[0]: json.loads(i.value_json) for i in record.history.item}
                history.append((items["_step"], items["intermediate_value"]))
            elif kind == "summary":
                summary.update({u.key: json.loads(u.value_json)
                                for u in record.summary.update if u.key})
            elif kind == "exit":
                assert record.exit.exit_code == (1 if trial.state.value == "failed" else 0)
        assert {k: v for k, v in config.items() if not k.startswith("_")} == {
            "x": trial.params["x"], "opt": "sgd"}
        assert _same_curve(history, trial)
        assert summary["state"] == trial.state.value
        assert summary["trial_number"] == trial.number and summary["study"] == "tracked"
        assert summary.get("value") == (None if trial.value is None
                                        else pytest.approx(trial.value))


def _check_tensorboard(tracker: TensorBoardCallback, trials: dict[float, hl.TrialRecord],
                       name: str = "tracked") -> None:
    for trial in trials.values():
        events = EventAccumulator(tracker.run_dir(name, trial.number))
        events.Reload()
        curve = [(e.step, e.value) for e in events.Scalars("intermediate_value")]
        assert _same_curve(curve, trial)
        if trial.value is None:
            assert "value" not in events.Tags()["scalars"]
        else:
            [final] = events.Scalars("value")
            assert (final.step, final.value) == (trial.last_step, pytest.approx(trial.value))
        [state] = events.Tensors("state")
        assert tensor_util.make_ndarray(state.tensor_proto).item() == trial.state.value.encode()
        plugin = events.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(
            plugin[metadata.SESSION_START_INFO_TAG])
        assert start.group_name == name
        assert start.hparams["x"].number_value == pytest.approx(trial.params["x"])
        assert start.hparams["opt"].string_value == "sgd"
        end = metadata.parse_session_end_info_plugin_data(plugin[metadata.SESSION_END_INFO_TAG])
        assert end.status == {"complete": api_pb2.STATUS_SUCCESS,
                              "failed": api_pb2.STATUS_FAILURE}.get(trial.state.value,
                                                                    api_pb2.STATUS_UNKNOWN)
