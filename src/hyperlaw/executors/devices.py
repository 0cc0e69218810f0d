"""Which GPUs each local worker process sees: its own `gpus_per_trial` devices, given through
CUDA_VISIBLE_DEVICES so the frameworks in the trial number them from 0."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

from hyperlaw.errors import HyperlawError

VISIBLE = "CUDA_VISIBLE_DEVICES"


def check_gpus_per_trial(gpus_per_trial: object) -> int | None:
    """`gpus_per_trial` as a positive int, or None (no devices assigned)."""
    if gpus_per_trial is None:
        return None
    if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int) \
            or gpus_per_trial < 1:
        raise HyperlawError(
            f"gpus_per_trial must be a positive int (the GPUs each trial's process sees), got "
            f"{gpus_per_trial!r}; leave it None to give every worker all devices")
    return gpus_per_trial


def visible_devices(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The devices this process may hand out: its own CUDA_VISIBLE_DEVICES when set (ids or
    UUIDs, as given), else every GPU `nvidia-smi -L` lists, else none."""
    given = environ.get(VISIBLE)
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return []
    try:
        listing = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True,
                                 timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def device_slots(n_workers: int, gpus_per_trial: int,
                 environ: Mapping[str, str] = os.environ) -> list[str]:
    """The CUDA_VISIBLE_DEVICES value of each of `n_workers` worker slots: disjoint runs of
    `gpus_per_trial` devices. A replacement worker takes the slot of the one it replaces."""
    devices = visible_devices(environ)
    needed = n_workers * gpus_per_trial
    if len(devices) < needed:
        seen = (f"{VISIBLE}={environ[VISIBLE]!r}" if VISIBLE in environ
                else "no CUDA_VISIBLE_DEVICES and " + (
                    "nvidia-smi lists none" if shutil.which("nvidia-smi") else "no nvidia-smi"))
        raise HyperlawError(
            f"n_workers={n_workers} with gpus_per_trial={gpus_per_trial} needs {needed} GPUs, "
            f"but {len(devices)} are visible ({seen}); lower n_workers or gpus_per_trial, or "
            f"list the devices to share out in {VISIBLE} (e.g. {VISIBLE}=0,1,2,3)")
    return [",".join(devices[i * gpus_per_trial:(i + 1) * gpus_per_trial])
            for i in range(n_workers)]
