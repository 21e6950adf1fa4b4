"""What one grading passes between its stages: the request, the checkout, the image, the pod, the suite's outcomes."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from grader.models.report import Frozen, TestReport


class SubmissionRequest(Frozen):
    """What a candidate hands in."""

    id: str
    source: str = Field(description="Repository URL or, when allowed, a local path.")
    ref: str | None = Field(None, description="Branch, tag or commit; None means the default branch.")
    assignment: str


class Snapshot(Frozen):
    """A clean checkout of the submission on the host, without `.git`."""

    submission_id: str
    url: str
    ref: str | None
    commit: str
    path: Path
    requirements_sha256: str | None = None


class SubmissionImage(Frozen):
    submission_id: str
    image_id: str
    tag: str
    deps_key: str
    deps_cached: bool = Field(description="True when the dependency layer came from the cache.")
    requirements_sha256: str
    base_image_id: str | None = None
    base_image_digest: str | None = None
    build_log_tail: str = ""


class ServiceDatabase(Frozen):
    """The app instance's own PostgreSQL database and role (grader/sandbox/services.py)."""

    name: str
    role: str
    password: str = Field(repr=False)


class Pod(Frozen):
    """A running app container and the trusted relay that owns its loopback (and, when the assignment names
    services, the trusted services container beside them)."""

    submission_id: str
    owner: str = Field(description="The grading process (pid:start), which the reaper checks is alive.")
    image: str
    app_container: str
    relay_container: str
    volume: str
    socket_path: Path
    environment: dict[str, str]
    setup: list[str]
    preload: list[str] = Field([], description="Library modules imported once per app container (run.preload).")
    serve: str = Field(description="The serve command the current tests want the app to run.")
    serving: str = Field("", description="The serve command the app container runs now; empty when it idles.")
    port: int
    ready_path: str
    database_path: str
    started_at: float = Field(0.0, description="Unix time the pod started, for the engine's OOM events.")
    lane: str = Field("main", description="The assignment lane whose categories run against this pod.")
    services: list[str] = Field([], description="The pod's services (run.services): postgresql, redis, nginx.")
    app_port: int | None = Field(None, description="With nginx: the port the app binds behind it.")
    services_container: str = ""
    database_socket_dir: Path | None = Field(None, description="Where the grader's forward to PostgreSQL listens.")
    superuser_password: str = Field("", repr=False)
    database: ServiceDatabase | None = None
    services_ready_s: dict[str, float] = Field({}, description="Seconds each service took to answer, at the pod's start.")


class TestResult(TestReport):
    """A test's outcome as the harness plugin records it: with the category it scores in."""

    __test__ = False

    category: str


class SuiteSession(Frozen):
    """All the hidden suite's pytest process is given: where to ask for the app (its control socket answers with
    the relay's socket to talk HTTP through) and how long a request may take. No settings, no secret, no
    database URL and no engine."""

    control_socket: Path = Field(description="The lane's control socket (grader/stages/control.py).")
    request_timeout_s: float


class SuiteOutcomes(Frozen):
    results: list[TestResult]
    stopped_reason: str = Field("", description="Why the suite stopped early, if it did.")
    app_log_tail: str = ""
    limits_hit: list[str] = []
    lane_boot_s: float = Field(0.0, description="Seconds the lanes after the first spent booting their apps.")
    rerun_s: float = Field(0.0, description="Seconds the lanes spent re-running failed tests for diagnosis.")
    worker_log_tail: str = Field("", description="The background worker's output, lane by lane, when one ran.")
    worker_ready_s: list[float] = Field([], description="Seconds each start of a background worker took to be ready.")
    lanes_s: dict[str, float] = Field({}, description="Each lane's wall time (boot, tests, re-runs), by lane name.")
    lane_boots_s: dict[str, float] = Field({}, description="Each lane's app boot after the first lane's, by lane name.")
