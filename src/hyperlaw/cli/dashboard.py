"""`hyperlaw dashboard` (the live web page) and `hyperlaw report` (one static HTML file)."""

from __future__ import annotations

from pathlib import Path

import click

from hyperlaw.cli.common import opened, storage_option, study_option
from hyperlaw.errors import HyperlawError

_EXTRA_HINT = "install it with: pip install 'hyperlaw[dashboard]'"


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise HyperlawError(f"the dashboard needs {module}; {_EXTRA_HINT}") from None


@click.command()
@storage_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 exposes the dashboard (use --token then).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--token", envvar="HYPERLAW_DASHBOARD_TOKEN", show_envvar=True, metavar="TOKEN",
              help="Require this token (open the page as /?token=TOKEN).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              metavar="S", help="How often the page asks for news, in seconds.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="Without --token, also answer requests for this host name (repeat for "
                   "several); by default only localhost, 127.0.0.1, [::1] and --host are.")
def dashboard(storage: str | None, host: str, port: int, token: str | None,
              poll: float, allow_hosts: tuple[str, ...]) -> None:
    """Serve a live, read-only web page of every study in a storage."""
    _require("starlette")
    _require("uvicorn")
    from hyperlaw.dashboard import serve

    with opened(storage) as store:
        if host not in ("127.0.0.1", "localhost", "::1") and not token:
            click.echo(f"warning: serving on {host} without --token: anyone who reaches this "
                       "address can read every study (requests are answered for the loopback "
                       "names, --host and --allow-host only)", err=True)
        suffix = f"/?token={token}" if token else "/"
        click.echo(f"hyperlaw dashboard of {store.url} on http://{host}:{port}{suffix} "
                   "(Ctrl-C stops)")
        serve(store, host=host, port=port, token=token, poll_interval=poll, hosts=allow_hosts)


@click.command()
@storage_option
@study_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              metavar="PATH", help="The HTML file to write.")
def report(storage: str | None, study_name: str, out: Path) -> None:
    """Write one static HTML file with a study's summary and plots."""
    from hyperlaw.analysis.columns import StudyColumns
    from hyperlaw.plot.report import write_report

    with opened(storage) as store:
        columns = StudyColumns.from_store(store, study_name)
    path = write_report(columns, study_name, out)
    click.echo(f"wrote the report of study {study_name!r} ({columns.n} trials) to {path}")
