"""`hyperlaw import-optuna`: copy a study out of an Optuna database into a hyperlaw storage."""

from __future__ import annotations

import click

from hyperlaw.cli.common import URL_KEY
from hyperlaw.optuna_import import from_optuna


@click.command(name="import-optuna")
@click.argument("optuna_storage", metavar="OPTUNA_URL")
@click.option("--study", "study_name", metavar="NAME", required=True,
              help="Name of the Optuna study to import.")
@click.option("--to", "target", metavar="URL", required=True,
              help="hyperlaw storage to import into, e.g. sqlite:///hyperlaw.db.")
@click.option("--name", "new_name", metavar="NAME",
              help="Name of the study in the hyperlaw storage (default: the Optuna name).")
def import_optuna(optuna_storage: str, study_name: str, target: str,
                  new_name: str | None) -> None:
    """Import study NAME from the Optuna database at OPTUNA_URL (read, never written):
    trials, parameters and their distributions, values, states, intermediate values,
    attributes and times.

        hyperlaw import-optuna sqlite:///optuna.db --study mlp --to sqlite:///hyperlaw.db
    """
    click.get_current_context().meta[URL_KEY] = target
    study = from_optuna(optuna_storage, study_name, to=target, name=new_name)
    click.echo(f"imported {len(study.trials)} trials of Optuna study {study_name!r} into "
               f"study {study.name!r} of {study.storage}")
