"""Tests of the static code review: `grader/review/` (the child process) and `grader/stages/review.py`."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from grader.review.reviewer import Review, review_tree


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (path -> text, dedented) under `root`."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def review_files(root: Path, files: dict[str, str]) -> dict[str, Any]:
    """The review's answer for a tree of `files`, reviewed in this process (the checks' tests need no child)."""
    review = Review()
    review_tree(write_tree(root, files), review)
    return review.answer()


def found(answer: dict[str, Any], rule: str | None = None) -> list[tuple[str, str, str, int]]:
    """(rule, severity, file, line) of each finding, of one rule when given."""
    return [
        (item["rule"], item["severity"], item["file"], item["line"])
        for item in answer["findings"] if rule is None or item["rule"] == rule
    ]
