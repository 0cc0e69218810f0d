"""`hyperlaw studies`, `trials`, `best`, `export` and `delete`: read and manage the studies of a
storage.

    hyperlaw studies --storage sqlite:///hyperlaw.db
    hyperlaw best --study mlp --json | jq .params
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

from hyperlaw.cli.common import (
    STATE_ORDER,
    console,
    echo_json,
    opened,
    storage_option,
    study_option,
)
from hyperlaw.errors import HyperlawError
from hyperlaw.study import load_study
from hyperlaw.trial import TrialRecord, TrialState


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


@click.command()
@storage_option
@_json_option("Print a JSON list instead of a table.")
def studies(storage: str | None, as_json: bool) -> None:
    """List every study with its trial counts, best value and last activity."""
    with opened(storage) as store:
        summaries = store.list_studies()
    if as_json:
        echo_json([{
            "name": s.name, "direction": s.direction, "directions": list(s.directions),
            "n_trials": s.n_trials,
            "counts": {state.value: s.counts.get(state, 0) for state in STATE_ORDER},
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
    for state in STATE_ORDER:
        table.add_column(state.value, justify="right")
    table.add_column("best", justify="right")
    table.add_column("last activity (UTC)")
    for s in summaries:
        table.add_row(Text(s.name), ",".join(s.directions),
                      *(str(s.counts.get(state, 0)) for state in STATE_ORDER),
                      _num(s.best_value), _iso(s.last_activity) or "-")
    console().print(table)


@click.command()
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


@click.command()
@storage_option
@study_option
@_json_option('Print only {"params": ..., "value": ...} as JSON; with several objectives, '
              '{"directions": ..., "objectives": ..., "front": [{"number", "params", '
              '"values"}, ...]}.')
def best(storage: str | None, study_name: str, as_json: bool) -> None:
    """Show the best complete trial of a study (the Pareto front with several objectives)."""
    with opened(storage) as store:
        study = load_study(study_name, store)
        if study.is_multi_objective:
            _echo_front(study.name, study.directions, study.objective_names,
                        study.best_trials, as_json)
            return
        record = study.best_trial
    if as_json:
        click.echo(json.dumps({"params": record.params, "value": record.value}))
        return
    click.echo(f"study:  {study.name} ({study.direction})")
    _echo_best(record)


def _echo_front(name: str, directions: Sequence[str], names: Sequence[str] | None,
                front: list[TrialRecord], as_json: bool) -> None:
    """The Pareto front as JSON or as a table (one column per objective)."""
    labels = list(names) if names is not None else [f"#{i}" for i in range(len(directions))]
    if as_json:
        click.echo(json.dumps({
            "study": name, "directions": list(directions), "objectives": names and list(names),
            "front": [{"number": t.number, "params": t.params, "values": list(t.values or ())}
                      for t in front]}))
        return
    objectives = ", ".join(f"{n} {d}" for n, d in zip(labels, directions, strict=True))
    click.echo(f"study:  {name} ({objectives})")
    click.echo(f"Pareto front: {len(front)} trial(s)")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("number", justify="right")
    for label in labels:
        table.add_column(label, justify="right")
    table.add_column("params")
    for t in front:
        table.add_row(str(t.number), *(_num(v) for v in t.values or ()),
                      Text(_params_text(t.params)))
    console().print(table)


def _echo_best(record: TrialRecord) -> None:
    click.echo(f"trial:  #{record.number}")
    click.echo(f"value:  {record.value!r}")
    click.echo("params:")
    for key, value in record.params.items():
        click.echo(f"  {key} = {value!r}")


@click.command()
@storage_option
@study_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), required=True,
              help="csv: one row per trial; json: the study with every trial.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write to this file instead of stdout.")
def export(storage: str | None, study_name: str, fmt: str, out: Path | None) -> None:
    """Export the trials of a study as CSV or JSON."""
    from hyperlaw.export import trial_to_dict, trials_csv

    with opened(storage) as store:
        study = load_study(study_name, store)
        records = study.trials
    if fmt == "csv":
        text = trials_csv(records, study.objective_names)
    else:
        heading: dict[str, Any] = {"study": study.name, "direction": study.directions[0]}
        if study.is_multi_objective or study.objective_names:
            heading.update(directions=list(study.directions), objectives=study.objective_names)
        text = json.dumps({**heading, "trials": [trial_to_dict(t) for t in records]},
                          indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        with open(out, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as exc:
        raise HyperlawError(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    click.echo(f"wrote {len(records)} trials of study {study.name!r} to {out}")


@click.command()
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
