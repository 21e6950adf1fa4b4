"""The storage seam: reports, kept code and check results as bytes under keys, on this disk or in S3.

Workers, the web app and the CLI may run on different hosts, so what one writes and another reads goes through
one `Storage`: `LocalStorage` (a folder on this host, the default and the embedded case) or `S3Storage` (an
S3-compatible object store, for several hosts). A key is a posix path (`reports/<id>/report.json`,
`snapshots/<id>/app.py`, `checks/<assignment>.json`); a prefix names a folder of keys (`reports/<id>` holds
`reports/<id>/report.json`, never `reports/<id>0/...`). `open_storage(settings)` is the one factory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from grader.settings import Settings

REPORTS = "reports"
SNAPSHOTS = "snapshots"
CHECKS = "checks"


class Storage(Protocol):
    """What the grader asks of a store of files."""

    def put(self, key: str, data: bytes) -> None:
        """Write one key whole: a reader sees the old bytes or the new, never a part."""

    def get(self, key: str) -> bytes | None:
        """The bytes of a key, or None when there is no such key."""

    def exists(self, key: str) -> bool:
        """Whether the key holds bytes."""

    def list(self, prefix: str) -> list[str]:
        """The keys under `prefix/`, relative to it and sorted; [] when there are none."""

    def delete(self, key: str) -> None:
        """Remove one key; a missing key is no error."""

    def delete_tree(self, prefix: str) -> None:
        """Remove every key under `prefix/`."""

    def move_tree(self, folder: Path, prefix: str) -> None:
        """Make a local folder's files the tree under `prefix` (replacing it); the folder is consumed."""

    def open_tree(self, prefix: str) -> AbstractContextManager[Path | None]:
        """The tree under `prefix` as a local folder to read while the context lasts; None when it is empty."""


def check_key(key: str) -> str:
    """`key` if it is a relative posix path of plain names; a key that could leave its root is refused."""
    if not isinstance(key, str) or not key or "\0" in key or "\\" in key or key.startswith("/"):
        raise ValueError(f"storage key {key!r} is refused: use a relative posix path such as reports/<id>/report.json")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"storage key {key!r} is refused: no empty, '.' or '..' parts")
    return key


def tree_files(folder: Path) -> Iterator[tuple[str, Path]]:
    """(posix path relative to folder, path) of the regular files of a local tree, in a stable order; links never followed."""
    for here, dirs, names in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(here) / name
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(folder).as_posix(), path


def is_legacy_path(stored: str) -> bool:
    """Rows written before the storage seam hold an absolute path on the grading host, not a key."""
    return stored.startswith("/")


def read_stored(storage: Storage, stored: str) -> bytes | None:
    """The bytes a row's reference names: a key of `storage`, or a legacy absolute path read as a local file."""
    if is_legacy_path(stored):
        try:
            return Path(stored).read_bytes()
        except OSError:
            return None
    try:
        return storage.get(stored)
    except ValueError:  # not a key we would write
        return None


def stored_names(storage: Storage, stored: str) -> list[str]:
    """The files beside a row's report.json (its folder's names, report.json included)."""
    folder = stored.rpartition("/")[0]
    if is_legacy_path(stored):
        return sorted(p.name for p in Path(folder).iterdir() if p.is_file()) if Path(folder).is_dir() else []
    try:
        return [name for name in storage.list(folder) if "/" not in name]
    except ValueError:
        return []


def report_folder(submission_id: str) -> str:
    """The prefix of a report's files: `reports/<id>` (`reports/<id>/report.json`, its exports beside it)."""
    return f"{REPORTS}/{submission_id}"


def snapshot_key(submission_id: str) -> str:
    """The prefix of a graded submission's kept code: `snapshots/<id>`."""
    return f"{SNAPSHOTS}/{submission_id}"


def check_result_key(assignment_id: str) -> str:
    """The key of an assignment's last `grader assignments check`: `checks/<id>.json`."""
    return f"{CHECKS}/{assignment_id}.json"


def open_storage(settings: Settings) -> Storage:
    """The storage the settings name: `storage.backend` "local" (everything under `storage.local_root`, or else
    reports in `paths.reports_dir` and the rest in `paths.data_dir`, the layout on disk as it always was) or "s3"."""
    from grader.storage.local import LocalStorage

    if settings.storage.backend == "s3":
        from grader.storage.s3 import S3Storage

        return S3Storage.from_settings(settings.storage)
    if settings.storage.local_root is not None:
        return LocalStorage(settings.storage.local_root)
    return LocalStorage(settings.paths.data_dir, areas={REPORTS: settings.paths.reports_dir})


__all__ = [
    "CHECKS", "REPORTS", "SNAPSHOTS", "Storage", "check_key", "check_result_key", "is_legacy_path", "open_storage",
    "read_stored", "report_folder", "snapshot_key", "stored_names", "tree_files",
]
