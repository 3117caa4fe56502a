"""Crash-safe file helpers shared by the local logs (the embedded store's journal, the agent's flow-state log).

    lock_directory(directory, name)   create the directory and take an exclusive, non-blocking `flock` on
                                      `directory/name`: the fd, or None if another process holds it
    fsync_directory(directory)        make a rename or a new file in `directory` durable

Callers turn failures into their own errors (OSError from the first, with the path).

May import: nothing of ours.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def lock_directory(directory: Path, name: str) -> int | None:
    """The fd of the held lock file, or None when another process holds it; OSError if it cannot be opened."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
