"""The bounded walk, files that do not parse, and how findings are ordered, deduplicated and capped."""

from __future__ import annotations

import os
from pathlib import Path

from grader.models import CodeReview, Severity
from grader.review import findings, tree
from tests.unit.review import found, review_files, write_tree


def test_other_peoples_code_is_not_walked(tmp_path: Path) -> None:
    """Virtualenvs (by name or by pyvenv.cfg), node_modules, site-packages and hidden folders are skipped."""
    write_tree(tmp_path, {
        "app.py": "x = 1\n",
        ".venv/lib/a.py": "eval(x)\n", "venv/b.py": "eval(x)\n", "env/pyvenv.cfg": "", "env/lib/c.py": "eval(x)\n",
        "node_modules/d/e.py": "eval(x)\n", "lib/site-packages/f.py": "eval(x)\n", ".git/hooks/g.py": "eval(x)\n",
    })
    assert [source.path for source in tree.walk_tree(tmp_path).python] == ["app.py"]


def test_files_are_sorted_into_app_tests_and_migrations() -> None:
    kinds = {path: tree.python_kind(path) for path in (
        "app/views.py", "tests/test_views.py", "app/tests/helpers.py", "test_app.py", "app/views_test.py", "conftest.py",
        "migrations/versions/0001_init.py", "app/migrations/versions/0002.py", "migrations/env.py", "latest.py",
    )}
    assert [path for path, kind in kinds.items() if kind == "test"] == [
        "tests/test_views.py", "app/tests/helpers.py", "test_app.py", "app/views_test.py", "conftest.py",
    ]
    assert [path for path, kind in kinds.items() if kind == "migration"] == [
        "migrations/versions/0001_init.py", "app/migrations/versions/0002.py",
    ]


def test_large_files_and_links_are_named_in_the_metrics(tmp_path: Path) -> None:
    write_tree(tmp_path, {"app.py": "x = 1\n", "data.py": "#" * (tree.MAX_PYTHON_BYTES + 1)})
    os.symlink("/etc/hostname", tmp_path / "linked.py")
    answer = review_files(tmp_path, {})
    assert answer["metrics"]["skipped_files"] == 2
    assert answer["metrics"]["skipped"] == "data.py (over 256 KB); linked.py (a symbolic link, not followed)"


def test_a_symlink_out_of_the_tree_is_never_read(tmp_path: Path) -> None:
    """Links to a file and to a folder outside: neither the content nor the folder's files reach the review."""
    outside = tmp_path / "outside"
    write_tree(outside, {
        "secret.py": 'SECRET_KEY = "SENTINEL-1f3a"\n', "page.html": "<p>{{ x|safe }} SENTINEL-1f3a</p>\n",
        "Procfile": "web: flask run  # SENTINEL-1f3a\n",
    })
    root = write_tree(tmp_path / "repo", {"app/__init__.py": "from flask import Flask\n"})
    os.symlink(outside / "secret.py", root / "config.py")
    os.symlink(outside, root / "vendor")
    os.symlink(outside / "page.html", root / "app" / "page.html")
    os.symlink(outside / "Procfile", root / "Procfile")
    answer = review_files(root, {})
    assert "SENTINEL" not in str(answer)
    assert found(answer) == []
    assert answer["metrics"]["skipped_files"] == 4


def test_a_file_that_does_not_parse_is_a_correctness_finding(tmp_path: Path) -> None:
    """Python 2, a stray null byte, nesting Python refuses: findings, and the other files are still reviewed."""
    answer = review_files(tmp_path, {
        "legacy.py": "print 'hello'\n",
        "nul.py": "x = 1\0\n",
        "deep.py": "x = " + "+".join(["1"] * 100_000) + "\n",
        "app.py": "from flask import Flask\n\napp = Flask(__name__)\n",
    })
    assert found(answer, "grader:syntax-error") == [
        ("grader:syntax-error", "correctness", "deep.py", 0),
        ("grader:syntax-error", "correctness", "legacy.py", 1),
        ("grader:syntax-error", "correctness", "nul.py", 0),
    ]
    assert found(answer, "grader:no-app-factory") == [("grader:no-app-factory", "maintainability", "app.py", 3)]


def test_every_severity_of_the_review_is_a_model_severity() -> None:
    assert set(findings.SEVERITIES) == {severity.value for severity in Severity}
    assert list(findings.SEVERITIES)[0] == Severity.security.value


def test_findings_are_deduplicated_sorted_security_first_and_capped() -> None:
    """Ours replaces ruff's S201 on the same line; ten findings of one rule at most, fifty in all."""
    def make(rule: str, severity: str, file: str, line: int) -> findings.Finding:
        return findings.finding(rule, severity, file, line, [], "m")

    many = [make("ruff:S307", "security", "b.py", line) for line in range(1, 31)]
    many += [make(f"ruff:C9{i:02d}", "maintainability", "a.py", i) for i in range(60)]
    many += [make("grader:debug-mode", "security", "c.py", 3), make("ruff:S201", "security", "c.py", 3)]
    many += [make("grader:debug-mode", "security", "c.py", 3)]
    kept, left_out = findings.finalize(many)
    assert len(kept) == findings.MAX_FINDINGS
    assert left_out == 30 - findings.MAX_PER_RULE + 60 - (findings.MAX_FINDINGS - findings.MAX_PER_RULE - 1)
    assert [item["rule"] for item in kept[:11]] == ["ruff:S307"] * 10 + ["grader:debug-mode"]
    assert all(item["severity"] == "maintainability" for item in kept[11:])
    assert not any(item["rule"] == "ruff:S201" for item in kept)
    CodeReview.model_validate({"findings": kept})


def test_snippets_and_messages_are_trimmed_to_one_line() -> None:
    item = findings.finding("grader:x", "security", "a.py", 1, ["  x = '" + "a" * 500 + "'  "], "why\n" * 400)
    assert len(item["snippet"]) == findings.SNIPPET_CHARS and item["snippet"].endswith("…")
    assert "\n" not in item["message"] and len(item["message"]) == findings.MESSAGE_CHARS
