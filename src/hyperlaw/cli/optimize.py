"""`hyperlaw optimize`: run an objective on a study, creating it or continuing it.

    hyperlaw optimize --study mlp --objective train:objective --n-trials 50
"""

from __future__ import annotations

from collections.abc import Mapping

import click

from hyperlaw.cli.common import (
    STATE_ORDER,
    add_cwd_to_path,
    import_ref,
    opened,
    storage_option,
    study_option,
)
from hyperlaw.errors import HyperlawError, StudyNotFoundError
from hyperlaw.samplers import SAMPLERS
from hyperlaw.schedulers import SCHEDULERS
from hyperlaw.space import Space
from hyperlaw.store import Store
from hyperlaw.study import Study, create_study


@click.command()
@storage_option
@study_option
@click.option("--objective", metavar="MODULE:FUNCTION", required=True,
              help="The objective, e.g. train:objective (a module importable from the current "
                   "directory) or ../dir/train.py:objective (a file).")
@click.option("--space", "space_ref", metavar="MODULE:ATTRIBUTE",
              help="A hyperlaw.Space (or a dict of parameters) to declare the search space.")
@click.option("--n-trials", type=click.IntRange(min=0), metavar="N",
              help="Number of trials to run (default: until --timeout or Ctrl-C).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), metavar="S",
              help="Start no trial after this many seconds.")
@click.option("--n-workers", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="K", help="Worker processes.")
@click.option("--sampler", type=click.Choice(sorted(SAMPLERS)),
              help="Sampler (default: the study's, or auto for a new study).")
@click.option("--scheduler", type=click.Choice(sorted(SCHEDULERS)),
              help="Early-stopping scheduler (default: the study's, or fifo).")
@click.option("--seed", type=int, help="Sampler seed.")
@click.option("--direction", type=click.Choice(["minimize", "maximize"]),
              help="Direction of a new study (default: the study's, or minimize).")
@click.option("--no-progress", is_flag=True, help="Do not show the progress bar.")
def optimize(storage: str | None, study_name: str, objective: str, space_ref: str | None,
             n_trials: int | None, timeout: float | None, n_workers: int,
             sampler: str | None, scheduler: str | None, seed: int | None,
             direction: str | None, no_progress: bool) -> None:
    """Run an objective on a study, creating it or continuing it."""
    with opened(storage, "create") as store:
        add_cwd_to_path()
        func = import_ref(objective, "--objective", "MODULE:FUNCTION")
        if not callable(func):
            raise HyperlawError(f"--objective {objective!r} is a {type(func).__name__}, not a "
                                "function; point it at a function taking a trial")
        space = _load_space(space_ref) if space_ref else None
        if direction is None:
            direction = _existing_direction(store, study_name) or "minimize"
        study = create_study(study_name, storage=store, space=space,
                             direction=direction,  # type: ignore[arg-type]
                             sampler=sampler, scheduler=scheduler, seed=seed,
                             load_if_exists=True)
        before = len(study.trials)
        try:
            study.optimize(func, n_trials, timeout=timeout, n_workers=n_workers,
                           show_progress=False if no_progress else None)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            _summarize(study, before)
            click.get_current_context().exit(130)
        _summarize(study, before)


def _summarize(study: Study, before: int) -> None:
    records = study.trials[before:]
    counts = {s: sum(t.state is s for t in records) for s in STATE_ORDER[:3]}
    click.echo(f"ran {len(records)} trials of study {study.name!r}: "
               + ", ".join(f"{n} {s.value}" for s, n in counts.items()))
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
