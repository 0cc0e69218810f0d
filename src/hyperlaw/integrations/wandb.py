"""Weights & Biases: log each finished trial as one W&B run, grouped by its study.

    from hyperlaw.integrations.wandb import WandbCallback

    study.optimize(objective, n_trials=50, callbacks=[WandbCallback(project="resnet")])

A run (named "trial-<number>", in the group named after the study) holds the trial's
parameters as its config, its intermediate values as the history of `curve_name` (at the
trial's steps), and in its summary the final value as `metric_name`, the state, the trial
number and the study. Tags name the state; a failed trial's run exits with code 1 and its
error in the notes. Offline (`mode="offline"` or WANDB_MODE=offline) runs are written under
`dir` for `wandb sync` later.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Literal

from hyperlaw.integrations._tracking import TrialLogger, TrialRun, scalar, slug

__all__ = ["WandbCallback"]


class WandbCallback(TrialLogger):
    """Log each finished trial as a W&B run of `project` (default: W&B's own, from
    WANDB_PROJECT) and `entity`, grouped by `group` (default: the study's name). Runs are
    written under `dir` (default: W&B's). `mode` is W&B's ("online", "offline",
    "disabled"; default from WANDB_MODE). `init_kwargs` go to `wandb.init` as they are.

    Each trial's run has an id of its own derived from the study and the trial number, so
    logging a trial again resumes the same run (W&B keeps the history steps it has; offline,
    a trial whose run directory exists is skipped)."""

    def __init__(self, project: str | None = None, *, entity: str | None = None,
                 group: str | None = None, dir: str | os.PathLike[str] | None = None,
                 mode: Literal["online", "offline", "disabled"] | None = None,
                 metric_name: str = "value",
                 curve_name: str = "intermediate_value",
                 init_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(metric_name, curve_name)
        self.project = project
        self.entity = entity
        self.group = group
        self.dir = None if dir is None else os.fspath(dir)
        self.mode = mode
        self.init_kwargs = dict(init_kwargs or {})
        self._logged: set[str] = set()

    @staticmethod
    def run_id(study: str, number: int) -> str:
        """The W&B run id of trial `number` of `study`."""
        return f"{slug(study, 32)}-{number}"

    def log(self, run: TrialRun) -> None:
        import wandb

        run_id = self.run_id(run.study, run.number)
        if run_id in self._logged or self._logged_offline(run_id):
            return
        record = run.record
        settings = wandb.Settings(console="off", x_disable_stats=True, silent=True)
        tracked = wandb.init(
            project=self.project, entity=self.entity, group=self.group or run.study,
            dir=self.dir, mode=self.mode, id=run_id, name=run.name, resume="allow",
            reinit="create_new", job_type="trial", tags=[record.state.value],
            notes=run.error_line or None, settings=settings,
            config={name: scalar(value) for name, value in record.params.items()},
            **self.init_kwargs)
        try:
            for step, value in run.curve:
                tracked.log({self.curve_name: value}, step=step)
            summary = {"state": record.state.value, "trial_number": run.number,
                       "study": run.study, "duration": record.duration}
            summary.update({self.metric_name + k: v for k, v in run.final.items()})
            tracked.summary.update(summary)
        finally:
            tracked.finish(exit_code=1 if record.state.value == "failed" else 0)
        self._logged.add(run_id)

    def _logged_offline(self, run_id: str) -> bool:
        """Whether an offline run of this id is on disk already."""
        root = self.dir if self.dir is not None else os.environ.get("WANDB_DIR", ".")
        pattern = os.path.join(glob.escape(root), "wandb", f"offline-run-*-{glob.escape(run_id)}")
        return bool(glob.glob(pattern))
