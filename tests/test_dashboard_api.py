"""The dashboard's JSON API over a real SQLite storage (in-process HTTP client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_study import SPACE, Built, build_storage, loss
from starlette.testclient import TestClient

import hyperlaw as hl
from hyperlaw.dashboard.app import create_app
from hyperlaw.dashboard.panels import PANELS, Panel, register_panel
from hyperlaw.store import open_store

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_storage(str(tmp_path_factory.mktemp("dash") / "studies.db"))


@pytest.fixture(scope="module")
def client(built: Built) -> Iterator[TestClient]:
    store = open_store(built.url)
    with TestClient(create_app(store, refresh_interval=0.0),
                    base_url="http://127.0.0.1:8080") as http:
        yield http
    store.close()


def _get(client: TestClient, path: str, **params: object) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_study_list_has_counts_best_and_activity(client: TestClient, built: Built) -> None:
    studies = {s["name"]: s for s in _get(client, "/api/studies")["studies"]}
    assert set(studies) == {"mlp", "live", "empty"}
    mlp = studies["mlp"]
    assert mlp["counts"] == built.counts
    assert mlp["n_trials"] == sum(built.counts.values())
    assert mlp["best_value"] == pytest.approx(built.best_value)
    assert mlp["direction"] == "minimize" and mlp["last_activity"] > mlp["created_at"]
    assert studies["empty"]["n_trials"] == 0 and studies["empty"]["best_value"] is None
    assert studies["empty"]["direction"] == "maximize"


def test_study_summary_lists_best_and_panels(client: TestClient, built: Built) -> None:
    summary = _get(client, "/api/study", study="mlp")
    assert summary["counts"] == built.counts
    assert summary["best"]["number"] == built.best_number
    assert summary["params"] == ["lr", "width", "optimizer", "dropout"]
    several = ("pareto", "hypervolume", "constraints")  # for several objectives, constraints
    assert [p["id"] for p in summary["panels"]] == [p for p in PANELS if p not in several]
    contour = next(p for p in summary["panels"] if p["id"] == "contour")
    assert contour["choices"]["x"][0] == "lr" and contour["choices"]["y"][0] == "width"
    empty = _get(client, "/api/study", study="empty")
    assert [p["id"] for p in empty["panels"]] == ["history", "curves", "edf", "timeline"]


def test_history_panel_has_every_complete_trial_and_the_best_line(client: TestClient,
                                                                   built: Built) -> None:
    figure = _get(client, "/api/study/panel/history", study="mlp")
    trials, best = figure["data"]
    assert trials["x"] == built.complete
    assert best["name"] == "best so far"
    assert best["y"][-1] == pytest.approx(built.best_value)
    assert all(a >= b for a, b in zip(best["y"], best["y"][1:], strict=False))


def test_curves_panel_marks_every_pruned_trial(client: TestClient, built: Built) -> None:
    figure = _get(client, "/api/study/panel/curves", study="mlp")
    by_name = {t["name"]: t for t in figure["data"]}
    assert sorted(by_name["pruned (stopped here)"]["customdata"]) == built.pruned
    assert set(by_name["pruned (stopped here)"]["x"]) == {2}  # pruned after 3 reports
    shown = {n for t in figure["data"] if t["mode"] == "lines" for n in t["customdata"] if
             n is not None}
    assert shown == set(built.complete + built.pruned + built.failed)


def test_parameter_panels(client: TestClient, built: Built) -> None:
    importance = _get(client, "/api/study/panel/importance", study="mlp")["data"][0]
    assert importance["y"][-1] == "lr"  # bars run bottom-up: the most important is last
    parallel = _get(client, "/api/study/panel/parallel", study="mlp")
    axes = [a["text"] for a in parallel["layout"]["annotations"] if a["text"].startswith("<b>")]
    assert axes == [f"<b>{n}</b>" for n in ("lr", "width", "optimizer", "dropout", "objective")]
    lines = {n for t in parallel["data"] for n in t.get("customdata") or []}
    assert lines == set(built.complete)
    slices = _get(client, "/api/study/panel/slice", study="mlp")["data"]
    assert [t["name"] for t in slices] == ["lr", "width", "optimizer", "dropout"]
    contour = _get(client, "/api/study/panel/contour", study="mlp", x="dropout", y="lr")
    assert contour["data"][0]["type"] == "contour"
    assert "lr against dropout" in contour["layout"]["title"]["text"]
    assert contour["layout"]["yaxis"]["type"] == "log"
    rank = _get(client, "/api/study/panel/rank", study="mlp")
    assert len(rank["data"]) == 6 and rank["layout"]["xaxis"]["type"] == "log"


def test_distribution_and_timeline_panels(client: TestClient, built: Built) -> None:
    edf = _get(client, "/api/study/panel/edf", study="mlp")["data"]
    assert len(edf) == 1 and edf[0]["name"] == "mlp" and edf[0]["y"][-1] == 1
    assert len(edf[0]["x"]) == len(built.complete)
    timeline = {t["name"]: t for t in _get(client, "/api/study/panel/timeline",
                                          study="mlp")["data"]}
    for state in ("complete", "pruned", "failed"):
        assert sorted(timeline[state]["y"]) == getattr(built, state)
    assert _get(client, "/api/study/panel/timeline", study="empty")["data"] == []


def test_bad_panel_requests_are_refused_with_the_fix(client: TestClient) -> None:
    response = client.get("/api/study/panel/contour", params={"study": "mlp", "x": "nope"})
    assert response.status_code == 400
    assert "unknown parameter 'nope'" in response.json()["error"]
    assert "lr" in response.json()["error"]
    response = client.get("/api/study/panel/nothing", params={"study": "mlp"})
    assert response.status_code == 400 and "history" in response.json()["error"]
    response = client.get("/api/study", params={"study": "typo"})
    assert response.status_code == 404 and "'mlp'" in response.json()["error"]


def test_trial_table_pages_sorts_and_filters(client: TestClient, built: Built) -> None:
    total = sum(built.counts.values())
    seen: list[int] = []
    for offset in range(0, total, 10):
        page = _get(client, "/api/study/trials", study="mlp", offset=offset, limit=10,
                    sort="number", order="asc")
        assert page["total"] == total
        seen += [r["number"] for r in page["rows"]]
    assert seen == list(range(total))
    by_value = _get(client, "/api/study/trials", study="mlp", sort="value", limit=100)["rows"]
    values = [r["value"] for r in by_value]
    assert by_value[0]["number"] == built.best_number
    known = [v for v in values if v is not None]
    assert known == sorted(known) and values[len(known):] == [None] * (len(values) - len(known))
    adam = _get(client, "/api/study/trials", study="mlp", limit=100,
                filter="params.optimizer = adam, value < 1")["rows"]
    assert adam and all(r["params"]["optimizer"] == "adam" and r["value"] < 1 for r in adam)
    pruned = _get(client, "/api/study/trials", study="mlp", state="pruned")
    assert [r["number"] for r in pruned["rows"]] == built.pruned


def test_trial_table_refuses_bad_queries(client: TestClient) -> None:
    for params, words in [({"filter": "params.optimizer < adam"}, "categorical"),
                          ({"filter": "lr < 1"}, "unknown field 'lr'"),
                          ({"filter": "value ~ 1"}, "FIELD OP VALUE"),
                          ({"limit": 100000}, "limit"), ({"state": "done"}, "unknown states")]:
        response = client.get("/api/study/trials", params={"study": "mlp", **params})
        assert response.status_code == 400
        assert words in response.json()["error"]


def test_trial_detail_has_params_attrs_error_and_curve(client: TestClient,
                                                       built: Built) -> None:
    number = built.failed[0]
    trial = _get(client, f"/api/study/trial/{number}", study="mlp")
    assert trial["state"] == "failed" and "diverged" in trial["error"]
    assert set(trial["params"]) == set(SPACE)
    assert trial["user_attrs"] == {"seed": number}
    assert len(trial["figure"]["data"][0]["x"]) == 8
    response = client.get("/api/study/trial/999", params={"study": "mlp"})
    assert response.status_code == 404 and "#999" in response.json()["error"]


def test_dashboard_follows_new_trials(client: TestClient, built: Built) -> None:
    before = _get(client, "/api/study", study="live")
    study = hl.load_study("live", storage=built.url)
    trial = study.ask()
    study.tell(trial, loss(trial.params))
    after = _get(client, "/api/study", study="live")
    assert after["cursor"] > before["cursor"]
    assert after["counts"]["complete"] == before["counts"]["complete"] + 1
    figure = _get(client, "/api/study/panel/history", study="live")
    assert figure["data"][0]["x"][-1] == trial.number


def test_dashboard_is_read_only(client: TestClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        assert getattr(client, method)("/api/studies").status_code == 405


def test_new_panels_slot_in(client: TestClient) -> None:
    def build(columns: object, query: object) -> dict:
        return {"data": [{"type": "bar", "x": ["a"], "y": [columns.n]}], "layout": {}}

    register_panel(Panel("trial-count", "Trial count", build))
    try:
        ids = [p["id"] for p in _get(client, "/api/study", study="mlp")["panels"]]
        assert ids[-1] == "trial-count"
        figure = _get(client, "/api/study/panel/trial-count", study="mlp")
        assert figure["data"][0]["y"] == [31]
    finally:
        del PANELS["trial-count"]


def test_token_is_required_when_set(built: Built, tmp_path: Path) -> None:
    store = open_store(built.url)
    with TestClient(create_app(store, token=TOKEN)) as http:
        assert http.get("/api/studies").status_code == 401
        assert http.get("/").status_code == 401
        wrong = http.get("/api/studies", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and TOKEN not in wrong.text
        right = http.get("/api/studies", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200
        page = http.get("/", params={"token": TOKEN})
        assert page.status_code == 200 and "app.js" in page.text
        assert http.get("/api/studies").status_code == 200  # the cookie set above
    store.close()


def test_page_and_assets_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and '"pollMs": 1000' in page.text
    script = client.get("/static/plotly-cartesian.min.js")
    assert script.status_code == 200 and len(script.content) > 1_000_000
    assert client.get("/static/app.js").status_code == 200


def test_dashboard_command_never_creates_a_storage(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hyperlaw.cli import cli

    missing = tmp_path / "typo.db"
    result = CliRunner().invoke(cli, ["dashboard", "--storage", f"sqlite:///{missing}"])
    assert result.exit_code == 1
    assert "no database file" in result.output and str(missing) in result.output
    assert not missing.exists()


def test_a_trial_number_beyond_any_store_is_not_found(client: TestClient) -> None:
    for number in ("99999999999999999999", str(2**31), str(2**63)):
        response = client.get(f"/api/study/trial/{number}", params={"study": "mlp"})
        assert response.status_code == 404, response.text
        assert f"#{number}" in response.json()["error"]


def test_without_a_token_only_local_host_names_are_answered(built: Built) -> None:
    """A DNS name that a web page points at 127.0.0.1 (DNS rebinding) reaches the server
    with its own name in the Host header: it is refused."""
    store = open_store(built.url)
    app = create_app(store, hosts=["0.0.0.0", "dash.lab.internal"], preload=False)
    with TestClient(app, base_url="http://127.0.0.1:8080") as http:
        for host in ("localhost", "localhost:8080", "127.0.0.1:8080", "[::1]:8080",
                     "dash.lab.internal:8080", "DASH.lab.internal"):
            response = http.get("/api/studies", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
        for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                     "0.0.0.0:8080", ""):
            response = http.get("/api/studies", headers={"Host": host})
            assert response.status_code == 421, host
            assert "--allow-host" in response.json()["error"]
        assert http.get("/", headers={"Host": "evil.example"}).status_code == 421
    with TestClient(create_app(store, token=TOKEN, preload=False),
                    base_url="http://dash.example.org") as http:  # a token is the defence
        response = http.get("/api/studies", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
    store.close()

