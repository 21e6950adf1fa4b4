"""The queue end to end: real redis-server on a unix socket, real `grader worker` processes, real Docker.

A test-only assignment `tiny` (two one-test categories) and ten-line WSGI apps keep each grading at
about two seconds, so that crashes, restarts and parallelism can be tested in CI time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.db.engine import open_store
from grader.db.store import Store, SubmissionRecord
from grader.models import Status
from grader.settings import Settings
from grader.storage import open_storage, read_stored
from tests.integration.conftest import RedisServer, leftovers, wait_for
from tests.tiny import write_tiny_assignment

pytestmark = [pytest.mark.docker, pytest.mark.slow]

WSGI = """\
BODIES = {{"/": b"{hello}", "/answer": b"{answer}", "/sleep": b"{sleep}"}}


def app(environ, start_response):
    body = BODIES.get(environ.get("PATH_INFO", "/"), b"not found")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def app_files(hello: str = "hello", answer: str = "42", sleep: float = 0, requirements: bool = True) -> dict[str, str]:
    files = {"wsgi.py": WSGI.format(hello=hello, answer=answer, sleep=sleep)}
    if requirements:
        files["requirements.txt"] = "gunicorn==23.0.0\n"
    return files


VARIANTS = {
    "full": app_files(),
    "wrong-answer": app_files(answer="41"),
    "no-hello": app_files(hello="bye"),
    "nothing": app_files(hello="bye", answer="0"),
    "no-requirements": app_files(requirements=False),
}


class QueueRig:
    """Settings, environment and helpers shared by a test's CLI commands and worker processes."""

    def __init__(self, settings: Settings, folder: Path, redis_server: RedisServer) -> None:
        self.settings = settings
        self.folder = folder
        self.redis = redis_server
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("GRADER_")}
        self.env.update(
            GRADER_DATA_DIR=str(settings.paths.data_dir), GRADER_REPORTS_DIR=str(settings.paths.reports_dir),
            GRADER_ASSIGNMENTS_DIR=str(settings.paths.assignments_dir), REDIS_URL=redis_server.url,
            GRADER_WATCHDOG_INTERVAL_S="1", GRADER_HEARTBEAT_TTL_S="5", GRADER_RETRY_INTERVALS_S="[1, 1]",
        )
        self.workers: list[subprocess.Popen[bytes]] = []
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "grader", *args], env={**self.env, **env}, capture_output=True, text=True, timeout=120,
        )

    def submit(self, repo: Path, assignment: str = "tiny") -> str:
        result = self.cli("submit", str(repo), "--assignment", assignment, "--submitter", "queue-test")
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def record(self, submission_id: str) -> SubmissionRecord:
        record = self.store.get(submission_id)
        assert record is not None
        return record

    def start_worker(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.folder / f"worker{len(self.workers)}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "grader", "worker", *args], env=self.env, stdout=log, stderr=log)
        self.workers.append(process)
        return process

    def work(self, concurrency: int = 1, timeout: float = 300) -> float:
        """Run `grader worker --burst` to the end; return its wall time."""
        started = time.monotonic()
        process = self.start_worker("--burst", "--concurrency", str(concurrency))
        assert process.wait(timeout=timeout) == 0, self.logs()
        return time.monotonic() - started

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted(self.folder.glob("worker*.log")))

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def tiny_assignments(short_tmp: Path) -> Path:
    return write_tiny_assignment(short_tmp)


@pytest.fixture
def rig(settings: Settings, short_tmp: Path, tiny_assignments: Path, redis_server: RedisServer) -> Iterator[QueueRig]:
    queue_settings = settings.replace(assignments_dir=tiny_assignments, redis_url=redis_server.url)
    rig = QueueRig(queue_settings, short_tmp, redis_server)
    yield rig
    rig.stop()


@pytest.fixture
def repos(git_repo) -> dict[str, Path]:
    return {name: git_repo(files=files) for name, files in VARIANTS.items()}


def _ten(repos: dict[str, Path]) -> list[tuple[str, Path]]:
    names = list(VARIANTS)
    return [(names[i % len(names)], repos[names[i % len(names)]]) for i in range(10)]


def test_ten_submissions_through_two_workers_match_in_process_grades(rig, repos, grade, graded_ids):
    """Ten submissions through two worker processes get the statuses and scores `grader grade` gives them."""
    expected = {name: grade(str(repo), assignment="tiny", assignments_dir=rig.settings.paths.assignments_dir)
                for name, repo in repos.items()}
    assert len({report.score for report in expected.values()}) >= 3
    submitted = [(name, rig.submit(repo)) for name, repo in _ten(repos)]
    graded_ids.extend(sid for _, sid in submitted)
    assert {rig.record(sid).status for _, sid in submitted} == {Status.queued}
    elapsed = rig.work(concurrency=2)
    owners = set()
    for name, sid in submitted:
        record = rig.record(sid)
        assert (record.status, record.score, record.max_score) == (
            expected[name].status, expected[name].score, expected[name].max_score), (name, record)
        assert record.attempts == 1, (name, record.last_error, rig.logs()[-4000:])
        report = json.loads(read_stored(open_storage(rig.settings), record.report_path or "") or b"null")
        assert (report["id"], report["status"], report["score"]) == (sid, record.status.value, record.score)
        owners.add(record.owner)
    assert len(owners) == 2, "both worker processes graded"
    shown = rig.cli("status", submitted[0][1], "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout) == rig.record(submitted[0][1]).status_json()
    print(f"\n10 tiny submissions, 2 workers: {elapsed:.1f} s")


def test_wall_time_of_ten_submissions_with_one_and_two_workers(rig, repos, graded_ids, record_property):
    """Measure: ten tiny submissions with one worker process, then ten with two (printed, and kept as properties)."""
    times = {}
    for concurrency in (1, 2):
        ids = [rig.submit(repo) for _, repo in _ten(repos)]
        graded_ids.extend(ids)
        times[concurrency] = rig.work(concurrency=concurrency)
        assert all(rig.record(sid).final for sid in ids)
        record_property(f"wall_s_{concurrency}_workers", round(times[concurrency], 1))
    print(f"\n10 tiny submissions: 1 worker {times[1]:.1f} s, 2 workers {times[2]:.1f} s")


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def test_worker_killed_mid_job_is_graded_again_within_a_minute(rig, git_repo, engine, graded_ids):
    """SIGKILL of a worker (and its supervisor) during the hidden suite: another worker grades it, nothing left."""
    slow = git_repo(files=app_files(sleep=8))
    first = rig.start_worker("--concurrency", "1")
    sid = rig.submit(slow)
    graded_ids.append(sid)
    wait_for(lambda: rig.record(sid).stage is not None and rig.record(sid).stage.value == "suite", 120, "the hidden suite")
    doomed = rig.record(sid)
    rig.start_worker("--concurrency", "1")
    time.sleep(1)
    pid = int((doomed.owner or "").rpartition("/")[2].split(":")[0])
    first.send_signal(signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    assert rig.record(sid).status is Status.running
    wait_for(lambda: rig.record(sid).final, 90, f"{sid} to be graded again\n{rig.logs()}")
    took = time.monotonic() - killed_at
    record = rig.record(sid)
    assert (record.status, record.score, record.attempts) == (Status.graded, 10, 2), rig.logs()
    assert record.owner != doomed.owner
    assert took < 60
    assert leftovers(engine, [sid]) == []
    assert _group_members(pid) == [], "the dead worker's pytest was killed with its group"
    print(f"\nkilled worker's submission graded again {took:.1f} s after the kill")


def test_redis_restart_between_submit_and_work_loses_nothing(rig, repos, graded_ids):
    """Jobs survive a Redis shutdown and start on the same dir (append-only file); a regrade works after."""
    ids = {name: rig.submit(repos[name]) for name in ("full", "wrong-answer", "no-requirements")}
    graded_ids.extend(ids.values())
    rig.redis.stop()
    rig.redis.start()
    rig.work()
    statuses = {name: (rig.record(sid).status, rig.record(sid).score) for name, sid in ids.items()}
    assert statuses == {"full": (Status.graded, 10), "wrong-answer": (Status.graded, 5),
                        "no-requirements": (Status.build_failed, 0)}
    assert rig.record(ids["no-requirements"]).attempts == 1, "a candidate failure is a result, not retried"
    regraded = rig.cli("regrade", ids["full"])
    assert regraded.returncode == 0, regraded.stderr
    assert rig.record(ids["full"]).status is Status.queued
    rig.work()
    assert (rig.record(ids["full"]).status, rig.record(ids["full"]).attempts) == (Status.graded, 1)


@pytest.mark.parametrize("url", ["unix:///nonexistent.sock", "redis://127.0.0.1:1"])
def test_unreachable_redis_at_submit_exits_3_and_records_nothing(rig, repos, url):
    """With REDIS_URL pointing nowhere, submit says so, exits 3, and no record is left that would never run."""
    result = rig.cli("submit", str(repos["full"]), "--assignment", "tiny", REDIS_URL=url)
    assert result.returncode == 3
    assert f"Redis at {url} is not reachable" in result.stderr and "unset REDIS_URL" in result.stderr
    assert result.stdout == ""
    with rig.store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM submissions").scalar() == 0


def test_infra_error_is_retried_with_back_off_then_recorded(rig, repos, graded_ids):
    """An infra_error (the assignment vanished after submit) is tried three times, then recorded as such."""
    shutil.copytree(rig.settings.paths.assignments_dir / "tiny", rig.settings.paths.assignments_dir / "fleeting")
    toml = rig.settings.paths.assignments_dir / "fleeting" / "assignment.toml"
    toml.write_text(toml.read_text().replace('id = "tiny"', 'id = "fleeting"'))
    sid = rig.submit(repos["full"], assignment="fleeting")
    graded_ids.append(sid)
    shutil.rmtree(rig.settings.paths.assignments_dir / "fleeting")
    elapsed = rig.work()
    record = rig.record(sid)
    assert (record.status, record.attempts) == (Status.infra_error, 3), rig.logs()
    assert "no assignment 'fleeting'" in (record.last_error or "")
    assert elapsed >= 2, "two back-offs of 1 s"
    shown = json.loads(rig.cli("status", sid, "--json").stdout)
    assert (shown["status"], shown["attempts"]) == ("infra_error", 3)
    assert shown["report"] == f"reports/{sid}/report.json", "a storage key, not a path on the worker's disk"
    assert json.loads(read_stored(open_storage(rig.settings), shown["report"]) or b"null")["status"] == "infra_error"
