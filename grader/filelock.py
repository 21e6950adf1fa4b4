"""Locks on files, for processes on one host that must take turns (builds, migrations) or share a few slots
(lanes)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def take_free_slot(folder: Path, count: int) -> IO[str] | None:
    """Hold one of `count` slot files in `folder` if one is free now (closing the handle frees it; so does the
    holder's death); None when all are held."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        handle = open(folder / f"slot-{index}", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            handle.close()
    return None


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
