"""The panels of a study page. A panel turns a study's columns (and the page's choices for it)
into a Plotly figure; new panels (curve extrapolations, scaling laws) register here and the
page shows them without any change to its code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hyperlaw.analysis.columns import StudyColumns
from hyperlaw.errors import HyperlawError
from hyperlaw.plot import figures
from hyperlaw.store.base import StudyInfo

Query = Mapping[str, str]


@dataclass(frozen=True)
class Panel:
    """One plot of the study page.

    `build(columns, query)` returns a Plotly figure dict; `applies(columns, info)` says whether
    the study has this panel at all; `choices(columns)` lists the selects the page shows above
    the plot (query key -> options), e.g. the two parameters of a contour.
    """

    id: str
    title: str
    build: Callable[[StudyColumns, Query], figures.Figure]
    applies: Callable[[StudyColumns, StudyInfo], bool] = field(default=lambda c, i: True)
    choices: Callable[[StudyColumns], dict[str, list[str]]] | None = None
    wide: bool = False


PANELS: dict[str, Panel] = {}


def register_panel(panel: Panel) -> Panel:
    """Add (or replace) a panel; panels show in registration order."""
    PANELS[panel.id] = panel
    return panel


def panels_for(columns: StudyColumns, info: StudyInfo) -> list[dict[str, Any]]:
    """The panels a study shows, as the page needs them."""
    out = []
    for panel in PANELS.values():
        if panel.applies(columns, info):
            out.append({"id": panel.id, "title": panel.title, "wide": panel.wide,
                        "choices": panel.choices(columns) if panel.choices else {}})
    return out


def build_panel(panel_id: str, columns: StudyColumns, query: Query) -> figures.Figure:
    panel = PANELS.get(panel_id)
    if panel is None:
        raise HyperlawError(f"no panel {panel_id!r}; the panels are {sorted(PANELS)}")
    key = ("panel", panel_id, tuple(sorted(query.items())))
    return columns.memo(key, lambda: panel.build(columns, query))


def _contour_choices(columns: StudyColumns) -> dict[str, list[str]]:
    names = columns.param_names()
    pair = figures.default_contour_params(columns)
    if pair is None:
        return {}
    # the default pair first, so the page's selects open on it
    return {"x": [pair[0], *(n for n in names if n != pair[0])],
            "y": [pair[1], *(n for n in names if n != pair[1])]}


def _has_params(columns: StudyColumns, info: StudyInfo) -> bool:
    return bool(columns.params) or bool(info.space_json)


def _multi_objective(columns: StudyColumns, info: StudyInfo) -> bool:
    return columns.is_multi_objective


def _constrained(columns: StudyColumns, info: StudyInfo) -> bool:
    return bool(columns.constraint_names())


register_panel(Panel("history", "Optimization history",
                     lambda c, q: figures.history_figure(c)))
register_panel(Panel("pareto", "Pareto front", lambda c, q: figures.pareto_front_figure(c),
                     applies=_multi_objective))
register_panel(Panel("hypervolume", "Hypervolume history",
                     lambda c, q: figures.hypervolume_history_figure(c),
                     applies=_multi_objective))
register_panel(Panel("constraints", "Constraints", lambda c, q: figures.constraints_figure(c),
                     applies=_constrained, wide=True))
register_panel(Panel("curves", "Learning curves", lambda c, q: figures.curves_figure(c)))
register_panel(Panel("parallel", "Parallel coordinates",
                     lambda c, q: figures.parallel_coordinates_figure(c),
                     applies=_has_params, wide=True))
register_panel(Panel("slice", "Slice", lambda c, q: figures.slice_figure(c),
                     applies=_has_params, wide=True))
register_panel(Panel("rank", "Rank", lambda c, q: figures.rank_figure(c),
                     applies=_has_params, wide=True))
register_panel(Panel("contour", "Contour",
                     lambda c, q: figures.contour_figure(c, q.get("x"), q.get("y")),
                     applies=_has_params, choices=_contour_choices))
register_panel(Panel("importance", "Parameter importance",
                     lambda c, q: figures.importance_figure(c), applies=_has_params))
register_panel(Panel("edf", "Empirical distribution", lambda c, q: figures.edf_figure(c)))
register_panel(Panel("timeline", "Timeline", lambda c, q: figures.timeline_figure(c), wide=True))
