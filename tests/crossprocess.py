"""What tests share to coordinate real worker processes."""

from __future__ import annotations

import os


def first_to_create(path: str) -> bool:
    """True in the one process that creates `path` (an atomic, cross-process once)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
