"""`hyperlaw ask` and `hyperlaw tell`: one trial at a time, for shell loops.

    for i in $(seq 20); do
        eval "$(hyperlaw ask --config sweep.yaml --format env)"
        loss=$(python train.py --lr "$lr" --width "$width")
        hyperlaw tell --config sweep.yaml "$HYPERLAW_TRIAL" "$loss"
    done
"""

from __future__ import annotations

import json
import shlex
from functools import partial
from pathlib import Path
from typing import Any

import click

from hyperlaw.cli.common import echo_json, opened, storage_option, study_option
from hyperlaw.cli.sweep_config import SweepConfig, load_config
from hyperlaw.errors import HyperlawError, StudyNotFoundError
from hyperlaw.store import Store
from hyperlaw.study import Study, create_study, load_study

_config_option = click.option(
    "--config", "config_path", metavar="FILE", type=click.Path(dir_okay=False),
    help="A YAML sweep file (study, storage, space, sampler, direction); options given here "
         "win over it.")


@click.command()
@storage_option
@partial(study_option, required=False)
@_config_option
@click.option("--format", "form", type=click.Choice(["json", "env"]), default="json",
              show_default=True,
              help="json: {\"number\": N, \"params\": {...}}; env: shell assignments "
                   "HYPERLAW_TRIAL=N and NAME=VALUE, for eval.")
def ask(storage: str | None, study_name: str | None, config_path: str | None,
        form: str) -> None:
    """Start a trial and print its number and parameters (creating the study from the sweep
    file if it does not exist yet)."""
    config = _config(config_path)
    with opened(config.get("storage", storage), "create") as store:
        study = _study(store, config, study_name)
        trial = study.ask()
        if form == "json":
            echo_json({"number": trial.number, "params": trial.params})
            return
        lines = [f"HYPERLAW_TRIAL={trial.number}"]
        for name, value in trial.params.items():
            if not name.isidentifier():
                raise HyperlawError(
                    f"parameter {name!r} of trial #{trial.number} is not a shell variable "
                    "name; use --format json (the trial is started: tell it when done)")
            lines.append(f"{name}={shlex.quote(str(value))}")
        click.echo("\n".join(lines))


@click.command()
@storage_option
@partial(study_option, required=False)
@_config_option
@click.argument("number", type=click.IntRange(min=0))
@click.argument("value", required=False)
@click.option("--state", type=click.Choice(["complete", "pruned", "failed"]),
              default="complete", show_default=True, help="How the trial ended.")
@click.option("--error", metavar="TEXT", help="Why a failed trial failed.")
def tell(storage: str | None, study_name: str | None, config_path: str | None, number: int,
         value: str | None, state: str, error: str | None) -> None:
    """Finish trial NUMBER with its VALUE (or as pruned or failed). With several objectives,
    VALUE is a JSON list in the study's order or a JSON object keyed by their names."""
    config = _config(config_path)
    if state == "complete" and value is None:
        raise click.UsageError(f"trial #{number}: give its VALUE, or --state pruned/failed")
    with opened(config.get("storage", storage), "open") as store:
        study = _study(store, config, study_name, create=False)
        record = study.tell(number, _value(value, number) if value is not None else None,
                            state=state, error=error)
        echo_json({"number": record.number, "state": record.state.value,
                   "value": record.value if not study.is_multi_objective
                   else list(record.values or ())})


def _config(path: str | None) -> SweepConfig:
    return load_config(path) if path else SweepConfig(Path("(no --config)"))


def _study(store: Store, config: SweepConfig, study_name: str | None,
           create: bool = True) -> Study:
    name = config.get("study", study_name)
    if name is None:
        raise click.UsageError("no study given: pass --study NAME or set 'study' in the sweep "
                               "file")
    if create and config.values:
        return create_study(name, storage=store, space=config.space,
                            direction=config.get("direction") or "minimize",
                            sampler=config.sampler(None, config.get("seed")),
                            scheduler=config.scheduler(None), seed=config.get("seed"),
                            load_if_exists=True)
    try:
        return load_study(name, store)
    except StudyNotFoundError:
        raise HyperlawError(f"no study {name!r} in the storage; create it by giving a sweep "
                            "file with a 'space' (--config sweep.yaml)") from None


def _value(text: str, number: int) -> float | list[Any] | dict[str, Any]:
    """A number, or a JSON list or object of numbers (several objectives)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, list | dict):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise HyperlawError(f"trial #{number}: the value {text!r} is not a number; pass the "
                        "objective's value, e.g. 0.38, or with several objectives a JSON list "
                        "such as [0.38, 12.5]")
