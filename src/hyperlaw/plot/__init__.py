"""Plots of a study as Plotly figures, for notebooks and reports (needs `hyperlaw[dashboard]`).

    import hyperlaw as hl
    hl.plot.history(study).show()
    hl.plot.contour(study, "lr", "width").write_html("contour.html")

Each function takes a Study (or `StudyColumns`) and returns a `plotly.graph_objects.Figure`;
large studies are reduced the way the dashboard reduces them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.errors import HyperlawError
from hyperlaw.plot import figures

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from hyperlaw.study import Study

__all__ = ["contour", "curves", "history", "importance", "parallel_coordinates", "slice",
           "study_columns"]


def study_columns(study: Study | StudyColumns) -> StudyColumns:
    """The study's trials as columns (a StudyColumns passes through)."""
    if isinstance(study, StudyColumns):
        return study
    return StudyColumns.from_trials(study.trials, study.directions[0], study.space)


def _figure(spec: dict[str, Any]) -> go.Figure:
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise HyperlawError("hyperlaw.plot needs plotly: pip install 'hyperlaw[dashboard]'") \
            from None
    return go.Figure(spec)


def history(study: Study | StudyColumns, max_points: int = 2000) -> go.Figure:
    """Each complete trial's value by trial number, with the best-so-far line."""
    return _figure(figures.history_figure(study_columns(study), max_points))


def curves(study: Study | StudyColumns, max_curves: int = 200) -> go.Figure:
    """Learning curves (intermediate values by step); pruned trials end in a cross."""
    return _figure(figures.curves_figure(study_columns(study), max_curves))


def parallel_coordinates(study: Study | StudyColumns, max_lines: int = 500) -> go.Figure:
    """One line per complete trial across the parameters and the objective."""
    return _figure(figures.parallel_coordinates_figure(study_columns(study), max_lines))


def slice(study: Study | StudyColumns,
          params: list[str] | None = None) -> go.Figure:
    """The objective against each parameter."""
    return _figure(figures.slice_figure(study_columns(study), params))


def contour(study: Study | StudyColumns, x: str | None = None,
            y: str | None = None) -> go.Figure:
    """The objective over two parameters (default: the first two that vary)."""
    return _figure(figures.contour_figure(study_columns(study), x, y))


def importance(study: Study | StudyColumns, quantile: float = 0.1) -> go.Figure:
    """PED-ANOVA parameter importance."""
    return _figure(figures.importance_figure(study_columns(study), quantile))
