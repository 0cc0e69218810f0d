"""The `hyperlaw` command: list, inspect, export, delete and run studies in a storage.

    hyperlaw studies --storage sqlite:///hyperlaw.db
    hyperlaw best --study mlp --json | jq .params
    hyperlaw optimize --study mlp --objective train:objective --n-trials 50

One module per command family (`studies`, `optimize`, `shell`, `worker`, `dashboard`,
`scaling`, `imports`); they share only `common` and `sweep_config`, and this package
assembles them into one group.
"""

from __future__ import annotations

from typing import Any

import click

from hyperlaw import __version__
from hyperlaw.cli import dashboard, imports, optimize, scaling, shell, studies, worker
from hyperlaw.cli.common import URL_KEY, scrub
from hyperlaw.errors import HyperlawError

__all__ = ["cli", "main"]


class _Cli(click.Group):
    """A group that turns every HyperlawError into `error: <message>` and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HyperlawError as exc:
            message = scrub(str(exc), ctx.meta.get(URL_KEY))
            click.echo(f"error: {message}", err=True)
            ctx.exit(1)


@click.group(name="hyperlaw", cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hyperlaw")
def cli() -> None:
    """Inspect, export and run hyperlaw studies.

    Every command reads the storage URL from --storage or from the HYPERLAW_STORAGE
    environment variable.
    """


for _command in (studies.studies, studies.trials, studies.best, studies.export, studies.delete,
                 optimize.optimize, shell.ask, shell.tell, dashboard.dashboard,
                 dashboard.report, worker.worker, scaling.steplaw, scaling.scaling,
                 imports.import_optuna):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the `hyperlaw` console script."""
    cli(prog_name="hyperlaw")
