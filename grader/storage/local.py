"""`LocalStorage`: keys as files under a root folder on this host, the default and the embedded case.

A key never leaves its root: '..', absolute keys and NUL are refused, and a path that resolves outside (a link
planted in the tree) is refused too. `areas` keeps a top-level prefix in a folder of its own, so the default
layout on disk stays what it was before the seam (`reports/` in `paths.reports_dir`, the rest in `data_dir`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from grader.storage import check_key, tree_files


class LocalStorage:
    """Files under `root` (and under each of `areas` for its top-level prefix)."""

    def __init__(self, root: Path, *, areas: Mapping[str, Path] | None = None) -> None:
        self.root = Path(root)
        self.areas = {name: Path(folder) for name, folder in (areas or {}).items()}

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """Where `key` lives on disk; ValueError for a key that leaves its root."""
        first, _, rest = check_key(key).partition("/")
        base, relative = (self.areas[first], rest) if first in self.areas else (self.root, key)
        target = base / relative if relative else base
        resolved_base = base.resolve()
        if not target.resolve().is_relative_to(resolved_base):
            raise ValueError(f"storage key {key!r} is refused: it resolves outside {base}")
        return target

    def _tree(self, prefix: str) -> Path:
        target = self.path(prefix)
        if target.resolve() in {self.root.resolve(), *(area.resolve() for area in self.areas.values())}:
            raise ValueError(f"prefix {prefix!r} is a whole storage area; name a folder inside it")
        return target

    def put(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)  # atomic: a reader sees the old file or the new one
        finally:
            temporary.unlink(missing_ok=True)

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        if path.is_symlink():
            return None
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def exists(self, key: str) -> bool:
        path = self.path(key)
        return path.is_file() and not path.is_symlink()

    def list(self, prefix: str) -> list[str]:
        folder = self.path(prefix)
        return sorted(rel for rel, _ in tree_files(folder)) if folder.is_dir() and not folder.is_symlink() else []

    def delete(self, key: str) -> None:
        path = self.path(key)
        if not path.is_dir() or path.is_symlink():
            path.unlink(missing_ok=True)

    def delete_tree(self, prefix: str) -> None:
        folder = self._tree(prefix)
        if folder.is_symlink():
            folder.unlink()
        else:
            shutil.rmtree(folder, ignore_errors=True)

    def move_tree(self, folder: Path, prefix: str) -> None:
        """Rename the folder into place (a copy across file systems); nothing to do when it is already there."""
        target = self._tree(prefix)
        if folder.resolve() == target.resolve():
            return
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(partial))
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)

    @contextmanager
    def open_tree(self, prefix: str) -> Iterator[Path | None]:
        """The folder itself: nothing is copied on this host."""
        folder = self.path(prefix)
        kept = folder.is_dir() and not folder.is_symlink() and next(tree_files(folder), None) is not None
        yield folder if kept else None
