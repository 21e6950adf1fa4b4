"""Stage 4: the assignment's hidden suite, one pytest process per lane (grader/stages/lanes.py runs them).

The suite runs on the trusted side and needs no engine: it talks HTTP to the app through the relay's socket
and asks the lane's control socket for everything else. The results come only from the plugin's JSON lines
file, which the app cannot reach. The process is killed at the suite's time limit; tests that never
reported are recorded as errors, the rest keep their results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from pydantic import ValidationError

from grader.assignments.model import Assignment, category_of_file, test_functions
from grader.errors import InfraError
from grader.models import Pod, SuiteOutcomes, SuiteSession, TestOutcome, TestResult
from grader.sandbox import Sandbox, forkserver
from grader.settings import PROJECT_ROOT, Settings
from grader.stages.lanes import LaneResult, run_lanes

_MAX_RESULT_LINE = 256 * 1024
_SUITE_PRELOAD = [
    "pytest", "_pytest.main", "_pytest.python", "_pytest.fixtures", "_pytest.runner", "pytest_timeout",
    "harness.plugin", "requests", "docker",
]


class SuiteForkServer:
    """A fork server (grader/sandbox/forkserver.py) on the grader's side with pytest and the harness imported: each
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
            [sys.executable, forkserver.host_path(), "launch", json.dumps(spec)], env=env, cwd=PROJECT_ROOT,
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


def run_suite(pod: Pod, assignment: Assignment, settings: Settings, sandbox: Sandbox) -> SuiteOutcomes:
    """Run every hidden test once, each lane of categories in its own pytest process against its own app
    (see grader/stages/lanes.py); the whole suite is stopped at `timeouts.suite_s`."""
    work = settings.paths.work_dir / pod.submission_id / "suite"
    deadline = time.monotonic() + settings.timeouts.suite_s

    def run_tests(session: SuiteSession, files: list[str], lane: str) -> LaneResult:
        return run_pytest(session, files, assignment, settings, work / lane, deadline)

    finished = run_lanes(pod, assignment, settings, sandbox, run_tests, work)
    order = {c.id: i for i, c in enumerate(assignment.categories)}
    results = sorted((r for lane in finished for r in lane.results), key=lambda r: order.get(r.category, len(order)))
    stopped = next((lane.stopped for lane in finished if lane.stopped), "")
    limits = ["suite_time"] if stopped else []
    if any(r.message.startswith("Failed: Timeout") for r in results):
        limits.append("test_time")
    if sandbox.oom_kills(pod.submission_id, pod.started_at) > 0:
        limits.append("memory")
    return SuiteOutcomes(
        results=results, stopped_reason=stopped, app_log_tail=_app_log(sandbox, pod, settings), limits_hit=limits,
        lane_boot_s=round(sum(lane.boot_s for lane in finished), 3),
        rerun_s=round(sum(lane.rerun_s for lane in finished), 3),
        worker_log_tail="\n".join(lane.worker_log for lane in finished if lane.worker_log)[-settings.sandbox.log_bytes:],
        worker_ready_s=[s for lane in finished for s in lane.worker_ready_s],
        lanes_s={lane.lane: lane.seconds for lane in finished if lane.lane},
        lane_boots_s={lane.lane: lane.boot_s for lane in finished[1:] if lane.lane},
    )


def run_pytest(
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
    }
    stopped = ""
    command = _command(files, str(assignment.tests_dir), session_file, results_file, settings)
    server = SuiteForkServer.socket_for_this_process(settings, env)
    if server is not None:
        command = [sys.executable, "-I", "-S", forkserver.host_path(), "client", str(server), *command]
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
            return LaneResult(_not_run(files, stopped), stopped)
        raise InfraError(f"the hidden suite of {assignment.id} did not start: {output[-2000:]}")
    reason = stopped or "the suite process ended early"
    return LaneResult([
        recorded.get(test["id"])
        or TestResult(
            id=test["id"], title=test["title"], category=test["category"], outcome=TestOutcome.error,
            message=f"not run to the end: {reason}",
        )
        for test in collected
    ], stopped)


def _not_run(files: list[str], reason: str) -> list[TestResult]:
    """Placeholders for a phase that could not run: one error per test function, so the category scores 0."""
    results = []
    for file in dict.fromkeys(file.split("::", 1)[0] for file in files):  # a re-run names node ids
        path = Path(file)
        for name in sorted(test_functions(path)):
            results.append(
                TestResult(
                    id=f"{path.name}::{name}", title=name.replace("_", " "), category=category_of_file(path),
                    outcome=TestOutcome.error, message=f"not run: {reason}",
                )
            )
    return results


def _app_log(sandbox: Sandbox, pod: Pod, settings: Settings) -> str:
    """The output tail of the job's app containers, one per lane, each under its lane's name when there are several."""
    containers = sandbox.containers_of(pod.submission_id, role="app")
    if len(containers) == 1:
        return sandbox.logs(containers[0].id, settings.sandbox.log_bytes)
    share = settings.sandbox.log_bytes // max(1, len(containers))
    ordered = sorted(containers, key=lambda c: c.lane != pod.lane)
    return "\n".join(f"--- lane {c.lane or '?'} ---\n{sandbox.logs(c.id, share)}" for c in ordered)
