"""`tiny`: a test-only assignment (one test per category) for the queue's, the web's and the pipeline's tests."""

from __future__ import annotations

from pathlib import Path

TINY_TOML = """\
id = "tiny"
title = "Tiny: a test-only assignment for the queue's tests"
version = "1"

[run]
setup = []
serve = "gunicorn --workers 1 --bind 127.0.0.1:8000 wsgi:app"
port = 8000
ready_path = "/"

[[categories]]
id = "hello"
title = "Says hello"
weight = 5

[[categories]]
id = "answer"
title = "Knows the answer"
weight = 5
"""
TINY_TESTS = {
    "test_hello.py": 'def test_hello(client):\n    """GET / says hello."""\n    assert client.get("/").text == "hello"\n',
    "test_answer.py": (
        "import time\n\n\ndef test_answer(client):\n"
        '    """GET /answer is 42, after sleeping as long as GET /sleep says (a test-only hook)."""\n'
        '    time.sleep(min(float(client.get("/sleep").text or 0), 30))\n'
        '    assert client.get("/answer").text == "42"\n'
    ),
}


def write_tiny_assignment(root: Path, brief: str = "# Tiny\n\nServe hello at / and 42 at /answer.\n") -> Path:
    """An assignments folder holding only `tiny`; returns the folder to use as assignments_dir."""
    folder = root / "assignments" / "tiny"
    (folder / "tests").mkdir(parents=True)
    (folder / "assignment.toml").write_text(TINY_TOML)
    (folder / "brief.md").write_text(brief)
    for name, text in TINY_TESTS.items():
        (folder / "tests" / name).write_text(text)
    return folder.parent
