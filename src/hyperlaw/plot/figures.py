"""Figures of a study as Plotly figure dictionaries (`{"data": [...], "layout": {...}}`).

One builder per plot, shared by the dashboard (which sends the dictionaries to the page),
`hyperlaw.plot` (which wraps them in `plotly.graph_objects.Figure`) and static reports. Every
builder bounds what it draws, so a figure of a 100,000-trial study stays small.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hyperlaw import pareto
from hyperlaw.analysis.columns import (
    COMPLETE,
    PRUNED,
    RUNNING,
    STATES,
    ParamColumn,
    StudyColumns,
)
from hyperlaw.analysis.importance import ped_anova
from hyperlaw.analysis.sampling import best_and_spread, min_max_bins, spread, thin_curve
from hyperlaw.errors import HyperlawError

Figure = dict[str, Any]

#: colors of trial states, shared with the page's badges
STATE_COLORS = {"complete": "#1f77b4", "pruned": "#ff7f0e", "running": "#2ca02c",
                "failed": "#d62728", "waiting": "#7f7f7f"}

#: extra traces drawn over the learning curves: (columns, shown trial numbers) -> traces.
#: Curve models register here to add, e.g., extrapolation bands.
CURVE_OVERLAYS: list[Callable[[StudyColumns, np.ndarray], list[dict[str, Any]]]] = []


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {"title": {"text": title, "x": 0.01, "font": {"size": 14}},
                              "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
                              "template": "plotly_white", "hovermode": "closest"}
    layout.update(extra)
    return layout


def _note(text: str) -> dict[str, Any]:
    return {"text": text, "xref": "paper", "yref": "paper", "x": 1, "y": 1.08,
            "xanchor": "right", "showarrow": False, "font": {"size": 11, "color": "#666"}}


def _empty(title: str, why: str) -> Figure:
    return {"data": [], "layout": _layout(title, xaxis={"visible": False},
                                          yaxis={"visible": False},
                                          annotations=[{"text": why, "showarrow": False,
                                                        "xref": "paper", "yref": "paper",
                                                        "x": 0.5, "y": 0.5}])}


_HTML_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                              "\u2028": "\\u2028", "\u2029": "\\u2029"})


def inline_json(value: Any) -> str:
    """`value` as JSON that is safe inside an HTML <script> element: `<`, `>`, `&`, U+2028
    and U+2029 are escaped, so that no string (`</script>`, `<!--<script>`) can end or
    change the script. NaN and infinities become null."""
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:
        text = json.dumps(clean(value), allow_nan=False)
    return text.translate(_HTML_UNSAFE)


def clean(value: Any) -> Any:
    """`value` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in a.tolist()]


def short_number(x: float) -> str:
    """`x` in 3 significant digits, exponents without padding: 1e-05 reads "1e-5"."""
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m[1].replace("+", "") + m[2], f"{x:.3g}")


def value_axis(title: str | dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A linear axis of numbers whose exponents read "2e-5" (Plotly's default reads "20µ");
    `title` is its text or Plotly's title dict."""
    return {"title": _title(title), "exponentformat": "e", **extra}


def param_axis(column: ParamColumn, title: str | dict[str, Any],
               values: np.ndarray | None = None, **extra: Any) -> dict[str, Any]:
    """The axis of a parameter: logarithmic with powers of ten as ticks for a log-scaled one
    (one tick a decade when `values` span two decades or more, else 1-2-5 ticks),
    categorical for choices, linear otherwise."""
    if column.categorical:
        return {"title": _title(title), "type": "category", **extra}
    if not column.log:
        return value_axis(title, **extra)
    axis: dict[str, Any] = {"title": _title(title), "type": "log", "exponentformat": "power",
                            "dtick": "D2"}
    if values is not None and np.isfinite(values).any():
        decades = np.log10(np.nanmax(values) / np.nanmin(values))
        axis["dtick"] = 1 if decades >= 2 else "D2"
    return {**axis, **extra}


def pair_cells(count: int) -> list[tuple[int, int, int, int]]:
    """The lower triangle of a matrix of the pairs of `count` things: (i, j, row, col) for
    each pair i < j (i across, j up), in a grid of `count - 1` rows and columns."""
    return [(i, j, j - 1, i) for j in range(1, count) for i in range(j)]


def _title(title: str | dict[str, Any]) -> dict[str, Any]:
    return title if isinstance(title, dict) else {"text": title}


def cell_domains(row: int, col: int, n_rows: int,
                 n_cols: int) -> tuple[list[float], list[float]]:
    """The x and y domains of cell (row, col) of a grid of small plots (row 0 at the top;
    a grid of one cell fills the figure)."""
    if n_rows == n_cols == 1:
        return [0.0, 1.0], [0.0, 1.0]
    gap_x, gap_y = 0.06, 0.12 / n_rows
    x0 = col / n_cols + (gap_x / 2 if col else 0)
    x1 = (col + 1) / n_cols - (gap_x / 2 if col < n_cols - 1 else 0)
    y1 = 1 - row / n_rows - (gap_y if row else 0)
    y0 = 1 - (row + 1) / n_rows + gap_y * 2
    return [x0, x1], [y0, y1]


# --- optimization history ---------------------------------------------------------------------
def history_figure(columns: StudyColumns, max_points: int = 2000) -> Figure:
    """Value of each complete trial by number, with the best-so-far line."""
    title = "Optimization history"
    done = columns.complete()
    if not len(done):
        return _empty(title, "no complete trial yet")
    values = columns.value[done]
    keep = min_max_bins(done, values, max_points)
    scores = columns.sign() * values
    running_best = np.minimum.accumulate(scores)
    improved = np.flatnonzero(np.r_[True, running_best[1:] < running_best[:-1]])
    best_x = np.r_[done[improved], done[-1]]
    best_y = np.r_[values[improved], values[improved[-1]]]
    layout = _layout(title, xaxis={"title": {"text": "trial"}},
                     yaxis={"title": {"text": columns.objective_labels()[0]
                                      if columns.is_multi_objective else "objective value"}},
                     legend={"orientation": "h", "y": -0.2})
    if len(keep) < len(done):
        layout["annotations"] = [_note(f"{len(keep):,} of {len(done):,} trials drawn "
                                       "(lowest and highest of each range)")]
    return {"data": [
        {"type": "scatter", "mode": "markers", "name": "trials", "x": done[keep].tolist(),
         "y": values[keep].tolist(), "marker": {"size": 5, "color": STATE_COLORS["complete"],
                                                "opacity": 0.7},
         "hovertemplate": "trial %{x}<br>value %{y}<extra></extra>"},
        {"type": "scatter", "mode": "lines", "name": "best so far", "x": best_x.tolist(),
         "y": best_y.tolist(), "line": {"shape": "hv", "color": "#d62728", "width": 2},
         "hoverinfo": "skip"},
    ], "layout": layout}


# --- distribution and time ---------------------------------------------------------------------
def edf_figure(studies: StudyColumns | Sequence[StudyColumns],
               max_points: int = 1000) -> Figure:
    """Empirical distribution of the objective: the share of a study's complete trials whose
    value is at most x, a step line from the lowest value (1/n) to the highest (1), one line
    per study; each line keeps up to `max_points` of its steps, the first and last among them."""
    title = "Empirical distribution of the objective"
    group = [studies] if isinstance(studies, StudyColumns) else list(studies)
    data: list[dict[str, Any]] = []
    for k, columns in enumerate(group):
        done = columns.complete()
        if not len(done):
            continue
        values = np.sort(columns.value[done])
        keep = spread(np.arange(len(values)), max_points)
        share = (keep + 1) / len(values)
        name = columns.name or f"study {k + 1}"
        data.append({"type": "scatter", "mode": "lines", "name": name,
                     "x": values[keep].tolist(), "y": share.tolist(),
                     "line": {"shape": "hv", "width": 2},
                     "hovertemplate": "value ≤ %{x}: %{y:.1%} of trials<extra>" + name
                     + "</extra>"})
    if not data:
        return _empty(title, "no complete trial yet")
    return {"data": data, "layout": _layout(
        title, xaxis=value_axis("objective value"),
        yaxis={"title": {"text": "share of complete trials"}, "range": [0, 1.03],
               "tickformat": ".0%"},
        showlegend=len(group) > 1, legend={"orientation": "h", "y": -0.2})}


def timeline_figure(columns: StudyColumns, max_bars: int = 1000) -> Figure:
    """One bar per trial from its start to its finish, colored by state; a running trial's
    bar ends at the study's latest recorded time. Up to `max_bars` bars: the running trials
    and an even spread of the others."""
    title = "Timeline"
    started = np.flatnonzero(~np.isnan(columns.started_at))
    if not len(started):
        return _empty(title, "no trial has started yet")
    running = started[columns.state[started] == RUNNING][-max_bars // 5:]
    rest = np.setdiff1d(started, running)
    shown = np.sort(np.concatenate([running, spread(rest, max_bars - len(running))]))
    stamps = np.concatenate([columns.started_at[started], columns.finished_at[started]])
    latest = float(np.nanmax(stamps))
    begin = columns.started_at[shown]
    end = np.where(np.isnan(columns.finished_at[shown]), latest, columns.finished_at[shown])
    seconds = np.maximum(end - begin, 0.0)
    states = columns.state[shown]
    data = []
    for code in np.unique(states).tolist():
        rows = states == code
        state = STATES[code].value
        data.append({"type": "bar", "orientation": "h", "name": state,
                     "y": shown[rows].tolist(), "base": (begin[rows] * 1000).tolist(),
                     "x": (seconds[rows] * 1000).tolist(), "customdata": seconds[rows].tolist(),
                     "width": 0.8, "marker": {"color": STATE_COLORS[state]},
                     "hovertemplate": "trial %{y}<br>%{base|%H:%M:%S} for %{customdata:.3s}s"
                     "<extra>" + state + "</extra>"})
    layout = _layout(title, barmode="overlay", bargap=0.2,
                     xaxis={"title": {"text": "time (UTC)"}, "type": "date"},
                     yaxis={"title": {"text": "trial"}},
                     legend={"orientation": "h", "y": -0.2})
    if len(shown) < len(started):
        layout["annotations"] = [_note(f"{len(shown):,} of {len(started):,} trials drawn "
                                       "(running and a spread)")]
    return {"data": data, "layout": layout}


# --- learning curves --------------------------------------------------------------------------
def _curve_selection(columns: StudyColumns, max_curves: int) -> np.ndarray:
    reported = np.flatnonzero(columns.last_step >= 0)
    if len(reported) <= max_curves:
        return reported
    state = columns.state[reported]
    running = reported[state == RUNNING][-max_curves // 5:]
    done = reported[state == COMPLETE]
    best = done[np.argsort(columns.sign() * columns.value[done], kind="stable")]
    best = best[: max_curves * 2 // 5]
    rest = np.setdiff1d(reported, np.concatenate([running, best]))
    return np.sort(np.concatenate(
        [running, best, spread(rest, max_curves - len(running) - len(best))]))


def _band(curves: dict[int, tuple[np.ndarray, np.ndarray]],
          max_steps: int) -> list[dict[str, Any]]:
    """Median and 10-90 % quantiles of the reported values by step (steps binned if many)."""
    steps = np.concatenate([s for s, _ in curves.values()])
    values = np.concatenate([v for _, v in curves.values()])
    distinct = np.unique(steps)
    if len(distinct) > max_steps:
        edges = distinct[np.linspace(0, len(distinct) - 1, max_steps).round().astype(int)]
        steps = edges[np.clip(np.searchsorted(edges, steps), 0, len(edges) - 1)]
        distinct = edges
    order = np.argsort(steps, kind="stable")
    groups = np.split(values[order], np.searchsorted(steps[order], distinct[1:]))
    q10, q50, q90 = np.array([np.quantile(g, [0.1, 0.5, 0.9]) for g in groups]).T
    x = distinct.tolist()
    style = {"type": "scatter", "mode": "lines", "hoverinfo": "skip", "legendgroup": "band"}
    return [
        {**style, "name": "10 %", "x": x, "y": q10.tolist(), "showlegend": False,
         "line": {"width": 0}},
        {**style, "name": "10-90 % of all trials", "x": x, "y": q90.tolist(),
         "fill": "tonexty", "fillcolor": "rgba(31,119,180,0.15)", "line": {"width": 0}},
        {**style, "name": "median of all trials", "x": x, "y": q50.tolist(),
         "line": {"color": "#333", "dash": "dot", "width": 1.5}},
    ]


def curves_figure(columns: StudyColumns, max_curves: int = 200, max_points: int = 100,
                  band_trials: int = 5000) -> Figure:
    """Intermediate values by step: the best, running and a spread of other trials (pruned
    ones end in a cross), over the quantile band of all trials (estimated from a spread of
    `band_trials` of them) when not all are drawn."""
    title = "Learning curves"
    reported_numbers = np.flatnonzero(columns.last_step >= 0)
    if not len(reported_numbers):
        return _empty(title, "no intermediate values reported yet")
    shown = _curve_selection(columns, max_curves)
    reported = len(reported_numbers)
    curves = columns.curves_of(shown)
    data: list[dict[str, Any]] = []
    if len(shown) < reported:
        data.extend(_band(columns.curves_of(spread(reported_numbers, band_trials)),
                          max_points))
    by_state: dict[int, tuple[list[Any], list[Any], list[Any]]] = {}
    ends: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    for number in shown.tolist():
        x, y = thin_curve(*curves[number], max_points)
        code = int(columns.state[number])
        xs, ys, labels = by_state.setdefault(code, ([], [], []))
        xs.extend([*x.tolist(), None])
        ys.extend([*y.tolist(), None])
        labels.extend([number] * len(x) + [None])
        if code == PRUNED:
            ends[0].append(int(x[-1]))
            ends[1].append(float(y[-1]))
            ends[2].append(number)
    for code, (xs, ys, labels) in sorted(by_state.items()):
        state = STATES[code].value
        data.append({"type": "scatter", "mode": "lines", "name": state, "x": xs, "y": ys,
                     "customdata": labels, "connectgaps": False,
                     "line": {"color": STATE_COLORS[state], "width": 1},
                     "opacity": 0.6, "hovertemplate":
                     "trial %{customdata}<br>step %{x}<br>value %{y}<extra>" + state
                     + "</extra>"})
    if ends[0]:
        data.append({"type": "scatter", "mode": "markers", "name": "pruned (stopped here)",
                     "x": ends[0], "y": ends[1], "customdata": ends[2],
                     "marker": {"symbol": "x", "size": 7, "color": STATE_COLORS["pruned"]},
                     "hovertemplate": "trial %{customdata} pruned at step %{x}<extra></extra>"})
    for overlay in CURVE_OVERLAYS:
        data.extend(overlay(columns, shown))
    layout = _layout(title, xaxis={"title": {"text": "step"}},
                     yaxis={"title": {"text": "intermediate value"}},
                     legend={"orientation": "h", "y": -0.2})
    if len(shown) < reported:
        layout["annotations"] = [_note(f"{len(shown):,} of {reported:,} curves drawn "
                                       "(best, running and a spread)")]
    return {"data": data, "layout": layout}


# --- parameters -------------------------------------------------------------------------------
def _check_params(columns: StudyColumns, names: Sequence[str]) -> None:
    """Raise a HyperlawError naming the parameters the study does not have."""
    unknown = [n for n in names if n not in columns.params]
    if unknown:
        raise HyperlawError(f"unknown parameters {unknown}; the study has "
                            f"{columns.param_names()}")


def _shown_complete(columns: StudyColumns, limit: int) -> np.ndarray:
    done = columns.complete()
    return best_and_spread(done, columns.sign() * columns.value[done], limit)


def _param_values(columns: StudyColumns, name: str, numbers: np.ndarray) -> list[Any]:
    """Values of a parameter for plotting: numbers, or labels for categories."""
    column = columns.params[name]
    raw = columns.param(name)[numbers]
    if column.categorical:
        return [None if math.isnan(v) else column.labels[int(v)] for v in raw]
    return _floats(raw)


_VIRIDIS = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"]


def _axis_scale(column: ParamColumn | None, raw: np.ndarray) -> tuple[np.ndarray, list, list]:
    """A parameter (or the objective, with no column) scaled to [0, 1] for one vertical axis,
    with tick positions and labels (powers of ten on a log axis that spans two or more)."""
    if column is not None and column.categorical:
        k = max(len(column.labels) - 1, 1)
        return raw / k, [i / k for i in range(len(column.labels))], list(column.labels)
    log = column is not None and column.log
    x = np.log10(raw) if log else raw
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    span = hi - lo or 1.0
    decades = np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=float)
    ticks = decades if log and len(decades) >= 2 else np.linspace(lo, hi, 5)
    labels = [short_number(10 ** t if log else t) for t in ticks]
    return (x - lo) / span, ((ticks - lo) / span).tolist(), labels


def parallel_coordinates_figure(columns: StudyColumns, max_lines: int = 500) -> Figure:
    """One line per complete trial across every parameter and the objective, colored by the
    objective (drawn as SVG lines: fast without a GPU)."""
    title = "Parallel coordinates"
    shown = _shown_complete(columns, max_lines)
    if not len(shown) or not columns.params:
        return _empty(title, "no complete trial yet")
    axes: list[tuple[str, np.ndarray, list, list]] = []
    for name in columns.param_names():
        raw = columns.param(name)[shown]
        if np.isnan(raw).mean() > 0.5:
            continue  # a conditional parameter inactive in most trials
        axes.append((name, *_axis_scale(columns.params[name], raw)))
    values = columns.value[shown]
    axes.append(("objective", *_axis_scale(None, values)))
    scaled = np.vstack([a[1] for a in axes]).T  # one row per trial
    keep = ~np.isnan(scaled).any(axis=1)
    scaled, numbers, values = scaled[keep], shown[keep], values[keep]
    # color by objective quantile: best trials drawn last, on top
    ranks = np.argsort(np.argsort(columns.sign() * values, kind="stable"), kind="stable")
    bucket = (len(_VIRIDIS) - 1) - np.minimum(ranks * len(_VIRIDIS) // max(len(ranks), 1),
                                              len(_VIRIDIS) - 1)
    data: list[dict[str, Any]] = []
    n_axes = len(axes)
    for b in range(len(_VIRIDIS)):
        rows = np.flatnonzero(bucket == b)
        if not len(rows):
            continue
        xs = np.tile(np.r_[np.arange(n_axes, dtype=float), np.nan], len(rows))
        ys = np.hstack([scaled[rows], np.full((len(rows), 1), np.nan)]).ravel()
        trial_numbers = np.repeat(numbers[rows], n_axes + 1)
        data.append({"type": "scatter", "mode": "lines", "x": _floats(xs), "y": _floats(ys),
                     "customdata": trial_numbers.tolist(), "showlegend": False,
                     "line": {"color": _VIRIDIS[b], "width": 1}, "opacity": 0.5,
                     "hovertemplate": "trial %{customdata}<extra></extra>"})
    lo, hi = float(values.min()), float(values.max())
    data.append({"type": "scatter", "mode": "markers", "x": [None], "y": [None],
                 "hoverinfo": "skip", "showlegend": False,
                 "marker": {"color": [lo, hi], "cmin": lo, "cmax": hi, "showscale": True,
                            "colorscale": [[i / 4, c] for i, c in enumerate(_VIRIDIS)],
                            "reversescale": not columns.maximize,
                            "colorbar": {"title": {"text": "value"}, "thickness": 12}}})
    annotations = []
    shapes = []
    for k, (name, _, ticks, labels) in enumerate(axes):
        shapes.append({"type": "line", "x0": k, "x1": k, "y0": 0, "y1": 1,
                       "line": {"color": "#555", "width": 1}})
        annotations.append({"x": k, "y": 1.04, "text": f"<b>{name}</b>", "showarrow": False,
                            "yanchor": "bottom"})
        annotations.extend({"x": k, "y": t, "text": label, "showarrow": False,
                            "xanchor": "right", "xshift": -3, "font": {"size": 10}}
                           for t, label in zip(ticks, labels, strict=True))
    layout = _layout(title, margin={"l": 50, "r": 20, "t": 60, "b": 20}, shapes=shapes,
                     xaxis={"visible": False, "range": [-0.35, n_axes - 0.8]},
                     yaxis={"visible": False, "range": [-0.05, 1.12]})
    if len(numbers) < len(columns.complete()):
        annotations.append(_note(f"{len(numbers):,} of {len(columns.complete()):,} trials "
                                 "drawn (best and a spread)"))
    layout["annotations"] = annotations
    return {"data": data, "layout": layout}


def slice_figure(columns: StudyColumns, params: list[str] | None = None,
                 max_points: int = 500) -> Figure:
    """The objective against each parameter, one small plot per parameter."""
    title = "Slice"
    names = params or columns.param_names()
    _check_params(columns, names)
    shown = _shown_complete(columns, max_points)
    if not len(shown) or not names:
        return _empty(title, "no complete trial yet")
    n_cols = min(len(names), 3)
    n_rows = math.ceil(len(names) / n_cols)
    layout = _layout(title, showlegend=False, height=max(320, 260 * n_rows))
    data = []
    for k, name in enumerate(names):
        row, col = divmod(k, n_cols)
        suffix = "" if k == 0 else str(k + 1)
        x_domain, y_domain = cell_domains(row, col, n_rows, n_cols)
        layout[f"xaxis{suffix}"] = param_axis(columns.params[name],
                                              {"text": name, "standoff": 2},
                                              columns.param(name)[shown],
                                              domain=x_domain, anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = value_axis("objective" if col == 0 else "",
                                              domain=y_domain, anchor=f"x{suffix}")
        data.append({"type": "scatter", "mode": "markers", "name": name,
                     "x": _param_values(columns, name, shown),
                     "y": columns.value[shown].tolist(), "xaxis": f"x{suffix}",
                     "yaxis": f"y{suffix}", "customdata": shown.tolist(),
                     "marker": {"size": 5, "color": shown.tolist(), "colorscale": "Blues",
                                "showscale": k == 0,
                                "colorbar": {"title": {"text": "trial"}, "thickness": 12}},
                     "hovertemplate": "trial %{customdata}<br>" + name
                     + " %{x}<br>value %{y}<extra></extra>"})
    return {"data": data, "layout": layout}


def _varying(columns: StudyColumns) -> list[str]:
    """Parameters that take more than one value, in `param_names` order."""
    return [n for n in columns.param_names()
            if len(np.unique(columns.param(n)[~np.isnan(columns.param(n))])) > 1]


def default_contour_params(columns: StudyColumns) -> tuple[str, str] | None:
    """The first two parameters that vary, or None."""
    names = _varying(columns)
    return (names[0], names[1]) if len(names) >= 2 else None


def contour_figure(columns: StudyColumns, x: str | None = None, y: str | None = None,
                   max_points: int = 3000, resolution: int = 60,
                   max_markers: int = 500) -> Figure:
    """The objective over two parameters: a linear interpolation of up to `max_points`
    trials, with up to `max_markers` of them drawn as points."""
    title = "Contour"
    if x is None or y is None:
        pair = default_contour_params(columns)
        if pair is None:
            return _empty(title, "needs two parameters that vary")
        x, y = x or pair[0], y or (pair[1] if pair[1] != x else pair[0])
    for name in (x, y):
        if name not in columns.params:
            raise HyperlawError(f"unknown parameter {name!r}; the study has "
                                f"{columns.param_names()}")
    if x == y:
        raise HyperlawError(f"choose two different parameters for the contour, got {x!r} twice")
    shown = _shown_complete(columns, max_points)
    px, py = columns.param(x)[shown], columns.param(y)[shown]
    active = ~np.isnan(px) & ~np.isnan(py)
    shown, px, py = shown[active], px[active], py[active]
    title = f"Contour: {y} against {x}"
    if len(shown) < 3:
        return _empty(title, "needs three complete trials that set both parameters")
    values = columns.value[shown]
    cx, cy = columns.params[x], columns.params[y]
    tx = np.log10(px) if cx.log else px
    ty = np.log10(py) if cy.log else py
    data: list[dict[str, Any]] = []
    if len(np.unique(tx)) > 1 and len(np.unique(ty)) > 1:
        from scipy.interpolate import griddata

        gx = np.linspace(tx.min(), tx.max(), resolution)
        gy = np.linspace(ty.min(), ty.max(), resolution)
        try:
            z = griddata((tx, ty), values, tuple(np.meshgrid(gx, gy)), method="linear")
        except Exception:  # degenerate layouts (all points on a line): nearest neighbour
            z = griddata((tx, ty), values, tuple(np.meshgrid(gx, gy)), method="nearest")
        data.append({"type": "contour", "x": (10 ** gx if cx.log else gx).tolist(),
                     "y": (10 ** gy if cy.log else gy).tolist(),
                     "z": [_floats(r) for r in z], "colorscale": "Viridis",
                     "reversescale": not columns.maximize, "connectgaps": False,
                     "contours": {"coloring": "heatmap"}, "line": {"width": 0.5},
                     "colorbar": {"title": {"text": "value"}}, "hoverinfo": "skip"})
    marked = np.isin(shown, best_and_spread(shown, columns.sign() * values, max_markers))
    data.append({"type": "scatter", "mode": "markers", "name": "trials",
                 "x": px[marked].tolist(), "y": py[marked].tolist(),
                 "customdata": shown[marked].tolist(),
                 "marker": {"size": 5, "color": "rgba(0,0,0,0.55)",
                            "line": {"color": "white", "width": 0.5}},
                 "hovertemplate": "trial %{customdata}<br>" + x + " %{x}<br>" + y
                 + " %{y}<extra></extra>"})
    return {"data": data, "layout": _layout(title, xaxis=param_axis(cx, x, px),
                                            yaxis=param_axis(cy, y, py), showlegend=False)}


#: rank colors, best (0) blue to worst (1) red
_RANK_COLORS = [[0.0, "#313695"], [0.25, "#74add1"], [0.5, "#ffffbf"], [0.75, "#f46d43"],
                [1.0, "#a50026"]]


def rank_figure(columns: StudyColumns, params: list[str] | None = None,
                max_points: int = 500, max_params: int = 5) -> Figure:
    """Trials over each pair of parameters, colored by the rank of their objective value (as
    Optuna's `plot_rank`): one small plot per pair, or the objective against the parameter
    when there is one. By default the first `max_params` parameters that vary."""
    title = "Rank"
    names = params or _varying(columns)[:max_params]
    _check_params(columns, names)
    shown = _shown_complete(columns, max_points)
    if not len(shown) or not names:
        return _empty(title, "no complete trial yet")
    values = columns.value[shown]
    order = np.argsort(columns.sign() * values, kind="stable")
    rank = np.empty(len(shown))
    rank[order] = np.arange(len(shown)) / max(len(shown) - 1, 1)
    ticks = [0.0, 0.5, 1.0]
    tick_values = values[order[np.round(np.array(ticks) * (len(shown) - 1)).astype(int)]]
    marker = {"size": 6, "color": rank.tolist(), "cmin": 0, "cmax": 1,
              "colorscale": _RANK_COLORS, "line": {"color": "#555", "width": 0.3}}
    colorbar = {"title": {"text": "rank"}, "thickness": 12, "tickvals": ticks,
                "ticktext": [f"{word} {short_number(v)}" for word, v in
                             zip(("best", "median", "worst"), tick_values.tolist(),
                                 strict=True)]}
    cells: list[tuple[str, str | None, int, int]] = (
        [(names[0], None, 0, 0)] if len(names) == 1 else
        [(names[i], names[j], row, col) for i, j, row, col in pair_cells(len(names))])
    size = max(len(names) - 1, 1)
    layout = _layout(title, showlegend=False, height=max(360, 230 * size))
    data = []
    for k, (x, y, row, col) in enumerate(cells):
        suffix = "" if k == 0 else str(k + 1)
        x_domain, y_domain = cell_domains(row, col, size, size)
        layout[f"xaxis{suffix}"] = param_axis(
            columns.params[x], x if row == size - 1 else "", columns.param(x)[shown],
            domain=x_domain, anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = (
            value_axis("objective", domain=y_domain, anchor=f"x{suffix}") if y is None
            else param_axis(columns.params[y], y if col == 0 else "", columns.param(y)[shown],
                            domain=y_domain, anchor=f"x{suffix}"))
        ys = values.tolist() if y is None else _param_values(columns, y, shown)
        data.append({"type": "scatter", "mode": "markers", "name": f"{x}, {y or 'objective'}",
                     "x": _param_values(columns, x, shown), "y": ys,
                     "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                     "customdata": np.c_[shown, values].tolist(),
                     "marker": {**marker, "showscale": k == 0, "colorbar": colorbar},
                     "hovertemplate": f"trial %{{customdata[0]}}<br>{x} %{{x}}<br>"
                     f"{y or 'value'} %{{y}}<br>value %{{customdata[1]}}<extra></extra>"})
    return {"data": data, "layout": layout}


# --- several objectives and constraints --------------------------------------------------------
#: how the objective-space and constraint figures draw each kind of trial
_FRONT: dict[str, Any] = {"name": "Pareto front", "marker": {
    "size": 9, "color": "#1f77b4", "line": {"color": "white", "width": 1}}}
_DOMINATED: dict[str, Any] = {"name": "dominated", "opacity": 0.45,
                              "marker": {"size": 6, "color": "#8c96a3"}}
_INFEASIBLE: dict[str, Any] = {"name": "infeasible", "opacity": 0.8,
                               "marker": {"size": 7, "color": "#d62728", "symbol": "x"}}
_MET: dict[str, Any] = {"name": "met", "marker": {"size": 6, "color": "#1f77b4"}}
_MISSED: dict[str, Any] = {"name": "missed", "marker": {"size": 8, "color": "#d62728",
                                                        "symbol": "x"}}


def _objective_title(columns: StudyColumns, j: int) -> str:
    return f"{columns.objective_labels()[j]} ({columns.directions[j]})"


def _pareto_selection(columns: StudyColumns,
                      max_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(front, dominated, infeasible) trial numbers drawn, and how many complete trials
    there are: the whole front (up to half the budget, spread along the first objective),
    then the best of the rest by the sum of their ranks in each objective, and a spread."""
    done = columns.complete()
    front = columns.front()
    order = np.argsort(columns.signed_objectives()[front, 0], kind="stable")
    front = np.sort(spread(front[order], max(max_points // 2, 1)))
    others = np.setdiff1d(done, columns.front())
    signed = columns.signed_objectives()[others]
    score = np.argsort(np.argsort(signed, axis=0, kind="stable"), axis=0).sum(axis=1)
    shown = best_and_spread(others, score, max_points - len(front))
    feasible = columns.feasible()[shown]
    return front, shown[feasible], shown[~feasible], len(done)


def _objective_points(columns: StudyColumns, numbers: np.ndarray, style: dict[str, Any],
                      i: int, j: int, suffix: str, first: bool) -> dict[str, Any]:
    objectives = columns.objectives[numbers]
    labels = columns.objective_labels()
    hover = "trial %{customdata[0]}" + "".join(
        f"<br>{label} %{{customdata[{m + 1}]}}" for m, label in enumerate(labels))
    return {"type": "scatter", "mode": "markers", **style,
            "x": objectives[:, i].tolist(), "y": objectives[:, j].tolist(),
            "xaxis": f"x{suffix}", "yaxis": f"y{suffix}", "legendgroup": style["name"],
            "showlegend": first, "customdata": np.c_[numbers, objectives].tolist(),
            "hovertemplate": hover + f"<extra>{style['name']}</extra>"}


def pareto_front_figure(columns: StudyColumns, max_points: int = 2000) -> Figure:
    """The complete trials in objective space: the Pareto front of the feasible ones
    highlighted (with its staircase for two objectives), dominated trials faded, infeasible
    ones crossed out; for three objectives or more, one small plot per pair of objectives."""
    title = "Pareto front"
    if not columns.is_multi_objective:
        return _empty(title, "the study has one objective")
    front, dominated, infeasible, n_done = _pareto_selection(columns, max_points)
    if not n_done:
        return _empty(title, "no complete trial yet")
    k = columns.n_objectives
    size = k - 1
    layout = _layout(title, height=420 if k == 2 else max(420, 250 * size),
                     legend={"orientation": "h", "y": -0.2 if k == 2 else -0.06})
    data: list[dict[str, Any]] = []
    for cell, (i, j, row, col) in enumerate(pair_cells(k)):
        suffix = "" if cell == 0 else str(cell + 1)
        x_domain, y_domain = cell_domains(row, col, size, size)
        layout[f"xaxis{suffix}"] = value_axis(
            _objective_title(columns, i) if row == size - 1 else "", domain=x_domain,
            anchor=f"y{suffix}")
        layout[f"yaxis{suffix}"] = value_axis(
            _objective_title(columns, j) if col == 0 else "", domain=y_domain,
            anchor=f"x{suffix}")
        for numbers, style in ((dominated, _DOMINATED), (infeasible, _INFEASIBLE),
                               (front, _FRONT)):
            if len(numbers):
                data.append(_objective_points(columns, numbers, style, i, j, suffix,
                                              first=cell == 0))
    if k == 2 and len(front):
        signed = columns.signed_objectives()[front]
        stairs = columns.objectives[front[np.lexsort((signed[:, 1], signed[:, 0]))]]
        data.insert(0, {"type": "scatter", "mode": "lines", "x": stairs[:, 0].tolist(),
                        "y": stairs[:, 1].tolist(), "line": {"shape": "hv", "width": 1.5,
                                                             "color": "#1f77b4"},
                        "hoverinfo": "skip", "showlegend": False})
    shown = len(front) + len(dominated) + len(infeasible)
    if shown < n_done:
        layout["annotations"] = [_note(f"{shown:,} of {n_done:,} trials drawn (the front, "
                                       "the closest to it and a spread)")]
    return {"data": data, "layout": layout}


def _hypervolume_at(points: np.ndarray, reference: np.ndarray,
                    ends: np.ndarray) -> np.ndarray:
    """Hypervolume of points[: e + 1] for each e of the ascending `ends` (what
    `pareto.hypervolume_history` gives for every row), carrying the front from one end to
    the next and computing it again only when a point joins it."""
    front = points[:0]
    start = 0
    volume = 0.0
    out = np.zeros(len(ends))
    for m, end in enumerate(ends.tolist()):
        chunk = points[start: end + 1]
        chunk = chunk[~np.isnan(chunk).any(axis=1)]
        chunk = chunk[~pareto.dominated_by(chunk, front)]
        chunk = chunk[~pareto.dominated_by(chunk, chunk)]
        if len(chunk):
            front = np.vstack([front[~pareto.dominated_by(front, chunk)], chunk])
            volume = pareto.hypervolume(front, reference)
        out[m] = volume
        start = end + 1
    return out


def hypervolume_history_figure(columns: StudyColumns, reference: Sequence[float] | None = None,
                               max_points: int = 300) -> Figure:
    """The hypervolume of the feasible complete trials so far, by trial number, with respect
    to `reference` (in the objectives' own units; default: the front's nadir plus 10 % of
    its range). Past `max_points` trials it is evaluated at `max_points` of them."""
    title = "Hypervolume history"
    if not columns.is_multi_objective:
        return _empty(title, "the study has one objective")
    done = columns.complete()
    points = columns.signed_objectives()[done]
    points[~columns.feasible()[done]] = np.nan  # an infeasible trial adds nothing
    if np.isnan(points).all():
        return _empty(title, "no complete feasible trial yet")
    signs = columns.objective_signs()
    if reference is None:  # the front's nadir and range: the front alone gives the same
        ref = pareto.default_reference(points[pareto.pareto_mask(points)])
    else:
        ref = np.asarray(reference, dtype=float)
        if ref.shape != (columns.n_objectives,):
            raise HyperlawError(
                f"the reference point needs one value per objective "
                f"{columns.objective_labels()}, got {list(reference)}")
        ref = ref * signs
    if len(done) <= max_points:
        ends, volume = done, pareto.hypervolume_history(points, ref)
    else:
        picks = spread(np.arange(len(done)), max_points)
        ends, volume = done[picks], _hypervolume_at(points, ref, picks)
    shown_ref = ", ".join(f"{label} {short_number(v)}" for label, v in
                          zip(columns.objective_labels(), (ref * signs).tolist(), strict=True))
    layout = _layout(title, xaxis={"title": {"text": "trial"}},
                     yaxis=value_axis("hypervolume"), showlegend=False,
                     annotations=[_note(f"reference point: {shown_ref}")])
    return {"data": [{"type": "scatter", "mode": "lines", "name": "hypervolume",
                      "x": ends.tolist(), "y": volume.tolist(),
                      "line": {"shape": "hv", "width": 2, "color": "#1f77b4"},
                      "hovertemplate": "after trial %{x}: %{y}<extra></extra>"}],
            "layout": layout}


def _limit_line(numbers: np.ndarray, limits: np.ndarray, name: str, suffix: str,
                first: bool) -> dict[str, Any]:
    return {"type": "scatter", "mode": "lines", "name": name, "x": numbers.tolist(),
            "y": _floats(limits), "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
            "legendgroup": name, "showlegend": first, "connectgaps": False,
            "line": {"shape": "hv", "dash": "dash", "width": 1.5, "color": "#555"},
            "hovertemplate": name + " %{y}<extra></extra>"}


def constraints_figure(columns: StudyColumns, max_points: int = 1000) -> Figure:
    """Each constraint's value by trial against its limits (dashed): trials that meet it in
    blue, those that miss it crossed out in red. Per constraint, up to `max_points` trials:
    the worst violations first, then a spread."""
    title = "Constraints"
    names = columns.constraint_names()
    if not names:
        return _empty(title, "the study has no constraints")
    n_cols = min(len(names), 2)
    n_rows = math.ceil(len(names) / n_cols)
    layout = _layout(title, height=max(360, 280 * n_rows),
                     legend={"orientation": "h", "y": -0.3 / n_rows})
    data: list[dict[str, Any]] = []
    for k, name in enumerate(names):
        row, col = divmod(k, n_cols)
        suffix = "" if k == 0 else str(k + 1)
        value, low, high = columns.constraint(name)
        recorded = np.flatnonzero(~np.isnan(value))
        excess = np.fmax(np.fmax(value - high, low - value), 0.0)
        shown = best_and_spread(recorded, -excess[recorded], max_points)
        missed = excess[shown] > 0
        x_domain, y_domain = cell_domains(row, col, n_rows, n_cols)
        layout[f"xaxis{suffix}"] = {"title": {"text": "trial"}, "domain": x_domain,
                                    "anchor": f"y{suffix}"}
        layout[f"yaxis{suffix}"] = value_axis(name, domain=y_domain, anchor=f"x{suffix}")
        for numbers, style in ((shown[~missed], _MET), (shown[missed], _MISSED)):
            data.append({"type": "scatter", "mode": "markers", **style,
                         "x": numbers.tolist(), "y": value[numbers].tolist(),
                         "xaxis": f"x{suffix}", "yaxis": f"y{suffix}",
                         "legendgroup": style["name"], "showlegend": k == 0,
                         "customdata": excess[numbers].tolist(),
                         "hovertemplate": f"trial %{{x}}<br>{name} %{{y}}<br>"
                         "over the limit by %{customdata}<extra>" + style["name"]
                         + "</extra>"})
        for limits, label in ((high, "max"), (low, "min")):
            if not np.isnan(limits[shown]).all():
                data.append(_limit_line(shown, limits[shown], label, suffix, first=k == 0))
    done = columns.complete()
    feasible = int(columns.feasible()[done].sum())
    layout["annotations"] = [_note(f"{feasible:,} of {len(done):,} complete trials feasible")]
    return {"data": data, "layout": layout}


def importance_figure(columns: StudyColumns, quantile: float = 0.1) -> Figure:
    """PED-ANOVA importance of each parameter as horizontal bars."""
    title = "Parameter importance (PED-ANOVA)"
    scores = ped_anova(columns, quantile=quantile)
    if not scores:
        return _empty(title, "needs at least 4 complete trials")
    names = list(scores)[::-1]
    return {"data": [{"type": "bar", "orientation": "h", "x": [scores[n] for n in names],
                      "y": names, "marker": {"color": STATE_COLORS["complete"]},
                      "text": [f"{scores[n]:.2f}" for n in names], "textposition": "auto",
                      "hovertemplate": "%{y}: %{x:.3f}<extra></extra>"}],
            "layout": _layout(title, xaxis={"title": {"text": "importance"}, "range": [0, 1]},
                              yaxis={"automargin": True},
                              height=max(220, 60 + 34 * len(names)))}


def trial_curve_figure(number: int, intermediate: dict[int, float], state: str,
                       max_points: int = 500) -> Figure:
    """One trial's intermediate values."""
    title = f"Trial {number}: intermediate values"
    if not intermediate:
        return _empty(title, "this trial reported no intermediate value")
    steps = np.array(sorted(intermediate), dtype=np.int64)
    values = np.array([intermediate[s] for s in steps.tolist()], dtype=np.float64)
    x, y = thin_curve(steps, values, max_points)
    return {"data": [{"type": "scatter", "mode": "lines+markers", "name": state,
                      "x": x.tolist(), "y": y.tolist(),
                      "line": {"color": STATE_COLORS.get(state, "#333")},
                      "marker": {"size": 4}}],
            "layout": _layout(title, xaxis={"title": {"text": "step"}},
                              yaxis={"title": {"text": "intermediate value"}})}
