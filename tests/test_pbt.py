"""Population-based training: exploit/explore, time sharing, replay, PB2, a killed worker."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.checkpoints import recorded
from hyperlaw.history import History
from hyperlaw.lineage import CHECKPOINTS, RETRIES, RETRY_OF, STALE, Checkpoint, PbtLink, pbt_link
from hyperlaw.lineage import PBT as PBT_ATTR
from hyperlaw.schedulers import PBT, params_at
from hyperlaw.schedulers.base import Decision
from hyperlaw.schedulers.pbt import Population
from hyperlaw.trial import TrialState

STEPS = 16
SPACE = {"lr": hl.Float(1e-3, 0.9, log=True), "momentum": hl.Float(0.0, 0.9),
         "kind": hl.Choice(["a", "b", "c", "d"])}


def descend(lr: float, momentum: float, w: float, v: float) -> tuple[float, float]:
    """One heavy-ball step on the loss w² (gradient 2w)."""
    v = momentum * v - lr * 2.0 * w
    return w + v, v


def objective(trial: hl.Trial) -> float:
    """A deterministic 'training' that resumes from its checkpoint."""
    if trial.checkpoint is not None:
        state = trial.load_checkpoint()  # raises if a recorded checkpoint were missing
        assert state["step"] == trial.checkpoint.step
    else:
        state = {"w": 5.0, "v": 0.0, "step": -1}
    w, v, loss = state["w"], state["v"], state["w"] ** 2
    for step in range(state["step"] + 1, STEPS):
        w, v = descend(trial.params["lr"], trial.params["momentum"], w, v)
        loss = w * w
        trial.report(loss, step, checkpoint={"w": w, "v": v, "step": step})
    return loss


def replay(schedule: list) -> float:
    """Train from scratch following a PBT schedule."""
    w, v = 5.0, 0.0
    for step in range(STEPS):
        params = params_at(schedule, step)
        w, v = descend(params["lr"], params["momentum"], w, v)
    return w * w


def _study(storage: str | None, tmp_path: Path, scheduler: PBT, **kwargs: object) -> hl.Study:
    return hl.create_study(storage=storage, space=SPACE, scheduler=scheduler, seed=3,
                           checkpoint_dir=str(tmp_path / "ckpt"), **kwargs)  # type: ignore[arg-type]


def _members(study: hl.Study) -> dict[int, list[hl.TrialRecord]]:
    members: dict[int, list[hl.TrialRecord]] = {}
    roots = 0
    for t in study.trials:
        lineage = t.system_attrs.get("pbt")
        if lineage is None and "retry_of" not in t.system_attrs:
            members[roots] = [t]
            roots += 1
        elif lineage is not None:
            members[lineage["member"]].append(t)
    return members


def test_population_takes_turns_exploits_and_replays_exactly(storage: str | None,
                                                              tmp_path: Path) -> None:
    study = _study(storage, tmp_path, PBT(population_size=4, interval=4, seed=1))
    study.optimize(objective, show_progress=False)  # one worker, four members: time sharing
    trials = study.trials
    members = _members(study)
    assert len(members) == 4
    assert not [t for t in trials if t.state is TrialState.FAILED]
    for chain in members.values():  # every member reaches the last step exactly once
        assert chain[-1].state is TrialState.COMPLETE and chain[-1].last_step == STEPS - 1
        assert all(t.state is TrialState.PRUNED for t in chain[:-1])
    kinds = [t.system_attrs["pbt"]["kind"] for t in trials if "pbt" in t.system_attrs]
    assert "exploit" in kinds and "pause" in kinds
    for t in trials:
        lineage = t.system_attrs.get("pbt")
        if lineage is None:
            continue
        start = t.system_attrs["resume"]
        assert start["step"] == lineage["step"] and min(t.intermediate) == start["step"] + 1
        parent = trials[lineage["parent"]]
        if lineage["kind"] == "pause":
            assert t.params == parent.params
        else:  # the donor was in the top quartile: better than the trial it replaced
            replaced = trials[lineage["from"]]
            at = max(s for s in replaced.intermediate)
            assert lineage["score"] < replaced.intermediate[at]
            assert t.params != parent.params
            assert 0.8 * parent.params["lr"] - 1e-12 <= t.params["lr"] or \
                t.params["lr"] != parent.params["lr"]
    best = study.best_trial
    schedule = study.pbt_schedule(best)
    assert schedule[0].start == 0 and schedule[-1].trial == best.number
    assert replay(schedule) == pytest.approx(best.value, rel=1e-12, abs=1e-300)
    # PBT beats the median fixed configuration of its own initial population
    roots = [chain[0].params for chain in members.values()]
    fixed = sorted(replay([hl.schedulers.Segment(0, 0, p)]) for p in roots)
    assert best.value <= fixed[len(fixed) // 2]


def test_explore_perturbs_within_bounds_and_moves_choices_to_neighbours() -> None:
    space = hl.Space(SPACE)
    scheduler = PBT(population_size=4, resample_probability=0.0, seed=0)
    donor = hl.TrialRecord(0, TrialState.RUNNING, {"lr": 0.5, "momentum": 0.85, "kind": "b"})
    from hyperlaw.history import History
    from hyperlaw.store.memory import MemoryStore

    history = History(MemoryStore(), 0, False)
    seen_lr, seen_kind = set(), set()
    for number in range(40):
        child = scheduler.explore(space, donor, history, number)
        assert space.validate_params(child) == child
        seen_lr.add(round(child["lr"], 10))
        seen_kind.add(child["kind"])
        assert child["momentum"] in (pytest.approx(0.68), 0.9)  # 0.85·0.8, 0.85·1.2 clipped
    assert seen_lr == {0.4, 0.6}
    assert seen_kind == {"a", "c"}
    always = PBT(population_size=4, resample_probability=1.0, seed=0)
    draws = {always.explore(space, donor, history, n)["lr"] for n in range(10)}
    assert len(draws) == 10  # fresh draws from the prior


def test_pbt_arguments_are_checked() -> None:
    with pytest.raises(hl.HyperlawError, match="population_size"):
        PBT(population_size=1)
    with pytest.raises(hl.HyperlawError, match="quantile_fraction"):
        PBT(quantile_fraction=0.7)
    with pytest.raises(hl.HyperlawError, match="explore"):
        PBT(explore="bayes")
    spec = PBT(population_size=6, interval=3, explore="pb2").spec()
    assert hl.schedulers.make_scheduler(None, spec).options() == PBT(6, 3, explore="pb2").options()


def test_pb2_explores_continuous_parameters_with_the_bandit(tmp_path: Path) -> None:
    study = _study(None, tmp_path, PBT(population_size=4, interval=4, explore="pb2", seed=2))
    study.optimize(objective, show_progress=False)
    trials = study.trials
    children = [t for t in trials if t.system_attrs.get("pbt", {}).get("kind") == "exploit"]
    assert children and not [t for t in trials if t.state is TrialState.FAILED]
    space = hl.Space(SPACE)
    for child in children:
        assert space.validate_params(child.params) == child.params
    best = study.best_trial
    assert replay(study.pbt_schedule(best)) == pytest.approx(best.value, rel=1e-12,
                                                             abs=1e-300)


def killing_objective(trial: hl.Trial) -> float:
    """The objective above; the first trial to reach step 9 kills its own worker."""
    flag = Path(os.environ["HYPERLAW_TEST_KILL_FLAG"])
    if trial.checkpoint is not None:
        state = trial.load_checkpoint()
        assert state["step"] == trial.checkpoint.step, (trial.checkpoint, state)
        trial.set_user_attr("resumed_from", state["step"])
    else:
        state = {"w": 5.0, "v": 0.0, "step": -1}
    w, v, loss = state["w"], state["v"], state["w"] ** 2
    for step in range(state["step"] + 1, STEPS):
        w, v = descend(trial.params["lr"], trial.params["momentum"], w, v)
        loss = w * w
        trial.report(loss, step, checkpoint={"w": w, "v": v, "step": step})
        if step == 9 and not flag.exists():
            flag.write_text(str(trial.number))
            os.kill(os.getpid(), signal.SIGKILL)
    return loss


def test_a_killed_worker_resumes_its_member_from_the_last_checkpoint(
        sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag = tmp_path / "killed"
    monkeypatch.setenv("HYPERLAW_TEST_KILL_FLAG", str(flag))
    study = _study(sqlite_url, tmp_path, PBT(population_size=4, interval=4, seed=5),
                   retry_stale=1)
    study.optimize(killing_objective, n_workers=4, show_progress=False)
    trials = study.trials
    killed = trials[int(flag.read_text())]
    assert killed.state is TrialState.FAILED and killed.system_attrs.get("stale")
    assert recorded(killed)[-1].step == 9
    retry = next(t for t in trials if t.system_attrs.get("retry_of") == killed.number)
    assert retry.user_attrs["resumed_from"] == 9 and min(retry.intermediate) == 10
    assert retry.params == killed.params
    failed = [t for t in trials if t.state is TrialState.FAILED]
    assert [t.number for t in failed] == [killed.number], [(t.number, t.error) for t in failed]
    members = _members(study)
    assert len(members) == 4
    finals = [t for t in trials if t.state is TrialState.COMPLETE]
    assert len(finals) == 4
    for t in finals:  # a copy of a member that had just finished has nothing left to train
        assert (t.last_step if t.intermediate else t.system_attrs["resume"]["step"]) == STEPS - 1
    # every child started from a checkpoint file that existed when it was copied
    ckpt_root = Path(study.checkpoints.url)
    for t in trials:
        if "pbt" in t.system_attrs and "retry_of" not in t.system_attrs:
            assert t.system_attrs["resume"]["path"]
            assert not t.intermediate or min(t.intermediate) == t.system_attrs["resume"]["step"] + 1
    assert ckpt_root.is_dir()
    assert np.isfinite(study.best_value)


def test_synchronous_pbt_ranks_members_at_the_same_step(sqlite_url: str,
                                                        tmp_path: Path) -> None:
    study = _study(sqlite_url, tmp_path,
                   PBT(population_size=3, interval=4, synchronous=True, seed=4,
                       quantile_fraction=0.34))
    study.optimize(objective, n_workers=3, show_progress=False)
    trials = study.trials
    exploits = [t for t in trials if t.system_attrs.get("pbt", {}).get("kind") == "exploit"]
    assert exploits and not [t for t in trials if t.system_attrs.get("pbt", {}).get("kind")
                             == "pause"]
    for child in exploits:
        lineage = child.system_attrs["pbt"]
        replaced = trials[lineage["from"]]
        boundary = max(replaced.intermediate)
        assert boundary % 4 == 0
        donor = trials[lineage["parent"]]
        assert boundary in donor.intermediate or lineage["step"] >= boundary - 4


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:12])


def _inheriting_child(tmp_path: Path) -> tuple[hl.Study, hl.Trial, Path, list[Path]]:
    """A donor with checkpoints at steps 1 and 2, and a PBT child started (as a hand-off
    starts it) from a copy of the newest; the child's inherited file and the donor's files."""
    study = hl.create_study(space=SPACE, seed=0, checkpoint_dir=str(tmp_path / "ckpt"))
    donor = study.ask()
    for step in (1, 2):
        donor.save_checkpoint({"step": step}, step=step)
    study.tell(donor, 1.0)
    start = study.checkpoints.inherit(donor.number, lambda: study.trials)
    link = PbtLink(0, donor.number, start.step, 1.0, "exploit", donor.number)
    study.store.create_trial(study.id, TrialState.WAITING, dict(donor.params),
                             system_attrs={"resume": start.to_json(), "pbt": link.to_json()})
    root = Path(study.checkpoints.url)
    return study, study.ask(), root / start.path, [root / c.path
                                                   for c in recorded(study.trials[0])]


@pytest.mark.parametrize("damaged", ["inherited", "inherited and the donor's newest", "all"])
def test_a_pbt_child_with_a_damaged_inherited_checkpoint_falls_back(
        tmp_path: Path, damaged: str, caplog: pytest.LogCaptureFixture) -> None:
    study, child, inherited, (older, newest) = _inheriting_child(tmp_path)
    bad = {"inherited": [inherited], "all": [inherited, newest, older]}.get(
        damaged, [inherited, newest])
    for path in bad:
        _truncate(path)
    with caplog.at_level("WARNING", logger="hyperlaw"):
        state = child.load_checkpoint()
    warning = caplog.text
    assert f"trial #{child.number}: " in warning
    for path in bad:  # each damaged file is named
        assert f"({path}) cannot be read back" in warning
    if damaged == "all":
        assert state is None and child.checkpoint is None
        assert "so it trains from scratch" in warning
    else:
        step = 2 if damaged == "inherited" else 1
        assert state == {"step": step} and child.checkpoint is not None
        assert child.checkpoint.step == step and child.checkpoint.trial == 0
        copy = Path(study.checkpoints.directory.where(child.checkpoint))
        assert copy.parent == inherited.parent and copy != inherited  # a copy of its own
        donor_file = newest if step == 2 else older
        assert (f"it resumes from a copy ({copy}) of the checkpoint of trial #0 at step "
                f"{step} ({donor_file}) instead") in warning
    assert child.load_checkpoint() == state  # settled: loading again gives the same
    study.tell(child, 0.5)  # the trial is not failed
    assert study.trials[child.number].state is TrialState.COMPLETE


def test_pbt_goes_on_when_inherited_checkpoints_are_damaged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    damaged: dict[int, Path] = {}

    def damaging(trial: hl.Trial) -> float:
        lineage = trial.system_attrs.get("pbt")
        if lineage is not None and lineage["kind"] == "exploit":  # a copy of the donor's
            assert trial.checkpoint is not None
            damaged[trial.number] = Path(trial.study.checkpoints.directory.where(
                trial.checkpoint))
            _truncate(damaged[trial.number])
        return objective(trial)

    study = _study(None, tmp_path, PBT(population_size=4, interval=4, seed=1))
    with caplog.at_level("WARNING", logger="hyperlaw"):
        study.optimize(damaging, show_progress=False)
    assert damaged and not [t for t in study.trials if t.state is TrialState.FAILED]
    for number, path in damaged.items():
        assert f"trial #{number}: the checkpoint of trial" in caplog.text
        assert f"({path}) cannot be read back" in caplog.text


def _retry_after_a_kill(sqlite_url: str) -> tuple[PBT, History, hl.TrialRecord]:
    """Two members: #0 killed at step 9 (checkpoint there) and retried by #3, which has just
    reported step 10; #1 paused at step 4, its continuation #2 waiting behind boundary 8."""
    study = hl.create_study(storage=sqlite_url, space=SPACE, seed=0)
    store, sid = study.store, study.id
    params = {"lr": 0.1, "momentum": 0.5, "kind": "a"}
    for _ in range(2):
        store.create_trial(sid, TrialState.RUNNING, params)
    for step in range(10):
        store.report(sid, 0, step, 10.0 - step)
    for step in range(5):
        store.report(sid, 1, step, 20.0 - step)
    for number, step in ((0, 9), (1, 4)):
        ckpt = Checkpoint(number, step, f"{number}/{step}", "pickle")
        store.set_trial_system_attr(sid, number, CHECKPOINTS, [ckpt.to_json()])
    pause = PbtLink(member=1, parent=1, step=4, score=16.0, kind="pause", source=1)
    store.create_trial(sid, TrialState.WAITING, params,
                       system_attrs={PBT_ATTR: pause.to_json()})
    store.finish_trial(sid, 1, TrialState.PRUNED, None)
    store.finish_trial(sid, 0, TrialState.FAILED, None, system_attrs={STALE: True})
    store.create_trial(sid, TrialState.RUNNING, params, system_attrs={RETRY_OF: 0, RETRIES: 1})
    store.report(sid, 3, 10, 0.5)
    history = History(store, sid, False).refresh()
    return PBT(population_size=2, interval=4, seed=0), history, history.trials[3]


def test_a_retry_is_not_ranked_again_at_a_boundary_its_killed_trial_passed(
        sqlite_url: str) -> None:
    # the killed trial reached step 9, past boundary 8: the retry's first report (step 10)
    # crosses no boundary. It was once ranked at 8 with no score of its own there, and the
    # pause it then handed off carried a NaN score that the store refused.
    scheduler, history, retry = _retry_after_a_kill(sqlite_url)
    assert scheduler.decide(retry, 10, history) is Decision.CONTINUE


def test_a_member_being_retried_keeps_its_score_from_the_trial_that_died(
        sqlite_url: str) -> None:
    _, history, _ = _retry_after_a_kill(sqlite_url)
    scores = Population.of(history).scores(8)
    assert scores == {0: 2.0, 1: 16.0}  # #0's value at step 8; #1's recorded at its pause


def test_a_pbt_link_without_a_score_is_stored_and_read_back(sqlite_url: str) -> None:
    study = hl.create_study(storage=sqlite_url, space=SPACE, seed=0)
    link = PbtLink(member=0, parent=0, step=4, score=math.nan, kind="pause", source=0)
    study.store.create_trial(study.id, TrialState.WAITING, {"lr": 0.1, "momentum": 0.5,
                                                             "kind": "a"},
                             system_attrs={PBT_ATTR: link.to_json()})
    stored = pbt_link(study.store.get_trial(study.id, 0).system_attrs)
    assert stored is not None and math.isnan(stored.score)
    assert stored.member == 0 and stored.step == 4 and stored.kind == "pause"
