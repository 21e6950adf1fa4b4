"""Lanes on the fake sandbox: each lane's pod, its control socket and the suite's `app_control` client."""

from __future__ import annotations

import pytest

from grader.errors import BootFailed
from grader.models import SuiteSession
from grader.sandbox import ExecResult
from grader.sandbox.fake import FakeSandbox
from grader.sandbox.pod import start_pod
from grader.settings import Settings
from grader.stages.lanes import LaneResult, run_lanes
from harness.control import AppControl


def _run(sandbox: FakeSandbox, settings: Settings, in_lane, notes, image) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Run flask-notes' lanes with `in_lane(lane_id, control)` as each lane's suite; what each returned."""
    seen: dict[str, object] = {}
    pod = start_pod(image, notes, settings, sandbox)

    def run_tests(session: SuiteSession, files: list[str], lane: str) -> LaneResult:
        seen[lane] = in_lane(lane, AppControl(session))
        return LaneResult([])

    finished = run_lanes(pod, notes, settings, sandbox, run_tests, settings.paths.work_dir / image.submission_id)
    seen["boot_s"] = [lane.boot_s for lane in finished]
    return seen


def test_every_lane_gets_its_own_app_and_its_tests_drive_it_through_the_control_socket(quick, notes, image):
    """Lanes after the first boot their own pod (the cli lane starts idle); flask and restarts go over the socket."""
    sandbox = FakeSandbox(on_exec=lambda argv: ExecResult(0, "ran " + " ".join(argv[-3:]), False))

    def in_lane(lane: str, control: AppControl) -> tuple[str, str, str]:
        container = control.pod.app_container
        output = control.flask("db", "current").output
        control.restart(fresh_db=True, setup=False, serve=False)
        return container, output, control.pod.app_container

    seen = _run(sandbox, quick, in_lane, notes, image)
    lanes = [c.lane for c in notes.categories]
    assert set(seen) - {"boot_s"} == set(lanes)
    firsts = {seen[lane][0] for lane in set(lanes)}  # type: ignore[index]
    assert len(firsts) == len(set(lanes)), "each lane has its own app container"
    assert all(seen[lane][1] == "ran wsgi db current" for lane in set(lanes))  # type: ignore[index]
    assert all(seen[lane][0] != seen[lane][2] for lane in set(lanes)), "a restart is a new container"  # type: ignore[index]
    assert len(seen["boot_s"]) == len(notes.lanes()) and seen["boot_s"][0] == 0  # type: ignore[index]


def test_a_failed_boot_comes_back_to_the_test_as_boot_failed_with_the_output(quick, notes, image):
    """A restart whose app exits raises BootFailed in the test, with the app's output on one line."""
    sandbox = FakeSandbox()

    def in_lane(lane: str, control: AppControl) -> str:
        if lane != "main":
            return ""
        sandbox.boot_fails = lambda spec: "Traceback ...\nImportError: no module named notes"
        with pytest.raises(BootFailed) as failed:
            control.restart()
        with pytest.raises(BootFailed):
            control.restart()  # raised again at once, not booted again
        sandbox.boot_fails = lambda spec: None
        return failed.value.reason

    seen = _run(sandbox, quick, in_lane, notes, image)
    assert "exited with code 3" in str(seen["main"]) and "ImportError: no module named notes" in str(seen["main"])


def test_state_is_kept_until_a_restart_and_sql_errors_are_assertions(quick, notes, image):
    """`state` lives on the grader side and a restart clears it; failing SQL is an AssertionError in the test."""
    sandbox = FakeSandbox(on_exec=lambda argv: ExecResult(1, "sqlite3.OperationalError: no such table", False))

    def in_lane(lane: str, control: AppControl) -> tuple[str, str, str]:
        control.state = "migrations:head"
        kept = control.state
        with pytest.raises(AssertionError, match="no such table"):
            control.sql("SELECT * FROM nope")
        control.reset_database()
        return kept, control.state, str(control.app_running())

    seen = _run(sandbox, quick, in_lane, notes, image)
    assert seen["main"] == ("migrations:head", "", "True")


def test_a_database_the_app_made_a_link_is_refused_in_the_test_not_an_infra_error(quick, notes, image):
    """copy_database of a link (or an oversize file) raises ValueError in the test, which then fails as the app's doing."""

    def refuse(container_id: str, path: str, dest: object, limit: int) -> None:
        raise ValueError(f"{path} is not a regular file in the app container")

    sandbox = FakeSandbox()
    sandbox.copy_out = refuse  # type: ignore[method-assign]

    def in_lane(lane: str, control: AppControl) -> str:
        with pytest.raises(ValueError, match="not a regular file") as refused:
            control.database_bytes()
        return str(refused.value)

    assert "not a regular file" in str(_run(sandbox, quick, in_lane, notes, image)["main"])


def test_an_answer_left_by_a_test_stopped_at_its_time_limit_is_skipped(quick, notes, image):
    """A test interrupted while it waited leaves its answer on the socket; the next request gets its own."""

    def in_lane(lane: str, control: AppControl) -> tuple[str, str]:
        control._number += 1  # a request whose test was stopped: its answer arrives but is never read
        control._stream.write(b'{"id": %d, "op": "get_state"}\n' % control._number)
        control._stream.flush()
        control.state = "after"
        return control.state, str(control.app_running())

    assert _run(FakeSandbox(), quick, in_lane, notes, image)["main"] == ("after", "True")
