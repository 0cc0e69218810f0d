"""The `hyperlaw` command: list, inspect, export, delete and run studies in a storage.

    hyperlaw studies --storage sqlite:///hyperlaw.db
    hyperlaw best --study mlp --json | jq .params
    hyperlaw optimize --study mlp --objective train:objective --n-trials 50
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table
from rich.text import Text

from hyperlaw import __version__
from hyperlaw.cli_common import (
    URL_KEY,
    add_cwd_to_path,
    console,
    echo_json,
    import_ref,
    opened,
    scrub,
    storage_option,
    study_option,
)
from hyperlaw.cli_dashboard import dashboard, report
from hyperlaw.cli_scaling import scaling, steplaw
from hyperlaw.cli_worker import worker
from hyperlaw.errors import HyperlawError, StudyNotFoundError
from hyperlaw.samplers import SAMPLERS
from hyperlaw.schedulers import SCHEDULERS
from hyperlaw.space import Space
from hyperlaw.store import Store
from hyperlaw.study import Study, create_study, load_study
from hyperlaw.trial import TrialRecord, TrialState

_STATE_ORDER = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED,
                TrialState.RUNNING, TrialState.WAITING)


class _Cli(click.Group):
    """A group that turns every HyperlawError into `error: <message>` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HyperlawError as exc:
            message = scrub(str(exc), ctx.meta.get(URL_KEY))
            click.echo(f"error: {message}", err=True)
            ctx.exit(1)


def _json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _value_text(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_value_text(v)}" for k, v in params.items())


def _duration(record: TrialRecord) -> str:
    return "-" if record.duration is None else f"{record.duration:.2f}s"


# --- the group --------------------------------------------------------------------------------
@click.group(name="hyperlaw", cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hyperlaw")
def cli() -> None:
    """Inspect, export and run hyperlaw studies.

    Every command reads the storage URL from --storage or from the HYPERLAW_STORAGE
    environment variable.
    """


@cli.command()
@storage_option
@_json_option("Print a JSON list instead of a table.")
def studies(storage: str | None, as_json: bool) -> None:
    """List every study with its trial counts, best value and last activity."""
    with opened(storage) as store:
        summaries = store.list_studies()
    if as_json:
        echo_json([{
            "name": s.name, "direction": s.direction, "n_trials": s.n_trials,
            "counts": {state.value: s.counts.get(state, 0) for state in _STATE_ORDER},
            "best_value": s.best_value, "created_at": _iso(s.created_at),
            "last_activity": _iso(s.last_activity),
        } for s in summaries])
        return
    if not summaries:
        click.echo("no studies")
        return
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("name")
    table.add_column("direction")
    for state in _STATE_ORDER:
        table.add_column(state.value, justify="right")
    table.add_column("best", justify="right")
    table.add_column("last activity (UTC)")
    for s in summaries:
        table.add_row(Text(s.name), s.direction,
                      *(str(s.counts.get(state, 0)) for state in _STATE_ORDER),
                      _num(s.best_value), _iso(s.last_activity) or "-")
    console().print(table)


@cli.command()
@storage_option
@study_option
@click.option("--state", "states", multiple=True,
              type=click.Choice([s.value for s in TrialState], case_sensitive=False),
              help="Only trials in this state (repeat for several).")
@click.option("--limit", type=click.IntRange(min=0), metavar="N",
              help="Only the N most recent trials.")
@_json_option("Print a JSON list of trials instead of a table.")
def trials(storage: str | None, study_name: str, states: Sequence[str], limit: int | None,
           as_json: bool) -> None:
    """List the trials of a study."""
    with opened(storage) as store:
        records = load_study(study_name, store).get_trials(states or None)
    if limit is not None:
        records = records[-limit:] if limit else []
    if as_json:
        from hyperlaw.export import trial_to_dict

        echo_json([trial_to_dict(t) for t in records])
        return
    if not records:
        click.echo("no trials")
        return
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("number", justify="right")
    table.add_column("state")
    table.add_column("value", justify="right")
    table.add_column("params")
    table.add_column("duration", justify="right")
    for t in records:
        table.add_row(str(t.number), t.state.value, _num(t.value), Text(_params_text(t.params)),
                      _duration(t))
    console().print(table)


@cli.command()
@storage_option
@study_option
@_json_option('Print only {"params": ..., "value": ...} as JSON.')
def best(storage: str | None, study_name: str, as_json: bool) -> None:
    """Show the best complete trial of a study."""
    with opened(storage) as store:
        study = load_study(study_name, store)
        record = study.best_trial
    if as_json:
        click.echo(json.dumps({"params": record.params, "value": record.value}))
        return
    click.echo(f"study:  {study.name} ({study.direction})")
    _echo_best(record)


def _echo_best(record: TrialRecord) -> None:
    click.echo(f"trial:  #{record.number}")
    click.echo(f"value:  {record.value!r}")
    click.echo("params:")
    for key, value in record.params.items():
        click.echo(f"  {key} = {value!r}")


@cli.command()
@storage_option
@study_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True,
              help="csv: one row per trial; json: the study with every trial.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write to this file instead of stdout.")
def export(storage: str | None, study_name: str, fmt: str, out: Path | None) -> None:
    """Export the trials of a study as CSV or JSON."""
    from hyperlaw.export import trial_to_dict, trials_dataframe

    with opened(storage) as store:
        study = load_study(study_name, store)
        records = study.trials
    if fmt == "csv":
        text = trials_dataframe(records).to_csv(index=False)
    else:
        text = json.dumps({"study": study.name, "direction": study.direction,
                           "trials": [trial_to_dict(t) for t in records]}, indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        with open(out, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise HyperlawError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(records)} trials of study {study.name!r} to {out}")


@cli.command()
@storage_option
@study_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def delete(storage: str | None, study_name: str, yes: bool) -> None:
    """Delete a study and all its trials."""
    with opened(storage, "open") as store:
        n = len(load_study(study_name, store).trials)
        if not yes:
            click.confirm(f"delete study {study_name!r} and its {n} trials from {store.url}?",
                          abort=True)
        store.delete_study(study_name)
    click.echo(f"deleted study {study_name!r} ({n} trials)")


@cli.command()
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
    counts = {s: sum(t.state is s for t in records) for s in _STATE_ORDER[:3]}
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


def main() -> None:
    """Entry point of the `hyperlaw` console script."""
    cli(prog_name="hyperlaw")


for command in (dashboard, report, worker, steplaw, scaling):
    cli.add_command(command)

if __name__ == "__main__":  # python -m hyperlaw.cli
    main()
