"""Several objectives, constraints and cost seen by people: the columns, the Pareto front,
hypervolume history and constraint figures, `hl.plot`, the report and the dashboard's API,
over a real SQLite storage."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from dashboard_study import MEMORY_LIMIT, MO_OBJECTIVES, MultiBuilt, build_multi_objective
from starlette.testclient import TestClient

import hyperlaw as hl
from hyperlaw import pareto
from hyperlaw.analysis import StudyColumns
from hyperlaw.dashboard.app import create_app
from hyperlaw.errors import HyperlawError
from hyperlaw.plot import figures
from hyperlaw.plot.report import report_html
from hyperlaw.store import open_store
from hyperlaw.trial import TrialRecord, TrialState


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> MultiBuilt:
    path = tmp_path_factory.mktemp("objectives") / "studies.db"
    return build_multi_objective(f"sqlite:///{path}")


@pytest.fixture(scope="module")
def study(built: MultiBuilt) -> hl.Study:
    return hl.load_study("mo", storage=built.url)


@pytest.fixture(scope="module")
def columns(built: MultiBuilt) -> Iterator[StudyColumns]:
    store = open_store(built.url)
    yield StudyColumns.from_store(store, "mo")
    store.close()


def _numbers(trace: object) -> list[int]:
    return sorted(int(row[0]) for row in trace.customdata)


def test_columns_hold_every_objective_constraint_and_cost(columns: StudyColumns,
                                                          study: hl.Study,
                                                          built: MultiBuilt) -> None:
    assert columns.directions == ("minimize", "minimize")
    assert columns.objective_labels() == list(MO_OBJECTIVES)
    assert columns.is_multi_objective and columns.constraint_names() == ["memory_gb"]
    for trial in study.trials:
        if trial.state is TrialState.COMPLETE:
            assert tuple(columns.objectives[trial.number]) == trial.values
            assert columns.violation[trial.number] == pytest.approx(trial.violation)
        assert columns.cost("tokens")[trial.number] == trial.cost["tokens"]
    value, low, high = columns.constraint("memory_gb")
    assert np.isnan(low).all() and set(high.tolist()) == {MEMORY_LIMIT}
    assert sorted(np.flatnonzero(~columns.feasible())) == built.infeasible == sorted(
        np.flatnonzero(value > MEMORY_LIMIT))
    assert built.infeasible  # the limit leaves some trials out
    assert columns.front().tolist() == built.front == sorted(t.number for t in study.best_trials)
    row = columns.row(built.front[0])
    assert row["values"] == list(study.trials[built.front[0]].values)
    assert row["violation"] == 0.0


def test_pareto_front_highlights_the_front_and_crosses_out_infeasible_trials(
        study: hl.Study, built: MultiBuilt) -> None:
    figure = hl.plot.pareto_front(study)
    traces = {t.name: t for t in figure.data if t.name}
    assert _numbers(traces["Pareto front"]) == built.front
    assert _numbers(traces["infeasible"]) == built.infeasible
    assert _numbers(traces["dominated"]) == sorted(
        set(built.complete) - set(built.front) - set(built.infeasible))
    assert traces["infeasible"].marker.symbol == "x" and traces["dominated"].opacity < 1
    stairs = figure.data[0]  # the front's staircase, drawn under the points
    assert stairs.line.shape == "hv" and list(stairs.x) == sorted(stairs.x)
    assert figure.layout.xaxis.title.text == "loss (minimize)"
    assert figure.layout.yaxis.title.text == "latency_ms (minimize)"


def test_three_objectives_draw_a_matrix_of_pairs(built: MultiBuilt) -> None:
    three = hl.load_study("mo3", storage=built.url)
    figure = hl.plot.pareto_front(three)
    cells = {(t.xaxis, t.yaxis) for t in figure.data}
    assert cells == {("x", "y"), ("x2", "y2"), ("x3", "y3")}  # (0,1), (0,2), (1,2)
    front = sorted(t.number for t in three.best_trials)
    assert all(_numbers(t) == front for t in figure.data if t.name == "Pareto front")
    layout = figure.to_plotly_json()["layout"]
    titles = {a["title"]["text"] for k, a in layout.items() if k.startswith("yaxis")}
    assert "objective 3 (maximize)" in titles
    assert {t.type for t in figure.data} == {"scatter"}  # within the cartesian bundle


def test_hypervolume_history_grows_to_the_study_hypervolume(study: hl.Study,
                                                            columns: StudyColumns) -> None:
    figure = hl.plot.hypervolume_history(study)
    volume = list(figure.data[0].y)
    assert volume == sorted(volume)
    assert volume[-1] == pytest.approx(study.hypervolume())
    reference = (5.0, 40.0)
    given = hl.plot.hypervolume_history(study, reference)
    assert given.data[0].y[-1] == pytest.approx(study.hypervolume(reference))
    assert given.layout.annotations[0].text == "reference point: loss 5, latency_ms 40"
    # past max_points trials, checkpoints carry the front along: the same values
    full = figures.hypervolume_history_figure(columns, reference)["data"][0]
    few = figures.hypervolume_history_figure(columns, reference, max_points=5)["data"][0]
    assert len(few["x"]) == 5 and few["x"][-1] == full["x"][-1]
    at = dict(zip(full["x"], full["y"], strict=True))
    assert few["y"] == pytest.approx([at[x] for x in few["x"]])
    with pytest.raises(HyperlawError, match="one value per objective"):
        hl.plot.hypervolume_history(study, (1.0,))


def test_constraint_view_marks_each_trial_against_the_limit(study: hl.Study,
                                                            built: MultiBuilt) -> None:
    figure = hl.plot.constraints(study)
    traces = {t.name: t for t in figure.data}
    assert sorted(traces["missed"].x) == built.infeasible
    assert set(traces["met"].x) | set(traces["missed"].x) == {t.number for t in study.trials}
    assert all(y > MEMORY_LIMIT for y in traces["missed"].y)
    assert set(traces["max"].y) == {MEMORY_LIMIT} and "min" not in traces
    feasible = len(built.complete) - len(built.infeasible)
    assert figure.layout.annotations[0].text == (
        f"{feasible} of {len(built.complete)} complete trials feasible")


def test_single_objective_studies_have_no_objective_figures() -> None:
    study = hl.create_study()
    study.tell(study.ask(), 1.0)
    for plot in (hl.plot.pareto_front, hl.plot.hypervolume_history, hl.plot.constraints):
        figure = plot(study)
        assert not figure.data and figure.layout.annotations[0].text


def test_large_studies_are_bounded() -> None:
    rng = np.random.default_rng(0)
    records = []
    for i in range(20_000):
        values = tuple(float(v) for v in rng.uniform(size=2))
        records.append(TrialRecord(i, TrialState.COMPLETE, {"x": values[0]}, values[0],
                                   values=values,
                                   constraints={"c": (float(rng.uniform()), None, 0.9)}))
    columns = StudyColumns.from_trials(records, "minimize",
                                       directions=["minimize", "minimize"])
    figure = figures.pareto_front_figure(columns, max_points=500)
    drawn = [n for t in figure["data"] if t.get("customdata") for n, *_ in t["customdata"]]
    assert len(drawn) <= 500
    front = {n for t in figure["data"] if t.get("name") == "Pareto front"
             for n, *_ in t["customdata"]}
    assert front == set(columns.front().tolist())
    volume = figures.hypervolume_history_figure(columns, max_points=200)["data"][0]
    assert len(volume["x"]) == 200
    signed = columns.signed_objectives()
    signed[~columns.feasible()] = np.nan
    assert volume["y"][-1] == pytest.approx(
        pareto.hypervolume(signed, pareto.default_reference(signed)))
    constraint = figures.constraints_figure(columns, max_points=300)["data"]
    assert sum(len(t["x"]) for t in constraint if t["mode"] == "markers") <= 300


def test_report_shows_the_front_and_the_objective_figures(built: MultiBuilt) -> None:
    store = open_store(built.url)
    text = report_html(StudyColumns.from_store(store, "mo"), "mo")
    store.close()
    for key in ("pareto", "hypervolume", "constraints"):
        assert f'id="plot-{key}"' in text
    assert "loss: minimize, latency_ms: minimize" in text
    assert f"{len(built.front)} trials (#{built.front[0]}" in text
    assert f"{len(built.complete) - len(built.infeasible)} of {len(built.complete)}" in text


def test_dashboard_api_shows_objectives_only_where_they_apply(built: MultiBuilt) -> None:
    store = open_store(built.url)
    with TestClient(create_app(store, refresh_interval=0.0, preload=False),
                    base_url="http://127.0.0.1:8080") as http:
        summary = http.get("/api/study", params={"study": "mo"}).json()
        ids = [p["id"] for p in summary["panels"]]
        assert {"pareto", "hypervolume", "constraints"} <= set(ids)
        assert summary["front"] == built.front and summary["best"] is None
        assert summary["objectives"] == list(MO_OBJECTIVES)
        three = [p["id"] for p in http.get("/api/study", params={"study": "mo3"}).json()[
            "panels"]]
        assert "pareto" in three and "constraints" not in three
        figure = http.get("/api/study/panel/pareto", params={"study": "mo"}).json()
        front = next(t for t in figure["data"] if t.get("name") == "Pareto front")
        assert sorted(int(n) for n, *_ in front["customdata"]) == built.front
        page = http.get("/api/study/trials", params={
            "study": "mo", "sort": "values.1", "filter": "violation > 0", "limit": 100}).json()
        assert page["objectives"] == list(MO_OBJECTIVES) and page["constrained"]
        assert sorted(r["number"] for r in page["rows"]) == built.infeasible
        latency = [r["values"][1] for r in page["rows"]]
        assert latency == sorted(latency)
        bad = http.get("/api/study/trials", params={"study": "mo", "sort": "values.2"})
        assert bad.status_code == 400 and "values.1" in bad.json()["error"]
    store.close()


def test_plot_names_follow_optuna_visualization(study: hl.Study) -> None:
    assert hl.plot.plot_pareto_front is hl.plot.pareto_front
    assert hl.plot.plot_hypervolume_history is hl.plot.hypervolume_history
    assert hl.plot.plot_constraints is hl.plot.constraints
    assert hl.plot.plot_optimization_history is hl.plot.history
    assert hl.plot.plot_param_importances is hl.plot.importance
