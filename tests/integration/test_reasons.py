"""Reasons distilled from a real app's output: the flask-notes reference with one line changed, graded for real."""

from __future__ import annotations

import pytest

from grader.models import Status
from tests.conftest import REFERENCE

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _changed(path: str, old: str, new: str) -> dict[str, str]:
    text = (REFERENCE / path).read_text()
    assert old in text, f"{path} no longer has {old!r}"
    return {path: text.replace(old, new, 1)}


def test_a_module_not_in_requirements_names_the_module_and_its_importer(grade, git_repo):
    """`import markdown` in notes_app/pages.py, no Markdown in requirements.txt: boot_failed, the reason names
    both, the log stays in the report and opens with no warning of the grader's own tooling."""
    files = _changed("notes_app/pages.py", "\nfrom flask import", "\nimport markdown\nfrom flask import")
    report = grade(str(git_repo(REFERENCE, files=files)), boot_timeout_s=20)
    assert report.status is Status.boot_failed
    assert report.reason.startswith(
        "`markdown` is imported by `notes_app/pages.py` (line 5) but is not in your dependencies: "
        "add it to requirements.txt (or your pyproject)"
    ), report.reason
    output = report.logs.get("output", "")
    assert "ModuleNotFoundError: No module named 'markdown'" in output
    assert "Starting gunicorn" in output, output
    assert "valid Python extension" not in output, output


def test_a_config_that_crashes_at_import_names_the_exception_and_the_line(grade, git_repo):
    """A KeyError at import in notes_app/config.py: the exception's line and the candidate's file:line."""
    files = _changed("notes_app/config.py", "\n_TRUE = ", '\n_DB = os.environ["NOTES_DB_URL"]\n_TRUE = ')
    report = grade(str(git_repo(REFERENCE, files=files)), boot_timeout_s=20)
    assert report.status is Status.boot_failed
    assert report.reason.startswith(
        "the app crashed at import: KeyError: 'NOTES_DB_URL' (notes_app/config.py line 8)"
    ), report.reason
    assert "KeyError: 'NOTES_DB_URL'" in report.logs.get("output", "")
