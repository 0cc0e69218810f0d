"""`optuna.visualization.plot_*` on hyperlaw's plots (Plotly figures; needs plotly).

The common figures map to `hyperlaw.plot`: optimization history, intermediate values,
parallel coordinates, slice, contour, parameter importances. The others raise an error that
names the hyperlaw figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperlaw import plot
from hyperlaw.errors import HyperlawError

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from hyperlaw.optuna.study import Study

__all__ = ["is_available", "plot_contour", "plot_intermediate_values",
           "plot_optimization_history", "plot_parallel_coordinate", "plot_param_importances",
           "plot_slice"]


def is_available() -> bool:
    """Whether plotly is installed."""
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    return True


def plot_optimization_history(study: Study, **_: Any) -> go.Figure:
    """Each complete trial's value by number, with the best so far."""
    return plot.history(study.hyperlaw_study)


def plot_intermediate_values(study: Study) -> go.Figure:
    """The learning curves (reported values by step)."""
    return plot.curves(study.hyperlaw_study)


def plot_parallel_coordinate(study: Study, params: list[str] | None = None,
                             **_: Any) -> go.Figure:
    """One line per complete trial across the parameters and the objective."""
    return plot.parallel_coordinates(study.hyperlaw_study)


def plot_slice(study: Study, params: list[str] | None = None, **_: Any) -> go.Figure:
    """The objective against each parameter."""
    return plot.slice(study.hyperlaw_study, params)


def plot_contour(study: Study, params: list[str] | None = None, **_: Any) -> go.Figure:
    """The objective over two parameters."""
    x, y = (params[0], params[1]) if params and len(params) >= 2 else (None, None)
    return plot.contour(study.hyperlaw_study, x, y)


def plot_param_importances(study: Study, **_: Any) -> go.Figure:
    """PED-ANOVA parameter importance."""
    return plot.importance(study.hyperlaw_study)


def __getattr__(name: str) -> Any:
    if name.startswith("plot_"):
        raise HyperlawError(f"hyperlaw.optuna.visualization has no {name}; hyperlaw plots "
                            f"{', '.join(__all__[1:])}")
    raise AttributeError(name)
