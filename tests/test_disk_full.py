"""A full disk: the write that does not fit fails with a named error, every write acknowledged
before it is kept, and the study goes on once there is room again.

The disk is filled for real, for one process: a subprocess lowers its file-size limit
(RLIMIT_FSIZE) just above the database's size, so SQLite's next writes past it fail in the
kernel as they would on a full disk (no root, no mount needed).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import hyperlaw as hl

_FILLER = textwrap.dedent("""
    import json, os, resource, signal, sys
    import hyperlaw as hl

    url, path = sys.argv[1], sys.argv[2]
    sizes = [os.path.getsize(p) for p in (path, path + "-wal", path + "-shm")
             if os.path.exists(p)]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    limit = max(sizes) + 1_000_000
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    study = hl.load_study("full", storage=url)
    try:
        while True:
            trial = study.ask()
            trial.set_user_attr("notes", "n" * 4000)
            for step in range(3):
                trial.report(trial.params["x"] + step, step=step)
            study.tell(trial, trial.params["x"])
            print(json.dumps([trial.number, trial.params["x"]]), flush=True)  # acknowledged
    except hl.StorageError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(3)
""")


def test_a_full_disk_fails_the_write_by_name_and_keeps_every_acknowledged_result(
        tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    url = f"sqlite:///{path}"
    study = hl.create_study("full", storage=url, space=hl.Space({"x": hl.Float(0.0, 1.0)}),
                            sampler="random", seed=0)
    for _ in range(3):
        trial = study.ask()
        study.tell(trial, trial.params["x"])

    done = subprocess.run([sys.executable, "-c", _FILLER, url, str(path)],
                          capture_output=True, text=True, timeout=240)

    assert done.returncode == 3, done.stderr[-2000:]
    message = done.stderr.strip().splitlines()[-1]
    assert str(path) in message and "disk" in message and "full" in message, message
    assert "credentials" not in message, message  # not a server's advice for a local file
    acknowledged = {number: x for number, x in map(json.loads, done.stdout.splitlines())}
    assert acknowledged, "the filler should have finished some trials before the disk filled"

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    reopened = hl.load_study("full", storage=url)
    kept = {t.number: t for t in reopened.trials}
    for number, x in acknowledged.items():
        assert kept[number].state is hl.TrialState.COMPLETE
        assert kept[number].value == x
        assert sorted(kept[number].intermediate) == [0, 1, 2]

    trial = reopened.ask()  # room again: the study goes on
    reopened.tell(trial, 0.5)
    assert {t.number: t.value for t in hl.load_study("full", storage=url).trials}[
        trial.number] == 0.5
