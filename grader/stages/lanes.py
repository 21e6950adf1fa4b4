"""The lanes of a hidden suite: each lane's categories run in one pytest process against the lane's own app.

The first lane runs on the pod the boot stage started; each further lane boots its own (unless its first
category starts idle), beside the others while a machine-wide lane slot is free, else in turn. A lane's
later category that serves the app differently gets a spare pod booted in the background from the lane's
start. This module is the only caller that starts lanes and spares (through grader/stages/lane.py); the
pytest processes ask it for restarts over each lane's control socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignments.model import Assignment, Category
from grader.errors import BootFailed, InfraError
from grader.filelock import HeldSlots, take_free_slots
from grader.models import Pod, SuiteSession, TestResult
from grader.sandbox import Sandbox
from grader.sandbox.pod import ready_or_idle, start_lane
from grader.settings import Settings
from grader.stages.control import ControlServer
from grader.stages.diagnose import entry_point, refine_boot_failure
from grader.stages.lane import Lane


@dataclass(frozen=True)
class LaneResult:
    """What one lane's pytest process left: each collected test's result, why it stopped early if it did,
    and the seconds its app took to boot before its tests (0 for the first lane, booted by the boot stage)."""

    results: list[TestResult]
    stopped: str = ""
    boot_s: float = 0.0
    rerun_s: float = 0.0
    worker_log: str = ""
    worker_ready_s: list[float] = field(default_factory=list)
    lane: str = ""
    seconds: float = 0.0
    """The lane's wall time: its boot, its tests and their re-runs."""


RunTests = Callable[[SuiteSession, list[str], str], LaneResult]
log = logging.getLogger(__name__)


def run_lanes(
    pod: Pod, assignment: Assignment, settings: Settings, sandbox: Sandbox, run_tests: RunTests, work: Path
) -> list[LaneResult]:
    """Every lane of the assignment, each with its app and its control socket; the results in lane order."""
    serve_by_category = {c.id: assignment.serve_of(c) for c in assignment.categories}

    def run_lane(index: int, categories: list[Category]) -> LaneResult:
        started = time.monotonic()
        lane_pod, failures = (pod, {}) if index == 0 else _boot_lane(pod, assignment, settings, sandbox, index)
        boot_s = 0.0 if index == 0 else round(time.monotonic() - started, 3)
        later = dict.fromkeys(assignment.serve_of(c) for c in categories[1:])
        spares = [serve for serve in later if serve != assignment.serve_of(categories[0])]
        folder = work / categories[0].lane
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        lane = Lane(
            lane_pod, sandbox, settings, serve_by_category=serve_by_category, spare_serves=spares,
            boot_failures=failures, work=folder, worker=assignment.run.worker,
        )
        server = ControlServer(lane, folder / "control.sock")
        try:
            session = SuiteSession(control_socket=server.path, request_timeout_s=settings.timeouts.request_s)
            files = [str(assignment.tests_dir / c.test_file) for c in categories]
            result = run_tests(session, files, categories[0].lane)
            rerun_started = time.monotonic()
            results = result.results if result.stopped else rerun_failures(result.results, session, assignment, settings, run_tests)
            rerun_s = round(time.monotonic() - rerun_started, 3)
        finally:
            server.close()
            lane.close()
        worker = lane.worker
        log = f"--- lane {categories[0].lane} ---\n{worker.output()}" if worker is not None and worker.starts else ""
        return LaneResult(
            results, result.stopped, boot_s, rerun_s, log, list(worker.ready_s) if worker else [],
            lane=categories[0].lane, seconds=round(time.monotonic() - started, 3),
        )

    lanes = assignment.lanes()
    return schedule_lanes(lanes, run_lane, settings, [assignment.lane_weight() for _ in lanes])


def rerun_failures(
    results: list[TestResult], session: SuiteSession, assignment: Assignment, settings: Settings, run_tests: RunTests,
) -> list[TestResult]:
    """Re-run each failed test once, in the same lane, for diagnosis only: the outcome is kept in `rerun` and the
    score keeps the first. Tests stopped at their time limit, or never run to the end, are not re-run."""
    failed = [
        r for r in results
        if r.outcome.lost
        and not r.message.startswith(("Failed: Timeout", "not run"))
    ][: settings.sandbox.diagnosis_reruns]
    if not failed:
        return results
    ids = [str(assignment.tests_dir / r.id) for r in failed]
    try:
        again = run_tests(session, ids, f"{failed[0].category}-rerun")
    except InfraError as exc:  # the diagnosis is lost, not the grade
        log.warning("re-running failed tests for diagnosis failed: %s", exc.reason)
        return results
    outcomes = {} if again.stopped else {r.id: r.outcome for r in again.results}
    return [r.model_copy(update={"rerun": outcomes[r.id]}) if r.id in outcomes else r for r in results]


def _boot_lane(
    pod: Pod, assignment: Assignment, settings: Settings, sandbox: Sandbox, index: int
) -> tuple[Pod, dict[str, BootFailed]]:
    """Another lane's pod, its app booted unless the lane starts idle. A boot that fails costs only the lane's
    tests that need the app served: they fail at once with its cause (when the app's output shows one) and the
    output, and an idle app on the same database takes its place, for the Flask CLI and SQL."""
    lane_pod = start_lane(pod, assignment, settings, sandbox, index)
    serving = lane_pod.serving
    if not serving:
        return lane_pod, {}
    lane_pod, failed = ready_or_idle(lane_pod, sandbox, settings)
    return lane_pod, ({} if failed is None else {serving: refine_boot_failure(failed, entry=entry_point(serving))})


def schedule_lanes(
    lanes: list[list[Category]], run_lane: Callable[[int, list[Category]], LaneResult], settings: Settings,
    weights: list[int] | None = None,
) -> list[LaneResult]:
    """Run the lanes, the first at once; each further one beside it while machine-wide lane slots are free
    (and `parallel_lanes`), else when this grade has no lane running. A lane takes as many slots as it weighs
    (its app, plus its services and its worker, each a container as heavy: `Assignment.lane_weight`). Slots are
    flocks, so lanes of every grading process on the host count, and a slot held by a process that died is free
    again."""
    weights = weights or [1] * len(lanes)
    slots = settings.sandbox.lane_slot_count
    folder = settings.paths.lane_slots_dir
    results: dict[int, LaneResult] = {}
    pending = list(range(len(lanes)))

    def run(index: int, slot: HeldSlots | None) -> LaneResult:
        try:
            return run_lane(index, lanes[index])
        finally:
            if slot is not None:
                slot.close()

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        running: dict[Future[LaneResult], int] = {}
        while pending or running:
            while pending:
                weight = weights[pending[0]]
                slot = take_free_slots(folder, slots, weight) if settings.sandbox.parallel_lanes or not running else None
                if slot is None and running:
                    break
                index = pending.pop(0)
                running[pool.submit(run, index, slot)] = index
            done, _ = wait(running, timeout=0.25 if pending else None, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
    return [results[index] for index in range(len(lanes))]
