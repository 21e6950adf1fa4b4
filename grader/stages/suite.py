"""Stage 4: run the assignment's hidden suite against the pod, in a pytest process of our own.

The suite runs on the trusted side; the results come only from the plugin's JSON lines file, which
the app cannot reach. The process is killed at the suite's time limit; tests that never reported
are recorded as errors, the rest keep their results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO

import docker
from pydantic import ValidationError

from grader.assignments.model import Assignment, Category, category_of_file, test_functions
from grader.errors import InfraError
from grader.filelock import take_free_slot
from grader.models import Pod, SuiteOutcomes, TestOutcome, TestResult
from grader.sandbox import forkserver
from grader.sandbox.docker import JOB_LABEL, LANE_LABEL, ROLE_LABEL, log_tail, oom_kills
from grader.sandbox.pod import ready_or_idle, start_lane
from grader.settings import PROJECT_ROOT, Settings
from harness.control import LaneBootFailure, SuiteSession

_MAX_RESULT_LINE = 256 * 1024
LaneResult = tuple[list[TestResult], str]
_SUITE_PRELOAD = [
    "pytest", "_pytest.main", "_pytest.python", "_pytest.fixtures", "_pytest.runner", "pytest_timeout",
    "harness.plugin", "requests", "docker",
]


class SuiteForkServer:
    """A fork server (grader/forkserver.py) on the grader's side with pytest and the harness imported: each
    lane's pytest process forks from it instead of importing them again (about 0.4 CPU-s and 0.3 s a lane).

    One per grading process, started at its first suite; it exits when that process does. When it is gone,
    the pytest process is simply started as before."""

    _by_process: dict[int, SuiteForkServer] = {}
    _starting = threading.Lock()

    def __init__(self, path: Path, process: subprocess.Popen[bytes]) -> None:
        self.path, self.process = path, process

    @classmethod
    def socket_for_this_process(cls, settings: Settings, env: dict[str, str]) -> Path | None:
        with cls._starting:
            return cls._socket(settings, env)

    @classmethod
    def _socket(cls, settings: Settings, env: dict[str, str]) -> Path | None:
        server = cls._by_process.get(os.getpid())
        if server is not None and server.process.poll() is None and server.path.exists():
            return server.path
        path = settings.paths.sockets_dir / f"suite-{os.getpid()}.sock"
        if len(str(path)) > 100:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        spec = {"socket": str(path), "preload": _SUITE_PRELOAD, "parent": os.getpid()}
        process = subprocess.Popen(
            [sys.executable, "-c", forkserver.source(), "launch", json.dumps(spec)], env=env, cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 2
        while not path.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        cls._by_process[os.getpid()] = cls(path, process)
        return path if path.exists() else None


def _command(files: list[str], tests_dir: str, session_file: str, results_file: str, settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "pytest", *files,
        "-p", "pytest_timeout", "-p", "harness.plugin", "-p", "no:cacheprovider",
        "--grader-session", session_file, "--grader-results", results_file,
        "--timeout", str(int(settings.timeouts.test_s)), "--rootdir", tests_dir,
        "-q", "--no-header", "-o", "addopts=", "-W", "ignore::DeprecationWarning",
    ]


def _read_results(path: str) -> tuple[list[dict[str, str]], dict[str, TestResult]]:
    """The collected tests and each finished test's result; raises InfraError if our machinery failed in a test."""
    collected: list[dict[str, str]] = []
    results: dict[str, TestResult] = {}
    infra: list[str] = []
    if not os.path.exists(path):
        return collected, results
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if len(line) > _MAX_RESULT_LINE:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind = record.pop("type", None)
            if kind == "collected":
                collected = record["tests"]
            elif kind == "infra":
                infra.append(f"{record.get('test')}: {record.get('message')}")
            elif kind == "result":
                try:
                    result = TestResult.model_validate(record)
                except ValidationError:
                    continue
                results[result.id] = result
    if infra:
        raise InfraError(f"the grader's machinery failed during the hidden suite: {infra[0]}")
    return collected, results


def run_suite(pod: Pod, assignment: Assignment, settings: Settings, client: docker.DockerClient) -> SuiteOutcomes:
    """Run every hidden test once, each lane of categories in its own pytest process against its own app,
    the lanes at the same time while lane slots are free (see `_schedule_lanes`); the whole suite is stopped
    at `suite_timeout_s`.

    Each lane after the first boots its own app first (unless it starts idle). Within a lane, a later
    category that serves the app differently (four workers after one...) gets a spare pod booted in the
    background from the lane's start, so its tests start on a booted app.
    """
    work = settings.paths.work_dir / pod.job_id / "suite"
    deadline = time.monotonic() + settings.timeouts.suite_s
    serve_by_category = {c.id: assignment.serve_of(c) for c in assignment.categories}

    def run_lane(index: int, categories: list[Category]) -> LaneResult:
        lane_pod, failures = (pod, []) if index == 0 else _boot_lane(pod, assignment, settings, client, index)
        files = [str(assignment.tests_dir / f"test_{c.id}.py") for c in categories]
        later = dict.fromkeys(assignment.serve_of(c) for c in categories[1:])
        spares = [serve for serve in later if serve != assignment.serve_of(categories[0])]
        session = SuiteSession(
            pod=lane_pod, settings=settings.model_dump(mode="json"), serve_by_category=serve_by_category,
            spare_serves=spares, boot_failures=failures,
        )
        return _run_pytest(session, files, assignment, settings, work / categories[0].lane, deadline)

    finished = _schedule_lanes(assignment.lanes(), run_lane, settings)
    order = {c.id: i for i, c in enumerate(assignment.categories)}
    results = sorted((r for lane_results, _ in finished for r in lane_results), key=lambda r: order.get(r.category, len(order)))
    stopped = next((reason for _, reason in finished if reason), "")
    limits = ["suite_time"] if stopped else []
    if any(r.message.startswith("Failed: Timeout") for r in results):
        limits.append("test_time")
    if oom_kills(client, pod.job_id, pod.started_at) > 0:
        limits.append("memory")
    return SuiteOutcomes(results=results, stopped_reason=stopped, app_log_tail=_app_log(client, pod, settings), limits_hit=limits)


def _schedule_lanes(
    lanes: list[list[Category]], run_lane: Callable[[int, list[Category]], LaneResult], settings: Settings
) -> list[LaneResult]:
    """Run the lanes, the first at once; each further one beside it while a machine-wide lane slot is free
    (and `parallel_lanes`), else when this grade has no lane running. Slots are flocks, so lanes of every
    grading process on the host count, and a slot held by a process that died is free again."""
    slots = settings.sandbox.lane_slot_count
    folder = settings.paths.data_dir / "lane-slots"
    results: dict[int, LaneResult] = {}
    pending = list(range(len(lanes)))

    def run(index: int, slot: IO[str] | None) -> LaneResult:
        try:
            return run_lane(index, lanes[index])
        finally:
            if slot is not None:
                slot.close()

    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        running: dict[Future[LaneResult], int] = {}
        while pending or running:
            while pending:
                slot = take_free_slot(folder, slots) if settings.sandbox.parallel_lanes or not running else None
                if slot is None and running:
                    break
                index = pending.pop(0)
                running[pool.submit(run, index, slot)] = index
            done, _ = wait(running, timeout=0.25 if pending else None, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
    return [results[index] for index in range(len(lanes))]


def _boot_lane(
    pod: Pod, assignment: Assignment, settings: Settings, client: docker.DockerClient, index: int
) -> tuple[Pod, list[LaneBootFailure]]:
    """Another lane's pod, its app booted unless the lane starts idle. A boot that fails costs only the lane's
    tests that need the app served: they fail at once with the app's output, and an idle app on the same
    database takes its place, for the Flask CLI and SQL."""
    lane_pod = start_lane(pod, assignment, settings, client, index)
    serving = lane_pod.serving
    if not serving:
        return lane_pod, []
    lane_pod, failed = ready_or_idle(lane_pod, client, settings)
    if failed is None:
        return lane_pod, []
    return lane_pod, [LaneBootFailure(serve=serving, reason=failed.reason, log_tail=failed.log_tail)]


def _run_pytest(
    session: SuiteSession, files: list[str], assignment: Assignment, settings: Settings, work: Path, deadline: float,
) -> LaneResult:
    """One pytest process over the test files; tests that never reported are errors."""
    work.mkdir(parents=True, exist_ok=True)
    session_file, results_file = str(work / "session.json"), str(work / "results.jsonl")
    Path(session_file).write_text(session.model_dump_json(), encoding="utf-8")
    Path(results_file).unlink(missing_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        **({"DOCKER_HOST": settings.sandbox.docker_host} if settings.sandbox.docker_host else {}),
    }
    stopped = ""
    command = _command(files, str(assignment.tests_dir), session_file, results_file, settings)
    server = SuiteForkServer.socket_for_this_process(settings, env)
    if server is not None:
        command = [sys.executable, "-I", "-S", "-c", forkserver.source(), "client", str(server), *command]
    try:
        process = subprocess.run(
            command, env=env, cwd=work, capture_output=True, text=True,
            timeout=max(1.0, deadline - time.monotonic()), check=False,
        )
        output = process.stdout[-4000:] + process.stderr[-4000:]
    except subprocess.TimeoutExpired as exc:
        stopped = f"the hidden suite was stopped at its time limit of {settings.timeouts.suite_s:.0f} s"
        output = str(exc.stdout or "")[-4000:]
    collected, recorded = _read_results(results_file)
    if not collected:
        if stopped:
            return _not_run(files, stopped), stopped
        raise InfraError(f"the hidden suite of {assignment.id} did not start: {output[-2000:]}")
    reason = stopped or "the suite process ended early"
    return [
        recorded.get(test["id"])
        or TestResult(
            id=test["id"], title=test["title"], category=test["category"], outcome=TestOutcome.error,
            message=f"not run to the end: {reason}",
        )
        for test in collected
    ], stopped


def _not_run(files: list[str], reason: str) -> list[TestResult]:
    """Placeholders for a phase that could not run: one error per test function, so the category scores 0."""
    results = []
    for file in files:
        path = Path(file)
        for name in sorted(test_functions(path)):
            results.append(
                TestResult(
                    id=f"{path.name}::{name}", title=name.replace("_", " "), category=category_of_file(path),
                    outcome=TestOutcome.error, message=f"not run: {reason}",
                )
            )
    return results


def _app_log(client: docker.DockerClient, pod: Pod, settings: Settings) -> str:
    """The output tail of the job's app containers, one per lane, each under its lane's name when there are several."""
    containers = client.containers.list(
        all=True, filters={"label": [f"{JOB_LABEL}={pod.job_id}", f"{ROLE_LABEL}=app"]}
    )
    if len(containers) == 1:
        return log_tail(containers[0], settings.sandbox.log_bytes)
    share = settings.sandbox.log_bytes // max(1, len(containers))
    ordered = sorted(containers, key=lambda c: c.labels.get(LANE_LABEL) != pod.lane)
    return "\n".join(f"--- lane {c.labels.get(LANE_LABEL, '?')} ---\n{log_tail(c, share)}" for c in ordered)
