"""The dashboard on a large study, next to optuna-dashboard on the same study, in one run.

    python benchmarks/dashboard.py                    # 100,000 trials x 20 steps
    python benchmarks/dashboard.py --trials 20000     # quicker
    python benchmarks/dashboard.py --no-optuna        # hyperlaw only

Builds a SQLite study of N trials (4 parameters, 20 intermediate values each, every 10th trial
pruned after 10 steps) for hyperlaw and the same trials for Optuna, serves each with its own
dashboard in a subprocess, and opens the study page in headless Chromium (Debian's, driven by
Playwright). Measures, in the browser, the time from navigation start to the first complete
render of the study page:
  - hyperlaw: every panel (history, curves, parallel coordinates, slice, contour, importance)
    and the trial table drawn (`window.hyperlawReadyAt`);
  - optuna-dashboard: its study page's history plot drawn with points (it shows that plot
    first; other plots sit on other tabs).
"cold" is the first page load after the server started (the server reads the study then);
"warm" is the median of the next loads, each in a fresh browser context (no cache);
"revisit" the median of reloads in one context (Plotly cached, as for a returning user). Also
reports each server's resident memory (peak) and the bytes of JSON the page downloaded.
Both study databases are built by inserting rows into each library's schema tables in one
transaction (see `build_hyperlaw` and `build_optuna`), since trial-by-trial writes of
100,000 trials would take far longer than the measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

import hyperlaw as hl
from hyperlaw.store import schema

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SPACE = hl.Space({"lr": hl.Float(1e-5, 1e-1, log=True), "width": hl.Int(16, 512, log=True),
                  "dropout": hl.Float(0.0, 0.5), "optimizer": hl.Choice(["adam", "sgd"])})


def synthetic_trials(n: int, steps: int, seed: int = 0) -> list[dict[str, Any]]:
    """Parameters, final value and learning curve of n trials (every 10th pruned)."""
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-5, -1, n)
    width = np.exp(rng.uniform(np.log(16), np.log(512), n)).round().astype(int)
    dropout = rng.uniform(0, 0.5, n)
    optimizer = rng.choice(["adam", "sgd"], n)
    final = ((np.log10(lr) + 3) ** 2 + 0.2 * dropout + 0.1 * (optimizer == "sgd")
             + 0.05 * np.abs(np.log2(width / 128)) + rng.normal(0, 0.02, n))
    out = []
    for i in range(n):
        pruned = i % 10 == 9
        k = steps // 2 if pruned else steps
        curve = final[i] + 2.0 / (np.arange(k) + 1.0)
        out.append({"params": {"lr": float(lr[i]), "width": int(width[i]),
                               "dropout": float(dropout[i]), "optimizer": str(optimizer[i])},
                    "value": float(curve[-1] if pruned else final[i]), "pruned": pruned,
                    "curve": curve.tolist()})
    return out


def build_hyperlaw(path: Path, trials: list[dict[str, Any]]) -> float:
    """The study `big` in a hyperlaw SQLite file: created through the API, then its trials and
    reports inserted into hyperlaw's schema tables in one transaction, with the study's
    number and sequence allocators moved past them (what `import_trial` writes, in bulk)."""
    start = time.perf_counter()
    url = f"sqlite:///{path}"
    study = hl.create_study("big", storage=url, space=SPACE)
    study_id = study.store.get_study("big").id
    now = time.time()
    trial_rows, report_rows = [], []
    for number, t in enumerate(trials):
        seq = number + 1
        trial_rows.append({
            "study_id": study_id, "number": number,
            "state": "pruned" if t["pruned"] else "complete",
            "params": json.dumps(t["params"], separators=(",", ":")), "value": t["value"],
            "user_attrs": "{}", "system_attrs": "{}", "error": None,
            "created_at": now + number, "started_at": now + number,
            "finished_at": now + number + 0.5, "heartbeat_at": None, "seq": seq})
        report_rows.extend({"study_id": study_id, "number": number, "step": step,
                            "value": value, "seq": seq}
                           for step, value in enumerate(t["curve"]))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.trials), trial_rows)
        conn.execute(sa.insert(schema.reports), report_rows)
        conn.execute(sa.update(schema.studies).where(schema.studies.c.id == study_id)
                     .values(next_number=len(trials), next_seq=len(trials)))
    engine.dispose()
    return time.perf_counter() - start


def build_optuna(path: Path, trials: list[dict[str, Any]]) -> float:
    """The same trials in an Optuna SQLite study: one trial told through Optuna's API gives
    the rows of its schema; the rest are inserted as copies of them in one transaction."""
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    start = time.perf_counter()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    distributions = {"lr": FloatDistribution(1e-5, 1e-1, log=True),
                     "width": IntDistribution(16, 512, log=True),
                     "dropout": FloatDistribution(0.0, 0.5),
                     "optimizer": CategoricalDistribution(["adam", "sgd"])}
    study = optuna.create_study(study_name="big", storage=url)
    first = trials[0]
    study.add_trial(optuna.trial.create_trial(
        params=first["params"], distributions=distributions, value=first["value"],
        intermediate_values=dict(enumerate(first["curve"]))))
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t_trials, t_params = meta.tables["trials"], meta.tables["trial_params"]
    t_values, t_inter = meta.tables["trial_values"], meta.tables["trial_intermediate_values"]
    with engine.begin() as conn:
        template = conn.execute(sa.select(t_trials)).mappings().one()
        dist_json = {r["param_name"]: r["distribution_json"]
                     for r in conn.execute(sa.select(t_params)).mappings()}
        trial_rows, param_rows, value_rows, inter_rows = [], [], [], []
        for number, t in enumerate(trials[1:], start=1):
            trial_id = template["trial_id"] + number
            trial_rows.append({**template, "trial_id": trial_id, "number": number,
                               "state": "PRUNED" if t["pruned"] else "COMPLETE"})
            for name, value in t["params"].items():
                internal = distributions[name].to_internal_repr(value)
                param_rows.append({"trial_id": trial_id, "param_name": name,
                                   "param_value": internal, "distribution_json": dist_json[name]})
            if not t["pruned"]:
                value_rows.append({"trial_id": trial_id, "objective": 0, "value": t["value"],
                                   "value_type": "FINITE"})
            inter_rows.extend({"trial_id": trial_id, "step": step, "intermediate_value": v,
                               "intermediate_value_type": "FINITE"}
                              for step, v in enumerate(t["curve"]))
        conn.execute(sa.insert(t_trials), trial_rows)
        conn.execute(sa.insert(t_params), param_rows)
        conn.execute(sa.insert(t_values), value_rows)
        conn.execute(sa.insert(t_inter), inter_rows)
    engine.dispose()
    loaded = optuna.load_study(study_name="big", storage=url)
    assert len(loaded.get_trials(deepcopy=False)) == len(trials)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _watch_memory(process: subprocess.Popen, limit_mb: float, tripped: list[float]) -> None:
    """Stop `process` if its resident memory passes `limit_mb` (protects the machine)."""
    while process.poll() is None:
        try:
            rss, _ = memory_mb(process.pid)
        except (FileNotFoundError, KeyError, ProcessLookupError):
            return
        if rss > limit_mb:
            tripped.append(rss)
            process.kill()
            return
        time.sleep(0.25)


@contextmanager
def server(command: list[str], probe: str, limit_mb: float,
           timeout: float = 120) -> Iterator[tuple[int, list[float]]]:
    """Run a dashboard server; yield its pid (and the list that records a memory stop) once
    `probe` answers."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tripped: list[float] = []
    threading.Thread(target=_watch_memory, args=(process, limit_mb, tripped),
                     daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with urllib.request.urlopen(probe, timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[0]} did not start: "
                                       f"{process.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.2)
        yield process.pid, tripped
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) memory of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def render_times(browser: Any, url: str, ready_js: str, runs: int,
                 timeout_s: float) -> list[float | None]:
    """Milliseconds from navigation start until `ready_js` returns a number (the moment the
    page marked itself rendered), in a fresh context each run; None past the timeout."""
    times: list[float | None] = []
    for _ in range(runs):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        try:
            page.goto(url, timeout=timeout_s * 1000)
            handle = page.wait_for_function(ready_js, timeout=timeout_s * 1000, polling=50)
            times.append(float(handle.json_value()))
        except Exception as exc:  # a timeout: the page never finished
            print(f"    no complete render within {timeout_s:g} s ({type(exc).__name__})")
            times.append(None)
        finally:
            context.close()
    return times


HYPERLAW_READY = "window.hyperlawReadyAt !== undefined && document.body.dataset.ready === " \
                 "'study' ? window.hyperlawReadyAt : false"
# optuna-dashboard marks nothing itself: take the first moment its history plot has points
OPTUNA_READY = """(() => {
  const points = document.querySelectorAll('.js-plotly-plot .scatterlayer path.point');
  if (points.length === 0) return false;
  if (window.__firstPointsAt === undefined) window.__firstPointsAt = performance.now();
  return window.__firstPointsAt;
})()"""


def revisit_times(browser: Any, url: str, ready_js: str, runs: int,
                  timeout_s: float) -> list[float | None]:
    """As `render_times`, but reloading the page in one context: a returning visitor, whose
    browser has Plotly cached (and compiled)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    times: list[float | None] = []
    try:
        page.goto(url, timeout=timeout_s * 1000)
        page.wait_for_function(ready_js, timeout=timeout_s * 1000, polling=50)
        for _ in range(runs):
            page.reload(timeout=timeout_s * 1000)
            handle = page.wait_for_function(ready_js, timeout=timeout_s * 1000, polling=50)
            times.append(float(handle.json_value()))
    except Exception as exc:
        print(f"    no complete render within {timeout_s:g} s ({type(exc).__name__})")
        times.append(None)
    finally:
        context.close()
    return times


def json_bytes(browser: Any, url: str, ready_js: str, timeout_s: float) -> int:
    context = browser.new_context()
    page = context.new_page()
    page.goto(url, timeout=timeout_s * 1000)
    page.wait_for_function(ready_js, timeout=timeout_s * 1000, polling=100)
    size = page.evaluate("performance.getEntriesByType('resource')"
                         ".filter(e => e.name.includes('/api/'))"
                         ".reduce((s, e) => s + e.encodedBodySize, 0)")
    context.close()
    return int(size)


def measure(name: str, command: list[str], probe: str, page_url: str, ready_js: str,
            runs: int, timeout_s: float, browser: Any, limit_mb: float) -> dict[str, Any]:
    print(f"  {name}: starting the server")
    with server(command, probe, limit_mb) as (pid, tripped):
        idle_rss, _ = memory_mb(pid)
        cold = render_times(browser, page_url, ready_js, 1, timeout_s)[0]
        print(f"    cold render {cold} ms")
        warm = render_times(browser, page_url, ready_js, runs, timeout_s)
        print(f"    warm renders {warm} ms")
        revisit = revisit_times(browser, page_url, ready_js, runs, timeout_s) if cold else []
        print(f"    revisits {revisit} ms")
        payload = json_bytes(browser, page_url, ready_js, timeout_s) if cold else None
        rss, peak = (tripped[0], tripped[0]) if tripped else memory_mb(pid)
        if tripped:
            print(f"    stopped: the server passed {limit_mb:.0f} MB of memory")
    done = [w for w in warm if w is not None]
    again = [w for w in revisit if w is not None]
    return {"name": name, "cold_ms": cold, "warm_ms": warm,
            "warm_median_ms": statistics.median(done) if done else None,
            "revisit_ms": revisit,
            "revisit_median_ms": statistics.median(again) if again else None,
            "idle_rss_mb": idle_rss, "rss_mb": rss, "peak_rss_mb": peak,
            "stopped_for_memory": bool(tripped),
            "json_bytes": payload}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="warm page loads per dashboard")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a page may take before it counts as not rendered")
    parser.add_argument("--no-optuna", action="store_true")
    parser.add_argument("--memory-limit", type=float, default=8192, metavar="MB",
                        help="stop a dashboard server whose memory passes this")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "dashboard.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hl-dash-bench-") as tmp:
        work = Path(tmp)
        print(f"building {args.trials:,} trials x {args.steps} steps")
        trials = synthetic_trials(args.trials, args.steps)
        build = {"hyperlaw_s": build_hyperlaw(work / "hyperlaw.db", trials)}
        if not args.no_optuna:
            build["optuna_s"] = build_optuna(work / "optuna.db", trials)
        del trials
        print(f"  built in {build}")
        results = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            port = free_port()
            results.append(measure(
                "hyperlaw", [sys.executable, "-c", "from hyperlaw.cli import main; main()",
                             "dashboard", "--storage", f"sqlite:///{work / 'hyperlaw.db'}",
                             "--port", str(port)],
                f"http://127.0.0.1:{port}/api/studies",
                f"http://127.0.0.1:{port}/#/study/big", HYPERLAW_READY, args.runs,
                args.timeout, browser, args.memory_limit))
            if not args.no_optuna:
                port = free_port()
                binary = Path(sys.executable).with_name("optuna-dashboard")
                results.append(measure(
                    "optuna-dashboard", [str(binary), f"sqlite:///{work / 'optuna.db'}",
                                         "--port", str(port), "--quiet"],
                    f"http://127.0.0.1:{port}/dashboard",
                    f"http://127.0.0.1:{port}/dashboard/studies/1", OPTUNA_READY, args.runs,
                    args.timeout, browser, args.memory_limit))
            browser.close()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nstudy page, {args.trials:,} trials x {args.steps} steps "
          f"({os.cpu_count()} cores, load average {load}; times from navigation start, "
          "in the browser)")
    header = (f"{'dashboard':<18}{'cold render':>13}{'warm median':>13}{'revisit':>10}"
              f"{'server RSS':>12}{'peak RSS':>10}{'JSON sent':>11}")
    print(header)
    print("-" * len(header))

    def ms(x: float | None) -> str:
        return "timeout" if x is None else f"{x / 1000:.2f} s"

    for r in results:
        payload = "-" if r["json_bytes"] is None else f"{r['json_bytes'] / 1e6:.2f} MB"
        stopped = "  (stopped at the memory limit)" if r["stopped_for_memory"] else ""
        print(f"{r['name']:<18}{ms(r['cold_ms']):>13}{ms(r['warm_median_ms']):>13}"
              f"{ms(r['revisit_median_ms']):>10}"
              f"{r['rss_mb']:>9.0f} MB{r['peak_rss_mb']:>7.0f} MB{payload:>11}{stopped}")
    if len(results) == 2 and results[0]["warm_median_ms"] and results[1]["warm_median_ms"]:
        print(f"warm render ratio hyperlaw / optuna-dashboard: "
              f"{results[0]['warm_median_ms'] / results[1]['warm_median_ms']:.2f}")
    goal = results[0]["warm_median_ms"]
    print(f"goal: hyperlaw study page under 2 s: "
          f"{'met' if goal is not None and goal < 2000 else 'MISSED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"trials": args.trials, "steps": args.steps,
                                    "build": build, "results": results}, indent=2))
    print(f"raw numbers in {args.out}")


if __name__ == "__main__":
    main()
