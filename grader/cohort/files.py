"""Which files of a snapshot are the candidate's code for the cohort, and keeping a copy of them after the grade.

Light on purpose (no copydetect): the pipeline keeps a graded snapshot's code through this module before its
clean-up removes the clone; fingerprints are taken from the kept copy later (grader/cohort/place.py).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

LANGUAGES = {".py": "python", ".html": "html+jinja"}
"""Suffix -> the Pygments lexer copydetect's filter tokenizes it with."""
MAX_FILES = 2000
MAX_FILE_BYTES = 256 * 1024
MAX_KEPT_BYTES = 32 * 1024 * 1024
_SKIPPED_DIRS = frozenset({
    ".git", "__pycache__", "node_modules", "site-packages", ".venv", "venv", "env", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "instance",
})


def source_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(posix path relative to root, path) of the files worth fingerprinting, in path order; links never followed."""
    for here, dirs, names in os.walk(root, followlinks=False):
        base = Path(here)
        dirs[:] = sorted(
            d for d in dirs
            if d not in _SKIPPED_DIRS and not (base / d).is_symlink() and not (base / d / "pyvenv.cfg").exists()
        )
        for name in sorted(names):
            full = base / name
            if full.suffix not in LANGUAGES or full.is_symlink() or not full.is_file():
                continue
            if full.stat().st_size <= MAX_FILE_BYTES:
                yield full.relative_to(root).as_posix(), full


def keep_snapshot(tree: Path, dest: Path) -> Path | None:
    """Copy the files a fingerprint reads to `dest` (replacing an earlier grading's); None when there are none."""
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    total = 0
    for count, (rel, path) in enumerate(source_files(tree)):
        total += path.stat().st_size
        if count == MAX_FILES or total > MAX_KEPT_BYTES:
            log.warning("kept code of %s stops at %d files, %d bytes", dest.name, count, total)
            break
        target = partial / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target, follow_symlinks=False)
    shutil.rmtree(dest, ignore_errors=True)
    if not partial.exists():
        return None
    partial.rename(dest)
    return dest


def remove_kept(path: str | Path | None, snapshots_dir: Path) -> None:
    """Remove a kept snapshot, only ever inside `snapshots_dir` (a stored path is never trusted further)."""
    if path is None:
        return
    target = Path(path).resolve()
    if target.is_relative_to(snapshots_dir.resolve()) and target != snapshots_dir.resolve():
        shutil.rmtree(target, ignore_errors=True)
