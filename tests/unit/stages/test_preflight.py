"""Preflight: the brief's layout checked on the host, statically and within limits, before any build."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from grader.assignments.model import Assignment, AssignmentError, LayoutEntry, load_assignment_folder
from grader.errors import Rejected
from grader.models import Snapshot, Status, SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.sandbox.fake import FakeSandbox
from grader.settings import Settings
from grader.stages.preflight import Limits, check_layout
from grader.stages.report import build_report, render_html, write_report
from tests.conftest import REFERENCE
from tests.tiny import write_tiny_assignment

MICROBLOG = {
    "requirements.txt": "flask==3.0.3\n",
    "microblog.py": "from app import create_app\n\napp = create_app()\n",
    "app/__init__.py": "from flask import Flask\n\n\ndef create_app():\n    return Flask(__name__)\n",
    "migrations/env.py": "",
}
GOOD = {
    "wsgi.py": "from notes_app import create_app\n\napp = create_app()\n",
    "notes_app/__init__.py": "def create_app():\n    return None\n",
    "migrations/env.py": "",
}


def _snapshot(root: Path, files: dict[str, str]) -> Snapshot:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return Snapshot(submission_id="s-unit", url=str(root), ref=None, commit="0" * 40, path=root)


def _reason(snapshot: Snapshot, assignment: Assignment) -> str:
    with pytest.raises(Rejected) as caught:
        check_layout(snapshot, assignment)
    assert caught.value.status == "rejected"
    return caught.value.reason


def test_missing_wsgi_is_a_stop_that_quotes_the_brief_and_lists_candidates(tmp_path, notes):
    """A microblog-like layout: the reason names wsgi.py, the brief's sentence and what was found, by definition."""
    reason = _reason(_snapshot(tmp_path, MICROBLOG), notes)
    assert reason.startswith("`wsgi.py` is missing at the repository root: the brief says \"`wsgi.py` must expose `app`")
    assert "Found instead: `microblog.py` (defines `app`; imports `create_app`), `app/__init__.py` (defines `create_app`)" in reason
    assert "add `wsgi.py` at the repository root with `from app import create_app` and `app = create_app()`" in reason
    assert "\n" not in reason and reason.endswith("then submit again.")


def test_missing_wsgi_with_nothing_to_suggest_says_so(tmp_path, notes):
    reason = _reason(_snapshot(tmp_path, {"README.md": "hi", "migrations/env.py": ""}), notes)
    assert "Found no top-level module or package that binds `app` or `create_app`" in reason


def test_wsgi_without_app_is_a_stop_naming_what_it_binds(tmp_path, notes):
    """wsgi.py that defines/imports no `app` at module level stops too; `app` inside a function does not count."""
    files = {**GOOD, "wsgi.py": "import os\nfrom notes_app import create_app\n\n\ndef main():\n    app = create_app()\n"}
    reason = _reason(_snapshot(tmp_path, files), notes)
    assert reason.startswith("`wsgi.py` does not define or import `app` at module level (it binds only `create_app`, `main`, `os`)")
    assert "bind `app` at module level in `wsgi.py`" in reason


@pytest.mark.parametrize(
    "wsgi",
    [
        "from notes_app import create_app\napp = create_app()\n",
        "from notes_app import app\n",
        "from notes_app import make as app\n",
        "import notes_app.server as app\n",
        "def app(environ, start_response):\n    return []\n",
        "try:\n    from notes_app import app\nexcept ImportError:\n    raise\n",
        "app: object = object()\n",
        "from notes_app import *\n",
        "if (app := object()):\n    pass\n",
    ],
)
def test_wsgi_exposing_app_passes(tmp_path, notes, wsgi):
    """Assignment, from-import, import-as, def, inside try, annotated, star-import and walrus all expose `app`."""
    assert check_layout(_snapshot(tmp_path, {**GOOD, "wsgi.py": wsgi}), notes).warnings == []


def test_the_reference_passes_with_no_warning(notes):
    snapshot = Snapshot(submission_id="s", url="r", ref=None, commit="0" * 40, path=REFERENCE)
    assert check_layout(snapshot, notes).warnings == []


def test_missing_migrations_is_a_warning_not_a_stop(tmp_path, notes):
    """No migrations/: one sentence naming the folder, the brief's sentence and the consequence; no raise."""
    files = {k: v for k, v in GOOD.items() if not k.startswith("migrations/")} | {"notes_app/migrations/env.py": ""}
    result = check_layout(_snapshot(tmp_path, files), notes)
    assert result.warnings == [
        '`migrations/` is missing at the repository root (found `notes_app/migrations/`, which the grader does not '
        'look in): the brief says "The migrations alone build the schema."; the Database migrations (`migrations`) '
        "category will fail, the other categories are still graded."
    ]


def test_a_file_where_a_folder_is_required_and_a_link_out_are_named(tmp_path, notes):
    (tmp_path / "outside.py").write_text("app = 1\n")
    root = tmp_path / "repo"
    root.mkdir()
    snapshot = _snapshot(root, {"migrations": "not a folder", "notes_app/__init__.py": ""})
    (root / "wsgi.py").symlink_to(tmp_path / "outside.py")
    assert "`wsgi.py` is a symbolic link that leaves the repository" in _reason(snapshot, notes)
    (root / "wsgi.py").unlink()
    (root / "wsgi.py").write_text("app = 1\n")
    assert check_layout(snapshot, notes).warnings[0].startswith("`migrations/` at the repository root is not a folder")


def test_a_syntax_error_or_garbage_in_a_candidate_does_not_crash(tmp_path, notes):
    """Unparsable candidates (syntax error, NUL bytes, deep nesting, bad encoding) are skipped, the others listed."""
    files = {
        **MICROBLOG,
        "broken.py": "def app(:\n",
        "nested.py": "x = " + "(" * 5000 + ")" * 5000 + "\n",
        "latin.py": "# -*- coding: klingon -*-\napp = 1\n",
    }
    snapshot = _snapshot(tmp_path, files)
    (tmp_path / "nul.py").write_bytes(b"app = 1\x00\n")
    reason = _reason(snapshot, notes)
    assert "`microblog.py` (defines `app`" in reason and "broken.py" not in reason and "nested.py" not in reason
    files = {**GOOD, "wsgi.py": "app = (\n"}  # wsgi.py itself unparsable: left to the boot, which shows Python's error
    assert check_layout(_snapshot(tmp_path / "b", files), notes).warnings == []


def test_nothing_is_imported_or_run(tmp_path, notes):
    """A candidate that would write a marker at import is only parsed: the marker never appears."""
    marker = tmp_path / "imported"
    code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\napp = create_app = None\n"
    root = tmp_path / "repo"
    root.mkdir()
    reason = _reason(_snapshot(root, {"microblog.py": code, "app/__init__.py": code, "migrations/x": ""}), notes)
    assert "`microblog.py` (defines `app` and `create_app`)" in reason
    snapshot = _snapshot(root, {"wsgi.py": code})
    check_layout(snapshot, notes)
    assert not marker.exists()


def test_a_huge_file_is_not_read_whole(tmp_path, notes):
    """A wsgi.py of 20 MB is not parsed (the boot will judge it) and takes no time; a huge candidate is skipped."""
    huge = "x = 1\n" * 3_500_000
    started = time.monotonic()
    assert check_layout(_snapshot(tmp_path / "a", {**GOOD, "wsgi.py": huge}), notes).warnings == []
    reason = _reason(_snapshot(tmp_path / "b", {"big.py": huge + "app = 1\n", "migrations/x": ""}), notes)
    assert "big.py" not in reason and time.monotonic() - started < 5


def test_many_files_are_bounded_by_the_limits(tmp_path, notes):
    """3,000 modules at the root: no more files parsed and entries seen than the limits, and the reason says so."""
    snapshot = _snapshot(tmp_path, {f"m{i:04}.py": "app = 1\n" for i in range(3000)} | {"migrations/x": ""})
    limits = Limits(max_files=50, max_entries=400)
    started = time.monotonic()
    with pytest.raises(Rejected) as caught:
        check_layout(snapshot, notes, limits)
    assert time.monotonic() - started < 5
    assert "(the search stopped at its limit)" in caught.value.reason
    found = re.search(r"Found instead: `m\d{4}\.py` \(defines `app`\), .* and (\d+) more", caught.value.reason)
    assert found and 5 + int(found[1]) <= 50, "no more candidates than files parsed"
    with pytest.raises(Rejected, match="stopped at its limit"):
        check_layout(snapshot, notes, Limits(budget_s=0))


def test_warnings_are_at_the_top_of_the_report_json_and_html(tmp_path, notes):
    request = SubmissionRequest(id="s-w", source="r", assignment="flask-notes")
    report = build_report(request, notes, status=Status.graded, warnings=["`migrations/` is <missing>"])
    folder = write_report(report, tmp_path)
    assert json.loads((folder / "report.json").read_text())["warnings"] == ["`migrations/` is <missing>"]
    html = render_html(report)
    assert "`migrations/` is &lt;missing&gt;" in html and html.index("Warnings") < html.index("<h2>Provenance")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"path": "../wsgi.py", "brief": "b"}, "no `.` or `..` parts"),
        ({"path": "/etc/passwd", "brief": "b"}, "relative to the repository root"),
        ({"path": "a/./b.py", "brief": "b"}, "no `.` or `..` parts"),
        ({"path": "wsgi.py", "brief": "b", "unknown": 1}, "Extra inputs are not permitted"),
        ({"path": "migrations/", "brief": "b", "exposes": ["app"]}, "only to a .py file"),
        ({"path": "wsgi.py", "brief": "b", "exposes": ["not a name"]}, "not a Python name"),
        ({"path": "migrations/", "brief": "b", "missing": "warn"}, "names the categories it affects"),
        ({"path": "wsgi.py", "brief": "b", "missing": "maybe"}, "missing"),
    ],
)
def test_layout_declarations_are_strict(entry, message):
    with pytest.raises(ValueError, match=message):
        LayoutEntry.model_validate(entry)


def _folder(tmp_path: Path, layout: str, brief: str = "Ship `wsgi.py` with `app`.\n") -> Path:
    (tmp_path / "brief.md").write_text(brief)
    (tmp_path / "assignment.toml").write_text(
        'id = "x"\ntitle = "X"\nversion = "1"\n[[categories]]\nid = "a"\ntitle = "A"\nweight = 1\n' + layout
    )
    return tmp_path


def test_an_assignment_names_only_its_categories_and_quotes_its_brief(tmp_path):
    """validate goes through the model: an unknown category, a duplicate and a misquoted brief name the field."""
    ok = '[[layout]]\npath = "wsgi.py"\nbrief = "Ship `wsgi.py`   with `app`."\nexposes = ["app"]\n'
    assert load_assignment_folder(_folder(tmp_path, ok)).layout[0].exposes == ["app"]
    bad = '[[layout]]\npath = "m/"\nbrief = "Ship `wsgi.py` with `app`."\nmissing = "warn"\naffects = ["zz"]\n'
    with pytest.raises(AssignmentError, match=r"affects \['zz'\]"):
        load_assignment_folder(_folder(tmp_path, bad))
    with pytest.raises(AssignmentError, match="each path once"):
        load_assignment_folder(_folder(tmp_path, ok + ok))
    with pytest.raises(AssignmentError, match="the sentence is not in brief.md"):
        load_assignment_folder(_folder(tmp_path, ok.replace("Ship", "Send")))


@pytest.fixture
def layout_tiny(settings: Settings, short_tmp: Path) -> Settings:
    """The tiny assignment with a required wsgi.py exposing app (stop) and a warned-about data/ folder."""
    root = write_tiny_assignment(short_tmp, brief="# Tiny\n\nPut `wsgi.py` at the root. Keep a `data/` folder.\n")
    toml = root / "tiny" / "assignment.toml"
    toml.write_text(
        toml.read_text()
        + '\n[[layout]]\npath = "wsgi.py"\nbrief = "Put `wsgi.py` at the root."\nexposes = ["app"]\nlook_for = ["app"]\n'
        + '\n[[layout]]\npath = "data/"\nbrief = "Keep a `data/` folder."\nmissing = "warn"\naffects = ["answer"]\n'
    )
    return settings.replace(assignments_dir=root, boot_timeout_s=0.5)


def test_pipeline_stops_a_missing_required_file_before_any_build(layout_tiny, git_repo):
    """On the fake sandbox: rejected, the reason names wsgi.py and the candidate, and build_image is never called."""
    sandbox = FakeSandbox()
    repo = git_repo(files={"requirements.txt": "gunicorn==23.0.0\n", "server.py": "app = None\n"})
    request = SubmissionRequest(id=new_submission_id(), source=str(repo), assignment="tiny")
    report = grade_submission(request, layout_tiny, sandbox=sandbox)
    assert report.status is Status.rejected and report.score == 0
    assert report.reason.startswith("`wsgi.py` is missing at the repository root")
    assert "Found instead: `server.py` (defines `app`)" in report.reason
    assert "build_image" not in sandbox.calls and report.source.commit
    assert report.timings.preflight_s < 2 and report.timings.build_s == 0


def test_pipeline_grades_with_a_warning_at_the_top(layout_tiny, git_repo):
    """A missing `warn` entry: still graded, the warning in the report."""
    sandbox = FakeSandbox(http=lambda method, path: (200, {"/": "hello", "/answer": "42", "/sleep": "0"}.get(path, "")))
    repo = git_repo(files={"requirements.txt": "gunicorn==23.0.0\n", "wsgi.py": "app = None\n"})
    request = SubmissionRequest(id=new_submission_id(), source=str(repo), assignment="tiny")
    report = grade_submission(request, layout_tiny, sandbox=sandbox)
    assert report.status is Status.graded and report.score == 10, report.reason
    assert report.warnings == [
        '`data/` is missing at the repository root: the brief says "Keep a `data/` folder."; the Knows the answer '
        "(`answer`) category will fail, the other categories are still graded."
    ]
