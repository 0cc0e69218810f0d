"""Framework overhead of hyperlaw next to Optuna, measured in the same run on the same machine.

    python benchmarks/overhead.py            # full run (several minutes)
    python benchmarks/overhead.py --quick    # about two minutes

Measures ask+tell cost per trial (in memory and on SQLite), the throughput of 4 processes
sharing one SQLite study, and the cost of opening a large study and reading its best trial.
Both libraries use a random sampler over the same 5-parameter space. Prints a table of
medians and ratios (hyperlaw / optuna) and writes every raw number to
benchmarks/results/overhead.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy as sa
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

import hyperlaw as hl
from hyperlaw.store import schema

RESULTS = Path(__file__).resolve().parent / "results" / "overhead.json"
N_PROCESSES = 4
OPTIMIZERS = ("adam", "sgd", "rmsprop")
_OPT_COST = {"adam": 0.0, "sgd": 0.3, "rmsprop": 0.1}


@dataclass(frozen=True)
class Config:
    quick: bool
    memory_sizes: tuple[int, ...]
    memory_repeats: int
    sqlite_n: int
    sqlite_repeats_hl: int
    sqlite_repeats_optuna: int  # at most; no new repeat starts past sqlite_optuna_budget_s
    sqlite_optuna_budget_s: float
    sqlite_big_n: int | None  # hyperlaw and (budget permitting) Optuna; None skips
    sqlite_big_repeats_hl: int
    optuna_big_budget_s: float  # Optuna's big SQLite run is abandoned past this
    mp_seconds: float
    mp_repeats: int
    load_n: int
    load_repeats: int
    optuna_load: bool
    optuna_build_budget_s: float  # build Optuna's load_n study only if projected under this


QUICK = Config(quick=True, memory_sizes=(1_000, 10_000), memory_repeats=3,
               sqlite_n=300, sqlite_repeats_hl=3, sqlite_repeats_optuna=1,
               sqlite_optuna_budget_s=0.0, sqlite_big_n=None, sqlite_big_repeats_hl=0,
               optuna_big_budget_s=0.0, mp_seconds=5.0, mp_repeats=1, load_n=20_000,
               load_repeats=3, optuna_load=False, optuna_build_budget_s=0.0)
FULL = Config(quick=False, memory_sizes=(1_000, 10_000), memory_repeats=5,
              sqlite_n=1_000, sqlite_repeats_hl=5, sqlite_repeats_optuna=3,
              sqlite_optuna_budget_s=180.0, sqlite_big_n=10_000, sqlite_big_repeats_hl=2,
              optuna_big_budget_s=480.0, mp_seconds=10.0, mp_repeats=3, load_n=100_000,
              load_repeats=3, optuna_load=True, optuna_build_budget_s=300.0)


# --- the shared search space and objective --------------------------------------------------
def hl_space() -> hl.Space:
    return hl.Space({
        "lr": hl.Float(1e-5, 1e-1, log=True),
        "dropout": hl.Float(0.0, 0.5),
        "width": hl.Int(16, 1024, log=True),
        "layers": hl.Int(1, 8),
        "optimizer": hl.Choice(list(OPTIMIZERS)),
    })


def optuna_space() -> dict[str, BaseDistribution]:
    return {
        "lr": FloatDistribution(1e-5, 1e-1, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
        "width": IntDistribution(16, 1024, log=True),
        "layers": IntDistribution(1, 8),
        "optimizer": CategoricalDistribution(list(OPTIMIZERS)),
    }


def value_of(p: Mapping[str, Any]) -> float:
    """A cheap deterministic stand-in for a training run."""
    return ((math.log10(p["lr"]) + 3.0) ** 2 + p["dropout"] + math.log2(p["width"]) / 10
            + p["layers"] / 8 + _OPT_COST[p["optimizer"]])


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _fresh(work: Path, label: str) -> Path:
    """A new, empty folder for one run's database."""
    path = work / label
    path.mkdir()
    return path


def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


# --- ask+tell loops -------------------------------------------------------------------------
@dataclass
class LoopResult:
    seconds: float
    done: int  # trials run; fewer than asked when abandoned over budget
    tail_seconds: float  # time of the last `tail` trials (nan without a tail)

    def per_trial(self, scale: float) -> float:
        return self.seconds / self.done * scale


def hl_loop(study: hl.Study, n: int, tail: int = 0) -> LoopResult:
    mark = n - tail
    tail_start = None
    start = time.perf_counter()
    for i in range(n):
        if i == mark:
            tail_start = time.perf_counter()
        t = study.ask()
        study.tell(t, value_of(t.params))
    end = time.perf_counter()
    return LoopResult(end - start, n, math.nan if tail_start is None else end - tail_start)


def optuna_loop(study: optuna.Study, n: int, tail: int = 0,
                budget: float | None = None) -> LoopResult:
    dists = optuna_space()
    mark = n - tail
    tail_start = None
    start = time.perf_counter()
    for i in range(n):
        if i == mark:
            tail_start = time.perf_counter()
        if budget is not None and i % 100 == 0:
            spent = time.perf_counter() - start
            # past the budget, or clearly headed there (projected from 1,000+ trials)
            if spent > budget or (i >= 1_000 and spent / i * n > 1.5 * budget):
                return LoopResult(spent, i, math.nan)
        t = study.ask(fixed_distributions=dists)
        study.tell(t, value_of(t.params))
    end = time.perf_counter()
    return LoopResult(end - start, n, math.nan if tail_start is None else end - tail_start)


def new_hl_study(name: str, storage: str | None = None) -> hl.Study:
    return hl.create_study(name, storage=storage, sampler="random", seed=0, space=hl_space())


def new_optuna_study(name: str, storage: str | None = None) -> optuna.Study:
    rdb = None if storage is None else optuna.storages.RDBStorage(storage)
    return optuna.create_study(study_name=name, storage=rdb,
                               sampler=optuna.samplers.RandomSampler(seed=0))


# --- subprocess helpers (spawned, so nothing is shared or cached) ---------------------------
def _run_spawned(target: Callable[..., None], args_list: list[tuple[Any, ...]],
                 timeout: float) -> list[dict[str, Any]]:
    """Run `target(*args, queue)` in one spawned process per args; their results in order."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, i, queue), daemon=True)
             for i, args in enumerate(args_list)]
    for p in procs:
        p.start()
    results: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(results) < len(procs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{target.__name__}: no result within {timeout:g} s")
            index, result = queue.get(timeout=remaining)
            results[index] = result
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    return [results[i] for i in range(len(procs))]


def _throughput_worker(lib: str, url: str, name: str, seconds: float, barrier: Any,
                       index: int, queue: Any) -> None:
    """ask+tell in a loop for `seconds` on a shared study, counting every exception."""
    quiet_optuna()
    out: dict[str, Any] = {"completed": 0, "lock_errors": 0, "other_errors": 0,
                           "first_error": None, "elapsed": 0.0, "max_latency": 0.0}

    def record_error(exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if "locked" in str(exc):
            out["lock_errors"] += 1
        else:
            out["other_errors"] += 1
        if out["first_error"] is None:
            out["first_error"] = text[:300]

    step: Callable[[], None] | None = None
    try:
        if lib == "hyperlaw":
            hstudy = hl.load_study(name, storage=url)

            def step() -> None:
                t = hstudy.ask()
                hstudy.tell(t, value_of(t.params))
        else:
            ostudy = optuna.load_study(study_name=name, storage=url,
                                       sampler=optuna.samplers.RandomSampler(seed=index))
            dists = optuna_space()

            def step() -> None:
                t = ostudy.ask(fixed_distributions=dists)
                ostudy.tell(t, value_of(t.params))
    except Exception as exc:
        record_error(exc)
    barrier.wait()
    start = time.perf_counter()
    deadline = start + seconds
    while step is not None and time.perf_counter() < deadline:
        t0 = time.perf_counter()
        try:
            step()
        except Exception as exc:
            record_error(exc)
        else:
            out["completed"] += 1
            out["max_latency"] = max(out["max_latency"], time.perf_counter() - t0)
    out["elapsed"] = time.perf_counter() - start
    queue.put((index, out))


def _load_probe(lib: str, url: str, name: str, mode: str, index: int, queue: Any) -> None:
    """Time opening a study plus reading its best trial (or one ask+tell) in a fresh process."""
    quiet_optuna()
    start = time.perf_counter()
    if lib == "hyperlaw":
        study = hl.load_study(name, storage=url)
        if mode == "best":
            best = study.best_trial
            info = {"best_number": best.number, "best_value": best.value}
        else:
            t = study.ask()
            study.tell(t, value_of(t.params))
            info = {"number": t.number}
    else:
        ostudy = optuna.load_study(study_name=name, storage=url)
        if mode == "best":
            obest = ostudy.best_trial
            info = {"best_number": obest.number, "best_value": obest.value}
        else:
            ot = ostudy.ask(fixed_distributions=optuna_space())
            ostudy.tell(ot, value_of(ot.params))
            info = {"number": ot.number}
    queue.put((index, {"seconds": time.perf_counter() - start, **info}))


# --- measurements ---------------------------------------------------------------------------
def measure_memory(cfg: Config, raw: dict[str, Any]) -> None:
    for n in cfg.memory_sizes:
        hl_us, op_us = [], []
        for r in range(cfg.memory_repeats):
            hl_us.append(hl_loop(new_hl_study(f"mem-{n}-{r}"), n).per_trial(1e6))
            op_us.append(optuna_loop(new_optuna_study(f"mem-{n}-{r}"), n).per_trial(1e6))
        raw[f"memory_{n}"] = {"unit": "us/trial", "hyperlaw": hl_us, "optuna": op_us}
        _progress(f"memory {n}: hyperlaw {_med(hl_us):.1f} us, optuna {_med(op_us):.1f} us")


def measure_sqlite(cfg: Config, raw: dict[str, Any], work: Path) -> dict[str, str]:
    """ask+tell on a fresh SQLite file per run; returns the big studies' URLs for reuse."""
    kept: dict[str, str] = {}
    n = cfg.sqlite_n
    hl_ms, op_ms = [], []
    for r in range(cfg.sqlite_repeats_hl):
        url = sqlite_url(_fresh(work, f"hl-sql-{n}-{r}") / "study.db")
        hl_ms.append(hl_loop(new_hl_study("s", url), n).per_trial(1e3))
    op_start = time.perf_counter()
    for r in range(cfg.sqlite_repeats_optuna):
        if r and time.perf_counter() - op_start > cfg.sqlite_optuna_budget_s:
            break
        url = sqlite_url(_fresh(work, f"op-sql-{n}-{r}") / "study.db")
        op_ms.append(optuna_loop(new_optuna_study("s", url), n).per_trial(1e3))
    raw[f"sqlite_{n}"] = {"unit": "ms/trial", "hyperlaw": hl_ms, "optuna": op_ms}
    _progress(f"sqlite {n}: hyperlaw {_med(hl_ms):.2f} ms, optuna {_med(op_ms):.2f} ms")

    big = cfg.sqlite_big_n
    if big is None:
        return kept
    tail = min(1_000, big // 2)
    hl_all, hl_tail = [], []
    for r in range(cfg.sqlite_big_repeats_hl):
        url = sqlite_url(_fresh(work, f"hl-sql-{big}-{r}") / "study.db")
        res = hl_loop(new_hl_study("s", url), big, tail=tail)
        hl_all.append(res.per_trial(1e3))
        hl_tail.append(res.tail_seconds / tail * 1e3)
        kept["hyperlaw"] = url
    url = sqlite_url(_fresh(work, f"op-sql-{big}") / "study.db")
    res = optuna_loop(new_optuna_study("s", url), big, tail=tail, budget=cfg.optuna_big_budget_s)
    entry: dict[str, Any] = {"unit": "ms/trial", "hyperlaw": hl_all, "hyperlaw_tail": hl_tail,
                             "tail": f"trials {big - tail:,}–{big:,}"}
    if res.done < big:
        entry.update(optuna=[], optuna_tail=[],
                     optuna_skipped=f"too slow: abandoned after {res.done:,} trials in "
                                    f"{res.seconds:.0f} s ({res.per_trial(1e3):.1f} ms/trial; "
                                    f"budget {cfg.optuna_big_budget_s:g} s)")
    else:
        entry.update(optuna=[res.per_trial(1e3)], optuna_tail=[res.tail_seconds / tail * 1e3])
        kept["optuna"] = url
    raw[f"sqlite_{big}"] = entry
    _progress(f"sqlite {big}: hyperlaw {_med(hl_all):.2f} ms, optuna "
              f"{_med(entry['optuna']) if entry['optuna'] else entry.get('optuna_skipped')}")
    return kept


def measure_processes(cfg: Config, raw: dict[str, Any], work: Path) -> None:
    ctx = mp.get_context("spawn")
    runs: dict[str, list[dict[str, Any]]] = {"hyperlaw": [], "optuna": []}
    for r in range(cfg.mp_repeats):
        for lib in ("hyperlaw", "optuna"):
            url = sqlite_url(_fresh(work, f"mp-{lib}-{r}") / "study.db")
            if lib == "hyperlaw":
                new_hl_study("shared", url).store.close()
            else:
                new_optuna_study("shared", url)
            barrier = ctx.Barrier(N_PROCESSES)
            workers = _run_spawned(
                _throughput_worker,
                [(lib, url, "shared", cfg.mp_seconds, barrier)] * N_PROCESSES,
                timeout=cfg.mp_seconds + 300)
            completed = sum(w["completed"] for w in workers)
            wall = max(w["elapsed"] for w in workers)
            runs[lib].append({
                "trials_per_s": completed / wall, "completed": completed, "wall_s": wall,
                "lock_errors": sum(w["lock_errors"] for w in workers),
                "other_errors": sum(w["other_errors"] for w in workers),
                "complete_in_db": _count_complete(lib, url),
                "workers": workers})
            last = runs[lib][-1]
            _progress(f"{N_PROCESSES} processes, {lib}: {last['trials_per_s']:.1f} trials/s, "
                      f"{last['lock_errors']} lock errors, {last['other_errors']} other errors")
    raw["processes"] = {"unit": "trials/s", "processes": N_PROCESSES,
                        "seconds": cfg.mp_seconds, **runs}


def _count_complete(lib: str, url: str) -> int:
    if lib == "hyperlaw":
        study = hl.load_study("shared", storage=url)
        count = len(study.get_trials(["complete"]))
        study.store.close()
        return count
    ostudy = optuna.load_study(study_name="shared", storage=url)
    return len(ostudy.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def build_hl_bulk(url: str, name: str, n: int) -> dict[str, Any]:
    """A hyperlaw SQLite study of `n` complete trials, built fast.

    The trials come from the regular API on an in-memory study (same space, sampler and
    seed); they are then written to the SQLite study in one transaction by inserting rows
    into hyperlaw's schema tables (`hyperlaw.store.schema`), with the study's trial-number
    and change-sequence allocators moved past them. Regular ask+tell on SQLite is one or two
    write transactions per trial, too slow to build 100,000 trials in a benchmark.
    """
    start = time.perf_counter()
    mem = new_hl_study(name)
    for _ in range(n):
        t = mem.ask()
        mem.tell(t, value_of(t.params))
    records = mem.trials
    expected = mem.best_trial
    generated = time.perf_counter() - start
    disk = new_hl_study(name, url)
    study_id = disk.store.get_study(name).id
    disk.store.close()
    rows = [{
        "study_id": study_id, "number": rec.number, "state": rec.state.value,
        "params": json.dumps(rec.params, separators=(",", ":")), "value": rec.value,
        "user_attrs": "{}", "system_attrs": "{}", "error": None,
        "created_at": rec.created_at, "started_at": rec.started_at,
        "finished_at": rec.finished_at, "heartbeat_at": None, "seq": rec.number + 1,
    } for rec in records]
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.trials), rows)
        conn.execute(sa.update(schema.studies).where(schema.studies.c.id == study_id)
                     .values(next_number=n, next_seq=n))
    engine.dispose()
    return {"n": n, "generate_s": generated, "total_build_s": time.perf_counter() - start,
            "expected_best_number": expected.number}


def optuna_build_rate(work: Path, n: int = 200) -> float:
    """Seconds per trial of Optuna's fastest build path (`add_trials`) on SQLite."""
    url = sqlite_url(_fresh(work, "op-rate") / "study.db")
    study = new_optuna_study("rate", url)
    trials = _optuna_frozen_trials(n, seed=1)
    start = time.perf_counter()
    study.add_trials(trials)
    return (time.perf_counter() - start) / n


def _optuna_frozen_trials(n: int, seed: int) -> list[optuna.trial.FrozenTrial]:
    sampler = optuna.samplers.RandomSampler(seed=seed)
    mem = optuna.create_study(sampler=sampler)
    optuna_loop(mem, n)
    return mem.get_trials(deepcopy=False)


def _probe(lib: str, url: str, name: str, mode: str, repeats: int) -> list[dict[str, Any]]:
    return [_run_spawned(_load_probe, [(lib, url, name, mode)], timeout=600)[0]
            for _ in range(repeats)]


def measure_load(cfg: Config, raw: dict[str, Any], work: Path, kept: dict[str, str]) -> None:
    out: dict[str, Any] = {"unit": "s"}
    n = cfg.load_n
    url = sqlite_url(_fresh(work, f"hl-load-{n}") / "study.db")
    build = build_hl_bulk(url, "big", n)
    best = _probe("hyperlaw", url, "big", "best", cfg.load_repeats)
    ask = _probe("hyperlaw", url, "big", "ask", cfg.load_repeats)
    out[f"hyperlaw_{n}"] = {
        "build": build, "load_best": [p["seconds"] for p in best],
        "load_ask_tell": [p["seconds"] for p in ask],
        "best_number_ok": all(p["best_number"] == build["expected_best_number"] for p in best),
        "ask_number_ok": [p["number"] for p in ask] == list(range(n, n + len(ask)))}
    _progress(f"load {n}: hyperlaw {_med(out[f'hyperlaw_{n}']['load_best']):.3f} s")

    if not cfg.optuna_load:
        out[f"optuna_{n}"] = {"skipped": "--quick"}
        raw["load"] = out
        return
    rate = optuna_build_rate(work)
    projected = rate * n
    if projected <= cfg.optuna_build_budget_s:
        ourl = sqlite_url(_fresh(work, f"op-load-{n}") / "study.db")
        study = new_optuna_study("big", ourl)
        for chunk in range(0, n, 10_000):
            study.add_trials(_optuna_frozen_trials(min(10_000, n - chunk), seed=chunk))
        out[f"optuna_{n}"] = _optuna_load(ourl, "big", cfg.load_repeats)
    else:
        out[f"optuna_{n}"] = {
            "skipped": f"building {n:,} trials projected at {projected:,.0f} s "
                       f"({rate * 1e3:.1f} ms/trial with add_trials), over the "
                       f"{cfg.optuna_build_budget_s:g} s budget"}
    out[f"optuna_{n}"]["build_rate_s_per_trial"] = rate

    # the same measurement at 10,000 trials, on the studies of the SQLite ask+tell runs
    small = cfg.sqlite_big_n
    if small and "optuna" in kept and "hyperlaw" in kept:
        hbest = _probe("hyperlaw", kept["hyperlaw"], "s", "best", cfg.load_repeats)
        hask = _probe("hyperlaw", kept["hyperlaw"], "s", "ask", cfg.load_repeats)
        out[f"hyperlaw_{small}"] = {"load_best": [p["seconds"] for p in hbest],
                                    "load_ask_tell": [p["seconds"] for p in hask]}
        out[f"optuna_{small}"] = _optuna_load(kept["optuna"], "s", cfg.load_repeats)
    raw["load"] = out


def _optuna_load(url: str, name: str, repeats: int) -> dict[str, Any]:
    best = _probe("optuna", url, name, "best", repeats)
    ask = _probe("optuna", url, name, "ask", repeats)
    return {"load_best": [p["seconds"] for p in best],
            "load_ask_tell": [p["seconds"] for p in ask]}


# --- reporting ------------------------------------------------------------------------------
def _med(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "numpy": np.__version__,
        "sqlalchemy": sa.__version__, "optuna": optuna.__version__,
        "hyperlaw": hl.__version__, "load_average": os.getloadavg(),
    }


@dataclass
class Row:
    measurement: str
    hyperlaw: str
    optuna: str
    ratio: str
    goal: str
    met: str


def _fmt(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) or b == 0 else a / b


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def build_rows(cfg: Config, raw: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for n in cfg.memory_sizes:
        m = raw[f"memory_{n}"]
        h, o = _med(m["hyperlaw"]), _med(m["optuna"])
        r = _ratio(h, o)
        rows.append(Row(f"ask+tell, memory, {n:,} trials (µs/trial)", _fmt(h, 1), _fmt(o, 1),
                        _fmt(r, 2), "ratio <= 0.20", _yes(r <= 0.2)))
    m = raw[f"sqlite_{cfg.sqlite_n}"]
    h, o = _med(m["hyperlaw"]), _med(m["optuna"])
    rows.append(Row(f"ask+tell, SQLite, {cfg.sqlite_n:,} trials (ms/trial)", _fmt(h, 2),
                    _fmt(o, 2), _fmt(_ratio(h, o), 2), "-", "-"))
    big = cfg.sqlite_big_n
    if big is not None:
        m = raw[f"sqlite_{big}"]
        skipped = "skipped (too slow)" if "optuna_skipped" in m else None
        for key, label in (("", f"{big:,} trials"), ("_tail", m["tail"])):
            h, o = _med(m["hyperlaw" + key]), _med(m["optuna" + key])
            rows.append(Row(f"ask+tell, SQLite, {label} (ms/trial)", _fmt(h, 2),
                            skipped or _fmt(o, 2), _fmt(_ratio(h, o), 2), "-", "-"))
    p = raw["processes"]
    h = _med([run["trials_per_s"] for run in p["hyperlaw"]])
    o = _med([run["trials_per_s"] for run in p["optuna"]])
    hl_locks = sum(run["lock_errors"] for run in p["hyperlaw"])
    op_locks = sum(run["lock_errors"] for run in p["optuna"])
    r = _ratio(h, o)
    rows.append(Row(f"{N_PROCESSES} processes, one SQLite file (trials/s)", _fmt(h, 1),
                    _fmt(o, 1), _fmt(r, 1), "ratio >= 10", _yes(r >= 10)))
    rows.append(Row(f"{N_PROCESSES} processes: lock errors (all repeats)", str(hl_locks),
                    str(op_locks), "-", "hyperlaw 0", _yes(hl_locks == 0)))
    load = raw["load"]
    n = cfg.load_n
    hb = _med(load[f"hyperlaw_{n}"]["load_best"])
    ha = _med(load[f"hyperlaw_{n}"]["load_ask_tell"])
    op = load[f"optuna_{n}"]
    ob = _med(op.get("load_best", []))
    oa = _med(op.get("load_ask_tell", []))
    note = "" if n >= 100_000 else f" (at {n // 1000}k)"
    oskip = "skipped (quick)" if cfg.quick else "skipped (too slow to build)"
    rows.append(Row(f"load_study + best_trial, {n:,} trials (s)", _fmt(hb, 3),
                    oskip if "skipped" in op else _fmt(ob, 3), _fmt(_ratio(hb, ob), 2),
                    "< 1 s (100k)", _yes(hb < 1.0) + note))
    rows.append(Row(f"load_study + one ask+tell, {n:,} trials (s)", _fmt(ha, 3),
                    oskip if "skipped" in op else _fmt(oa, 3), _fmt(_ratio(ha, oa), 2),
                    "-", "-"))
    small = cfg.sqlite_big_n
    if small and f"optuna_{small}" in load:
        for key, label in (("load_best", "best_trial"), ("load_ask_tell", "one ask+tell")):
            h, o = _med(load[f"hyperlaw_{small}"][key]), _med(load[f"optuna_{small}"][key])
            rows.append(Row(f"load_study + {label}, {small:,} trials (s)", _fmt(h, 3),
                            _fmt(o, 3), _fmt(_ratio(h, o), 2), "-", "-"))
    return rows


def print_table(rows: list[Row]) -> None:
    header = Row("measurement", "hyperlaw", "optuna", "ratio", "goal", "met?")
    table = [header, *rows]
    fields = list(asdict(header))
    widths = {f: max(len(getattr(r, f)) for r in table) for f in fields}
    for i, r in enumerate(table):
        cells = [getattr(r, f).ljust(widths[f]) if f in ("measurement", "goal", "met")
                 else getattr(r, f).rjust(widths[f]) for f in fields]
        print(" | ".join(cells).rstrip())
        if i == 0:
            print("-+-".join("-" * widths[f] for f in fields))


def notes(cfg: Config, raw: dict[str, Any]) -> list[str]:
    out = ["ratio = hyperlaw / optuna: lower is better for times, higher for trials/s."]
    big = cfg.sqlite_big_n
    if big is not None and "optuna_skipped" in raw[f"sqlite_{big}"]:
        out.append(f"Optuna SQLite {big:,} trials: {raw[f'sqlite_{big}']['optuna_skipped']}.")
    n = cfg.load_n
    op = raw["load"][f"optuna_{n}"]
    if not cfg.quick and "skipped" in op:
        out.append(f"Optuna {n:,}-trial study: {op['skipped']}.")
    big_hl = raw["load"][f"hyperlaw_{n}"]
    build = big_hl["build"]
    out.append(f"hyperlaw {n:,}-trial study: generated with ask+tell in memory "
               f"({build['generate_s']:.1f} s), bulk-inserted into SQLite in one transaction "
               f"({build['total_build_s']:.1f} s in all). Checks: best_trial is the expected "
               f"trial: {big_hl['best_number_ok']}; the first ask gets trial #{n:,}: "
               f"{big_hl['ask_number_ok']}.")
    single = raw[f"sqlite_{cfg.sqlite_n}"]
    rates = ", ".join(f"{lib} {1e3 / _med(single[lib]):.1f}" for lib in ("hyperlaw", "optuna"))
    out.append(f"For scale, one process alone on SQLite does (trials/s): {rates}.")
    for lib in ("hyperlaw", "optuna"):
        runs = raw["processes"][lib]
        other = sum(run["other_errors"] for run in runs)
        if other:
            first = next(w["first_error"] for run in runs for w in run["workers"]
                         if w["first_error"])
            out.append(f"{lib}, {N_PROCESSES} processes: {other} non-lock errors, e.g. {first}")
        worst = max(w["max_latency"] for run in runs for w in run["workers"])
        out.append(f"{lib}, {N_PROCESSES} processes: slowest single ask+tell {worst:.2f} s.")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer trials and repeats (about two minutes)")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    quiet_optuna()
    started = time.perf_counter()
    info = machine()
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hyperlaw-bench-") as tmp:
        work = Path(tmp)
        sections: dict[str, float] = {}
        mark = time.perf_counter()

        def done(section: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            sections[section] = now - mark
            mark = now

        measure_memory(cfg, raw)
        done("memory")
        kept = measure_sqlite(cfg, raw, work)
        done("sqlite")
        measure_processes(cfg, raw, work)
        done("processes")
        measure_load(cfg, raw, work, kept)
        done("load")
        raw["section_s"] = sections
    elapsed = time.perf_counter() - started

    rows = build_rows(cfg, raw)
    print(f"hyperlaw overhead benchmark ({'quick' if cfg.quick else 'full'} run, "
          f"{elapsed:.0f} s)")
    print(f"machine: {info['cpu_count']} CPUs, {info['platform']}, load average at start "
          f"{info['load_average'][0]:.2f}")
    print(f"versions: python {info['python']}, numpy {info['numpy']}, sqlalchemy "
          f"{info['sqlalchemy']}, optuna {info['optuna']}, hyperlaw {info['hyperlaw']}")
    print("medians over repeats; random sampler, 5-parameter space, for both libraries\n")
    print_table(rows)
    print()
    for line in notes(cfg, raw):
        print(f"- {line}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "config": asdict(cfg), "machine": info, "elapsed_s": elapsed,
        "table": [asdict(r) for r in rows], "raw": raw,
    }, indent=2, default=str) + "\n")
    print(f"\nraw numbers: {RESULTS}")


if __name__ == "__main__":
    main()
