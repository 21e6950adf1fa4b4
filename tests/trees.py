"""Small trees written for a test: files and links under a root, and the Snapshot of one."""

from __future__ import annotations

import os
from pathlib import Path

from grader.models import Snapshot


def write_tree(root: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    """Each file with its text and each link to its target, under `root` (made as needed); `root` back."""
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name, target in (links or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / name)
    return root


def snapshot_of(root: Path, submission_id: str = "s-unit") -> Snapshot:
    return Snapshot(submission_id=submission_id, url=str(root), ref=None, commit="0" * 40, path=root)
