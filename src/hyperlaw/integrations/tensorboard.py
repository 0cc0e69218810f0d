"""TensorBoard: log each finished trial as one TensorBoard run under `log_dir/<study>/`.

    from hyperlaw.integrations.tensorboard import TensorBoardCallback

    study.optimize(objective, n_trials=50, callbacks=[TensorBoardCallback("runs")])
    # tensorboard --logdir runs

A run (directory "<study>/trial-<number>") holds the intermediate values as the scalar
`curve_name` (at the trial's steps), the final value as the scalar `metric_name` (at the
last step), the state as the text "state", and the parameters, the study (as the session
group) and the outcome in the HParams dashboard (status success, failure, or unknown for a
pruned trial). Only the `tensorboard` package is needed (no TensorFlow, no torch).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

from hyperlaw.integrations._tracking import TrialLogger, TrialRun, scalar, slug

__all__ = ["TensorBoardCallback"]


class TensorBoardCallback(TrialLogger):
    """Log each finished trial as a TensorBoard run in `log_dir`/<study>/trial-<number>
    (the study's name with characters other than letters, digits, '.', '_', '=' and '-'
    replaced). A run is written under a temporary name and renamed when complete, so a
    trial whose run directory exists is logged already and is skipped."""

    def __init__(self, log_dir: str | os.PathLike[str], *, metric_name: str = "value",
                 curve_name: str = "intermediate_value") -> None:
        super().__init__(metric_name, curve_name)
        self.log_dir = os.fspath(log_dir)

    def run_dir(self, study: str, number: int) -> str:
        """The directory of trial `number` of `study`."""
        return os.path.join(self.log_dir, slug(study, 80), f"trial-{number}")

    def log(self, run: TrialRun) -> None:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        final = self.run_dir(run.study, run.number)
        if os.path.isdir(final):
            return
        partial = f"{final}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        writer = EventFileWriter(partial)
        try:
            for event in self._events(run):
                writer.add_event(event)
        finally:
            writer.close()
        try:
            os.replace(partial, final)
        except OSError:
            if not os.path.isdir(final):
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another process logged it meanwhile

    def _events(self, run: TrialRun) -> list[Any]:
        from tensorboard.compat.proto.event_pb2 import Event

        record = run.record
        when = record.finished_at or time.time()
        values = [(step, self.curve_name, value) for step, value in run.curve]
        values += [(run.last_step, self.metric_name + k, v) for k, v in run.final.items()]
        events = [Event(wall_time=when, step=step, summary=_scalar(tag, value))
                  for step, tag, value in values]
        events.append(Event(wall_time=when, step=run.last_step,
                            summary=_text("state", record.state.value)))
        events.append(Event(wall_time=record.started_at or when, step=0,
                            summary=_session_start(run)))
        events.append(Event(wall_time=when, step=run.last_step, summary=_session_end(run)))
        return events


def _scalar(tag: str, value: float) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary

    return Summary(value=[Summary.Value(tag=tag, simple_value=value)])


def _text(tag: str, text: str) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.compat.proto.tensor_pb2 import TensorProto
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.compat.proto.types_pb2 import DT_STRING

    metadata = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
    tensor = TensorProto(dtype=DT_STRING, string_val=[text.encode()],
                         tensor_shape=TensorShapeProto())
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata, tensor=tensor)])


def _hparams(tag: str, data: Any) -> Any:
    """A summary for the HParams dashboard holding `data` (HParamsPluginData)."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata

    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data),
                                        tensor=metadata.NULL_TENSOR)])


def _session_start(run: TrialRun) -> Any:
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionStartInfo(group_name=run.study,
                                            start_time_secs=run.record.started_at or 0.0)
    for name, raw in run.record.params.items():
        value, entry = scalar(raw), info.hparams[name]  # a google.protobuf Value
        if isinstance(value, bool):
            entry.bool_value = value
        elif isinstance(value, int | float):
            entry.number_value = float(value)
        else:
            entry.string_value = value
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION,
                                             session_start_info=info)
    return _hparams(metadata.SESSION_START_INFO_TAG, data)


def _session_end(run: TrialRun) -> Any:
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    status = {"complete": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE}.get(
        run.record.state.value, api_pb2.STATUS_UNKNOWN)
    info = plugin_data_pb2.SessionEndInfo(status=status,
                                          end_time_secs=run.record.finished_at or 0.0)
    data = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION,
                                             session_end_info=info)
    return _hparams(metadata.SESSION_END_INFO_TAG, data)
