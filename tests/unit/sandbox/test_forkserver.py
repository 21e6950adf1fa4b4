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

from grader.sandbox import forkserver

PROGRAM = forkserver.host_path()


@pytest.fixture
def server(short_tmp: Path) -> Iterator[Path]:
    """An idle fork server (no serve command) on a socket of its own; killed afterwards."""
    path = short_tmp / "fs.sock"
    process = subprocess.Popen(
        [sys.executable, PROGRAM, "launch", json.dumps({"socket": str(path), "preload": ["json", "no_such_module"]})],
    )
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    yield path
    process.kill()
    process.wait()


def through(path: Path, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", PROGRAM, "client", str(path), *argv],
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
        [sys.executable, "-I", "-S", PROGRAM, "client", str(server), "/bin/sh", "-c", f"sleep 1.5; touch {marker}"],
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


def test_python_dash_m_of_this_python_runs_in_the_fork(server, short_tmp):
    """`python -m MODULE` with the server's own Python is run in the forked child (no new interpreter), with
    the module found from the working directory, as `-m` would find it."""
    (short_tmp / "probe_module.py").write_text(
        "import sys\nprint('\\0launch\\0' in open('/proc/self/cmdline').read(), sys.argv[1:])\nsys.exit(4)\n"
    )
    result = through(server, sys.executable, "-m", "probe_module", "a", "b", cwd=short_tmp)
    assert result.returncode == 4, result.stderr
    assert result.stdout.strip() == "True ['a', 'b']"


def test_a_server_with_a_parent_ends_with_it(short_tmp):
    """Given `parent`, the server exits (and removes its socket) once that process is gone."""
    path = short_tmp / "owned.sock"
    spec = json.dumps({"socket": str(path), "parent": 0}).replace('"parent": 0', '"parent": PARENT')
    script = f'{sys.executable} "$PROGRAM" launch "$(echo \'{spec}\' | sed "s/PARENT/$$/")" & sleep 1.5'
    parent = subprocess.Popen(["/bin/bash", "-c", script], env={**os.environ, "PROGRAM": PROGRAM})
    deadline = time.monotonic() + 5
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.exists(), "the server did not start"
    assert through(path, "/bin/sh", "-c", "exit 5").returncode == 5
    parent.wait(timeout=10)
    deadline = time.monotonic() + 5
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists(), "the server outlived its parent"
