"""One settings object for the whole grader, in groups; every module receives it, none reads the environment.

Each group is a model of its own (`settings.sandbox.memory`, `settings.timeouts.boot_s`). A value comes from,
in this order: the constructor, `GRADER_<GROUP>__<NAME>` (e.g. `GRADER_SANDBOX__MEMORY=1g`), or the flat name
the grader had before the groups (`GRADER_MEMORY=1g`, `GRADER_BOOT_TIMEOUT_S=10`, `REDIS_URL`, `DATABASE_URL`),
which scripts and deployments keep using. `FLAT_NAMES` is the one table between the two.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Paths(_Group):
    """Where the grader keeps its files on this host."""

    data_dir: Path = Field(PROJECT_ROOT / "var", description="Sockets, locks, clones, the embedded Redis.")
    reports_dir: Path = Field(PROJECT_ROOT / "reports", description="Where `reports/<id>/` are written.")
    assignments_dir: Path = Field(PROJECT_ROOT / "assignments", description="One folder per assignment.")

    @property
    def sockets_dir(self) -> Path:
        return self.data_dir / "sockets"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def locks_dir(self) -> Path:
        return self.data_dir / "locks"

    @property
    def lane_slots_dir(self) -> Path:
        """The machine-wide lane slots (grader/filelock.py): hidden lanes and the candidate's own tests take them."""
        return self.data_dir / "lane-slots"

    @property
    def snapshots_dir(self) -> Path:
        """The code of graded submissions kept for comparison (`<id>/`), until `snapshot_retention_days`."""
        return self.data_dir / "snapshots"

    @property
    def keeping_dir(self) -> Path:
        """Graded code on its way into storage (`<id>/`), for seconds; the watchdog removes what a crash left."""
        return self.data_dir / "keeping"

    @property
    def redis_dir(self) -> Path:
        """Socket, pidfile and append-only file of the embedded redis-server."""
        return self.data_dir / "redis"


class IntakeSettings(_Group):
    """What a submission may be before it is built."""

    allow_local_sources: bool = Field(True, description="Accept file:// URLs and local paths.")
    max_repo_bytes: int = Field(50 * 1024 * 1024, description="Cap on a fetched repository's size.")
    max_repo_files: int = Field(5000, description="Cap on the number of files in a submission.")
    ca_bundle: Path = Field(
        Path("/etc/ssl/certs/ca-certificates.crt"), description="The CA certificates git trusts when it fetches over HTTPS.",
    )


class SandboxSettings(_Group):
    """The Docker engine, the images and the limits of every container that runs candidate code."""

    docker_host: str | None = Field(None, description="Docker engine URL; None means the SDK's default.")
    base_image: str = Field(
        "grader-base:bookworm",
        description="Image the submissions build on. `grader-base:*` is built locally with mmdebstrap; "
        "any other name (e.g. python:3.12-slim) is pulled from a registry.",
    )
    relay_image: str = Field("grader-relay:latest", description="The trusted relay image (socat).")
    services_image: str = Field(
        "grader-services:bookworm", description="The trusted services image (PostgreSQL 15, Redis 7, Nginx) of pods with services."
    )
    debian_suite: str = Field("bookworm", description="Suite mmdebstrap builds the local base from.")
    container_runtime: str | None = Field(None, description="OCI runtime for submissions, e.g. runsc.")
    ca_bundle: Path = Field(
        Path("/etc/ssl/certs/ca-certificates.crt"),
        description="Host CA bundle mounted into build containers, or pip fails TLS here.",
    )
    uv_binary: Path | None = Field(
        None,
        description="The uv executable mounted read-only into build containers to install requirements; "
        "None means the one of the `uv` package installed with the grader (`.venv/bin/uv`).",
    )
    system_python: str = Field("/usr/bin/python3", description="The base image's own Python, used for SQL and the fork server.")
    build_network: str = Field("bridge", description="Network of dependency installs; `none` for offline.")
    memory: str = Field("512m", description="Memory (and memory+swap) of an app or build container.")
    pids: int = Field(256, description="Process limit of an app or build container.")
    cpus: float = Field(1.0, description="CPU quota of an app or build container.")
    data_size: str = Field("64m", description="Size of the app's writable data area and of /tmp.")
    services_memory: str = Field("1g", description="Memory of a pod's services container (PostgreSQL, Redis, Nginx).")
    services_tmp_size: str = Field("512m", description="The services' tmpfs: the database cluster and Redis live there.")
    review_memory_mb: int = Field(768, ge=64, description="Address space of the static review's process on the host.")
    diagnosis_reruns: int = Field(
        12, ge=0, description="Failed hidden tests re-run once each for diagnosis (never for score), per lane; 0: none.",
    )
    log_bytes: int = Field(64 * 1024, description="Bytes of a container's output kept for a report.")
    engine_log_max_size: str = Field("1m", description="Cap on the engine's own log file of a container.")
    parallel_lanes: bool = Field(
        True,
        description="Run an assignment's lanes at the same time, each on its own app, while lane slots are free: a "
        "single grade finishes sooner. False runs them in turn.",
    )
    lane_slots: int = Field(
        0, ge=0,
        description="How many lanes may run at once on this machine, across all grading processes (0: one per "
        "core, plus one, since a lane spends part of its time waiting for its app). A grade always runs one lane; "
        "a further lane starts beside it only while a slot is free, else after the grade's own lanes, in turn.",
    )

    @property
    def lane_slot_count(self) -> int:
        """`lane_slots`, or its default: one per core, plus one."""
        return self.lane_slots or (os.cpu_count() or 1) + 1


class Timeouts(_Group):
    """Layered, each named: request < test < suite (the pytest process is killed) < job < reaper."""

    clone_s: float = Field(60, description="Wall clock for fetching a repository.")
    build_s: float = Field(300, description="Wall clock for installing requirements.")
    boot_s: float = Field(30, description="Wall clock until the app answers HTTP.")
    request_s: float = Field(10, description="One HTTP request of a hidden test.")
    test_s: float = Field(60, description="One hidden test, including its requests.")
    exec_s: float = Field(60, description="One command run in the app container by a test.")
    suite_s: float = Field(600, description="The whole hidden suite (the pytest process is killed).")
    review_s: float = Field(10, gt=0, description="The static review of the candidate's code, on the host (killed after).")
    candidate_tests_s: float = Field(
        90, gt=0, description="The candidate's own tests in the sandbox, with coverage (the container is killed after).",
    )
    job_s: float = Field(
        0, ge=0,
        description="Wall clock of one grading job in a worker; 0 means the sum of the stage limits (clone, build, "
        "boot, suite) plus 120 s for the report and cleanup. A value below that sum is refused: a grading that "
        "used every stage's limit would end as a retried infra_error instead of a graded report.",
    )
    redis_start_s: float = Field(10, description="Wait for the embedded redis-server to answer PING.")

    @property
    def stages_s(self) -> float:
        return self.clone_s + self.build_s + self.boot_s + self.suite_s + self.candidate_tests_s

    @property
    def job_limit_s(self) -> float:
        """`job_s`, or its default derived from the stage limits."""
        return self.job_s or self.stages_s + 120

    @model_validator(mode="after")
    def _job_covers_the_stages(self) -> Timeouts:
        if self.job_s and self.job_s < self.stages_s:
            raise ValueError(
                f"job_timeout_s ({self.job_s:.0f}) is below the sum of the stage limits ({self.stages_s:.0f} s: "
                "clone, build, boot, suite, candidate tests); raise it or leave it at 0 to derive it"
            )
        return self


class QueueSettings(_Group):
    """Redis, retries and the watchdog."""

    redis_url: SecretStr | None = Field(None, description="Redis for the queue; None starts a private redis-server in data_dir.")
    retry_intervals_s: list[int] = Field(
        [30, 120], description="Back-off before each retry of an infra_error; its length is the number of retries."
    )
    max_attempts: int = Field(
        5, ge=1, description="Gradings started for one submission (worker deaths count) before it is infra_error."
    )
    watchdog_interval_s: float = Field(5, gt=0, description="How often each worker looks for abandoned gradings.")
    heartbeat_ttl_s: int = Field(20, ge=2, description="A worker on another host is dead when its heartbeat is older than this.")
    requeue_grace_s: float = Field(60, description="A queued submission whose Redis job is missing this long is enqueued again.")


class DatabaseSettings(_Group):
    """The submissions database."""

    url: SecretStr | None = Field(
        None, description="sqlite:// or postgresql://; None means data_dir/grader.db. May hold a password."
    )

    @field_validator("url", mode="before")
    @classmethod
    def _driver(cls, value: object) -> object:
        """Accept SQLite and PostgreSQL; plain postgres:// URLs get the psycopg (3) driver we install."""
        url = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not url:
            return None
        assert isinstance(url, str)
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError(f"{url!r} is not a database URL; use sqlite:///path or postgresql://user@host/db")
        if scheme in ("postgres", "postgresql"):
            return f"postgresql+psycopg://{rest}"
        if scheme.split("+")[0] not in ("sqlite", "postgresql"):
            raise ValueError(f"the {scheme!r} database is not supported; use sqlite:///path or postgresql://...")
        return url


class WebSettings(_Group):
    """The web app, its accounts and its webhooks."""

    secret_key: SecretStr | None = Field(
        None, description="Flask's session key; None means a random key kept in data_dir/web-secret (mode 600)."
    )
    session_cookie_secure: bool = Field(False, description="Send the session cookie over HTTPS only (behind TLS).")
    login_attempts: int = Field(
        5, ge=1, description="Failed staff logins allowed per e-mail and client address within `login_window_s`."
    )
    login_window_s: float = Field(900, gt=0, description="The window of `login_attempts`; the refusal lasts as long.")
    invitation_days: float = Field(7, gt=0, description="Default lifetime of an invitation link.")
    invitation_max_uses: int = Field(3, ge=1, description="Default number of submissions an invitation allows.")
    submit_interval_s: float = Field(60, ge=0, description="Minimum time between two submissions through one invitation.")
    webhook_timeout_s: float = Field(10, gt=0, description="One webhook POST, connect and read.")
    webhook_retry_intervals_s: list[int] = Field(
        [10, 60, 300, 1800], description="Back-off before each retry of a failed webhook delivery."
    )
    webhook_poll_s: float = Field(2, gt=0, description="How often `grader serve` looks for finished grades to report.")


class ReportSettings(_Group):
    """What a report carries beside the score; each part can be switched off (the bench measures what they cost)."""

    code_review: bool = Field(True, description="Review the candidate's code statically (grader/review/).")
    own_tests: bool = Field(True, description="Run the candidate's own tests in the sandbox, with coverage.")
    pdf: bool = Field(True, description="Write report.pdf beside report.json (WeasyPrint).")


class CohortSettings(_Group):
    """How a grade is placed among the others of its assignment: rank, and similarity of code (grader/cohort/)."""

    similarity_threshold: float = Field(
        0.5, gt=0, le=1, description="A pair of submissions at or above this score is flagged for review (never scored)."
    )
    top_matches: int = Field(5, ge=1, description="Closest earlier submissions kept in each report's `similar`.")
    rank_min_n: int = Field(5, ge=1, description="No percentile is shown while fewer submissions than this are graded.")
    snapshot_retention_days: float = Field(
        365, gt=0, description="Kept code of a graded submission (for comparisons and the side-by-side view) is removed "
        "this long after its grade; its score stays in the cohort, its pairs keep their scores.",
    )
    common_code_min_n: int = Field(
        10, ge=2, description="From this cohort size on, code most of the cohort shares stops counting as similar."
    )
    common_code_share: float = Field(0.5, gt=0, le=1, description="'Most of the cohort': this share of its members.")


class StorageSettings(_Group):
    """Where reports, kept code and check results live (grader/storage/): this host's disk, or an S3-compatible store
    that every host of a deployment reads and writes."""

    backend: Literal["local", "s3"] = Field(
        "local", description="local: reports in paths.reports_dir, the rest in paths.data_dir; s3: one bucket for all hosts."
    )
    local_root: Path | None = Field(
        None, description="backend local: one folder for reports, kept code and check results, e.g. a file system "
        "every host mounts; None: reports in paths.reports_dir, the rest in paths.data_dir.",
    )
    s3_bucket: str | None = Field(None, description="The bucket; required with backend s3 (it must exist).")
    s3_prefix: str = Field("", description="Prefix of every key in the bucket, e.g. `grader/` to share a bucket.")
    s3_endpoint_url: str | None = Field(
        None, description="An S3-compatible server (MinIO, Ceph, moto), e.g. http://127.0.0.1:9000; None means AWS S3."
    )
    s3_region: str | None = Field(None, description="The bucket's region; None means boto3's default.")
    s3_access_key_id: str | None = Field(None, description="None means boto3's own chain (environment, profile, role).")
    s3_secret_access_key: SecretStr | None = Field(None, description="The secret of s3_access_key_id.")
    s3_timeout_s: float = Field(10, gt=0, description="Connect and read timeout of one request to the store.")

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> StorageSettings:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("storage backend s3 needs a bucket: set GRADER_STORAGE__S3_BUCKET")
        return self


_GROUPS: dict[str, type[_Group]] = {
    "paths": Paths, "intake": IntakeSettings, "sandbox": SandboxSettings, "timeouts": Timeouts,
    "queue": QueueSettings, "database": DatabaseSettings, "web": WebSettings, "report": ReportSettings,
    "cohort": CohortSettings, "storage": StorageSettings,
}
_RENAMED = {
    "harness_image": ("sandbox", "relay_image"), "redis_url": ("queue", "redis_url"), "database_url": ("database", "url"),
    "clone_timeout_s": ("timeouts", "clone_s"), "build_timeout_s": ("timeouts", "build_s"),
    "boot_timeout_s": ("timeouts", "boot_s"), "request_timeout_s": ("timeouts", "request_s"),
    "test_timeout_s": ("timeouts", "test_s"), "exec_timeout_s": ("timeouts", "exec_s"),
    "suite_timeout_s": ("timeouts", "suite_s"), "job_timeout_s": ("timeouts", "job_s"),
    "redis_start_timeout_s": ("timeouts", "redis_start_s"),
}
FLAT_NAMES: dict[str, tuple[str, str]] = {
    **{name: (group, name) for group, model in _GROUPS.items() for name in model.model_fields},
    **_RENAMED,
}
"""The flat names of before the groups (`GRADER_<NAME>` variables, constructor keywords) -> (group, field)."""
_BARE_ENV = {"REDIS_URL": "redis_url", "DATABASE_URL": "database_url"}


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Flat keywords (and REDIS_URL / DATABASE_URL) sorted into their groups; group names pass through."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        name = _BARE_ENV.get(key.upper(), key.removeprefix("GRADER_").lower() if key.isupper() else key)
        if name in _GROUPS:
            given = value.model_dump() if isinstance(value, BaseModel) else dict(value)
            nested.setdefault(name, {}).update(given)
        elif name in FLAT_NAMES:
            group, field = FLAT_NAMES[name]
            nested.setdefault(group, {})[field] = value
        else:
            raise ValueError(f"unknown setting {key!r}; see grader/settings.py for the names")
    return nested


class _FlatEnvironment(PydanticBaseSettingsSource):
    """`GRADER_MEMORY`, `GRADER_BOOT_TIMEOUT_S`, `REDIS_URL`...: the variable names of before the groups."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        environ = {key.upper(): value for key, value in os.environ.items()}
        for name, (group, field) in FLAT_NAMES.items():
            candidates = [f"GRADER_{name.upper()}"] + [bare for bare, flat in _BARE_ENV.items() if flat == name]
            for variable in candidates:
                if variable in environ:
                    raw = environ[variable]
                    complex_value = _GROUPS[group].model_fields[field].annotation == list[int]
                    found.setdefault(group, {})[field] = json.loads(raw) if complex_value else raw
                    break
        return found


class Settings(BaseSettings):
    """The grader's settings: defaults in the groups above, each documented."""

    model_config = SettingsConfigDict(env_prefix="GRADER_", env_nested_delimiter="__", frozen=True, extra="forbid")

    paths: Paths = Paths()
    intake: IntakeSettings = IntakeSettings()
    sandbox: SandboxSettings = SandboxSettings()
    timeouts: Timeouts = Timeouts()
    queue: QueueSettings = QueueSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    report: ReportSettings = ReportSettings()
    cohort: CohortSettings = CohortSettings()
    storage: StorageSettings = StorageSettings()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        nested_env = EnvSettingsSource(settings_cls, env_prefix="GRADER_", env_nested_delimiter="__")
        return init_settings, nested_env, _FlatEnvironment(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _flat_keywords(cls, data: Any) -> Any:
        return _nest(data) if isinstance(data, dict) else data

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed, by flat name (`boot_timeout_s=5`) or whole group; validated again."""
        current = {group: getattr(self, group).model_dump() for group in _GROUPS}
        for group, fields in _nest(changes).items():
            current[group] = {**current[group], **fields}
        return Settings.model_validate(current)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the submissions database."""
        url = self.database.url
        return url.get_secret_value() if url else f"sqlite:///{self.paths.data_dir / 'grader.db'}"

    @property
    def redis_url(self) -> str | None:
        """`queue.redis_url` in clear, for the Redis client; None means the embedded server."""
        return self.queue.redis_url.get_secret_value() if self.queue.redis_url else None

    def masked(self) -> dict[str, Any]:
        """Every value, as logged at start: secrets as `**********`, passwords in URLs hidden."""
        shown = self.model_dump(mode="json")
        for group, field in (("queue", "redis_url"), ("database", "url")):
            secret = getattr(getattr(self, group), field)
            shown[group][field] = _without_password(secret.get_secret_value()) if secret else None
        return shown


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
