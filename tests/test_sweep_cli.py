"""Runs from a sweep file and from the shell: `hyperlaw optimize --config`, `hyperlaw ask`,
`hyperlaw tell`, with real training commands run as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hyperlaw as hl
from hyperlaw.integrations.command import CommandError, CommandObjective

# A training script: a loss curve from --lr and --width, one JSON line per epoch, then the
# final value; it leaves a file when it reaches the end, so a test sees which runs were cut.
TRAIN = textwrap.dedent("""
    import argparse, json, math, pathlib, sys, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float)
    parser.add_argument("--width", type=int)
    parser.add_argument("--fail", default="no")
    args = parser.parse_args()
    if args.fail == "yes":
        print("diverged: loss is nan", file=sys.stderr)
        sys.exit(3)
    floor = (math.log10(args.lr) + 2) ** 2 + 8 / args.width
    print("starting", flush=True)  # not JSON: ignored
    for epoch in range(6):
        print(json.dumps({"step": epoch, "val_loss": floor + 1 / (epoch + 1)}), flush=True)
        time.sleep(0.05)
    pathlib.Path(f"finished-{args.lr}-{args.width}").touch()
    print(json.dumps({"val_loss": floor}))
""")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "train.py").write_text(TRAIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYPERLAW_STORAGE", raising=False)
    return tmp_path


def write_config(project: Path, **extra: object) -> Path:
    config = {
        "study": "sweep", "storage": f"sqlite:///{project / 'sweep.db'}",
        "command": f"{sys.executable} train.py --lr {{lr}} --width {{width}}",
        "metric": "val_loss", "direction": "minimize", "sampler": "random", "seed": 0,
        "space": {"lr": {"type": "float", "low": "1e-4", "high": 1.0, "log": True},
                  "width": {"type": "int", "low": 4, "high": 64, "log": True}},
        **extra,
    }
    path = project / "sweep.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML; "1e-4" shows the numbers are read
    return path


def hyperlaw(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hyperlaw", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_a_sweep_file_runs_its_command_and_reads_the_json_lines(project: Path):
    config = write_config(project, n_trials=4)
    done = hyperlaw("optimize", "--config", str(config), "--no-progress", cwd=project)
    assert done.returncode == 0, done.stderr
    study = hl.load_study("sweep", f"sqlite:///{project / 'sweep.db'}")
    complete = [t for t in study.trials if t.state is hl.TrialState.COMPLETE]
    assert len(complete) == 4
    for t in complete:
        floor = (__import__("math").log10(t.params["lr"]) + 2) ** 2 + 8 / t.params["width"]
        assert t.value == pytest.approx(floor)
        assert sorted(t.intermediate) == list(range(6))
        assert t.intermediate[0] == pytest.approx(floor + 1)
    assert "best value" in done.stdout


def test_the_scheduler_stops_a_command_and_its_process(project: Path):
    # every trial reports values above 0.5 at step 1: the threshold stops each one there
    config = write_config(project, n_trials=2, scheduler={"name": "threshold", "upper": 0.5,
                                                          "n_warmup_steps": 1})
    done = hyperlaw("optimize", "--config", str(config), "--no-progress", cwd=project)
    assert done.returncode == 0, done.stderr
    study = hl.load_study("sweep", f"sqlite:///{project / 'sweep.db'}")
    assert [t.state for t in study.trials] == [hl.TrialState.PRUNED] * 2
    assert all(t.last_step == 1 for t in study.trials)
    assert not list(project.glob("finished-*"))  # the commands were stopped, not left running


def test_a_failing_command_fails_its_trial_with_its_stderr(project: Path):
    url = f"sqlite:///{project / 'fail.db'}"
    study = hl.create_study("fail", storage=url,
                            space={"lr": hl.Float(1e-3, 1e-1, log=True), "width": hl.Int(4, 8)})
    objective = CommandObjective(f"{sys.executable} train.py --lr {{lr}} --width {{width}} "
                                 "--fail yes", metric="val_loss")
    study.optimize(objective, n_trials=1, show_progress=False)
    [trial] = study.trials
    assert trial.state is hl.TrialState.FAILED
    assert "exited with code 3" in trial.error and "diverged: loss is nan" in trial.error


def test_command_templates_name_what_is_wrong():
    objective = CommandObjective("python train.py --lr {lr} --depth {depth}", "val_loss")
    with pytest.raises(CommandError, match=r"uses \{depth\}, which is not a parameter"):
        objective.argv({"lr": 0.1})
    spaced = CommandObjective("python 'my train.py' --act {act}", "val_loss")
    assert spaced.argv({"act": "gelu tanh"}) == ["python", "my train.py", "--act", "gelu tanh"]
    with pytest.raises(CommandError, match="empty"):
        CommandObjective("  ", "val_loss")


def test_sweep_files_with_mistakes_are_refused_by_name(project: Path):
    bad = project / "bad.yaml"
    bad.write_text("study: s\ncommand: python train.py\nspce: {}\n")
    done = hyperlaw("optimize", "--config", str(bad), "--storage",
                    f"sqlite:///{project / 'x.db'}", cwd=project)
    assert done.returncode == 1 and "unknown keys ['spce']" in done.stderr
    bad.write_text("study: s\ncommand: python train.py\n")
    done = hyperlaw("optimize", "--config", str(bad), "--storage",
                    f"sqlite:///{project / 'x.db'}", cwd=project)
    assert done.returncode == 1 and "needs a 'metric'" in done.stderr
    bad.write_text("study: [s\n")
    done = hyperlaw("optimize", "--config", str(bad), cwd=project)
    assert done.returncode == 1 and "not valid YAML" in done.stderr


def test_ask_and_tell_in_a_shell_loop(project: Path):
    config = write_config(project)
    env = {**os.environ, "PY": sys.executable}
    script = textwrap.dedent(f"""
        set -e
        for i in 1 2 3; do
            eval "$("$PY" -m hyperlaw ask --config {config} --format env)"
            loss=$("$PY" train.py --lr "$lr" --width "$width" | tail -n 1 |
                   "$PY" -c "import json, sys; print(json.load(sys.stdin)['val_loss'])")
            "$PY" -m hyperlaw tell --config {config} "$HYPERLAW_TRIAL" "$loss" > /dev/null
        done
        "$PY" -m hyperlaw ask --config {config}
    """)
    done = subprocess.run(["bash", "-c", script], cwd=project, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    asked = json.loads(done.stdout)
    assert asked["number"] == 3 and set(asked["params"]) == {"lr", "width"}
    study = hl.load_study("sweep", f"sqlite:///{project / 'sweep.db'}")
    states = [t.state for t in study.trials]
    assert states == [hl.TrialState.COMPLETE] * 3 + [hl.TrialState.RUNNING]
    assert all(t.value is not None and t.value > 0 for t in study.trials[:3])
    pruned = hyperlaw("tell", "--config", str(config), "3", "--state", "pruned", cwd=project)
    assert pruned.returncode == 0, pruned.stderr
    assert json.loads(pruned.stdout)["state"] == "pruned"
    again = hyperlaw("tell", "--config", str(config), "3", "0.5", cwd=project)
    assert again.returncode == 1 and "trial #3" in again.stderr


def test_tell_takes_several_objectives_as_json(project: Path):
    url = f"sqlite:///{project / 'mo.db'}"
    study = hl.create_study("mo", storage=url, space={"x": hl.Float(0.0, 1.0)},
                            objectives={"loss": "minimize", "ms": "minimize"})
    number = study.ask().number
    study.store.close()
    told = hyperlaw("tell", "--storage", url, "--study", "mo", str(number), "[0.25, 12]",
                    cwd=project)
    assert told.returncode == 0, told.stderr
    assert json.loads(told.stdout)["value"] == [0.25, 12.0]
    assert hl.load_study("mo", url).trials[number].values == (0.25, 12.0)
    bad = hyperlaw("tell", "--storage", url, "--study", "mo", str(number), "fast", cwd=project)
    assert bad.returncode == 1 and "is not a number" in bad.stderr
