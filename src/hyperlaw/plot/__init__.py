"""Plots of a study as Plotly figures, for notebooks and reports (needs `hyperlaw[dashboard]`).

    import hyperlaw as hl
    hl.plot.history(study).show()
    hl.plot.contour(study, "lr", "width").write_html("contour.html")

Each function takes a Study (or `StudyColumns`) and returns a `plotly.graph_objects.Figure`;
large studies are reduced the way the dashboard reduces them. Each also answers to the name
`optuna.visualization` gives it (`plot_optimization_history`, `plot_pareto_front`, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.errors import HyperlawError
from hyperlaw.plot import figures

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from hyperlaw.study import Study

__all__ = ["constraints", "contour", "curves", "edf", "history", "hypervolume_history",
           "importance", "parallel_coordinates", "pareto_front", "plot_constraints",
           "plot_contour", "plot_edf", "plot_hypervolume_history", "plot_intermediate_values",
           "plot_optimization_history", "plot_parallel_coordinate", "plot_param_importances",
           "plot_pareto_front", "plot_rank", "plot_slice", "plot_timeline", "rank", "slice",
           "study_columns", "timeline"]


def study_columns(study: Study | StudyColumns) -> StudyColumns:
    """The study's trials as columns (a StudyColumns passes through)."""
    if isinstance(study, StudyColumns):
        return study
    columns = StudyColumns.from_trials(study.trials, study.directions[0], study.space,
                                       directions=study.directions,
                                       objective_names=study.objective_names)
    columns.name = study.name
    return columns


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


def edf(studies: Study | StudyColumns | Sequence[Study | StudyColumns],
        max_points: int = 1000) -> go.Figure:
    """Empirical distribution of the objective values: one line per study (pass several to
    compare them, e.g. two samplers on one problem)."""
    group = studies if isinstance(studies, Sequence) else [studies]
    return _figure(figures.edf_figure([study_columns(s) for s in group], max_points))


def timeline(study: Study | StudyColumns, max_bars: int = 1000) -> go.Figure:
    """One bar per trial from its start to its finish, colored by state."""
    return _figure(figures.timeline_figure(study_columns(study), max_bars))


def rank(study: Study | StudyColumns, params: list[str] | None = None,
         max_points: int = 500) -> go.Figure:
    """Trials over each pair of parameters, colored by the rank of their value."""
    return _figure(figures.rank_figure(study_columns(study), params, max_points))


def pareto_front(study: Study | StudyColumns, max_points: int = 2000) -> go.Figure:
    """The trials in objective space: the Pareto front highlighted, dominated trials faded,
    infeasible ones crossed out; one plot per pair of objectives for three or more."""
    return _figure(figures.pareto_front_figure(study_columns(study), max_points))


def hypervolume_history(study: Study | StudyColumns, reference: Sequence[float] | None = None,
                        max_points: int = 300) -> go.Figure:
    """The hypervolume of the feasible complete trials so far, by trial number (`reference`
    in the objectives' units; default: the front's nadir plus 10 % of its range)."""
    return _figure(figures.hypervolume_history_figure(study_columns(study), reference,
                                                      max_points))


def constraints(study: Study | StudyColumns, max_points: int = 1000) -> go.Figure:
    """Each constraint's value by trial against its limits; misses crossed out."""
    return _figure(figures.constraints_figure(study_columns(study), max_points))


# the names `optuna.visualization` gives the same plots (the arguments are hyperlaw's), and
# plot_constraints beside them
plot_optimization_history = history
plot_intermediate_values = curves
plot_parallel_coordinate = parallel_coordinates
plot_slice = slice
plot_contour = contour
plot_param_importances = importance
plot_edf = edf
plot_timeline = timeline
plot_rank = rank
plot_pareto_front = pareto_front
plot_hypervolume_history = hypervolume_history
plot_constraints = constraints
