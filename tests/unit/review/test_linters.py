"""ruff over the candidate's files with our selection and none of theirs, and radon's figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.review import linters
from tests.unit.review import found, review_files

FACTORY = "from flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n    return app\n"


def test_ruff_codes_become_rules_with_our_severities(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/__init__.py": FACTORY,
        "app/tools.py": (
            "import subprocess\n\n\n"
            "def run(command, items=[]):\n"
            "    try:\n"
            "        return eval(command)\n"
            "    except:\n"
            "        subprocess.call(command, shell=True)\n"
        ),
    })
    assert set(found(answer)) >= {
        ("ruff:B006", "correctness", "app/tools.py", 4),
        ("ruff:S307", "security", "app/tools.py", 6),
        ("ruff:E722", "robustness", "app/tools.py", 7),
        ("ruff:S602", "security", "app/tools.py", 8),
    }
    eval_finding = next(f for f in answer["findings"] if f["rule"] == "ruff:S307")
    assert eval_finding["snippet"] == "return eval(command)"
    assert "runs any code" in eval_finding["message"]


def test_complexity_above_ten_is_maintainability(tmp_path: Path) -> None:
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(12))
    answer = review_files(tmp_path, {"app/logic.py": f"def decide(x):\n{branches}    return -1\n"})
    assert found(answer, "ruff:C901") == [("ruff:C901", "maintainability", "app/logic.py", 1)]
    assert answer["metrics"]["max_complexity"] == 13
    assert answer["metrics"]["max_complexity_at"] == "app/logic.py:1 decide"


def test_asserts_and_passwords_in_tests_are_not_findings(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/checks.py": "def check(user):\n    assert user is not None\n    return user\n",
        "tests/test_login.py": (
            "def test_login(client):\n    password = 'hunter22'\n    assert client.post('/login', data={'password': password})\n"
        ),
    })
    assert found(answer, "ruff:S101") == [("ruff:S101", "robustness", "app/checks.py", 2)]
    assert found(answer, "ruff:S105") == []


def test_the_candidates_ruff_configuration_and_noqa_are_ignored(tmp_path: Path) -> None:
    """`--isolated` and `--ignore-noqa`: a repository cannot switch our rules off (the snippet shows its comment)."""
    answer = review_files(tmp_path, {
        "pyproject.toml": '[tool.ruff]\nexclude = ["*"]\n[tool.ruff.lint]\nignore = ["S"]\n',
        "ruff.toml": 'exclude = ["app"]\n',
        "app/danger.py": "def run(code):\n    return eval(code)  # noqa: S307\n",
    })
    assert found(answer, "ruff:S307") == [("ruff:S307", "security", "app/danger.py", 2)]
    assert answer["findings"][0]["snippet"] == "return eval(code) # noqa: S307"


@pytest.mark.parametrize("code", ["S104", "S108", "S311", "S603", "S608"])
def test_noisy_ruff_rules_are_left_out(tmp_path: Path, code: str) -> None:
    source = (
        "import random\nimport subprocess\n\n\ndef f(name):\n"
        "    subprocess.run(['ls', name])\n    x = random.choice('ab')\n"
        "    return ('0.0.0.0', '/tmp/notes.db', f'SELECT * FROM {name}', x)\n"
    )
    answer = review_files(tmp_path, {"app/noise.py": source})
    assert found(answer, f"ruff:{code}") == []


def test_a_missing_ruff_is_an_error_of_ours_and_our_rules_still_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linters, "ruff_binary", lambda: None)
    answer = review_files(tmp_path, {"app.py": "from flask import Flask\n\napp = Flask(__name__)\napp.secret_key = 'x'\n"})
    assert "ruff is not installed" in answer["error"]
    assert [f[0] for f in found(answer)] == ["grader:hard-coded-secret", "grader:no-app-factory"]


def test_metrics_count_the_app_and_its_tests_apart(tmp_path: Path) -> None:
    answer = review_files(tmp_path, {
        "app/__init__.py": FACTORY,
        "app/big.py": "".join(f"x{i} = {i}\n" for i in range(40)),
        "tests/test_app.py": "def test_one():\n    assert True\n",
        "migrations/versions/0001.py": "".join(f"y{i} = {i}\n" for i in range(400)),
    })
    metrics = answer["metrics"]
    assert (metrics["python_files"], metrics["test_files"], metrics["migration_files"]) == (3, 1, 1)
    assert (metrics["python_lines"], metrics["test_lines"]) == (46, 2)
    assert (metrics["largest_module"], metrics["largest_module_lines"]) == ("app/big.py", 40)
    assert 0 < float(metrics["maintainability_index"]) <= 100
