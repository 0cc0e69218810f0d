"""MLflow: log each finished trial as one MLflow run of the experiment named after its study.

    from hyperlaw.integrations.mlflow import MLflowCallback

    study.optimize(objective, n_trials=50,
                   callbacks=[MLflowCallback(tracking_uri="sqlite:///mlflow.db")])

A run holds the trial's parameters, its intermediate values as the history of the metric
`curve_name` (step by step), its final value as the metric `metric_name`, and tags: the study
(`hyperlaw.study`), the trial number (`hyperlaw.trial`), its state (`hyperlaw.state`), the
error of a failed trial and the trial's user attributes (`user_attrs.<key>`). Its status is
FINISHED for a complete trial, KILLED for a pruned one and FAILED for a failed one.
"""

from __future__ import annotations

import json
from typing import Any

from hyperlaw.integrations._tracking import TrialLogger, TrialRun, check_name

__all__ = ["MLflowCallback"]

_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
_LOGGED = "hyperlaw.logged"  # set last: a run without it was cut short and is logged again
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


class MLflowCallback(TrialLogger):
    """Log each finished trial as a run of the MLflow experiment `experiment` (default: the
    study's name) at `tracking_uri` (default: MLflow's own, from MLFLOW_TRACKING_URI).
    A trial already logged there is skipped, so a study can be logged again (`log_study`)
    without duplicates. `tags` are added to every run.

    MLflow 3 keeps a directory store (``file:./mlruns``) only when MLFLOW_ALLOW_FILE_STORE
    is "true"; its recommended local store is a SQLite file (``sqlite:///mlflow.db``, which
    needs the full `mlflow` package or `alembic` next to `mlflow-skinny`)."""

    def __init__(self, tracking_uri: str | None = None, *, experiment: str | None = None,
                 metric_name: str = "value", curve_name: str = "intermediate_value",
                 tags: dict[str, str] | None = None) -> None:
        super().__init__(metric_name, curve_name)
        self.tracking_uri = tracking_uri
        self.experiment = None if experiment is None else check_name(experiment, "experiment")
        self.tags = dict(tags or {})
        self._client: Any = None
        self._experiments: dict[str, str] = {}

    def _mlflow(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment_id(self, name: str) -> str:
        if name not in self._experiments:
            client = self._mlflow()
            found = client.get_experiment_by_name(name)
            if found is None:
                try:
                    self._experiments[name] = client.create_experiment(name)
                except Exception:  # created by another process meanwhile
                    found = client.get_experiment_by_name(name)
                    if found is None:
                        raise
            if found is not None:
                self._experiments[name] = found.experiment_id
        return self._experiments[name]

    def log(self, run: TrialRun) -> None:
        client = self._mlflow()
        experiment = self._experiment_id(self.experiment or run.study)
        for existing in client.search_runs(
                [experiment], filter_string=f"tags.`hyperlaw.trial` = '{run.number}'"):
            if existing.data.tags.get("hyperlaw.study") != run.study:
                continue
            if existing.data.tags.get(_LOGGED) == "true":
                return
            client.delete_run(existing.info.run_id)  # cut short: log it again, whole
        record = run.record
        started = _millis(record.started_at or record.created_at)
        created = client.create_run(experiment, start_time=started, run_name=run.name,
                                    tags={**self.tags, **_tags(run)})
        self._log_values(client, created.info.run_id, run)
        client.set_tag(created.info.run_id, _LOGGED, "true")
        client.set_terminated(created.info.run_id, status=_STATUS[record.state.value],
                              end_time=_millis(record.finished_at))

    def _log_values(self, client: Any, run_id: str, run: TrialRun) -> None:
        from mlflow.entities import Metric, Param

        when = _millis(run.record.finished_at) or 0
        metrics = [Metric(self.curve_name, value, when, step) for step, value in run.curve]
        metrics += [Metric(self.metric_name + suffix, value, when, run.last_step)
                    for suffix, value in run.final.items()]
        params = [Param(name, str(value)) for name, value in run.record.params.items()]
        client.log_batch(run_id, params=params)
        for start in range(0, len(metrics), _BATCH):
            client.log_batch(run_id, metrics=metrics[start:start + _BATCH])


def _tags(run: TrialRun) -> dict[str, str]:
    tags = {"hyperlaw.study": run.study, "hyperlaw.trial": str(run.number),
            "hyperlaw.state": run.record.state.value, "hyperlaw.direction": run.direction}
    if run.error_line:
        tags["hyperlaw.error"] = run.error_line
    for key, value in run.record.user_attrs.items():
        tags[f"user_attrs.{key}"] = json.dumps(value, default=str)[:5000]
    return tags


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)
