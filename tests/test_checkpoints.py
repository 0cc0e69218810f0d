"""Trial checkpoints: durable files recorded in the store, retention, resuming after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hyperlaw as hl
from hyperlaw.checkpoints import CheckpointDirectory, CheckpointError, recorded


def _study(storage: str | None, tmp_path: Path, **kwargs: object) -> hl.Study:
    return hl.create_study(storage=storage, space={"lr": hl.Float(1e-3, 1.0, log=True)},
                           checkpoint_dir=str(tmp_path / "ckpt"), **kwargs)  # type: ignore[arg-type]


def test_save_and_load_round_trip_and_are_recorded(storage: str | None,
                                                   tmp_path: Path) -> None:
    study = _study(storage, tmp_path)
    trial = study.ask()
    assert trial.checkpoint is None and trial.load_checkpoint() is None
    weights = np.arange(6.0).reshape(2, 3)
    trial.report(0.5, 3, checkpoint={"w": weights, "epoch": 3})
    state = trial.load_checkpoint()
    assert state["epoch"] == 3 and np.array_equal(state["w"], weights)
    stored = recorded(study.trials[0])
    writer = "torch" if "torch" in sys.modules else "pickle"  # torch.save once torch is loaded
    assert [(c.step, c.value, c.kind) for c in stored] == [(3, 0.5, writer)]
    path = Path(study.checkpoints.url) / stored[0].path
    assert path.is_file() and not list(path.parent.glob("*.tmp-*"))


def test_retention_keeps_the_newest_and_the_best(storage: str | None, tmp_path: Path) -> None:
    study = _study(storage, tmp_path, keep_last_checkpoints=2, keep_best_checkpoints=1)
    trial = study.ask()
    values = [5.0, 0.1, 3.0, 2.0, 1.0]
    for step, value in enumerate(values):
        trial.report(value, step, checkpoint={"step": step})
    kept = recorded(study.trials[0])
    assert [c.step for c in kept] == [1, 3, 4]  # best (0.1 at step 1) and the two newest
    files = sorted(p.name for p in (Path(study.checkpoints.url) / "trial-0").iterdir())
    assert files == sorted(Path(c.path).name for c in kept)
    assert trial.load_checkpoint() == {"step": 4}


def test_saving_a_step_again_replaces_its_file(tmp_path: Path) -> None:
    study = _study(None, tmp_path)
    trial = study.ask()
    trial.save_checkpoint({"v": 1}, step=2)
    trial.save_checkpoint({"v": 2}, step=2)
    assert [c.step for c in recorded(study.trials[0])] == [2]
    assert len(list((Path(study.checkpoints.url) / "trial-0").iterdir())) == 1
    assert trial.load_checkpoint() == {"v": 2}


def test_files_and_directories_are_copied_in(tmp_path: Path) -> None:
    study = _study(None, tmp_path)
    trial = study.ask()
    source = tmp_path / "run"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "weights.bin").write_bytes(b"\x00\x01")
    trial.save_checkpoint(source, step=1)
    loaded = Path(trial.load_checkpoint())
    assert (loaded / "sub" / "weights.bin").read_bytes() == b"\x00\x01"
    single = tmp_path / "model.pt"
    single.write_bytes(b"abc")
    trial.save_checkpoint(str(single), step=2)
    assert Path(trial.load_checkpoint()).read_bytes() == b"abc"


def test_a_retried_trial_resumes_from_the_checkpoint_of_the_dead_one(sqlite_url: str,
                                                                      tmp_path: Path) -> None:
    study = _study(sqlite_url, tmp_path, retry_stale=1)
    dead = study.ask(heartbeat=True)
    for step in range(3):
        dead.report(1.0 / (step + 1), step, checkpoint={"step": step})
    assert study.fail_trials_of_dead_worker([dead.number], "killed") == [dead.number]
    retry = hl.load_study(study.name, sqlite_url).ask()
    assert retry.number != dead.number and retry.params == dead.params
    assert retry.checkpoint is not None and retry.checkpoint.step == 2
    assert retry.load_checkpoint() == {"step": 2}


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    study = _study(None, tmp_path)
    trial = study.ask()
    checkpoint = trial.save_checkpoint({"v": 1}, step=0)
    os.remove(Path(study.checkpoints.url) / checkpoint.path)
    with pytest.raises(CheckpointError, match="file is missing"):
        trial.load_checkpoint()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(hl.HyperlawError, match="keep_last_checkpoints"):
        _study(None, tmp_path, keep_last_checkpoints=0)
    study = _study(None, tmp_path)
    trial = study.ask()
    with pytest.raises(hl.InvalidValueError, match="non-negative int"):
        trial.save_checkpoint({}, step=-1)
    with pytest.raises(CheckpointError, match="state dict"):
        trial.save_checkpoint(lambda: None)
    study.tell(trial, 1.0)
    with pytest.raises(hl.TrialStateError, match="finished"):
        trial.save_checkpoint({})


def test_a_checkpoint_directory_can_be_any_fsspec_url(tmp_path: Path) -> None:
    directory = CheckpointDirectory("memory://hyperlaw-test-ckpt")
    kind = directory.write("trial-0/a", {"x": 1})
    from hyperlaw.checkpoints import Checkpoint

    checkpoint = Checkpoint(0, 0, "trial-0/a", kind)
    assert directory.read(checkpoint) == {"x": 1}
    directory.copy(checkpoint, "inherited/b")
    assert directory.read(Checkpoint(0, 0, "inherited/b", kind)) == {"x": 1}
    directory.delete([checkpoint])
    assert not directory.exists(checkpoint)


_DYING_WORKER = textwrap.dedent('''
    import os, sys
    if sys.argv[3] == "torch":
        import torch  # checkpoints are then written with torch.save
    import hyperlaw as hl

    study = hl.load_study(sys.argv[2], sys.argv[1])
    trial = study.ask(heartbeat=True)
    for step in range(3):
        trial.report(1.0 / (step + 1), step, checkpoint={"step": step, "w": [step] * 100})
    os._exit(0)  # the worker dies: the trial stays running, its checkpoints stay recorded
''')


def _dead_trial_with_checkpoints(tmp_path: Path, url: str, kind: str) -> hl.Study:
    """A study whose trial #0 saved checkpoints at steps 0-2 (steps 1 and 2 kept) in a worker
    process that then died; it is failed and queued for a retry."""
    study = _study(url, tmp_path, retry_stale=1)
    script = tmp_path / "worker.py"
    script.write_text(_DYING_WORKER)
    subprocess.run([sys.executable, str(script), url, study.name, kind], check=True,
                   timeout=300)
    assert [c.kind for c in recorded(study.trials[0])] == [kind, kind]
    assert study.fail_trials_of_dead_worker([0], "killed") == [0]
    return study


def _damage(path: Path, how: str) -> None:
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if how == "truncated" else b"\x8a" * 64 + blob[64:])


def _snapshot(study: hl.Study, files: list[Path]) -> tuple[object, ...]:
    return tuple(study.trials[:1]), tuple(f.read_bytes() for f in files)


@pytest.mark.parametrize("kind", ["pickle", "torch"])
@pytest.mark.parametrize("how", ["truncated", "garbled"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_older_one(
        sqlite_url: str, tmp_path: Path, kind: str, how: str,
        caplog: pytest.LogCaptureFixture) -> None:
    study = _dead_trial_with_checkpoints(tmp_path, sqlite_url, kind)
    older, newest = (Path(study.checkpoints.url) / c.path for c in recorded(study.trials[0]))
    _damage(newest, how)
    before = _snapshot(study, [older, newest])
    retry = hl.load_study(study.name, sqlite_url).ask()
    assert retry.system_attrs["retry_of"] == 0
    with caplog.at_level("WARNING", logger="hyperlaw"):
        state = retry.load_checkpoint()
    assert state["step"] == 1 and retry.checkpoint is not None and retry.checkpoint.step == 1
    assert (f"trial #1: the checkpoint of trial #0 at step 2 ({newest}) cannot be read back"
            in caplog.text)
    assert f"it resumes from the checkpoint of trial #0 at step 1 ({older}) instead" in (
        caplog.text)
    assert _snapshot(study, [older, newest]) == before  # nothing recorded or deleted


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_when_no_checkpoint_loads_the_error_names_trial_steps_and_files(
        sqlite_url: str, tmp_path: Path, kind: str) -> None:
    study = _dead_trial_with_checkpoints(tmp_path, sqlite_url, kind)
    files = [Path(study.checkpoints.url) / c.path for c in recorded(study.trials[0])]
    for how, path in zip(["truncated", "garbled"], files, strict=True):
        _damage(path, how)
    before = _snapshot(study, files)
    retry = hl.load_study(study.name, sqlite_url).ask()
    with pytest.raises(hl.CheckpointCorruptError) as raised:
        retry.load_checkpoint()
    message = str(raised.value)
    assert "trial #1 cannot resume" in message
    for step, path in zip([1, 2], files, strict=True):
        assert f"trial #0 at step {step} ({path}) cannot be read back" in message
    assert isinstance(raised.value, hl.CheckpointError)
    assert _snapshot(study, files) == before


def test_a_single_damaged_checkpoint_is_named(tmp_path: Path) -> None:
    study = _study(None, tmp_path)
    trial = study.ask()
    checkpoint = trial.save_checkpoint({"v": 1}, step=4)
    path = Path(study.checkpoints.url) / checkpoint.path
    _damage(path, "truncated")
    with pytest.raises(hl.CheckpointCorruptError, match=rf"trial #0 at step 4 \({path}"):
        trial.load_checkpoint()


def test_a_missing_file_checkpoint_falls_back_to_the_older_one(tmp_path: Path) -> None:
    study = _study(None, tmp_path)
    trial = study.ask()
    for step in (1, 2):
        source = tmp_path / f"model-{step}.pt"
        source.write_bytes(bytes([step]))
        trial.save_checkpoint(str(source), step=step)
    newest = recorded(study.trials[0])[-1]
    os.remove(Path(study.checkpoints.url) / newest.path)
    assert Path(trial.load_checkpoint()).read_bytes() == b"\x01"
    assert trial.checkpoint is not None and trial.checkpoint.step == 1
