"""What the benches share: the machine's busy CPU seconds, and a solution folder as a fresh git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:  # the benches run as `python bench/<name>.py` and import helpers of tests/ (tests.postgres)
    sys.path.insert(0, ROOT)


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (all processes, containers and the engine included)."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(v) for v in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def git_repository(solution: Path, root: Path, prefix: str, change: Callable[[Path], None] | None = None) -> Path:
    """A copy of `solution` under `root`, committed as one revision; `change` edits the copy first."""
    repo = root / f"{prefix}-{uuid.uuid4().hex[:8]}"
    shutil.copytree(solution, repo, ignore=shutil.ignore_patterns("__pycache__", "expected.toml"))
    if change is not None:
        change(repo)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", solution.name]):
        subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", *args], cwd=repo, check=True)
    return repo
