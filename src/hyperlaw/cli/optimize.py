"""`hyperlaw optimize`: run an objective on a study, creating it or continuing it.

    hyperlaw optimize --study mlp --objective train:objective --n-trials 50
    hyperlaw optimize --config sweep.yaml      # a command per trial, see cli/sweep_config.py
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, cast

import click

from hyperlaw.cli.common import (
    STATE_ORDER,
    add_cwd_to_path,
    import_ref,
    opened,
    storage_option,
    study_option,
)
from hyperlaw.cli.sweep_config import SweepConfig, load_config
from hyperlaw.errors import HyperlawError, StudyNotFoundError
from hyperlaw.integrations.command import CommandObjective
from hyperlaw.samplers import SAMPLERS
from hyperlaw.schedulers import SCHEDULERS
from hyperlaw.space import Space
from hyperlaw.store import Store
from hyperlaw.study import Study, create_study
from hyperlaw.trial import TrialState


@click.command()
@storage_option
@partial(study_option, required=False)
@click.option("--config", "config_path", metavar="FILE", type=click.Path(dir_okay=False),
              help="A YAML sweep file (study, storage, command, metric, space, sampler, "
                   "scheduler, budget); options given here win over it.")
@click.option("--objective", metavar="MODULE:FUNCTION",
              help="The objective, e.g. train:objective (a module importable from the current "
                   "directory) or ../dir/train.py:objective (a file). A sweep file may give a "
                   "'command' instead.")
@click.option("--space", "space_ref", metavar="MODULE:ATTRIBUTE",
              help="A hyperlaw.Space (or a dict of parameters) to declare the search space.")
@click.option("--n-trials", type=click.IntRange(min=0), metavar="N",
              help="Number of trials to run (default: until --timeout or Ctrl-C).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Start no trial after this many seconds.")
@click.option("--n-workers", type=click.IntRange(min=1), metavar="K",
              help="Worker processes (default: 1).")
@click.option("--sampler", type=click.Choice(sorted(SAMPLERS)),
              help="Sampler (default: the study's, or auto for a new study).")
@click.option("--scheduler", type=click.Choice(sorted(SCHEDULERS)),
              help="Early-stopping scheduler (default: the study's, or fifo).")
@click.option("--seed", type=int, help="Sampler seed.")
@click.option("--direction", type=click.Choice(["minimize", "maximize"]),
              help="Direction of a new study (default: the study's, or minimize).")
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
def optimize(storage: str | None, study_name: str | None, config_path: str | None,
             objective: str | None, space_ref: str | None, n_trials: int | None,
             timeout: float | None, n_workers: int | None, sampler: str | None,
             scheduler: str | None, seed: int | None, direction: str | None,
             no_progress: bool) -> None:
    """Run an objective (or a sweep file's command) on a study, creating it or continuing it."""
    config = load_config(config_path) if config_path else SweepConfig(Path("(no --config)"))
    name = config.get("study", study_name)
    if name is None:
        raise click.UsageError("no study given: pass --study NAME or set 'study' in the "
                               "sweep file")
    with opened(config.get("storage", storage), "create") as store:
        add_cwd_to_path()
        func = _objective(objective, config)
        space = _load_space(space_ref) if space_ref else config.space
        direction = config.get("direction", direction)
        if direction is None:
            direction = _existing_direction(store, name) or "minimize"
        study = create_study(name, storage=store, space=space,
                             direction=direction,  # type: ignore[arg-type]
                             sampler=config.sampler(sampler, config.get("seed", seed)),
                             scheduler=config.scheduler(scheduler),
                             seed=config.get("seed", seed), load_if_exists=True)
        before = len(study.trials)
        try:
            study.optimize(func, config.get("n_trials", n_trials),
                           timeout=config.get("timeout", timeout),
                           n_workers=config.get("n_workers", n_workers) or 1,
                           show_progress=False if no_progress else None)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            _summarize(study, before)
            click.get_current_context().exit(130)
        _summarize(study, before)


def _objective(ref: str | None, config: SweepConfig) -> Callable[..., Any]:
    """The function `--objective` names, or the sweep file's command as an objective."""
    command = config.values.get("command")
    if ref is not None and command is not None:
        raise click.UsageError(f"both --objective and a 'command' in {config.path} are given; "
                               "keep one")
    if ref is None and command is None:
        raise click.UsageError("no objective given: pass --objective MODULE:FUNCTION or set "
                               "'command' (and 'metric') in a sweep file given with --config")
    if command is not None:
        metric = config.values.get("metric")
        if metric is None:
            raise HyperlawError(f"{config.path}: a 'command' needs a 'metric', the key of the "
                                "JSON lines it prints (e.g. metric: val_loss)")
        cwd = config.values.get("cwd")
        return CommandObjective(command, metric,
                                cwd=str(config.path.parent / cwd) if cwd else None,
                                env={str(k): str(v) for k, v in
                                     (config.values.get("env") or {}).items()})
    assert ref is not None
    func = import_ref(ref, "--objective", "MODULE:FUNCTION")
    if not callable(func):
        raise HyperlawError(f"--objective {ref!r} is a {type(func).__name__}, not a "
                            "function; point it at a function taking a trial")
    return cast(Callable[..., Any], func)


def _summarize(study: Study, before: int) -> None:
    records = study.trials[before:]
    counts = {s: sum(t.state is s for t in records) for s in STATE_ORDER[:3]}
    click.echo(f"ran {len(records)} trials of study {study.name!r}: "
               + ", ".join(f"{n} {s.value}" for s, n in counts.items()))
    if not any(t.state is TrialState.COMPLETE for t in study.trials):
        click.echo("no trial has completed yet: no best value")
        return
    record = study.best_trial
    click.echo(f"best value: {record.value!r} (trial #{record.number})")
    click.echo("best params:")
    for key, value in record.params.items():
        click.echo(f"  {key} = {value!r}")


def _existing_direction(store: Store, name: str) -> str | None:
    try:
        return store.get_study(name).direction
    except StudyNotFoundError:
        return None


def _load_space(ref: str) -> Space:
    obj = import_ref(ref, "--space", "MODULE:ATTRIBUTE")
    if isinstance(obj, Space):
        return obj
    if isinstance(obj, Mapping):
        return Space(obj)
    raise HyperlawError(f"--space {ref!r} is a {type(obj).__name__}; point it at a "
                        "hyperlaw.Space or a dict of parameters")
