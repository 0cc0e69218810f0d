"""`hyperlaw steplaw` and `hyperlaw scaling fit/recommend`: scaling laws on the command line.

    hyperlaw steplaw --params 1e9 --tokens 1e11 --seq-len 2048 --json
    hyperlaw scaling fit --storage sqlite:///scaling.db --name scaling --target lr
    hyperlaw scaling fit --csv runs.csv --target lr --out lr-law.json
    hyperlaw scaling recommend --law lr-law.json --params 1e9 --tokens 2e10
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from hyperlaw.cli.common import console, echo_json, opened, storage_option
from hyperlaw.errors import HyperlawError
from hyperlaw.scaling.fit import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_METHOD,
    DEFAULT_PRIOR_SD,
    DEFAULT_TOLERANCE,
    PowerLaw,
    fit_laws,
)
from hyperlaw.scaling.steplaw import StepLawRangeWarning, step_law
from hyperlaw.scaling.study import scaling_records


@click.command()
@click.option("--params", "n_params", type=float, required=True, metavar="N",
              help="Non-embedding parameters of the model.")
@click.option("--tokens", "n_tokens", type=float, required=True, metavar="D",
              help="Training tokens.")
@click.option("--seq-len", type=click.IntRange(min=1), default=2048, show_default=True,
              help="Sequence length (for the batch size in sequences).")
@click.option("--round-batch", is_flag=True, help="Round the batch to a power of two sequences.")
@click.option("--json", "as_json", is_flag=True, help="Print the prior as JSON.")
def steplaw(n_params: float, n_tokens: float, seq_len: int, round_batch: bool,
            as_json: bool) -> None:
    """The Step Law's learning rate, batch size and final loss for N parameters and D
    tokens."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StepLawRangeWarning)
        prior = step_law(n_params, n_tokens, seq_len, round_batch=round_batch)
    if as_json:
        echo_json(prior.to_dict())
    else:
        share = f"{prior.confidence:.0%} of the paper's bootstrap fits"
        click.echo(f"learning rate     {prior.lr:.4g}  ({prior.lr_low:.4g} .. "
                   f"{prior.lr_high:.4g}: {share})")
        click.echo(f"batch (tokens)    {prior.batch_tokens:.4g}  ({prior.batch_tokens_low:.4g} "
                   f".. {prior.batch_tokens_high:.4g})")
        click.echo(f"batch (sequences) {prior.batch_sequences:.4g}  (seq_len {seq_len})")
        click.echo(f"final loss        {prior.loss:.4g}  ({prior.loss_low:.4g} .. "
                   f"{prior.loss_high:.4g}: the loss law fitted on the paper's released runs)")
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)


@click.group()
def scaling() -> None:
    """Fit scaling laws of optimal hyperparameters and recommend values for a big run."""


def _source_options(f: Any) -> Any:
    f = click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False,
                                                          path_type=Path),
                     help="Records (columns n_params, n_tokens, loss and the target) "
                          "instead of a storage.")(f)
    f = click.option("--name", default="scaling", show_default=True,
                     help="Name of the ScalingStudy whose cells to read from the storage.")(f)
    return storage_option(f)


def _fit_options(f: Any) -> Any:
    f = click.option("--target", "targets", multiple=True, default=("lr",), show_default=True,
                     help="Parameter to fit a law for (repeatable).")(f)
    f = click.option("--features", default=None, metavar="F1,F2",
                     help="Features of the law (default n_params,n_tokens; n_tokens alone "
                          "for batch_size).")(f)
    f = click.option("--method", type=click.Choice(["tolerance", "parabola"]),
                     default=DEFAULT_METHOD, show_default=True,
                     help="Step-Law tolerance band, or a parabola through each cell's best.")(f)
    f = click.option("--tolerance", type=click.FloatRange(0, 1, max_open=True),
                     default=DEFAULT_TOLERANCE, show_default=True,
                     help="Relative loss band of kept runs per cell.")(f)
    f = click.option("--interval", type=click.Choice(["prediction", "confidence"]),
                     default="prediction", show_default=True,
                     help="Where a new cell's best value falls, or where the law lies.")(f)
    f = click.option("--prior", type=click.Choice(["steplaw", "mup", "none"]),
                     default="steplaw", show_default=True,
                     help="Prior on the exponents: the Step Law's (standard parametrization), "
                          "μP's (lr flat in size), or none (the runs alone).")(f)
    f = click.option("--prior-sd", type=click.FloatRange(0, min_open=True),
                     default=DEFAULT_PRIOR_SD, show_default=True,
                     help="Standard deviation of the prior on each exponent.")(f)
    f = click.option("--bootstrap", "n_bootstrap", type=click.IntRange(min=1),
                     default=DEFAULT_BOOTSTRAP, show_default=True,
                     help="Bootstrap resamples for the intervals.")(f)
    return click.option("--seed", type=int, default=0, show_default=True)(f)


def _records(storage: str | None, name: str, csv_path: Path | None) -> list[dict[str, Any]]:
    if csv_path is not None:
        return _read_csv(csv_path)
    with opened(storage) as store:
        rows = scaling_records(store, name)
    if not rows:
        raise HyperlawError(f"no complete trials of a scaling study named {name!r} in the "
                            "storage; check --name, or pass --csv")
    return rows


def _read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV file with a header; numbers as floats, an empty cell as NaN."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HyperlawError(f"cannot read {str(path)!r} as CSV: {exc}; pass a CSV file with "
                            "a header row") from None
    return [{key: _cell(value) for key, value in row.items()} for row in rows]


def _cell(text: str) -> float | str:
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text


def _fit_all(rows: list[dict[str, Any]], targets: Sequence[str], features: str | None,
             **settings: Any) -> dict[str, PowerLaw]:
    """The laws as `ScalingStudy.fit` fits them (one shared function, the same defaults);
    the option's `prior="none"` is no prior."""
    if settings.get("prior") == "none":
        settings["prior"] = None
    given = None
    if features:
        chosen = tuple(f.strip() for f in features.split(",") if f.strip())
        given = dict.fromkeys(targets, chosen)
    return fit_laws(rows, targets, given, **settings)


@scaling.command(name="fit")
@_source_options
@_fit_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write the fitted laws as JSON (read by `scaling recommend --law`).")
@click.option("--json", "as_json", is_flag=True, help="Print the laws as JSON.")
def fit_command(storage: str | None, name: str, csv_path: Path | None, targets: tuple[str, ...],
                features: str | None, method: str, tolerance: float, interval: str,
                prior: str, prior_sd: float, n_bootstrap: int, seed: int, out: Path | None,
                as_json: bool) -> None:
    """Fit a power law of each target's optimum in n_params and n_tokens."""
    laws = _fit_all(_records(storage, name, csv_path), targets, features, method=method,
                    tolerance=tolerance, interval=interval, n_bootstrap=n_bootstrap, seed=seed,
                    prior=prior, prior_sd=prior_sd)
    data = {t: law.to_dict() for t, law in laws.items()}
    if out is not None:
        out.write_text(json.dumps(data))
    if as_json:
        echo_json({t: {k: v for k, v in d.items() if k != "bootstrap"} for t, d in data.items()})
        return
    for law in laws.values():
        boot = law.bootstrap_coefficients
        click.echo(f"{law.formula()}   ({law.n_rows} rows, {len(law.cells)} cells, "
                   f"{law.method})")
        click.echo("  bootstrap means: " + ", ".join(f"{k} {v:.4g}" for k, v in boot.items()))
        if law.prior:
            click.echo("  exponents: " + "; ".join(_evidence(law, j, f)
                                                    for j, f in enumerate(law.features)))


def _evidence(law: PowerLaw, j: int, feature: str) -> str:
    """Where the exponent of `feature` comes from: the runs (their interval), the runs and
    the prior, or the prior alone."""
    measured = law.trend[j] if law.trend else None
    if feature not in law.prior:
        return f"{feature} from the runs"
    prior = f"prior {law.prior[feature]:.3g} ± {law.prior_sd:.2g}"
    if measured is None:
        return f"{feature} the prior's ({prior}; too few values in the cells)"
    return (f"{feature} from the runs ({law.confidence:.0%}: {measured[0]:.3g} .. "
            f"{measured[1]:.3g}) and the {prior}")


@scaling.command()
@_source_options
@_fit_options
@click.option("--law", "law_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Laws written by `scaling fit --out` (instead of fitting again).")
@click.option("--params", "n_params", type=float, required=True, metavar="N",
              help="Non-embedding parameters of the big run.")
@click.option("--tokens", "n_tokens", type=float, required=True, metavar="D",
              help="Training tokens of the big run.")
@click.option("--json", "as_json", is_flag=True, help="Print the recommendation as JSON.")
def recommend(storage: str | None, name: str, csv_path: Path | None, targets: tuple[str, ...],
              features: str | None, method: str, tolerance: float, interval: str,
              prior: str, prior_sd: float, n_bootstrap: int, seed: int,
              law_path: Path | None, n_params: float, n_tokens: float,
              as_json: bool) -> None:
    """Each target's predicted optimum (with its confidence interval) for one (N, D)."""
    if law_path is not None:
        laws = {t: PowerLaw.from_dict(d) for t, d in json.loads(law_path.read_text()).items()}
    else:
        laws = _fit_all(_records(storage, name, csv_path), targets, features, method=method,
                        tolerance=tolerance, interval=interval, n_bootstrap=n_bootstrap,
                        seed=seed, prior=prior, prior_sd=prior_sd)
    given = {"n_params": n_params, "n_tokens": n_tokens}
    predictions = {t: law.predict(**{f: given[f] for f in law.features})
                   for t, law in laws.items()}
    if as_json:
        echo_json({t: p.to_dict() for t, p in predictions.items()})
        return
    out = console()
    for target, p in predictions.items():
        out.print(f"{target}: {p.value:.4g}  ({p.confidence:.0%} interval {p.low:.4g} .. "
                  f"{p.high:.4g})")
