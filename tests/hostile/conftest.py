"""Fixtures of the hostile corpus: tight limits set through Settings, a host sentinel, graded submissions.

Every hostile submission is graded for real, through `grade_submission`, under the TIGHT settings
below: that the limits bite at these small values proves they are settings, not constants.
A submission is graded once per session (`corpus.grade(name, ...)` caches by name), so a property
that the grader does not hold yet can be a separate, xfail-marked test on the same report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

from grader.models import GradeReport, Status, SubmissionRequest
from grader.pipeline import grade_submission, new_submission_id
from grader.sandbox.docker import ROLE_LABEL, SUBMISSION_LABEL, DockerSandbox
from grader.settings import Settings
from grader.stages.report import write_report
from tests.conftest import REFERENCE
from tests.integration.conftest import engine, leftovers  # noqa: F401  (`engine` is re-exported as a fixture)

SUBMISSIONS = Path(__file__).resolve().parent / "submissions"

# The limits every hostile submission is graded under. Timeouts are small so that a hang is cut
# quickly; memory, pids and the writable areas are small so that a bomb hits them fast.
# 384m rather than 256m: the reference's 4 workers each hash with scrypt (32 MiB) at once in the
# concurrency tests, and one of them is OOM-killed at 256m (checked: it then loses a test).
TIGHT: dict[str, object] = {
    "memory": "384m",
    "pids": 64,
    "cpus": 1.0,
    "data_size": "16m",
    "log_bytes": 16 * 1024,
    "engine_log_max_size": "1m",
    "boot_timeout_s": 8,
    "request_timeout_s": 2,
    "test_timeout_s": 8,
    "exec_timeout_s": 10,
    "suite_timeout_s": 45,
    "build_timeout_s": 60,
    "clone_timeout_s": 30,
    "max_repo_bytes": 5 * 1024 * 1024,
    "max_repo_files": 500,
    "build_network": "none",  # no install happens: the layers of the two stacks below are cached
}

# Time for the grader's own work around its limits (clone, image build, relay start, cleanup, report),
# generous because other grades share this 2-core machine and its engine.
SLACK_S = 45.0

FLASK_REQUIREMENTS = (REFERENCE / "requirements.txt").read_text()
GUNICORN_REQUIREMENTS = "gunicorn==23.0.0\n"
ENGINE_LOG_CAP = 1024 * 1024  # engine_log_max_size above, in bytes
OUTPUT_KEPT = 64 * 1024  # of each app container's output, as the watcher last saw it


# --- the host sentinel --------------------------------------------------------------------------


@dataclass
class Sentinel:
    """A world-readable file on the host that no submission may read, change or remove."""

    folder: Path
    path: Path
    content: bytes

    @property
    def secret(self) -> str:
        return self.content.decode().strip()

    def unchanged(self) -> bool:
        return self.path.is_file() and not self.path.is_symlink() and self.path.read_bytes() == self.content

    def folder_listing(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir())


# --- watching a job's containers while it is graded ---------------------------------------------


@dataclass
class Watch:
    """What a background thread saw of a job's app containers on the host while the job ran."""

    max_log_file_bytes: int = 0
    max_upper_dir_bytes: int = 0
    app_containers_seen: set[str] = field(default_factory=set)
    samples: int = 0
    harness_peak_rss: int = 0  # bytes, VmHWM of the hidden suite's pytest process (trusted side)
    grader_peak_rss: int = 0  # bytes, VmHWM of this process (the grading worker) while it graded
    grader_rss_before: int = 0  # bytes, this process's RSS when the grade started
    outputs: dict[str, str] = field(default_factory=dict)  # app container id -> the tail of its output, as last seen

    @property
    def grader_rss_growth(self) -> int:
        return max(0, self.grader_peak_rss - self.grader_rss_before)


def _vm_hwm(pid: int | str) -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _harness_processes() -> list[str]:
    """The hidden suite's pytest processes this process started (harness.run_suite's subprocess)."""
    me, found = f"PPid:\t{os.getpid()}\n", []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                if me not in handle.read():
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if b"harness.plugin" in handle.read():
                    found.append(entry)
        except OSError:
            continue
    return found


def reset_peak_rss() -> None:
    """Reset this process's VmHWM (writing 5 to clear_refs), so a later read is the peak since now."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def _tree_bytes(root: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root, followlinks=False):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def _watch_job(client: docker.DockerClient, job_id: str, stop: threading.Event, seen: Watch) -> None:
    selector = {"label": [f"{SUBMISSION_LABEL}={job_id}", f"{ROLE_LABEL}=app"]}
    while not stop.wait(0.1):
        try:
            containers = client.containers.list(all=True, filters=selector)
        except Exception:
            continue
        read_logs = seen.samples % 5 == 0
        for container in containers:
            seen.app_containers_seen.add(container.id)
            if read_logs:
                try:
                    tail = container.logs(stdout=True, stderr=True, tail=100)[-OUTPUT_KEPT:]
                    seen.outputs[container.id] = tail.decode("utf-8", errors="replace")
                except Exception:
                    pass
            log_path = container.attrs.get("LogPath") or ""
            upper = (container.attrs.get("GraphDriver", {}).get("Data") or {}).get("UpperDir") or ""
            try:
                if log_path:
                    seen.max_log_file_bytes = max(seen.max_log_file_bytes, os.stat(log_path).st_size)
            except OSError:
                pass
            if upper and os.path.isdir(upper):
                seen.max_upper_dir_bytes = max(seen.max_upper_dir_bytes, _tree_bytes(upper))
        for pid in _harness_processes():
            try:
                seen.harness_peak_rss = max(seen.harness_peak_rss, _vm_hwm(pid))
            except OSError:
                pass
        seen.samples += 1


# --- the corpus ---------------------------------------------------------------------------------


@dataclass
class Graded:
    name: str
    report: GradeReport
    wall_s: float
    settings: Settings
    watch: Watch
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def app_output(self) -> str:
        """Everything the app printed that the report kept (boot output or the app's log tail)."""
        return "\n".join(v for k, v in self.report.logs.items() if k != "build output")

    @property
    def printed(self) -> str:
        """What the app printed, as the report kept it and as the watcher saw it in every app container
        (the report keeps the tail of the newest container only, which may have just started)."""
        return "\n".join([self.app_output, *self.watch.outputs.values()])

    @property
    def all_text(self) -> str:
        """The whole report as JSON: nothing a submission must not see may appear anywhere in it."""
        return self.report.model_dump_json()

    def tests(self) -> dict[str, tuple[str, str]]:
        """Test id -> (outcome, message)."""
        return {t.id: (t.outcome.value, t.message) for c in self.report.categories for t in c.tests}

    def outcomes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome, _message in self.tests().values():
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def summary(self) -> str:
        r = self.report
        return (
            f"{self.name}: status={r.status.value} score={r.score} limits_hit={r.limits_hit} wall={self.wall_s:.1f}s "
            f"reason={r.reason[:200]!r} outcomes={self.outcomes()} harness_peak_rss={self.watch.harness_peak_rss >> 20}MiB "
            f"grader_rss_growth={self.watch.grader_rss_growth >> 20}MiB log_file={self.watch.max_log_file_bytes >> 10}KiB "
            f"upper={self.watch.max_upper_dir_bytes >> 10}KiB"
        )


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=hostile", "-c", "user.email=hostile@localhost", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()


class Corpus:
    """Builds hostile repositories under a short temporary folder and grades each one once."""

    def __init__(self, root: Path, client: docker.DockerClient, sentinel: Sentinel) -> None:
        self.root = root
        self.client = client
        self.sentinel = sentinel
        self.settings = Settings(data_dir=root / "var", reports_dir=root / "reports").replace(**TIGHT)
        self.job_ids: list[str] = []
        self.results: dict[str, Graded] = {}
        self._repos = 0

    # repositories

    def placeholders(self) -> dict[str, str]:
        return {"SENTINEL_FILE": str(self.sentinel.path), "SENTINEL_DIR": str(self.sentinel.folder)}

    def files_of(self, name: str, **extra: str) -> dict[str, str]:
        """tests/hostile/submissions/<name>/ as {path: text}, with `{{TOKEN}}` placeholders filled in."""
        folder = SUBMISSIONS / name
        assert folder.is_dir(), f"no submission folder {folder}"
        values = {**self.placeholders(), **extra}
        files: dict[str, str] = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                text = path.read_text()
                for token, value in values.items():
                    text = text.replace("{{" + token + "}}", value)
                files[str(path.relative_to(folder))] = text
        return files

    def repo(
        self,
        files: dict[str, str | bytes],
        links: dict[str, str] | None = None,
        before_commit: Callable[[Path], None] | None = None,
    ) -> Path:
        """A git repository (branch main, one commit) with these files and symbolic links."""
        self._repos += 1
        path = self.root / f"r{self._repos}"
        path.mkdir()
        for name, content in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        for name, target in (links or {}).items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, path / name)
        _git(path, "init", "-q", "-b", "main")
        _git(path, "add", "-A")
        if before_commit is not None:
            before_commit(path)
        _git(path, "commit", "-q", "-m", "hostile submission")
        return path

    def submission(self, name: str, **extra: str) -> Path:
        return self.repo(self.files_of(name, **extra))  # type: ignore[arg-type]

    # grading

    def grade(
        self, name: str, source: str | Path | Callable[[], str | Path], ref: str | None = None, **overrides: object
    ) -> Graded:
        """Grade once per session under the tight settings plus `overrides`; later calls return the same result."""
        if name in self.results:
            return self.results[name]
        if callable(source):
            source = source()
        request = SubmissionRequest(id=new_submission_id(), source=str(source), ref=ref, assignment="flask-notes")
        self.job_ids.append(request.id)
        used = self.settings.replace(**overrides)
        seen, stop = Watch(), threading.Event()
        watcher = threading.Thread(target=_watch_job, args=(self.client, request.id, stop, seen), daemon=True)
        watcher.start()
        reset_peak_rss()
        seen.grader_rss_before = _vm_hwm("self")
        started = time.monotonic()
        try:
            report = grade_submission(request, used, sandbox=DockerSandbox(self.client, used))
            write_report(report, used.paths.reports_dir)  # as `grader grade` does
        finally:
            wall = time.monotonic() - started
            seen.grader_peak_rss = _vm_hwm("self")
            stop.set()
            watcher.join(timeout=30)
        graded = Graded(name=name, report=report, wall_s=wall, settings=used, watch=seen)
        self.results[name] = graded
        print(graded.summary())
        return graded


@pytest.fixture(scope="session")
def host_sentinel() -> Iterator[Sentinel]:
    """/tmp/gt-sentinel-XXXXXXXX/secret.txt holding a random secret; checked intact when the session ends."""
    folder = Path(f"/tmp/gt-sentinel-{uuid.uuid4().hex[:8]}")
    folder.mkdir(mode=0o755)
    path = folder / "secret.txt"
    content = f"HOST-SENTINEL-{uuid.uuid4().hex}\n".encode()
    path.write_bytes(content)
    path.chmod(0o644)  # world-readable on purpose: only the sandbox may keep it out of the app's reach
    sentinel = Sentinel(folder=folder, path=path, content=content)
    yield sentinel
    try:
        assert sentinel.unchanged(), f"the host sentinel {path} was changed or removed"
        assert sentinel.folder_listing() == ["secret.txt"], f"files appeared in {folder}: {sentinel.folder_listing()}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _ensure_dependency_layers(client: docker.DockerClient, root: Path) -> None:
    """The two stacks' layers must be cached, since TIGHT builds offline."""

    stacks = ((FLASK_REQUIREMENTS, False), (FLASK_REQUIREMENTS, True), (GUNICORN_REQUIREMENTS, False))
    for index, (requirements, with_tests) in enumerate(stacks):
        # graded once each, the normal way: a cached layer makes it a second's work, a missing one installs it;
        # a tree with tests gets the grader's test tools in its layer (the reference has tests)
        repo = root / f"warm-{index}"
        repo.mkdir()
        (repo / "requirements.txt").write_text(requirements)
        (repo / "wsgi.py").write_text("raise SystemExit(3)\napp = None\n")
        if with_tests:
            (repo / "tests").mkdir()
            (repo / "tests" / "test_warm.py").write_text("def test_warm():\n    pass\n")
        _git(repo, "init", "-q", "-b", "main")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "-m", "warm the dependency cache")
        settings = Settings(data_dir=root / "warm-var", reports_dir=root / "warm-reports")
        request = SubmissionRequest(id=new_submission_id(), source=str(repo), assignment="flask-notes")
        quick = settings.replace(boot_timeout_s=5, own_tests=False, code_review=False)
        report = grade_submission(request, quick, sandbox=DockerSandbox(client, quick))
        assert report.status is Status.boot_failed, f"warming the dependency layer failed: {report.reason}"


@pytest.fixture(scope="session")
def corpus(engine: docker.DockerClient, host_sentinel: Sentinel) -> Iterator[Corpus]:  # noqa: F811
    root = Path(tempfile.mkdtemp(prefix="gt-h-", dir="/tmp"))
    try:
        _ensure_dependency_layers(engine, root)
        yield Corpus(root, engine, host_sentinel)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """After every test, no container, volume, network or image of the jobs it graded is left (ours only)."""
    if "corpus" not in request.fixturenames:
        yield
        return
    corpus: Corpus = request.getfixturevalue("corpus")
    before = len(corpus.job_ids)
    yield
    new = corpus.job_ids[before:]
    assert leftovers(corpus.client, new) == []
    for job in new:
        assert not (corpus.settings.paths.sockets_dir / job).exists(), f"the socket folder of {job} was left behind"
        assert not (corpus.settings.paths.work_dir / job).exists(), f"the work folder of {job} was left behind"
