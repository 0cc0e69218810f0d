"""Bad input from an objective or a space is a named error that says which trial, study or
parameter, and the fix; never a bare OverflowError or TypeError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.errors import InvalidValueError, SpaceError


def test_a_huge_int_value_is_named(storage: str | None) -> None:
    study = hl.create_study("huge", storage=storage)
    trial = study.ask()
    with pytest.raises(InvalidValueError, match=r"trial #0 of study 'huge'.*too large"):
        trial.report(10**400, step=0)
    with pytest.raises(InvalidValueError, match=r"trial #0 of study 'huge'.*too large"):
        study.tell(trial, 10**400)


def test_a_step_beyond_64_bits_is_named(storage: str | None) -> None:
    study = hl.create_study("steps", storage=storage)
    trial = study.ask()
    with pytest.raises(InvalidValueError, match=r"trial #0 of study 'steps'.*2\*\*63 - 1"):
        trial.report(1.0, step=10**30)
    with pytest.raises(InvalidValueError, match=r"checkpoint step.*2\*\*63 - 1"):
        trial.save_checkpoint({"w": 1}, step=2**63)
    trial.report(0.5, step=np.int64(7))  # numpy integers are steps too
    trial.report(1.0, step=2**63 - 1)  # the largest step a store holds
    study.tell(trial, 1.0)
    assert study.trials[0].intermediate == {7: 0.5, 2**63 - 1: 1.0}


@pytest.mark.parametrize("steps", [(0, 1, 1), (0, 5, 3)])
def test_steps_must_increase(storage: str | None, steps: tuple[int, ...]) -> None:
    study = hl.create_study("order", storage=storage)
    trial = study.ask()
    for step in steps[:-1]:
        trial.report(float(step), step)
    with pytest.raises(InvalidValueError,
                       match=rf"trial #0 of study 'order'.*step {steps[-1]} after step "
                             rf"{steps[-2]}.*must increase"):
        trial.report(0.0, steps[-1])
    study.tell(trial, 1.0)
    assert study.trials[0].intermediate == {s: float(s) for s in steps[:-1]}


def test_a_retried_trial_reports_from_its_resume_step(tmp_path: Path) -> None:
    """Each trial handle checks its own order: the retry of a trial that died at step 5, with
    its newest checkpoint at step 3, reports steps 4 and 5 again."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    study = hl.create_study("resume", storage=url, checkpoint_dir=str(tmp_path / "ckpt"),
                            retry_stale=1)
    dead = study.ask(heartbeat=True)
    for step in range(6):
        dead.report(float(step), step, checkpoint={"step": step} if step == 3 else None)
    assert study.fail_trials_of_dead_worker([dead.number], "killed") == [dead.number]
    retry = hl.load_study("resume", url).ask()
    assert retry.number != dead.number and retry.checkpoint.step == 3
    for step in range(retry.checkpoint.step + 1, 7):
        retry.report(float(step), step)
    with pytest.raises(InvalidValueError, match="step 6 after step 6"):
        retry.report(6.0, 6)
    retry.study.tell(retry, 6.0)
    assert sorted(hl.load_study("resume", url).trials[retry.number].intermediate) == [4, 5, 6]


def test_an_integer_study_name_is_named(storage: str | None) -> None:
    with pytest.raises(InvalidValueError, match=r"study name.*int 5.*name='5'"):
        hl.create_study(5, storage=storage)  # type: ignore[arg-type]
    if storage is not None:
        hl.create_study("five", storage=storage)
        with pytest.raises(InvalidValueError, match=r"study name.*int 5"):
            hl.load_study(5, storage)  # type: ignore[arg-type]


def test_huge_bounds_are_named() -> None:
    study = hl.create_study()
    trial = study.ask()
    with pytest.raises(SpaceError, match=r"parameter 'x'.*too large for a float"):
        trial.suggest_float("x", 0.0, 10**400)
    with pytest.raises(SpaceError, match=r"parameter 'n'.*2\*\*53"):
        hl.Space({"n": hl.Int(0, 10**400)})


def test_a_bad_bound_in_a_space_names_its_parameter() -> None:
    with pytest.raises(SpaceError, match=r"^parameter 'lr': Float\(low=1.0, high=0.1\): low "
                                         r"must be below high"):
        hl.Space({
            "width": hl.Int(16, 512, log=True),
            "lr": hl.Float(1.0, 0.1),
            "layers": hl.Int(1, 4),
        })
    with pytest.raises(SpaceError, match=r"^parameter 'momentum': Float"):
        hl.Space(lr=hl.Float(0.1, 1.0),
                 momentum=hl.Float(0.9,
                                   0.1))
    with pytest.raises(SpaceError, match=r"^parameter 'opt': Choice"):
        hl.Space({"opt":
                  hl.Choice([])})
    # outside a space there is no name to give
    with pytest.raises(SpaceError, match=r"^Float\(low=1.0, high=0.1\)"):
        hl.Float(1.0, 0.1)
