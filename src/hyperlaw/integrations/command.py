"""An objective that runs a shell command per trial and reads its metric from JSON lines.

    objective = CommandObjective("python train.py --lr {lr} --width {width}", metric="val_loss")

The command is split like a shell would split it (no shell runs it), then each word is filled
in with the trial's parameters, so a value never splits a word in two. The command reports by
printing JSON objects, one per line, on its standard output:

    {"step": 3, "val_loss": 0.41}     an intermediate value (the scheduler may stop the trial)
    {"val_loss": 0.38}                the final value

Other lines are ignored. Without a final line, the last intermediate value is the result. A
command stopped by the scheduler is terminated (then killed after `grace` seconds); a command
that exits with a non-zero code fails the trial with the tail of its standard error.
"""

from __future__ import annotations

import collections
import json
import os
import shlex
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from hyperlaw.errors import CommandError, InvalidValueError
from hyperlaw.trial import Trial

__all__ = ["CommandError", "CommandObjective"]


@dataclass(frozen=True)
class CommandObjective:
    """Runs `command` for each trial (see the module's description); picklable, so it runs
    in worker processes too.

    Args:
        command: the command line, with `{name}` where a parameter's value goes.
        metric: the key of the JSON lines that holds the objective's value.
        cwd: the directory the command runs in (default: the current one).
        env: variables added to the command's environment. The command also gets
            HYPERLAW_STUDY, HYPERLAW_TRIAL (the trial number) and HYPERLAW_PARAMS (JSON).
        grace: seconds between terminating a stopped command and killing it.
    """

    command: str
    metric: str
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    grace: float = 10.0

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise CommandError("the command is empty; give the training command, e.g. "
                               "'python train.py --lr {lr}'")
        if not isinstance(self.metric, str) or not self.metric:
            raise CommandError(f"metric must be the name of a key the command prints, got "
                               f"{self.metric!r}")

    def argv(self, params: Mapping[str, Any]) -> list[str]:
        """The command's words with the parameters filled in."""
        try:
            words = shlex.split(self.command)
        except ValueError as exc:
            raise CommandError(f"the command {self.command!r} cannot be split into words "
                               f"({exc}); check its quotes") from None
        try:
            return [word.format_map(params) for word in words]
        except KeyError as exc:
            raise CommandError(
                f"the command {self.command!r} uses {{{exc.args[0]}}}, which is not a "
                f"parameter of the trial (it has {sorted(params)}); declare it in the space "
                "or remove it from the command") from None
        except (ValueError, IndexError) as exc:
            raise CommandError(f"the command {self.command!r} is not a valid template "
                               f"({exc}); write parameters as {{name}} and braces as {{{{ }}}}"
                               ) from None

    def __call__(self, trial: Trial) -> float:
        argv = self.argv(trial.params)
        env = {**os.environ, **self.env, "HYPERLAW_STUDY": trial.study.name,
               "HYPERLAW_TRIAL": str(trial.number),
               "HYPERLAW_PARAMS": json.dumps(trial.params, default=str)}
        try:
            process = subprocess.Popen(argv, cwd=self.cwd, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, bufsize=1)
        except OSError as exc:
            raise CommandError(f"trial #{trial.number}: cannot start {argv[0]!r} ({exc}); "
                               "check the command and the directory it runs in") from None
        stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        reader = threading.Thread(target=_drain, args=(process.stderr, stderr_tail),
                                  daemon=True)
        reader.start()
        try:
            final = self._follow(trial, process)
        except BaseException:
            _stop(process, self.grace)
            raise
        finally:
            code = process.wait()
            reader.join(timeout=5)
        if code != 0:
            tail = "".join(stderr_tail).strip() or "(no standard error)"
            raise CommandError(f"trial #{trial.number}: {shlex.join(argv)} exited with code "
                               f"{code}; the end of its standard error:\n{tail}")
        if final is None:
            raise CommandError(
                f"trial #{trial.number}: {shlex.join(argv)} printed no JSON line with "
                f"{self.metric!r}; print e.g. {json.dumps({self.metric: 0.38})} when it ends")
        return final

    def _follow(self, trial: Trial, process: subprocess.Popen[str]) -> float | None:
        """Report the intermediate values as they come; return the final one."""
        assert process.stdout is not None
        final: float | None = None
        last: float | None = None
        for line in process.stdout:
            record = _json_object(line)
            if record is None or self.metric not in record:
                continue
            value = _number(record[self.metric], self.metric, trial.number)
            if "step" in record:
                last = value
                trial.report(value, record["step"])  # raises TrialPruned to stop it
            else:
                final = value
        return final if final is not None else last


def _json_object(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _number(value: Any, metric: str, number: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValueError(f"trial #{number}: the command printed {metric}={value!r}; "
                                "print the metric as a JSON number")
    return float(value)


def _drain(stream: IO[str] | None, tail: collections.deque[str]) -> None:
    if stream is None:
        return
    for line in stream:
        tail.append(line)


def _stop(process: subprocess.Popen[str], grace: float) -> None:
    """Terminate a command the scheduler stopped (or that was interrupted); kill it if it
    does not exit within `grace` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
