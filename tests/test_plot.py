"""hyperlaw.plot figures, their reduction of large studies, and `hyperlaw report`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
from click.testing import CliRunner
from dashboard_study import HOSTILE_CHOICES, REPORT_PLOTS, Built, build_storage, hostile_report

import hyperlaw as hl
from hyperlaw.analysis import StudyColumns
from hyperlaw.cli import cli
from hyperlaw.errors import HyperlawError
from hyperlaw.plot import figures
from hyperlaw.trial import TrialRecord, TrialState


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_storage(str(tmp_path_factory.mktemp("plot") / "studies.db"))


@pytest.fixture(scope="module")
def study(built: Built) -> hl.Study:
    return hl.load_study("mlp", storage=built.url)


def _big(n: int, steps: int) -> StudyColumns:
    """A synthetic study of n trials; every 10th pruned after half the steps."""
    rng = np.random.default_rng(0)
    columns = StudyColumns("minimize")
    for i in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        pruned = i % 10 == 9
        value = (np.log10(lr) + 2.5) ** 2 + rng.normal(0, 0.05)
        columns.put(TrialRecord(i, TrialState.PRUNED if pruned else TrialState.COMPLETE,
                                {"lr": lr, "width": int(rng.integers(16, 256))}, value))
        k = steps // 2 if pruned else steps
        columns.add_reports(np.full(k, i), np.arange(k), value + 1 / (np.arange(k) + 1))
    return columns


def test_every_plot_is_a_plotly_figure(study: hl.Study) -> None:
    complete = [t.number for t in study.trials if t.state is TrialState.COMPLETE]
    history = hl.plot.history(study)
    assert isinstance(history, go.Figure)
    assert list(history.data[0].x) == complete
    assert history.data[1].y[-1] == pytest.approx(study.best_value)
    names = [t.name for t in hl.plot.curves(study).data]
    assert "pruned (stopped here)" in names
    parallel = hl.plot.parallel_coordinates(study)
    assert {n for t in parallel.data for n in (t.customdata or ())} == set(complete)
    axes = [a.text for a in parallel.layout.annotations if a.text.startswith("<b>")]
    assert axes[-1] == "<b>objective</b>"
    assert len(hl.plot.slice(study, ["lr", "optimizer"]).data) == 2
    contour = hl.plot.contour(study, "lr", "dropout")
    assert contour.data[0].type == "contour" and contour.layout.xaxis.type == "log"
    assert hl.plot.importance(study).data[0].y[-1] == "lr"


def test_edf_rises_to_one_with_a_line_per_study(built: Built, study: hl.Study) -> None:
    live = hl.load_study("live", storage=built.url)
    figure = hl.plot.edf([study, live])
    assert [t.name for t in figure.data] == ["mlp", "live"]
    for trace, source in zip(figure.data, (study, live), strict=True):
        values = sorted(t.value for t in source.trials if t.state is TrialState.COMPLETE)
        assert list(trace.x) == values
        shares = list(trace.y)
        assert shares == sorted(shares) and shares[0] == 1 / len(values) and shares[-1] == 1
    big = figures.edf_figure(_big(5000, 1), max_points=200)["data"][0]
    assert len(big["x"]) <= 200 and big["y"][-1] == 1
    assert big["x"] == sorted(big["x"]) and big["y"] == sorted(big["y"])


def test_timeline_draws_one_bar_per_trial_colored_by_state(built: Built,
                                                           study: hl.Study) -> None:
    figure = hl.plot.timeline(study)
    bars = {t.name: t for t in figure.data}
    assert all(t.type == "bar" and t.orientation == "h" for t in figure.data)
    for state in ("complete", "pruned", "failed"):
        assert sorted(bars[state].y) == getattr(built, state)
        assert bars[state].marker.color == figures.STATE_COLORS[state]
    by_number = {t.number: t for t in study.trials}
    for number, start, length in zip(bars["complete"].y, bars["complete"].base,
                                     bars["complete"].x, strict=True):
        trial = by_number[number]
        assert start == pytest.approx(trial.started_at * 1000)
        assert length == pytest.approx((trial.finished_at - trial.started_at) * 1000)
    assert len(bars["running"].y) == 1  # drawn up to the study's latest time
    assert figure.layout.xaxis.type == "date"
    big = figures.timeline_figure(_big(3000, 1), max_bars=400)
    assert sum(len(t["y"]) for t in big["data"]) <= 400


def test_rank_colors_each_pair_of_parameters_by_rank(study: hl.Study) -> None:
    figure = hl.plot.rank(study)
    names = ["lr", "width", "optimizer", "dropout"]
    assert len(figure.data) == 6  # every pair once
    complete = {t.number: t.value for t in study.trials if t.state is TrialState.COMPLETE}
    first = figure.data[0]
    ranks = dict(zip((int(n) for n, _ in first.customdata), first.marker.color, strict=True))
    best = min(complete, key=complete.__getitem__)
    worst = max(complete, key=complete.__getitem__)
    assert ranks[best] == 0 and ranks[worst] == 1 and set(ranks) == set(complete)
    assert first.marker.colorbar.ticktext[0].startswith("best")
    assert [t.name for t in figure.data][:3] == [f"{names[0]}, {names[1]}",
                                                f"{names[0]}, {names[2]}",
                                                f"{names[1]}, {names[2]}"]
    single = hl.plot.rank(study, ["lr"])
    assert len(single.data) == 1 and list(single.data[0].y) == [
        complete[int(n)] for n, _ in single.data[0].customdata]


def test_log_parameters_have_log_axes_with_readable_ticks(study: hl.Study) -> None:
    """Log-scaled parameters (lr, width) get log axes whose ticks read as powers of ten,
    never Plotly's SI prefixes ("10µ"); linear numbers read "2e-5"."""
    def axes(figure: go.Figure) -> dict[str, dict]:
        layout = figure.to_plotly_json()["layout"]
        return {(a.get("title") or {}).get("text"): a for k, a in layout.items()
                if k.startswith(("xaxis", "yaxis"))}

    contour = axes(hl.plot.contour(study, "lr", "width"))
    slices = axes(hl.plot.slice(study))
    rank = axes(hl.plot.rank(study))
    for found in (contour, slices, rank):
        for name in ("lr", "width"):
            assert found[name]["type"] == "log" and found[name]["exponentformat"] == "power"
    assert contour["lr"]["dtick"] == 1  # lr spans three decades: one tick each
    assert contour["width"]["dtick"] == "D2"  # width spans about one: 1-2-5 ticks
    assert slices["dropout"].get("type") != "log" and slices["dropout"]["exponentformat"] == "e"
    assert slices["optimizer"]["type"] == "category"
    assert slices["objective"]["exponentformat"] == "e"
    parallel = hl.plot.parallel_coordinates(study)
    labels = [a.text for a in parallel.layout.annotations if a.x == 0]  # the lr axis
    assert {"0.001", "0.01"} <= set(labels[1:]) <= {"0.0001", "0.001", "0.01", "0.1"}
    assert figures.short_number(1.2e-5) == "1.2e-5" and figures.short_number(3e12) == "3e12"


def test_plots_name_unknown_parameters(study: hl.Study) -> None:
    with pytest.raises(HyperlawError, match=r"unknown parameter 'depth'.*'lr'"):
        hl.plot.contour(study, "depth", "lr")
    with pytest.raises(HyperlawError, match="two different parameters"):
        hl.plot.contour(study, "lr", "lr")
    with pytest.raises(HyperlawError, match="unknown parameters"):
        hl.plot.slice(study, ["depth"])
    with pytest.raises(HyperlawError, match=r"unknown parameters \['depth'\].*'lr'"):
        hl.plot.rank(study, ["lr", "depth"])


def test_large_studies_are_reduced_on_the_server_side() -> None:
    columns = _big(20_000, 20)
    history = hl.plot.history(columns, max_points=500)
    assert len(history.data[0].x) <= 500
    best = columns.best_number()
    assert best in list(history.data[0].x)  # the extremes of each range are kept
    assert history.data[1].y[-1] == pytest.approx(columns.value[best])
    curves = hl.plot.curves(columns, max_curves=100)
    drawn = {n for t in curves.data if t.name in ("complete", "pruned")
             for n in t.customdata if n is not None}
    assert 50 <= len(drawn) <= 100 and best in drawn
    assert any(t.name == "median of all trials" for t in curves.data)
    assert sum(len(t.x) for t in curves.data) < 100 * 25
    parallel = hl.plot.parallel_coordinates(columns, max_lines=300)
    assert len({n for t in parallel.data for n in (t.customdata or ())}) == 300


def test_columns_keep_the_latest_report_of_each_step() -> None:
    columns = StudyColumns("minimize")
    columns.put(TrialRecord(0, TrialState.RUNNING, {"x": 1.0}))
    columns.add_reports([0, 0, 0], [0, 1, 1], [3.0, 2.0, 1.5])
    columns.put(TrialRecord(1, TrialState.RUNNING, {"x": 2.0}))
    columns.add_reports([1, 0], [0, 2], [5.0, 1.0])
    steps, values = columns.curves_of(np.array([0]))[0]
    assert steps.tolist() == [0, 1, 2] and values.tolist() == [3.0, 1.5, 1.0]
    assert columns.last_step.tolist() == [2, 0]


def test_report_is_one_html_file_with_every_plot(built: Built, study: hl.Study,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--storage", built.url,
                                      "--study", "mlp", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "plotly.js (cartesian - minified) v" in text  # Plotly is inlined, nothing is fetched
    assert not re.search(r"<script[^>]+src=", text)
    for key in REPORT_PLOTS:
        assert f'id="plot-{key}"' in text
    assert f"{study.best_value:.6g}" in text


def test_report_scripts_hold_any_choice_value(tmp_path: Path) -> None:
    """A choice value such as `<!--<script>` must not end or change the report's script: the
    HTML parser sees exactly the two script elements, and the data reads back unchanged."""
    from html.parser import HTMLParser

    scripts: list[str] = []

    class Scripts(HTMLParser):
        inside = False

        def handle_starttag(self, tag: str, attrs: object) -> None:
            self.inside = tag == "script"
            if self.inside:
                scripts.append("")

        def handle_endtag(self, tag: str) -> None:
            self.inside = False

        def handle_data(self, data: str) -> None:
            if self.inside:
                scripts[-1] += data

    text = Path(hostile_report(str(tmp_path / "report.html"))).read_text(encoding="utf-8")
    Scripts(convert_charrefs=False).feed(text)
    assert len(scripts) == 2  # Plotly, then the plots
    plots = scripts[1]
    assert not re.search(r"<!--|<script|</script", plots, re.IGNORECASE)
    assert "\u2028" not in plots and "&" not in plots
    assert [m for m in re.findall(r'Plotly.newPlot\("plot-(\w+)"', plots)] == list(REPORT_PLOTS)
    decoded = [json.loads(m) for m in re.findall(r"\}\)\((\{.*?\})\);", plots)]
    shown = json.dumps(decoded)
    for value in HOSTILE_CHOICES:
        assert json.dumps(value)[1:-1] in shown


def test_report_refuses_a_missing_database(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--storage", f"sqlite:///{tmp_path}/none.db",
                                      "--study", "x", "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and "no database file" in result.output
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_columnar_changes_match_changes_since(kind: str, request: pytest.FixtureRequest,
                                              tmp_path: Path) -> None:
    url = {"memory": None, "sqlite": f"sqlite:///{tmp_path / 'c.db'}",
           "postgres": request.getfixturevalue("postgres_url") if kind == "postgres" else None}
    study = hl.create_study("c", storage=url[kind])
    store, study_id = study.store, study.store.get_study("c").id
    for i in range(3):
        trial = study.ask()
        for step in range(4):
            trial.report(float(i * 10 + step), step)
        study.tell(trial, float(i))
    middle = store.changes_since(study_id, 0).cursor
    trial = study.ask()
    trial.report(7.5, 0)
    for cursor in (0, middle):
        plain = store.changes_since(study_id, cursor)
        columnar = store.changes_since_columnar(study_id, cursor)
        assert columnar.cursor == plain.cursor
        assert [t.number for t in columnar.trials] == [t.number for t in plain.trials]
        assert columnar.report_numbers.tolist() == [r.number for r in plain.reports]
        assert columnar.report_steps.tolist() == [r.step for r in plain.reports]
        assert columnar.report_values.tolist() == [r.value for r in plain.reports]
    assert len(store.changes_since_columnar(study_id, middle).report_values) == 1
    head = store.changes_since(study_id, 0).cursor
    empty = store.changes_since_columnar(study_id, head)
    assert empty.cursor == head and not empty.trials and not len(empty.report_numbers)
