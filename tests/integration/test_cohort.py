"""Real grades placed in their cohort by `grader grade` into one data directory: a disguised copy of an earlier
submission is flagged against it, an independent solution is not, and deleting a submission removes its pairs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.settings import PROJECT_ROOT, Settings
from tests.disguise import BOOTABLE_RENAMES, disguised_copy

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"


def _grader(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "GRADER_DATA_DIR": str(settings.paths.data_dir), "GRADER_REPORTS_DIR": str(settings.paths.reports_dir),
        "GRADER_OWN_TESTS": "false", "GRADER_PDF": "false",
    }
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=300, env=env)


def _grade(settings: Settings, repository: Path) -> dict:
    result = _grader(settings, "grade", str(repository), "--assignment", "flask-notes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "graded", report["reason"]
    return report


def test_a_disguised_copy_is_flagged_an_independent_solution_is_not_and_deletion_forgets(settings, git_repo, tmp_path):
    original = _grade(settings, git_repo(SOLUTIONS / "reference"))
    assert original["similar"] == [] and original["cohort"] == {"rank": 1, "percentile": None, "n": 1}

    copy = _grade(settings, git_repo(disguised_copy(SOLUTIONS / "reference", tmp_path / "jotter", BOOTABLE_RENAMES)))
    assert copy["score"] == 100, "the disguise keeps the app working"
    top = copy["similar"][0]
    assert top["submission"] == original["id"] and top["flagged"] and not top["same_candidate"]
    assert top["score"] > 0.7

    independent = _grade(settings, git_repo(SOLUTIONS / "single-module"))
    assert all(not m["flagged"] and m["score"] < 0.5 for m in independent["similar"]), independent["similar"]
    assert independent["cohort"]["n"] == 3 and independent["cohort"]["rank"] == 1

    view = json.loads(_grader(settings, "cohort", "flask-notes", "--json").stdout)
    assert view["n"] == 3 and [b["count"] for b in view["histogram"]][-1] == 3
    assert [(p["a"], p["b"]) for p in view["pairs"]] == [tuple(sorted((original["id"], copy["id"])))]

    deleted = _grader(settings, "delete", original["id"], "--yes")
    assert deleted.returncode == 0, deleted.stderr
    view = json.loads(_grader(settings, "cohort", "flask-notes", "--json").stdout)
    assert view["n"] == 2 and view["pairs"] == []
    assert not (settings.paths.snapshots_dir / original["id"]).exists()
    assert not (settings.paths.reports_dir / original["id"]).exists()
    assert (settings.paths.snapshots_dir / copy["id"]).is_dir()
