"""The pod's life on the fake sandbox: start, boot failure, spare, restart, ready-or-idle, exec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.errors import BootFailed
from grader.sandbox import ExecResult
from grader.sandbox.fake import FakeSandbox
from grader.sandbox.pod import exec_in_app, ready_or_idle, restart_app, start_lane, start_pod, start_spare


def _launch(sandbox: FakeSandbox, container: str) -> dict[str, object]:
    spec: dict[str, object] = json.loads(sandbox.containers[container].spec.command[-1])
    return spec


def test_a_pod_is_a_relay_and_an_app_joined_to_its_namespace_serving_after_setup(quick, notes, image):
    """start_pod starts the relay, then the app in its namespace with no network, set up and serving."""
    sandbox = FakeSandbox()
    pod = start_pod(image, notes, quick, sandbox)
    app, relay = sandbox.containers[pod.app_container], sandbox.containers[pod.relay_container]
    assert relay.spec.role == "relay" and relay.spec.network == "none"
    assert app.spec.network == f"container:{pod.relay_container}" and app.spec.limits == "candidate"
    assert app.spec.volumes == {pod.volume: "/data"} and pod.volume in sandbox.volumes
    launch = _launch(sandbox, pod.app_container)
    assert launch["serve"] == pod.serving == pod.serve and launch["setup"] == notes.run.setup
    assert pod.socket_path.parent.stat().st_mode & 0o777 == 0o700
    assert "python" == app.spec.command[0] and len(" ".join(app.spec.command)) < 1000, "argv stays readable"


def test_a_boot_that_exits_is_boot_failed_with_the_apps_output(quick, notes, image):
    """An app that exits before answering is BootFailed naming its exit code, with its output."""
    sandbox = FakeSandbox(boot_fails=lambda spec: "Error: Could not import 'wsgi'.")
    with pytest.raises(BootFailed) as failed:
        start_pod(image, notes, quick, sandbox)
    assert "exited with code 3" in failed.value.reason and "Could not import 'wsgi'" in failed.value.log_tail


def test_ready_or_idle_puts_an_idle_app_on_the_same_database_after_a_failed_boot(quick, notes, image):
    """A later lane whose boot fails keeps an idle app (no server) on the same volume, and the failure."""
    sandbox = FakeSandbox()
    first = start_pod(image, notes, quick, sandbox)
    sandbox.boot_fails = lambda spec: "boom"
    lane = start_lane(first, notes, quick, sandbox, lane=2)
    pod, failed = ready_or_idle(lane, sandbox, quick)
    assert failed is not None and "boom" in failed.log_tail
    assert pod.serving == "" and pod.volume == lane.volume and _launch(sandbox, pod.app_container)["serve"] is None
    assert lane.app_container not in sandbox.containers, "the failed container is replaced"


def test_a_spare_has_its_own_relay_and_fresh_volume_and_serves_its_command(quick, notes, image):
    """start_spare boots a second pod of the same app on a fresh database, serving another command."""
    sandbox = FakeSandbox()
    pod = start_pod(image, notes, quick, sandbox)
    spare = start_spare(pod, "gunicorn -w 4 wsgi:app", "main-1", quick, sandbox)
    assert spare.relay_container != pod.relay_container and spare.volume != pod.volume
    assert spare.socket_path != pod.socket_path and spare.serving == "gunicorn -w 4 wsgi:app"


def test_restart_on_a_fresh_database_replaces_app_and_volume_and_keeps_the_relay(quick, notes, image):
    """restart_app(fresh_db=True) removes the old app and volume; the relay and its socket stay."""
    sandbox = FakeSandbox()
    pod = start_pod(image, notes, quick, sandbox)
    new = restart_app(pod, sandbox, quick, fresh_db=True, setup=False, serve=False)
    assert new.relay_container == pod.relay_container and new.socket_path == pod.socket_path
    assert pod.app_container not in sandbox.containers and pod.volume not in sandbox.volumes
    assert new.volume in sandbox.volumes and new.serving == ""
    kept = restart_app(new, sandbox, quick, fresh_db=False, setup=False, serve=True)
    assert kept.volume == new.volume and kept.serving == kept.serve


def test_exec_in_a_stopped_app_is_a_result_not_an_error(quick, notes, image):
    """A command in an app that exited answers -1 with a sentence; a running one goes to the sandbox."""
    sandbox = FakeSandbox(on_exec=lambda argv: ExecResult(0, " ".join(argv), False))
    pod = start_pod(image, notes, quick, sandbox)
    assert exec_in_app(pod, sandbox, ["flask", "--version"], 5, 100).output == "flask --version"
    sandbox.containers[pod.app_container].status = "exited"
    result = exec_in_app(pod, sandbox, ["flask", "--version"], 5, 100)
    assert result.exit_code == -1 and "not running" in result.output


def test_the_socket_folder_is_under_the_jobs_sockets(quick, notes, image):
    sandbox = FakeSandbox()
    pod = start_pod(image, notes, quick, sandbox)
    assert Path(pod.socket_path).is_relative_to(quick.paths.sockets_dir / image.submission_id)
