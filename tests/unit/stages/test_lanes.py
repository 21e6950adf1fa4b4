"""Scheduling an assignment's lanes: beside each other while machine-wide lane slots are free, else in turn."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from grader.filelock import take_free_slot, take_free_slots
from grader.models import TestOutcome, TestResult
from grader.settings import Settings
from grader.stages.lanes import LaneResult, rerun_failures, schedule_lanes


class Recorder:
    """A fake lane runner: notes how many lanes run at once and in which order they started."""

    def __init__(self, seconds: float = 0.3, fail: int | None = None) -> None:
        self.seconds, self.fail = seconds, fail
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.started: list[int] = []

    def __call__(self, index: int, categories: list) -> LaneResult:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.started.append(index)
        time.sleep(self.seconds)
        with self.lock:
            self.now -= 1
        if index == self.fail:
            raise RuntimeError(f"lane {index} broke")
        return LaneResult([], f"lane {index}")


LANES: list[list] = [["main"], ["cli"], ["concurrency"]]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "var")


def test_lanes_run_side_by_side_up_to_the_free_slots(settings):
    runner = Recorder()
    results = schedule_lanes(LANES, runner, settings.replace(lane_slots=2))
    assert [lane.stopped for lane in results] == ["lane 0", "lane 1", "lane 2"]
    assert runner.most == 2
    assert runner.started[0] == 0


def test_enough_slots_run_every_lane_at_once(settings):
    runner = Recorder()
    schedule_lanes(LANES, runner, settings.replace(lane_slots=3))
    assert runner.most == 3


def test_slots_held_by_other_grades_leave_one_lane_at_a_time(settings):
    """Another grading process holds every slot: this grade still runs, its lanes in turn."""
    held = [take_free_slot(settings.paths.data_dir / "lane-slots", 2) for _ in range(2)]
    assert all(held)
    runner = Recorder(seconds=0.1)
    results = schedule_lanes(LANES, runner, settings.replace(lane_slots=2))
    assert runner.most == 1 and runner.started == [0, 1, 2]
    assert len(results) == 3
    assert take_free_slot(settings.paths.data_dir / "lane-slots", 2) is None, "the other grade's slots stayed held"


def test_a_slot_freed_by_another_grade_is_taken_while_this_grade_runs(settings):
    held = [take_free_slot(settings.paths.data_dir / "lane-slots", 2) for _ in range(2)]
    threading.Timer(0.3, held[0].close).start()
    runner = Recorder(seconds=0.8)
    schedule_lanes(LANES, runner, settings.replace(lane_slots=2))
    assert runner.most == 2


def test_heavy_lanes_take_as_many_slots_as_they_weigh(settings):
    """Lanes of three containers (app, services, worker) on six slots: two at once, not three."""
    runner = Recorder(seconds=0.3)
    schedule_lanes(LANES, runner, settings.replace(lane_slots=6), weights=[3, 3, 3])
    assert runner.most == 2
    heavier = Recorder(seconds=0.1)
    schedule_lanes(LANES, heavier, settings.replace(lane_slots=2), weights=[5, 5, 5])
    assert heavier.most == 1 and heavier.started == [0, 1, 2], "a lane heavier than every slot still runs, alone"


def test_weighted_slots_are_taken_all_or_none(settings):
    folder = settings.paths.data_dir / "lane-slots"
    other = take_free_slot(folder, 3)
    assert take_free_slots(folder, 3, 3) is None, "two free slots are not three"
    assert take_free_slot(folder, 3) is not None, "a refused lane held none of them"
    assert other is not None


def test_without_parallel_lanes_they_run_in_turn(settings):
    runner = Recorder(seconds=0.1)
    schedule_lanes(LANES, runner, settings.replace(lane_slots=3, parallel_lanes=False))
    assert runner.most == 1 and runner.started == [0, 1, 2]


def test_slots_are_freed_when_lanes_end_even_by_an_error(settings):
    runner = Recorder(seconds=0.1, fail=1)
    with pytest.raises(RuntimeError, match="lane 1 broke"):
        schedule_lanes(LANES, runner, settings.replace(lane_slots=3))
    slots = [take_free_slot(settings.paths.data_dir / "lane-slots", 3) for _ in range(3)]
    assert all(slots), "a lane slot stayed held after its lane ended"


def test_default_slots_are_one_per_core_plus_one(settings):
    """0 means the default: a lane waits on its app part of the time, so one more lane than cores fits."""
    assert settings.replace(lane_slots=0).sandbox.lane_slot_count == (os.cpu_count() or 1) + 1
    assert settings.replace(lane_slots=5).sandbox.lane_slot_count == 5


def _result(test: str, outcome: str, message: str = "") -> TestResult:
    return TestResult(id=test, title=test, category="auth", outcome=TestOutcome(outcome), message=message)


def test_failed_tests_are_re_run_once_for_diagnosis_and_the_first_outcome_stays(settings, tmp_path):
    """A failure that passes on its re-run is kept failed, with `rerun` passed (intermittent); a timeout is not re-run."""
    from grader.assignments.model import load_assignment
    from grader.models import SuiteSession

    notes = load_assignment(settings.paths.assignments_dir, "flask-notes")
    asked: list[list[str]] = []

    def run_tests(session: SuiteSession, files: list[str], lane: str) -> LaneResult:
        asked.append(files)
        return LaneResult([_result("test_auth.py::test_a", "passed"), _result("test_auth.py::test_b[x]", "failed")])

    first = [
        _result("test_auth.py::test_a", "failed"), _result("test_auth.py::test_b[x]", "error"),
        _result("test_auth.py::test_c", "failed", "Failed: Timeout >60.0s"), _result("test_auth.py::test_d", "passed"),
    ]
    session = SuiteSession(control_socket=tmp_path / "c.sock", request_timeout_s=1)
    again = rerun_failures(first, session, notes, settings, run_tests)
    assert asked == [[str(notes.tests_dir / "test_auth.py::test_a"), str(notes.tests_dir / "test_auth.py::test_b[x]")]]
    assert [(r.outcome.value, r.rerun and r.rerun.value, r.intermittent) for r in again] == [
        ("failed", "passed", True), ("error", "failed", False), ("failed", None, False), ("passed", None, False),
    ]
    assert rerun_failures(first, session, notes, settings.replace(diagnosis_reruns=0), run_tests) == first
