"""The store contract, on memory and on a real SQLite file shared by processes."""

from __future__ import annotations

import math
import multiprocessing as mp
import random
import time
from pathlib import Path

import pytest

import hyperlaw as hl
from hyperlaw.history import History
from hyperlaw.store import MemoryStore, Store, open_store
from hyperlaw.transfer import copy_study, read_all
from hyperlaw.trial import TrialExtras, TrialRecord, TrialState

RUNNING = TrialState.RUNNING


@pytest.fixture
def store(storage: str | None) -> Store:
    return open_store(storage)


def test_catch_up_reads_only_what_changed(store: Store) -> None:
    info = store.create_study("s", "minimize", None, {})
    for i in range(50):
        t = store.create_trial(info.id, RUNNING, {"i": i})
        store.finish_trial(info.id, t.number, TrialState.COMPLETE, float(i))
    first = store.changes_since(info.id, 0)
    assert len({t.number for t in first.trials}) == 50
    again = store.changes_since(info.id, first.cursor)
    assert again.trials == [] and again.reports == [] and again.cursor == first.cursor
    t = store.create_trial(info.id, RUNNING, {"i": 50})
    store.report(info.id, t.number, 0, 1.5)
    store.report(info.id, t.number, 1, 1.25)
    delta = store.changes_since(info.id, first.cursor)
    assert [r.number for r in delta.trials] == [50]
    assert [(r.step, r.value) for r in delta.reports] == [(0, 1.5), (1, 1.25)]


def test_history_matches_a_full_read(store: Store) -> None:
    info = store.create_study("s", "minimize", None, {})
    history = History(store, info.id, maximize=False)
    for i in range(20):
        t = store.create_trial(info.id, RUNNING, {"i": i})
        store.report(info.id, t.number, 0, float(i))
        if i % 3 == 0:
            history.refresh()
        state = TrialState.PRUNED if i % 4 == 0 else TrialState.COMPLETE
        store.finish_trial(info.id, t.number, state, float(i))
    history.refresh()
    assert history.trials == read_all(store, info.id)
    assert history.by_step[0] == {i: float(i) for i in range(20)}


def test_readers_get_records_of_their_own(store: Store) -> None:
    """A History writes reports into the records it reads; the store's own records and its
    change log stay as they were, for every later reader."""
    info = store.create_study("s", "minimize", None, {})
    history = History(store, info.id, maximize=False)
    started = store.create_trial(info.id, RUNNING, {"x": 1})
    history.put(started)  # what a study does with the trial it starts
    store.report(info.id, started.number, 1, 0.5)
    history.add_report(started.number, 1, 0.5)
    history.refresh()
    store.report(info.id, started.number, 2, 0.25)
    history.refresh()
    store.finish_trial(info.id, started.number, TrialState.COMPLETE, 0.25)
    history.refresh()
    assert history.trials[0].intermediate == {1: 0.5, 2: 0.25}
    logged = store.changes_since(info.id, 0)
    assert [r.intermediate for r in logged.trials] == [{}] * len(logged.trials)
    assert [(r.step, r.value) for r in logged.reports] == [(1, 0.5), (2, 0.25)]
    other = History(store, info.id, maximize=False).refresh()
    assert other.trials[0].intermediate == {1: 0.5, 2: 0.25}
    assert store.get_trial(info.id, 0).intermediate == {1: 0.5, 2: 0.25}


def test_finish_and_start_creates_or_claims_a_queued_trial(store: Store) -> None:
    info = store.create_study("s", "minimize", None, {})
    first = store.create_trial(info.id, RUNNING, {"x": 0}, heartbeat=True)

    def fill(number: int, params: object) -> dict[str, int]:
        return {**params, "filled": number}  # type: ignore[dict-item]

    done, started, created = store.finish_and_start(
        info.id, first.number, TrialState.COMPLETE, 1.0, start=lambda n: {"x": 10 * n},
        fill=fill, heartbeat=True)
    assert (done.number, done.state, done.value) == (0, TrialState.COMPLETE, 1.0)
    assert (started.number, started.state, started.params, created) == (1, RUNNING,
                                                                        {"x": 10}, True)
    store.create_trial(info.id, TrialState.WAITING, {"x": -1})  # queued: #2
    done, claimed, created = store.finish_and_start(
        info.id, started.number, TrialState.PRUNED, 2.0, start={"x": 99}, fill=fill)
    assert (done.number, done.state) == (1, TrialState.PRUNED)
    assert (claimed.number, claimed.state, claimed.params, created) == (
        2, RUNNING, {"x": -1, "filled": 2}, False)
    _, third, created = store.finish_and_start(info.id, claimed.number, TrialState.COMPLETE,
                                               0.5, start={"x": 3}, fill=fill)
    assert (third.number, created) == (3, True)  # no gap where the queued trial was claimed
    with pytest.raises(hl.TrialStateError, match="not running"):
        store.finish_and_start(info.id, done.number, TrialState.COMPLETE, 0.0,
                               start={"x": 4}, fill=fill)
    records = read_all(store, info.id)
    assert [(r.number, r.state) for r in records] == [
        (0, TrialState.COMPLETE), (1, TrialState.PRUNED), (2, TrialState.COMPLETE),
        (3, RUNNING)]  # the refused finish started nothing
    assert records[3].params == {"x": 3}


def test_reports_only_to_running_trials(store: Store) -> None:
    info = store.create_study("s", "minimize", None, {})
    trial = store.create_trial(info.id, RUNNING, {"x": 1})
    store.report(info.id, trial.number, 0, 0.5)
    store.report(info.id, trial.number, 1, 0.25, params={"y": 2})
    store.finish_trial(info.id, trial.number, TrialState.COMPLETE, 0.25)
    for params in (None, {"y": 3}):
        with pytest.raises(hl.TrialStateError, match=r"cannot report to trial #0 .*complete"):
            store.report(info.id, trial.number, 2, 0.125, params=params)
    with pytest.raises(hl.StorageError, match="trial #7"):
        store.report(info.id, 7, 0, 1.0)
    [record] = read_all(store, info.id)
    assert record.intermediate == {0: 0.5, 1: 0.25} and record.params == {"x": 1, "y": 2}


def test_best_trial_ties_and_direction(store: Store) -> None:
    info = store.create_study("s", "minimize", None, {})
    for value in (3.0, 1.0, 1.0, 2.0):
        t = store.create_trial(info.id, RUNNING, {})
        store.finish_trial(info.id, t.number, TrialState.COMPLETE, value)
    t = store.create_trial(info.id, RUNNING, {})
    store.finish_trial(info.id, t.number, TrialState.PRUNED, 0.0)  # never "best"
    best = store.best_trial(info.id, maximize=False)
    assert best is not None and (best.number, best.value) == (1, 1.0)
    top = store.best_trial(info.id, maximize=True)
    assert top is not None and top.number == 0


def _best_by_scan(trials: list[TrialRecord], maximize: bool) -> TrialRecord | None:
    """The best trial by brute force: complete, feasible, with a value; the first in number
    order wins ties."""
    best = None
    for t in sorted(trials, key=lambda t: t.number):
        if t.state is not TrialState.COMPLETE or t.value is None or not t.feasible:
            continue
        if best is None or (t.value > best.value if maximize else t.value < best.value):
            best = t
    return best


def _random_outcome(rng: random.Random) -> tuple[TrialState, float | None, TrialExtras]:
    """A random finish: mostly complete, often tied, some infeasible, pruned, failed, NaN,
    infinite, with one or two objectives."""
    state = rng.choice([TrialState.COMPLETE] * 6 + [TrialState.PRUNED, TrialState.FAILED])
    value = None if state is TrialState.FAILED else rng.choice(
        [-1.0, 0.0, 0.5, 0.5, 1.0, 1.0, 2.0, math.inf, -math.inf, math.nan])
    several = None if value is None or rng.random() < 0.5 else (value, rng.random())
    constraints = {"c0": (rng.choice([-1.0, 0.0, 2.0]), None, 0.0)} if rng.random() < 0.3 \
        else {}
    return state, value, TrialExtras(several, constraints)


@pytest.mark.parametrize("seed", range(4))
def test_the_memory_store_keeps_the_best_trial_as_a_scan_finds_it(seed: int) -> None:
    rng = random.Random(seed)
    store = MemoryStore()
    info = store.create_study("s", "minimize", None, {})
    running: list[int] = []
    for _ in range(400):
        count = len(read_all(store, info.id))
        finished = [n for n in range(count) if n not in running]
        move = rng.random()
        if move < 0.35 or not (running or finished):
            running.append(store.create_trial(info.id, RUNNING, {}).number)
        elif move < 0.75 and running:
            number = running.pop(rng.randrange(len(running)))
            state, value, extras = _random_outcome(rng)
            store.finish_trial(info.id, number, state, value, extras=extras)
        elif move < 0.8 and running:  # its worker died: failed, and retried (WAITING)
            number = running.pop(rng.randrange(len(running)))
            store.fail_stale(info.id, reason="stale", retry_limit=1, numbers=[number])
        elif move < 0.9 and finished:  # a finished trial re-imported with another outcome
            old = store.get_trial(info.id, rng.choice(finished))
            state, value, extras = _random_outcome(rng)
            store.import_trial(info.id, TrialRecord(
                old.number, state, old.params, value, {}, {}, {}, None, old.created_at,
                old.started_at, old.finished_at, extras.values, {}, extras.constraints))
        elif finished:
            store.set_trial_user_attr(info.id, rng.choice(finished), "seen", True)
        trials = read_all(store, info.id)
        for maximize in (False, True):
            found, wanted = store.best_trial(info.id, maximize), _best_by_scan(trials, maximize)
            assert (found and found.number) == (wanted and wanted.number), (maximize, trials)


class _CountingScans(list):  # type: ignore[type-arg]
    """A study's trial list that counts the walks over it."""

    scans = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        type(self).scans += 1
        return super().__iter__()


def test_the_memory_store_finds_the_best_trial_without_walking_the_study() -> None:
    store = MemoryStore()
    info = store.create_study("s", "minimize", None, {})
    data = store._by_id[info.id]  # the store's own list, to count walks over it
    data.trials = _CountingScans(data.trials)
    for i in range(300):
        t = store.create_trial(info.id, RUNNING, {})
        store.finish_trial(info.id, t.number, TrialState.COMPLETE, float((i * 7) % 11))
        best = store.best_trial(info.id, maximize=False)
        assert best is not None and best.value == 0.0 and best.number == 0
    assert _CountingScans.scans == 0


def test_stale_trials_are_failed_and_retried_up_to_the_limit(store: Store) -> None:
    info = store.create_study("s", "minimize", None, {})
    store.create_trial(info.id, RUNNING, {"x": 1}, heartbeat=True)
    later = time.time() + 100
    assert store.fail_stale(info.id, stale_before=later, reason="stale: test",
                            retry_limit=2) == [0]
    retry = store.claim_waiting(info.id, heartbeat=True)
    assert retry is not None and retry.params == {"x": 1}
    assert retry.system_attrs == {"retry_of": 0, "retries": 1}
    assert store.fail_stale(info.id, stale_before=later, reason="stale", retry_limit=2) == [1]
    second = store.claim_waiting(info.id, heartbeat=True)
    assert second is not None and second.system_attrs == {"retry_of": 0, "retries": 2}
    assert store.fail_stale(info.id, stale_before=later, reason="stale", retry_limit=2) == [2]
    assert store.claim_waiting(info.id) is None  # the limit is reached
    records = read_all(store, info.id)
    assert [r.state for r in records] == [TrialState.FAILED] * 3
    assert all(r.system_attrs["stale"] for r in records)
    no_beat = store.create_trial(info.id, RUNNING, {})  # ask/tell without a worker
    assert store.fail_stale(info.id, stale_before=later, reason="stale", retry_limit=0) == []
    assert store.get_trial(info.id, no_beat.number).state is RUNNING


def test_listing_and_deleting(store: Store) -> None:
    a = store.create_study("a", "maximize", None, {})
    store.create_study("b", "minimize", None, {})
    for value in (1.0, 5.0):
        t = store.create_trial(a.id, RUNNING, {})
        store.finish_trial(a.id, t.number, TrialState.COMPLETE, value)
    store.create_trial(a.id, TrialState.WAITING, {})
    summaries = {s.name: s for s in store.list_studies()}
    assert summaries["a"].best_value == 5.0 and summaries["a"].n_trials == 3
    assert summaries["a"].counts[TrialState.WAITING] == 1
    assert summaries["b"].n_trials == 0 and summaries["b"].best_value is None
    store.delete_study("a")
    assert [s.name for s in store.list_studies()] == ["b"]
    with pytest.raises(hl.StudyNotFoundError):
        store.delete_study("a")


def test_copy_between_stores(sqlite_url: str) -> None:
    source = MemoryStore()
    study = hl.create_study("c", storage=source, space={"x": hl.Float(0, 1)}, seed=0)

    def objective(trial: hl.Trial) -> float:
        trial.report(0.5, 0)
        trial.set_user_attr("note", "hi")
        return trial.params["x"]

    study.optimize(objective, n_trials=5, show_progress=False)
    target = open_store(sqlite_url)
    copy_study(source, "c", target)
    copied = hl.load_study("c", storage=target)
    assert copied.trials == study.trials
    assert copied.space == study.space
    assert copied.ask().number == 5


def _create_many(url: str, n: int) -> None:
    store = open_store(url)
    info = store.get_study("race")
    for _ in range(n):
        t = store.create_trial(info.id, RUNNING, {})
        store.report(info.id, t.number, 0, 1.0)
        store.finish_trial(info.id, t.number, TrialState.COMPLETE, float(t.number))


def test_concurrent_writers_get_gap_free_numbers_and_no_lock_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    store = open_store(url)
    info = store.create_study("race", "minimize", None, {})
    context = mp.get_context("spawn")
    workers = [context.Process(target=_create_many, args=(url, 60)) for _ in range(4)]
    reader = History(store, info.id, maximize=False)
    for w in workers:
        w.start()
    while any(w.is_alive() for w in workers):
        reader.refresh()  # a reader catching up while four processes write
        time.sleep(0.005)
    for w in workers:
        w.join()
        assert w.exitcode == 0  # a "database is locked" error would have failed the worker
    reader.refresh()
    records = read_all(store, info.id)
    assert [r.number for r in records] == list(range(240))
    assert all(r.state is TrialState.COMPLETE and r.intermediate == {0: 1.0} for r in records)
    assert reader.trials == records  # incremental reads missed nothing
