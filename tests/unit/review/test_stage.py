"""review_code: the review in a bounded child process, whatever the tree does to it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from grader.models import CodeReview, Severity
from grader.settings import PROJECT_ROOT, Settings
from grader.stages import review as stage
from grader.stages.review import review_code
from tests.unit.review import write_tree

SOLUTIONS = PROJECT_ROOT / "assignments" / "flask-notes" / "solutions"


def _dense(lines: int) -> str:
    """Valid Python that is costly to parse and index: many small literals per line."""
    return "".join(f"x{i} = [{i}, {{'a': ({i}, {i + 1})}}, [{i}] * 2]\n" for i in range(lines))


def test_the_reference_solution_has_few_findings_and_takes_well_under_a_second() -> None:
    started = time.monotonic()
    review = review_code(SOLUTIONS / "reference", Settings())
    elapsed = time.monotonic() - started
    print(f"reference: {elapsed:.3f} s, {[(f.rule, f.file, f.line) for f in review.findings]}")
    assert review.error == ""
    assert [f for f in review.findings if f.severity is Severity.security] == []
    assert len(review.findings) <= 3
    assert review.metrics["blueprints"] == 2 and review.metrics["routes"] == 14
    assert elapsed < 3  # about 0.2 s on an idle machine; the bound leaves room for a loaded one


def test_the_single_module_solution_is_told_about_its_layout_and_forms() -> None:
    review = review_code(SOLUTIONS / "single-module", Settings())
    print(f"single-module: {review.duration_s:.3f} s, {[(f.rule, f.file, f.line) for f in review.findings]}")
    assert review.error == ""
    assert [(f.rule, f.file) for f in review.findings] == [
        ("grader:csrf-missing", "notes.py"), ("ruff:C901", "notes.py"), ("grader:routes-in-one-module", "notes.py"),
    ]


def test_a_tree_slower_than_the_time_limit_ends_with_an_error_in_time(tmp_path: Path) -> None:
    """Sixteen dense 250 KB files take seconds to read; with a limit of 0.5 s the answer comes at about 0.5 s."""
    write_tree(tmp_path, {f"m{i}.py": _dense(5000) for i in range(16)})
    started = time.monotonic()
    review = review_code(tmp_path, Settings().replace(timeouts={"review_s": 0.5}))
    assert time.monotonic() - started < 3
    assert review.error == "the review stopped at its time limit of 0.5 s; the findings below are incomplete"


def test_findings_made_before_the_time_ran_out_are_kept(tmp_path: Path) -> None:
    """The child's own alarm (3 s into a limit of 4 s) stops the work and still prints what the modules read found."""
    write_tree(tmp_path, {"a_app.py": "from flask import Flask\n\napp = Flask(__name__)\napp.secret_key = 'x'\n"})
    write_tree(tmp_path, {f"z/m{i}.py": _dense(5000) for i in range(8)})
    review = review_code(tmp_path, Settings().replace(timeouts={"review_s": 4}))
    assert review.error == "the review stopped at its time limit of 4 s; the findings below are incomplete"
    assert [(f.rule, f.file, f.line) for f in review.findings] == [("grader:hard-coded-secret", "a_app.py", 4)]
    assert review.duration_s < 4


def test_a_file_too_big_for_the_memory_limit_ends_with_an_error_not_an_exception(tmp_path: Path) -> None:
    write_tree(tmp_path, {"big.py": _dense(5000), "deep.py": "x = " + "(" * 150 + "1" + ")" * 150 + "\n"})
    started = time.monotonic()
    review = review_code(tmp_path, Settings().replace(sandbox={"review_memory_mb": 64}))
    assert time.monotonic() - started < 5
    assert review.error == "the review ran out of its memory limit of 64 MB; the findings below are incomplete"


def test_a_symlink_to_a_file_outside_is_not_followed_by_the_child(tmp_path: Path) -> None:
    sentinel = tmp_path / "sentinel.py"
    sentinel.write_text('SECRET_KEY = "SENTINEL-9c2e"\neval(input())\n')
    root = write_tree(tmp_path / "repo", {"app.py": "from flask import Flask\n"})
    os.symlink(sentinel, root / "config.py")
    os.symlink(tmp_path, root / "up")
    review = review_code(root, Settings())
    assert "SENTINEL" not in review.model_dump_json()
    assert [f.file for f in review.findings] == []
    assert review.metrics["skipped"] == "config.py (a symbolic link, not followed); up (a symbolic link, not followed)"


def test_the_candidates_modules_never_shadow_ours(tmp_path: Path) -> None:
    """A `grader` package or a `json.py` in the snapshot is read, never imported: the child runs from our folder."""
    marker = tmp_path / "imported"
    payload = f"open({str(marker)!r}, 'w').write('x')\n"
    write_tree(tmp_path / "repo", {"grader/__init__.py": payload, "grader/review/__init__.py": payload, "json.py": payload,
                                   "radon/__init__.py": payload, "sitecustomize.py": payload})
    review = review_code(tmp_path / "repo", Settings())
    assert not marker.exists()
    assert review.error == ""


def test_a_missing_snapshot_is_an_empty_review() -> None:
    review = review_code(Path("/nonexistent/snapshot"), Settings())
    assert (review.findings, review.error, review.metrics["python_files"]) == ([], "", 0)


def test_a_child_that_cannot_start_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage.sys, "executable", "/nonexistent/python")
    review = review_code(SOLUTIONS / "reference", Settings())
    assert review.error.startswith("the review could not start")


@pytest.mark.parametrize(("returncode", "stderr", "error"), [
    (1, b"Traceback...\nMemoryError\n", "the review ran out of its memory limit of 768 MB; the findings below are incomplete"),
    (-24, b"", "the review stopped at its time limit of 10 s; the findings below are incomplete"),
    (-11, b"", "the review stopped unexpectedly (signal SIGSEGV: no output); its findings are missing"),
    (0, b"", ""),
])
def test_how_the_child_ended_is_said_in_the_error(returncode: int, stderr: bytes, error: str) -> None:
    answer = stage._answer(returncode, b"" if returncode else b'{"findings": []}', stderr, 10, 768, 0.5)
    assert answer == CodeReview(error=error, duration_s=0.5)
