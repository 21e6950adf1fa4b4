"""The bounded walk of the snapshot: which files the review reads, and how much of each.

Links are never followed (neither folders nor files: a link could point at the grader's own files), folders
of other people's code (virtualenvs, node_modules, site-packages) are skipped, and every count is capped:
at most 2,000 Python files of 256 KB and 2 MB in all, text files of 64 KB. What was left aside is named, so the report can
say the review did not see it.
"""

from __future__ import annotations

import os
import re
import stat
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

MAX_PYTHON_FILES = 2000
MAX_PYTHON_BYTES = 256 * 1024
MAX_PYTHON_TOTAL_BYTES = 2 * 1024 * 1024
"""Python read in all: a syntax tree takes 50 to 150 times its source in memory, and the review has 768 MB."""
MAX_TEXT_FILES = 300
MAX_TEXT_BYTES = 64 * 1024
MAX_ENTRIES = 20000
"""Directory entries looked at, at most: intake caps a repository's files, this caps the walk whatever it got."""

_SKIPPED_FOLDERS = {
    ".git", ".venv", "venv", "node_modules", "site-packages", "__pycache__", ".tox", ".nox", ".eggs",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "dist", "build", "htmlcov", "_build",
}
_MIGRATIONS = re.compile(r"(^|/)(migrations|alembic)/versions/")
_TEST = re.compile(r"(^|/)(tests?|testing)/|(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")
_TEMPLATE = re.compile(r"\.(html?|jinja2?|j2)$")
_RUN_FILE = re.compile(r"(^|/)(Procfile|Dockerfile[^/]*|[^/]*\.dockerfile|(docker-)?compose[^/]*\.ya?ml|[^/]*\.sh)$")
_PACKAGING = re.compile(r"^(requirements[^/]*\.(txt|in)|requirements/[^/]*\.(txt|in)|pyproject\.toml|Pipfile|setup\.cfg)$")
_README = re.compile(r"^readme(\.[a-z]+)?$", re.IGNORECASE)


@dataclass
class SourceFile:
    """A Python file read whole: `kind` is `app`, `test` or `migration` (generated code, few rules apply)."""

    path: str
    text: str
    kind: str


@dataclass
class TextFile:
    path: str
    text: str


@dataclass
class Tree:
    """What the walk found and read, and what it left aside (path, reason)."""

    python: list[SourceFile] = field(default_factory=list)
    templates: list[TextFile] = field(default_factory=list)
    run_files: list[TextFile] = field(default_factory=list)
    packaging: list[TextFile] = field(default_factory=list)
    readme: TextFile | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    entries: int = 0
    python_bytes: int = 0


def read_bounded(path: str, limit: int) -> bytes | None:
    """A regular file's bytes, never through a link; None when it is not one. Reads at most `limit` + 1 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit + 1)


def python_kind(path: str) -> str:
    if _MIGRATIONS.search(path):
        return "migration"
    return "test" if _TEST.search(path) else "app"


def walk_tree(root: Path) -> Tree:
    """Read the snapshot at `root`, breadth first in name order, within the limits above."""
    tree = Tree()
    base = os.path.realpath(root)
    pending = deque([""])
    while pending:
        folder = pending.popleft()
        try:
            with os.scandir(os.path.join(base, folder)) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError:
            continue
        for entry in entries:
            tree.entries += 1
            if tree.entries > MAX_ENTRIES:
                tree.skipped.append((folder or ".", f"the walk stopped after {MAX_ENTRIES} entries"))
                return tree
            relative = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_symlink():
                tree.skipped.append((relative, "a symbolic link, not followed"))
                continue
            if entry.is_dir(follow_symlinks=False):
                if not _skipped_folder(entry):
                    pending.append(relative)
            elif entry.is_file(follow_symlinks=False):
                _read(tree, entry.path, relative)
    return tree


def _skipped_folder(entry: os.DirEntry[str]) -> bool:
    if entry.name in _SKIPPED_FOLDERS or entry.name.startswith(".") or entry.name.endswith(".egg-info"):
        return True
    return os.path.lexists(os.path.join(entry.path, "pyvenv.cfg"))


def _read(tree: Tree, path: str, relative: str) -> None:
    name = relative.rsplit("/", 1)[-1]
    if name.endswith(".py"):
        if len(tree.python) >= MAX_PYTHON_FILES:
            tree.skipped.append((relative, f"beyond the first {MAX_PYTHON_FILES} Python files"))
            return
        data = read_bounded(path, MAX_PYTHON_BYTES)
        if data is None:
            return
        if len(data) > MAX_PYTHON_BYTES:
            tree.skipped.append((relative, f"over {MAX_PYTHON_BYTES // 1024} KB"))
            return
        if tree.python_bytes + len(data) > MAX_PYTHON_TOTAL_BYTES:
            tree.skipped.append((relative, f"beyond the first {MAX_PYTHON_TOTAL_BYTES // 2**20} MB of Python"))
            return
        tree.python_bytes += len(data)
        tree.python.append(SourceFile(relative, data.decode("utf-8", "replace"), python_kind(relative)))
        return
    if _TEMPLATE.search(name):
        target = tree.templates
    elif _RUN_FILE.search(relative):
        target = tree.run_files
    elif _PACKAGING.match(relative):
        target = tree.packaging
    elif _README.match(relative):
        target = None
    else:
        return
    if len(tree.templates) + len(tree.run_files) + len(tree.packaging) >= MAX_TEXT_FILES:
        tree.skipped.append((relative, f"beyond the first {MAX_TEXT_FILES} text files"))
        return
    data = read_bounded(path, MAX_TEXT_BYTES)
    if data is None:
        return
    if len(data) > MAX_TEXT_BYTES:
        tree.skipped.append((relative, f"over {MAX_TEXT_BYTES // 1024} KB"))
        return
    text = TextFile(relative, data.decode("utf-8", "replace"))
    if target is None:
        tree.readme = tree.readme or text
    else:
        target.append(text)
