"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against
`hyperlaw dashboard` serving a real SQLite storage. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_study import (
    MO_OBJECTIVES,
    REPORT_PLOTS,
    Built,
    MultiBuilt,
    build_multi_objective,
    build_storage,
    hostile_report,
    loss,
)

import hyperlaw as hl

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
TOKEN = "browser-test-token"
WAIT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, MultiBuilt]:
    built = build_storage(str(tmp_path_factory.mktemp("browser") / "studies.db"))
    return built, build_multi_objective(built.url)


@pytest.fixture(scope="module")
def built(storage: tuple[Built, MultiBuilt]) -> Built:
    return storage[0]


@pytest.fixture(scope="module")
def multi(storage: tuple[Built, MultiBuilt]) -> MultiBuilt:
    return storage[1]


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[str]:
    """`hyperlaw dashboard` in its own process; yields its base URL."""
    port = _free_port()
    command = [sys.executable, "-c", "from hyperlaw.cli import main; main()", "dashboard",
               "--storage", built.url,
               "--port", str(port), "--token", TOKEN, "--poll", "0.3"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            request = urllib.request.Request(f"{base}/api/studies",
                                             headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=2):
                break
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the dashboard did not start:\n{process.stdout.read()}")
            time.sleep(0.1)
    yield base
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test-services.sh (it installs Debian's "
                    "chromium), or apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser: object, server: str) -> Iterator[object]:
    """One page for the whole module: views change by the URL hash, as a person clicks, so
    Plotly loads once."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(WAIT_MS)
    response = page.goto(f"{server}/?token={TOKEN}")
    assert response is not None and response.status == 200
    yield page
    context.close()
    assert not errors, f"errors in the page: {errors}"


def _shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def _go(page: object, route: str, ready: str) -> None:
    """Show the view of `route` (e.g. '#/study/mlp') and wait until it has rendered."""
    page.evaluate("""route => {
        delete document.body.dataset.ready;
        if (location.hash === route) window.dispatchEvent(new HashChangeEvent("hashchange"));
        else location.hash = route;
    }""", route)
    page.wait_for_selector(f"body[data-ready={ready}]")


def test_study_list_shows_the_counts(page: object, built: Built) -> None:
    _go(page, "#/", "studies")
    row = page.locator("tr[data-study=mlp]")
    for state, count in built.counts.items():
        assert row.locator(f"td.count-{state}").inner_text() == str(count)
    assert row.locator("td.total").inner_text() == str(sum(built.counts.values()))
    assert float(row.locator("td.best").inner_text()) == pytest.approx(built.best_value,
                                                                      rel=1e-5)
    assert page.locator("tr[data-study=empty] td.total").inner_text() == "0"
    _shot(page, "studies")


def test_history_plot_draws_one_point_per_complete_trial(page: object, built: Built) -> None:
    _go(page, "#/", "studies")
    page.click("tr[data-study=mlp] a")
    page.wait_for_selector("body[data-ready=study]")
    points = page.locator("#plot-history .scatterlayer .trace").first.locator("path.point")
    assert points.count() == len(built.complete)
    assert page.locator("#panel-history").get_attribute("data-points") == str(
        len(built.complete))
    # every registered panel drew a plot
    for panel in ("curves", "parallel", "slice", "rank", "contour", "importance", "edf",
                  "timeline"):
        assert page.locator(f"#plot-{panel} .main-svg").count() > 0, panel
    assert page.locator("#stat-complete .value").inner_text() == str(built.counts["complete"])
    _shot(page, "study")


def test_trial_table_sorts_and_filters_on_the_server(page: object, built: Built) -> None:
    _go(page, "#/study/mlp", "study")
    page.click("#trial-table th[data-sort=value]")
    page.wait_for_function("document.querySelector('#trial-table th.sorted-asc')"
                           "?.dataset.sort === 'value'")
    first = page.locator("#trial-table tbody tr").first
    assert first.get_attribute("data-number") == str(built.best_number)
    page.select_option("#table-state", "pruned")
    page.wait_for_function(f"document.querySelectorAll('#trial-table tbody tr').length === "
                           f"{len(built.pruned)}")
    assert page.locator("#table-info").inner_text().endswith(f"of {len(built.pruned)} trials")


def test_clicking_a_trial_opens_its_detail(page: object, built: Built) -> None:
    _go(page, "#/study/mlp", "study")
    number = built.failed[0]
    page.fill("#table-filter", f"number = {number}")
    page.press("#table-filter", "Enter")
    page.wait_for_selector(f"#trial-table tbody tr[data-number='{number}']")
    page.click(f"#trial-table tbody tr[data-number='{number}']")
    page.wait_for_selector("body[data-ready=trial]")
    assert page.url.endswith(f"#/study/mlp/trial/{number}")
    assert "diverged" in page.locator("#trial-error").inner_text()
    assert page.locator("#trial-params tr[data-key=optimizer]").count() == 1
    assert page.locator("#trial-user-attrs tr[data-key=seed] td").nth(1).inner_text() == str(
        number)
    assert page.locator("#trial-plot .scatterlayer path.point").count() == 8
    _shot(page, "trial")


def test_page_follows_a_new_trial_without_reloading(page: object, built: Built) -> None:
    _go(page, "#/study/live", "study")
    points = page.locator("#plot-history .scatterlayer .trace").first.locator("path.point")
    before = points.count()
    page.evaluate("window.notReloaded = true")
    study = hl.load_study("live", storage=built.url)
    trial = study.ask()
    study.tell(trial, loss(trial.params))
    page.wait_for_function(
        f"document.querySelectorAll('#plot-history .scatterlayer .trace:first-child "
        f"path.point').length === {before + 1}")
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_function(f"document.querySelector('#stat-complete .value').textContent === "
                           f"'{before + 1}'")
    _shot(page, "live")


def test_a_multi_objective_study_shows_its_pareto_front(page: object,
                                                        multi: MultiBuilt) -> None:
    _go(page, "#/study/mo", "study")
    for panel in ("pareto", "hypervolume", "constraints"):
        assert page.locator(f"#plot-{panel} .main-svg").count() > 0, panel
    # traces: the front's staircase, dominated, infeasible, then the front's points on top
    traces = page.locator("#plot-pareto .scatterlayer .trace")
    assert traces.last.locator("path.point").count() == len(multi.front)
    assert traces.nth(2).locator("path.point").count() == len(multi.infeasible)
    assert page.locator("#stat-front .value").inner_text() == f"{len(multi.front)} trials"
    heads = page.locator("#trial-table thead th").all_inner_texts()
    assert [h for h in heads if h in MO_OBJECTIVES] == list(MO_OBJECTIVES)
    assert "violation" in heads
    _go(page, "#/study/mlp", "study")
    assert page.locator("#panel-pareto").count() == 0  # one objective: no front
    _go(page, "#/study/mo", "study")
    _shot(page, "multi-objective")
    _go(page, f"#/study/mo/trial/{multi.infeasible[0]}", "trial")
    assert "max 10" in page.locator("#trial-constraints").inner_text()
    assert "tokens" in page.locator("#trial-cost").inner_text()
    assert page.locator("tr[data-key=values]").count() == 1


def test_a_wrong_token_is_refused(browser: object, server: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    response = page.goto(f"{server}/?token=wrong-{TOKEN}")
    assert response is not None and response.status == 401
    assert "401" in page.locator("h1").inner_text()
    status = page.evaluate("fetch('/api/studies').then(r => r.status)")
    assert status == 401
    _shot(page, "wrong-token")
    context.close()



def test_the_static_report_draws_every_plot_whatever_the_choice_values(
        browser: object, tmp_path: Path) -> None:
    """A choice value `<!--<script>` once left the report with none of its plots."""
    path = hostile_report(str(tmp_path / "report.html"))
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(WAIT_MS)
    page.goto(Path(path).as_uri())
    for key in REPORT_PLOTS:
        page.wait_for_selector(f"#plot-{key} .main-svg")
    _shot(page, "report-html-choices")
    context.close()
    assert not errors, f"errors in the report: {errors}"
