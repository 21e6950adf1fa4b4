"""The fork server in a real app container: Flask CLI commands forked from preloaded libraries, the
serve command's master holding them, and the plain path when there is no server."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from grader.assignments.model import load_assignment
from grader.models import SubmissionRequest
from grader.pipeline import new_submission_id
from grader.sandbox import forkserver
from grader.sandbox.docker import DockerSandbox, remove_submission_resources
from grader.sandbox.pod import exec_in_app, start_pod
from grader.settings import Settings
from grader.stages.build import build_image
from grader.stages.intake import fetch_snapshot
from grader.stages.lane import Lane
from tests.conftest import REFERENCE

pytestmark = [pytest.mark.docker, pytest.mark.slow]

_CMDLINE = "for p in /proc/[0-9]*; do tr '\\0\\n' '  ' < $p/cmdline 2>/dev/null; echo; done"


@pytest.fixture
def control(settings: Settings, engine: docker.DockerClient, git_repo, graded_ids: list[str]) -> Iterator[Lane]:
    """The flask-notes reference booted as a grade boots it, and the lane the hidden tests' app_control drives."""
    job = new_submission_id()
    graded_ids.append(job)
    request = SubmissionRequest(id=job, source=str(git_repo(REFERENCE)), assignment="flask-notes")
    assignment = load_assignment(settings.paths.assignments_dir, "flask-notes")
    try:
        sandbox = DockerSandbox(engine, settings)
        image = build_image(fetch_snapshot(request, settings), settings, sandbox)
        pod = start_pod(image, assignment, settings, sandbox)
        yield Lane(pod, sandbox, settings, serve_by_category={}, work=settings.paths.work_dir / job)
    finally:
        remove_submission_resources(engine, job)


def _processes(control: Lane) -> list[str]:
    return [line for line in control.run(["/bin/sh", "-c", _CMDLINE]).output.splitlines() if line.strip()]


def test_flask_commands_in_an_idle_container_fork_from_the_preloaded_server(control, engine, settings):
    control.restart(fresh_db=True, setup=False, serve=False)
    upgrade = control.flask(["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    assert "Running upgrade" in upgrade.output
    assert {"users", "notes"} <= {row[0] for row in control.sql([("SELECT name FROM sqlite_master", [])])}
    failing = control.flask(["db", "downgrade", "no-such-revision"])
    assert failing.exit_code != 0 and "no-such-revision" in failing.output
    probe = "import sys; print('flask_migrate' in sys.modules, 'notes_app' in sys.modules)"
    child = exec_in_app(
        control.pod, control.sandbox,
        [settings.sandbox.system_python, "-I", "-S", forkserver.IMAGE_PATH, "client", forkserver.SOCKET_PATH,
         "python", "-c", probe],
        30, 10_000,
    )
    assert child.exit_code == 0, child.output
    assert child.output.split() == ["False", "False"], "a plain program is exec'd, not given the server's modules"
    server = [line for line in _processes(control) if " launch " in line]
    assert len(server) == 1 and '"serve": null' in server[0], server


def test_serving_container_runs_setup_then_gunicorn_and_nothing_else(control):
    """The app's own processes only (a hostile app may count or signal them), and Flask CLI commands still run."""
    tables = {row[0] for row in control.sql([("SELECT name FROM sqlite_master", [])])}
    assert {"users", "notes", "alembic_version"} <= tables, "the setup command (flask db upgrade) ran"
    launched = [line for line in _processes(control) if " launch " in line]
    assert len(launched) == 2, launched  # gunicorn's master (the launcher itself) and its one worker
    assert all(line.startswith(f"python {forkserver.IMAGE_PATH} launch ") and len(line) < 1024 for line in launched), (
        "the process list reads as the app's commands, not the fork server's source"
    )
    history = control.flask(["db", "history"])
    assert history.exit_code == 0 and "(head)" in history.output, history.output


def test_a_command_past_its_time_limit_is_killed_with_its_children(control):
    control.restart(fresh_db=True, setup=False, serve=False)
    client = [control.settings.sandbox.system_python, "-I", "-S", forkserver.IMAGE_PATH, "client", forkserver.SOCKET_PATH]
    result = control.run([*client, "/bin/sh", "-c", "sleep 40 & sleep 41"], timeout=2)
    assert result.timed_out
    assert not [line for line in _processes(control) if line.startswith("sleep 4")]


def test_without_the_server_commands_still_run(control):
    control.restart(fresh_db=True, setup=False, serve=False)
    assert control.run(["rm", "-f", forkserver.SOCKET_PATH]).exit_code == 0
    upgrade = control.flask(["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    assert "users" in {row[0] for row in control.sql([("SELECT name FROM sqlite_master", [])])}
