"""A study as one static HTML file: summary, best trial and every plot, Plotly inlined."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.errors import HyperlawError
from hyperlaw.plot import figures

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; color: #1d2330; margin: 0 auto; max-width: 1200px;
       padding: 16px 20px 40px; }
h1 { font-size: 22px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; } td, th { padding: 4px 12px; border-bottom: 1px solid #eee;
text-align: left; } .plot { height: 420px; } .muted { color: #6b7280; }
"""


def _figures(columns: StudyColumns) -> list[tuple[str, figures.Figure]]:
    out = [("history", figures.history_figure(columns))]
    if columns.is_multi_objective:
        out += [("pareto", figures.pareto_front_figure(columns)),
                ("hypervolume", figures.hypervolume_history_figure(columns))]
    if columns.constraint_names():
        out.append(("constraints", figures.constraints_figure(columns)))
    out.append(("curves", figures.curves_figure(columns)))
    if columns.params:
        out += [("parallel", figures.parallel_coordinates_figure(columns)),
                ("slice", figures.slice_figure(columns)),
                ("rank", figures.rank_figure(columns)),
                ("contour", figures.contour_figure(columns)),
                ("importance", figures.importance_figure(columns))]
    out += [("edf", figures.edf_figure(columns)), ("timeline", figures.timeline_figure(columns))]
    return out


def _summary(columns: StudyColumns) -> list[tuple[str, str]]:
    """The report's summary rows: objectives, counts, and the best trial or the front."""
    directions = ", ".join(f"{label}: {d}" if columns.is_multi_objective else d for label, d in
                           zip(columns.objective_labels(), columns.directions, strict=True))
    rows = [("directions" if columns.is_multi_objective else "direction", directions),
            ("trials", str(columns.n))]
    rows += [(state, str(n)) for state, n in columns.counts().items() if n]
    done = columns.complete()
    if columns.constraint_names():
        feasible = int(columns.feasible()[done].sum())
        rows.append(("feasible", f"{feasible} of {len(done)} complete trials"))
    if columns.is_multi_objective:
        front = columns.front()
        listed = ", ".join(f"#{n}" for n in front[:20].tolist())
        rows.append(("Pareto front", f"{len(front)} trials" + (f" ({listed}"
                     + (", ..." if len(front) > 20 else "") + ")" if len(front) else "")))
        return rows
    best = columns.best_number()
    if best is not None:
        row = columns.row(best)
        rows.append(("best value", f"{row['value']:.6g} (trial #{best})"))
        rows += [(f"best {k}", f"{v:.6g}" if isinstance(v, float) else str(v))
                 for k, v in row["params"].items()]
    return rows


def report_html(columns: StudyColumns, name: str) -> str:
    """The report page of a study as one HTML string (about 1.5 MB: Plotly is inside)."""
    bundle = files("hyperlaw.dashboard") / "static" / "plotly-cartesian.min.js"
    plotly_js = bundle.read_text("utf-8")
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in _summary(columns))
    plots, scripts = [], []
    for key, figure in _figures(columns):
        height = figure["layout"].get("height", 420)
        plots.append(f'<div class="plot" id="plot-{key}" style="height:{height}px"></div>')
        data = figures.inline_json(figures.clean(figure))
        scripts.append(f'(function(f){{Plotly.newPlot("plot-{key}", f.data, f.layout, '
                       f'{{displaylogo:false, responsive:true}});}})({data});')
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>hyperlaw report: {html.escape(name)}</title><style>{_STYLE}</style>"
            f"<script>{plotly_js}</script></head><body>"
            f"<h1>Study {html.escape(name)}</h1><p class='muted'>report written {stamp}</p>"
            f"<table>{table}</table>{''.join(plots)}"
            f"<script>{''.join(scripts)}</script></body></html>")


def write_report(columns: StudyColumns, name: str, out: str | Path) -> Path:
    """Write the report of a study to `out` and return its path."""
    path = Path(out)
    try:
        path.write_text(report_html(columns, name), encoding="utf-8")
    except OSError as exc:
        raise HyperlawError(f"cannot write the report to {str(path)!r}: "
                            f"{exc.strerror or exc}; check that the directory exists") from None
    return path
