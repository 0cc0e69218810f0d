"""A figure of a fitted law with the per-cell optima (Plotly; needs `hyperlaw[dashboard]`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hyperlaw.errors import HyperlawError
from hyperlaw.scaling.fit import PowerLaw, as_rows

if TYPE_CHECKING:
    import plotly.graph_objects as go


def plot_law(law: PowerLaw, records: Any = None, *, x: str | None = None,
             extend: float = 4.0) -> go.Figure:
    """The law's prediction (line and confidence band) against one feature, log-log.

    One line per value of the other feature among the fitted cells; markers are the cells'
    optima the fit used, and `records` (optional) adds every run as a faint point. The x axis
    runs `extend` times beyond the cells on the right, to show the extrapolation.
    """
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise HyperlawError("plot_law needs plotly: pip install 'hyperlaw[dashboard]'") from None
    if not law.features:
        raise HyperlawError("plot_law: the law has no features to plot against")
    x = x or law.features[0]
    if x not in law.features:
        raise HyperlawError(f"plot_law: x must be one of the law's features {law.features}")
    others = [f for f in law.features if f != x]
    cells = [c.cell for c in law.cells]
    xs = np.array([c[x] for c in cells])
    grid = np.geomspace(xs.min(), xs.max() * extend, 60)
    groups = sorted({tuple(c[f] for f in others) for c in cells})
    fig = go.Figure()
    for group in groups:
        fixed = dict(zip(others, group, strict=True))
        label = ", ".join(f"{k}={v:.3g}" for k, v in fixed.items()) or law.target
        p = law.predict(**{x: grid}, **fixed)
        fig.add_trace(go.Scatter(x=np.concatenate([grid, grid[::-1]]),
                                 y=np.concatenate([p.high, p.low[::-1]]), fill="toself",
                                 opacity=0.2, line={"width": 0}, hoverinfo="skip",
                                 showlegend=False, name=f"{label} interval"))
        fig.add_trace(go.Scatter(x=grid, y=p.value, mode="lines", name=f"law, {label}"))
        members = [c for c in law.cells
                   if all(c.cell.get(k) == v for k, v in fixed.items())]
        fig.add_trace(go.Scatter(x=[c.cell[x] for c in members], y=[c.value for c in members],
                                 mode="markers", marker={"size": 10},
                                 name=f"cell optima, {label}"))
    if records is not None:
        rows = as_rows(records)
        fig.add_trace(go.Scatter(x=[r[x] for r in rows], y=[r[law.target] for r in rows],
                                 mode="markers", marker={"size": 4, "opacity": 0.3},
                                 name="runs"))
    fig.update_xaxes(type="log", title=x)
    fig.update_yaxes(type="log", title=law.target)
    fig.update_layout(title=law.formula(), template="plotly_white")
    return fig
