"""The app container's fork server, run on this machine: real processes, a real unix socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import forkserver

PROGRAM = forkserver.source()


@pytest.fixture
def server(short_tmp: Path) -> Iterator[Path]:
    """An idle fork server (no serve command) on a socket of its own; killed afterwards."""
    path = short_tmp / "fs.sock"
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "launch", json.dumps({"socket": str(path), "preload": ["json", "no_such_module"]})],
    )
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    yield path
    process.kill()
    process.wait()


def through(path: Path, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROGRAM, "client", str(path), *argv],
        capture_output=True, text=True, timeout=30, **kwargs,
    )


def test_command_runs_in_a_fork_of_the_server_with_the_clients_streams_env_and_cwd(server, short_tmp):
    script = "import os, sys; print(os.getcwd(), os.environ['PROBE']); print('to stderr', file=sys.stderr); sys.exit(7)"
    result = through(server, sys.executable, "-c", script, cwd=short_tmp, env={**os.environ, "PROBE": "yes"})
    assert result.returncode == 7
    assert result.stdout.split() == [str(short_tmp), "yes"]
    assert result.stderr.strip() == "to stderr"


def test_the_command_is_a_child_of_the_server_not_of_the_client(server):
    result = through(server, "/bin/sh", "-c", 'tr "\\0" " " < /proc/$PPID/cmdline')
    assert result.returncode == 0
    assert " launch " in result.stdout, result.stdout


def test_without_a_server_the_client_execs_the_command_itself(short_tmp):
    result = through(short_tmp / "absent.sock", "/bin/sh", "-c", 'echo direct; tr "\\0" " " < /proc/$PPID/cmdline; exit 3')
    assert result.returncode == 3
    assert result.stdout.startswith("direct")
    assert " launch " not in result.stdout


def test_a_killed_client_takes_its_command_down(server, short_tmp):
    marker = short_tmp / "still-running"
    client = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", PROGRAM, "client", str(server), "/bin/sh", "-c", f"sleep 1.5; touch {marker}"],
    )
    time.sleep(0.5)
    client.kill()
    client.wait()
    time.sleep(2)
    assert not marker.exists()


def test_a_command_killed_by_a_signal_exits_128_plus_the_signal(server):
    result = through(server, "/bin/sh", "-c", "kill -9 $$")
    assert result.returncode == 137


def test_a_missing_program_says_so_and_exits_127(server):
    result = through(server, "no-such-program-here")
    assert result.returncode == 127
    assert "no-such-program-here" in result.stderr


@pytest.mark.parametrize(
    ("command", "shell"),
    [
        ("gunicorn --config /dev/null --workers 4 --bind 127.0.0.1:8000 wsgi:app", False),
        ("flask --app wsgi db upgrade", False),
        ("flask db upgrade && flask seed", True),
        ("FLASK_APP=wsgi flask run", True),
        ("gunicorn $OPTIONS wsgi:app", True),
        ("python manage.py > /tmp/log", True),
        ("echo 'unterminated", True),
    ],
)
def test_shell_syntax_goes_through_the_shell(command, shell):
    assert forkserver.needs_shell(command) is shell


def test_a_module_that_fails_to_import_leaves_nothing_behind(tmp_path, monkeypatch):
    (tmp_path / "half_broken.py").write_text("import json\nimport fractions\nraise RuntimeError('at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fractions", None)
    forkserver.preload(["half_broken", "no_such_module_at_all", "json"])
    assert "half_broken" not in sys.modules
    assert "fractions" not in sys.modules
    assert "json" in sys.modules
