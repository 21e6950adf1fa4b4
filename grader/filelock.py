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


class HeldSlots:
    """Several slots held together (a lane that weighs more than one); closing frees them all."""

    def __init__(self, handles: list[IO[str]]) -> None:
        self.handles = handles

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


def take_free_slots(folder: Path, count: int, weight: int) -> HeldSlots | None:
    """Hold `weight` of the `count` slots (all of them when it weighs more), all at once or none. A slot this
    process holds is refused to it like to any other, since flock locks belong to each open file."""
    held: list[IO[str]] = []
    while len(held) < min(max(weight, 1), count):
        handle = take_free_slot(folder, count)
        if handle is None:
            HeldSlots(held).close()
            return None
        held.append(handle)
    return HeldSlots(held)


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
