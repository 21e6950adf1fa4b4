"""Which files of a snapshot are the candidate's code for the cohort, and keeping a copy of them after the grade.

Light on purpose (no copydetect): the pipeline keeps a graded snapshot's code through this module before its
clean-up removes the clone, into a local folder the caller then moves into storage (`snapshots/<id>`);
fingerprints are taken from the kept copy later (grader/cohort/place.py). Rows of before the storage seam hold
an absolute path instead of a key: still read and removed, only inside `snapshots_dir`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.storage import SNAPSHOTS, Storage, check_key, is_legacy_path

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


def sweep_keeping(folder: Path, older_than_s: float) -> list[str]:
    """Remove what a crashed grading left on its way into storage (`keeping_dir`), once older than any grading can
    be; the names removed."""
    cutoff = time.time() - older_than_s
    removed = []
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            stale = entry.lstat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if stale:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def kept_prefix(stored: str) -> str | None:
    """The stored reference as a key of kept code (`snapshots/<id>`), or None when it is not one."""
    try:
        parts = check_key(stored).split("/")
    except ValueError:
        return None
    return stored if len(parts) == 2 and parts[0] == SNAPSHOTS else None


def _legacy_kept(stored: str, snapshots_dir: Path) -> Path | None:
    """A path of before the storage seam, resolved, only inside `snapshots_dir` (a stored path is never trusted further)."""
    base = snapshots_dir.resolve()
    target = Path(stored).resolve()
    return target if target.is_relative_to(base) and target != base else None


@contextmanager
def open_kept(stored: str | None, storage: Storage, snapshots_dir: Path) -> Iterator[Path | None]:
    """A member's kept code as a local folder to read (None when it is gone): a key opened from storage, or a
    legacy absolute path inside `snapshots_dir`."""
    if stored is not None and is_legacy_path(stored):
        legacy = _legacy_kept(stored, snapshots_dir)
        yield legacy if legacy is not None and legacy.is_dir() else None
        return
    prefix = kept_prefix(stored) if stored is not None else None
    if prefix is None:
        yield None
        return
    with storage.open_tree(prefix) as folder:
        yield folder


def remove_kept(stored: str | Path | None, storage: Storage, snapshots_dir: Path) -> None:
    """Remove kept code: a key under `snapshots/` from storage; a legacy path only inside `snapshots_dir`."""
    if stored is None:
        return
    stored = str(stored)
    if is_legacy_path(stored):
        legacy = _legacy_kept(stored, snapshots_dir)
        if legacy is not None:
            shutil.rmtree(legacy, ignore_errors=True)
    elif (prefix := kept_prefix(stored)) is not None:
        storage.delete_tree(prefix)
