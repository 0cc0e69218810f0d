"""Trial checkpoints: files under the study's checkpoint directory, recorded in the store.

A checkpoint is written under a temporary name, made durable and renamed into place before
the store records it; old checkpoints are deleted only after the store stops listing them.
A reader that follows the store therefore never opens a half-written file, and a crash at
any instant leaves at worst an orphaned file, never a recorded checkpoint that is missing.

The directory is a local path or any fsspec URL (``s3://bucket/ckpt``, ``gs://...``), so
workers on several machines can share it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperlaw.errors import CheckpointCorruptError, CheckpointError, HyperlawError
from hyperlaw.lineage import (  # noqa: F401  (Checkpoint and recorded: public here too)
    CHECKPOINTS,
    Checkpoint,
    recorded,
    resume_point,
)
from hyperlaw.trial import TrialRecord

if TYPE_CHECKING:
    from hyperlaw.store import Store

log = logging.getLogger("hyperlaw")

def default_root(store_url: str) -> str:
    """Where checkpoints go when the study does not say: $HYPERLAW_CHECKPOINT_DIR, else beside
    a SQLite file (``hyperlaw.db`` -> ``hyperlaw-checkpoints/``), else (in-memory study) under
    the system's temporary directory, else ``./hyperlaw-checkpoints``."""
    env = os.environ.get("HYPERLAW_CHECKPOINT_DIR")
    if env:
        return env
    if store_url.startswith("sqlite:///") and ":memory:" not in store_url:
        db = Path(store_url.removeprefix("sqlite:///").split("?")[0]).resolve()
        return str(db.with_name(f"{db.stem}-checkpoints"))
    if store_url == "memory":
        return os.path.join(tempfile.gettempdir(), "hyperlaw-checkpoints")
    return str(Path("hyperlaw-checkpoints").resolve())


def study_directory(root: str, study_name: str) -> str:
    """A directory of its own for a new study under `root` (unique even if a study of the same
    name is deleted and created again)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name)[:80] or "study"
    return f"{root.rstrip('/')}/{safe}-{uuid.uuid4().hex[:8]}"


class CheckpointDirectory:
    """Atomic writes, reads, copies and deletes of checkpoint files under one directory."""

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url
        self._fs, self._root = fsspec.core.url_to_fs(url)
        self._local = "file" in _protocols(self._fs)

    def __repr__(self) -> str:
        return f"CheckpointDirectory({self.url!r})"

    def _abs(self, rel: str) -> str:
        return f"{self._root.rstrip('/')}/{rel}"

    # --- writing -------------------------------------------------------------------------
    def write(self, rel: str, state: Any) -> str:
        """Write `state` (an object, or the path of a file or directory) at `rel`; its kind."""
        if isinstance(state, str | os.PathLike) and Path(state).exists():
            source = Path(state)
            kind = "dir" if source.is_dir() else "file"
            self._put_path(source, rel, kind)
            return kind
        kind, blob = _serialize(state)
        self._put_bytes(blob, rel)
        return kind

    def _put_bytes(self, blob: bytes, rel: str) -> None:
        target = self._abs(rel)
        temp = f"{target}.tmp-{uuid.uuid4().hex}"
        if self._local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(temp, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, target)
            _fsync_dir(os.path.dirname(target))
        else:
            self._fs.pipe_file(temp, blob)
            self._fs.mv(temp, target)

    def _put_path(self, source: Path, rel: str, kind: str) -> None:
        target = self._abs(rel)
        temp = f"{target}.tmp-{uuid.uuid4().hex}"
        if self._local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if kind == "dir":
                shutil.copytree(source, temp)
                for path in Path(temp).rglob("*"):
                    if path.is_file():
                        _fsync_file(path)
            else:
                shutil.copyfile(source, temp)
                _fsync_file(Path(temp))
            os.replace(temp, target)
            _fsync_dir(os.path.dirname(target))
        else:
            self._fs.put(str(source), temp, recursive=kind == "dir")
            self._fs.mv(temp, target, recursive=kind == "dir")

    def copy(self, source: Checkpoint, rel: str) -> None:
        """Copy a checkpoint to `rel` atomically; CheckpointError if the source is gone."""
        src = self._abs(source.path)
        if not self._fs.exists(src):
            raise CheckpointError(f"checkpoint file {source.path!r} of trial #{source.trial} "
                                  "is missing")
        if self._local:
            self._put_path(Path(src), rel, "dir" if source.kind == "dir" else "file")
        else:
            temp = f"{self._abs(rel)}.tmp-{uuid.uuid4().hex}"
            self._fs.copy(src, temp, recursive=source.kind == "dir")
            self._fs.mv(temp, self._abs(rel), recursive=source.kind == "dir")

    def delete(self, checkpoints: Iterable[Checkpoint]) -> None:
        for c in checkpoints:
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm(self._abs(c.path), recursive=c.kind == "dir")

    # --- reading -------------------------------------------------------------------------
    def exists(self, checkpoint: Checkpoint) -> bool:
        return bool(self._fs.exists(self._abs(checkpoint.path)))

    def where(self, checkpoint: Checkpoint) -> str:
        """The full path (or URL) of a checkpoint's file."""
        return self._abs(checkpoint.path)

    def read(self, checkpoint: Checkpoint) -> Any:
        """The saved object, or a local path for a saved file or directory. Raises
        CheckpointCorruptError, naming the trial, the step and the file, when a saved object
        cannot be read back."""
        target = self._abs(checkpoint.path)
        try:
            if checkpoint.kind in ("file", "dir"):
                if self._local:
                    if not os.path.exists(target):
                        raise FileNotFoundError(target)
                    return target
                local = tempfile.mkdtemp(prefix="hyperlaw-checkpoint-")
                dest = os.path.join(local, os.path.basename(target))
                self._fs.get(target, dest, recursive=checkpoint.kind == "dir")
                return dest
            blob = self._fs.cat_file(target)
        except FileNotFoundError as exc:
            raise CheckpointError(
                f"checkpoint {checkpoint.path!r} of trial #{checkpoint.trial} (step "
                f"{checkpoint.step}) is recorded but its file is missing from {self.url!r}; "
                "was the checkpoint directory moved or cleaned by hand?"
            ) from exc
        try:
            return _deserialize(checkpoint.kind, blob)
        except Exception as exc:  # pickle and torch.load raise many types on a damaged file
            raise CheckpointCorruptError(
                f"checkpoint of trial #{checkpoint.trial} at step {checkpoint.step} "
                f"({target}, {checkpoint.kind} format, {len(blob)} bytes) cannot be read "
                f"back: {type(exc).__name__}: {exc}; the file is truncated or damaged, or "
                "holds objects of a module this process cannot import"
            ) from exc


def _serialize(state: Any) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    try:
        if "torch" in sys.modules:
            import torch

            torch.save(state, buffer)
            return "torch", buffer.getvalue()
        pickle.dump(state, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise CheckpointError(
            f"cannot save a checkpoint of {type(state).__name__}: {exc}; save a state dict "
            "(e.g. {'model': model.state_dict(), 'optimizer': optimizer.state_dict()}) or the "
            "path of a file or directory"
        ) from exc
    return "pickle", buffer.getvalue()


def _deserialize(kind: str, blob: bytes) -> Any:
    if kind == "torch":
        import torch

        return torch.load(io.BytesIO(blob), weights_only=False, map_location="cpu")
    return pickle.loads(blob)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_retention(keep_last: int, keep_best: int) -> None:
    """Refuse a retention policy that could delete the checkpoint a trial resumes from."""
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise HyperlawError(
            f"keep_last_checkpoints must be an int of at least 1, got {keep_last!r}; a trial "
            "resumes from its newest checkpoint"
        )
    if isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 0:
        raise HyperlawError(f"keep_best_checkpoints must be an int >= 0, got {keep_best!r}")


class StudyCheckpoints:
    """Saving, retention and lookup of one study's checkpoints.

    Retention keeps each trial's `keep_last` newest checkpoints and its `keep_best` best by
    reported value; a checkpoint another trial resumes from is a copy, so retention never
    removes what a resuming trial needs.
    """

    def __init__(self, store: Store, study_id: int, url: str, *, keep_last: int = 2,
                 keep_best: int = 0, maximize: bool = False) -> None:
        check_retention(keep_last, keep_best)
        self._store = store
        self._study_id = study_id
        self.directory = CheckpointDirectory(url)
        self.keep_last = keep_last
        self.keep_best = keep_best
        self._maximize = maximize

    @property
    def url(self) -> str:
        return self.directory.url

    def save(self, number: int, current: list[Checkpoint], state: Any, step: int,
             value: float | None) -> list[Checkpoint]:
        """Write a checkpoint of trial `number` (which has the `current` ones), record it,
        apply retention; the checkpoints the trial has now, oldest first."""
        rel = f"trial-{number}/step-{step}-{uuid.uuid4().hex[:6]}"
        try:
            kind = self.directory.write(rel, state)
        except OSError as exc:
            raise CheckpointError(
                f"cannot write a checkpoint of trial #{number} to "
                f"{self.directory.url!r}: {exc}; check that the directory is writable"
            ) from exc
        new = Checkpoint(number, step, rel, kind, value, time.time())
        replaced = [c for c in current if c.step == step]
        kept, dropped = self._retain([*(c for c in current if c.step != step), new])
        self._store.set_trial_system_attr(self._study_id, number, CHECKPOINTS,
                                          [c.to_json() for c in kept])
        self.directory.delete([*dropped, *replaced])
        return kept

    def _retain(self, checkpoints: list[Checkpoint]) -> tuple[list[Checkpoint],
                                                               list[Checkpoint]]:
        keep = set(id(c) for c in checkpoints[-self.keep_last:])
        if self.keep_best:
            scored = [(c.value, c) for c in checkpoints if c.value is not None]
            scored.sort(key=lambda s: -s[0] if self._maximize else s[0])
            keep.update(id(c) for _, c in scored[:self.keep_best])
        kept = [c for c in checkpoints if id(c) in keep]
        return kept, [c for c in checkpoints if id(c) not in keep]

    def inherit(self, donor: int, read_trials: Callable[[], list[TrialRecord]],
                attempts: int = 3) -> Checkpoint:
        """Copy the checkpoint trial `donor` would continue from to a file of its own.

        `read_trials()` returns the study's trials as stored now: when retention deleted the
        file between reading the store and copying, the copy is retried with the donor's
        newer checkpoint. Raises CheckpointError when there is none that can be copied.
        """
        for _ in range(attempts):
            trials = read_trials()
            source = resume_point(donor, trials[donor].system_attrs, trials)
            if source is None:
                break
            rel = f"inherited/{uuid.uuid4().hex}"
            try:
                self.directory.copy(source, rel)
            except (CheckpointError, FileNotFoundError):
                continue
            return Checkpoint(donor, source.step, rel, source.kind, source.value, time.time())
        raise CheckpointError(f"trial #{donor} has no checkpoint to copy")

    def load(self, checkpoint: Checkpoint) -> Any:
        """The state saved in `checkpoint` (see `CheckpointDirectory.read`)."""
        return self.directory.read(checkpoint)

    def load_newest(self, number: int, candidates: list[Checkpoint]) -> tuple[Checkpoint, Any]:
        """The first of `candidates` (see `resume_candidates`) that loads, and its state.

        A checkpoint whose file is damaged or missing is skipped with a warning naming it and
        the one used instead; nothing is deleted or changed in the store. When none loads,
        raises CheckpointCorruptError (CheckpointError when every file is missing) naming
        trial `number` and every checkpoint tried.
        """
        checkpoint, state, failures = self._first_that_loads(candidates)
        if checkpoint is not None:
            self._warn_skipped(number, failures, checkpoint)
            return checkpoint, state
        if len(failures) == 1:
            raise failures[0][1]
        corrupt = any(isinstance(exc, CheckpointCorruptError) for _, exc in failures)
        raise (CheckpointCorruptError if corrupt else CheckpointError)(
            f"trial #{number} cannot resume: none of its {len(failures)} checkpoints loads: "
            f"{self._failures(failures)}. Restore the files from a "
            "backup, or catch hyperlaw.CheckpointError in the objective to train the trial "
            "from scratch"
        )

    def load_inherited(self, number: int, candidates: list[Checkpoint],
                       donor: Callable[[], list[Checkpoint]]) -> tuple[Checkpoint | None, Any]:
        """`load_newest` for a PBT child, which can start over rather than fail: when none
        of `candidates` loads (its inherited copy is damaged or missing), a fresh copy of the
        first of `donor()` (the donor's other checkpoints up to the inherited step, newest
        first) that loads, else a start from scratch (None, None). A warning names trial
        `number`, every file that did not load and what it starts from instead."""
        checkpoint, state, failures = self._first_that_loads(candidates)
        if checkpoint is not None:
            self._warn_skipped(number, failures, checkpoint)
            return checkpoint, state
        for source in donor():
            copy = Checkpoint(source.trial, source.step, f"inherited/{uuid.uuid4().hex}",
                              source.kind, source.value, time.time())
            try:  # a copy: the donor's retention may delete its file while this one runs
                self.directory.copy(source, copy.path)
                state = self.load(copy)
            except (CheckpointError, OSError) as exc:
                self.directory.delete([copy])
                failures.append((source, exc if isinstance(exc, CheckpointError)
                                 else CheckpointError(str(exc))))
                continue
            log.warning("trial #%d: %s; it resumes from a copy (%s) of %s instead", number,
                        self._failures(failures), self.directory.where(copy),
                        self._describe(source))
            return copy, state
        log.warning("trial #%d: %s; no older checkpoint of its donor loads either, so it "
                    "trains from scratch", number, self._failures(failures))
        return None, None

    def _first_that_loads(self, candidates: list[Checkpoint]
                          ) -> tuple[Checkpoint | None, Any,
                                     list[tuple[Checkpoint, CheckpointError]]]:
        """The first of `candidates` that loads and its state (None, None when none does),
        and the ones before it that did not, with why."""
        failures: list[tuple[Checkpoint, CheckpointError]] = []
        for checkpoint in candidates:
            try:
                return checkpoint, self.load(checkpoint), failures
            except CheckpointError as exc:
                failures.append((checkpoint, exc))
        return None, None, failures

    def _warn_skipped(self, number: int, failures: list[tuple[Checkpoint, CheckpointError]],
                      used: Checkpoint) -> None:
        if failures:
            log.warning("trial #%d: %s; it resumes from %s instead", number,
                        self._failures(failures), self._describe(used))

    def _failures(self, failures: list[tuple[Checkpoint, CheckpointError]]) -> str:
        return "; ".join(self._failure(*f) for f in failures)

    def _describe(self, checkpoint: Checkpoint) -> str:
        return (f"the checkpoint of trial #{checkpoint.trial} at step {checkpoint.step} "
                f"({self.directory.where(checkpoint)})")

    def _failure(self, checkpoint: Checkpoint, exc: CheckpointError) -> str:
        cause = exc.__cause__
        why = (f"cannot be read back ({type(cause).__name__}: {cause})"
               if isinstance(exc, CheckpointCorruptError) else "is missing")
        return f"{self._describe(checkpoint)} {why}"
