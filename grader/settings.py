"""One settings object for the whole grader; every module receives it, none reads the environment."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Defaults live here, each documented; override with `GRADER_<NAME>` variables."""

    model_config = SettingsConfigDict(env_prefix="GRADER_", frozen=True, extra="ignore")

    data_dir: Path = Field(PROJECT_ROOT / "var", description="Sockets, locks, clones, the embedded Redis.")
    reports_dir: Path = Field(PROJECT_ROOT / "reports", description="Where `reports/<id>/` are written.")
    assignments_dir: Path = Field(PROJECT_ROOT / "assignments", description="One folder per assignment.")

    docker_host: str | None = Field(None, description="Docker engine URL; None means the SDK's default.")
    base_image: str = Field(
        "grader-base:bookworm",
        description="Image the submissions build on. `grader-base:*` is built locally with mmdebstrap; "
        "any other name (e.g. python:3.12-slim) is pulled from a registry.",
    )
    harness_image: str = Field("grader-harness:latest", description="The trusted relay image (socat).")
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

    system_python: str = Field(
        "/usr/bin/python3", description="The base image's own Python, which the harness uses for SQL."
    )

    allow_local_sources: bool = Field(True, description="Accept file:// URLs and local paths.")
    clone_timeout_s: float = Field(60, description="Wall clock for fetching a repository.")
    max_repo_bytes: int = Field(50 * 1024 * 1024, description="Cap on a fetched repository's size.")
    max_repo_files: int = Field(5000, description="Cap on the number of files in a submission.")

    build_network: str = Field("bridge", description="Network of dependency installs; `none` for offline.")
    build_timeout_s: float = Field(300, description="Wall clock for installing requirements.")
    boot_timeout_s: float = Field(30, description="Wall clock until the app answers HTTP.")
    request_timeout_s: float = Field(10, description="One HTTP request of a hidden test.")
    test_timeout_s: float = Field(60, description="One hidden test, including its requests.")
    suite_timeout_s: float = Field(600, description="The whole hidden suite (the pytest process is killed).")
    parallel_lanes: bool = Field(
        True,
        description="Run an assignment's lanes at the same time, each on its own app, while lane slots are free: a "
        "single grade finishes sooner. False runs them in turn.",
    )
    lane_slots: int = Field(
        0, ge=0,
        description="How many lanes may run at once on this machine, across all grading processes (0: one per "
        "core, plus one, since a lane spends part of its time waiting for its app). A grade always runs one lane; "
        "a further lane starts beside it only while a slot is free, else after the grade's own lanes, in turn: "
        "busy workers then stop oversubscribing the cores.",
    )
    exec_timeout_s: float = Field(60, description="One command run in the app container by a test.")

    memory: str = Field("512m", description="Memory (and memory+swap) of an app or build container.")
    pids: int = Field(256, description="Process limit of an app or build container.")
    cpus: float = Field(1.0, description="CPU quota of an app or build container.")
    data_size: str = Field("64m", description="Size of the app's writable data area and of /tmp.")
    log_bytes: int = Field(64 * 1024, description="Bytes of a container's output kept for a report.")
    engine_log_max_size: str = Field("1m", description="Cap on the engine's own log file of a container.")

    redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("GRADER_REDIS_URL", "REDIS_URL"),
        description="Redis for the queue; None starts a private redis-server in data_dir.",
    )

    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("GRADER_DATABASE_URL", "DATABASE_URL"),
        description="The submissions database (sqlite:// or postgresql://); None means data_dir/grader.db.",
    )
    job_timeout_s: float = Field(
        0, ge=0,
        description="Wall clock of one grading job in a worker; 0 means the sum of the stage limits (clone, build, "
        "boot, suite) plus 120 s for the report and cleanup. A value below that sum is refused: a grading that "
        "used every stage's limit would end as a retried infra_error instead of a graded report.",
    )
    retry_intervals_s: list[int] = Field(
        [30, 120],
        description="Back-off before each retry of an infra_error; its length is the number of retries.",
    )
    max_attempts: int = Field(
        5, ge=1, description="Gradings started for one submission (worker deaths count) before it is infra_error."
    )
    watchdog_interval_s: float = Field(5, gt=0, description="How often each worker looks for abandoned gradings.")
    heartbeat_ttl_s: int = Field(
        20, ge=2, description="A worker on another host is dead when its heartbeat is older than this."
    )
    requeue_grace_s: float = Field(
        60, description="A queued submission whose Redis job is missing this long is enqueued again."
    )
    redis_start_timeout_s: float = Field(10, description="Wait for the embedded redis-server to answer PING.")

    secret_key: str | None = Field(
        None, description="Flask's session key; None means a random key kept in data_dir/web-secret (mode 600)."
    )
    session_cookie_secure: bool = Field(False, description="Send the session cookie over HTTPS only (behind TLS).")
    login_attempts: int = Field(
        5, ge=1, description="Failed staff logins allowed per e-mail and client address within `login_window_s`."
    )
    login_window_s: float = Field(900, gt=0, description="The window of `login_attempts`; the refusal lasts as long.")
    invitation_days: float = Field(7, gt=0, description="Default lifetime of an invitation link.")
    invitation_max_uses: int = Field(3, ge=1, description="Default number of submissions an invitation allows.")
    submit_interval_s: float = Field(
        60, ge=0, description="Minimum time between two submissions through one invitation."
    )
    webhook_timeout_s: float = Field(10, gt=0, description="One webhook POST, connect and read.")
    webhook_retry_intervals_s: list[int] = Field(
        [10, 60, 300, 1800], description="Back-off before each retry of a failed webhook delivery."
    )
    webhook_poll_s: float = Field(2, gt=0, description="How often `grader serve` looks for finished grades to report.")

    @field_validator("database_url")
    @classmethod
    def _database_driver(cls, url: str | None) -> str | None:
        """Accept SQLite and PostgreSQL; plain postgres:// URLs get the psycopg (3) driver we install."""
        if not url:
            return None
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ValueError(f"{url!r} is not a database URL; use sqlite:///path or postgresql://user@host/db")
        if scheme in ("postgres", "postgresql"):
            return f"postgresql+psycopg://{rest}"
        if scheme.split("+")[0] not in ("sqlite", "postgresql"):
            raise ValueError(f"the {scheme!r} database is not supported; use sqlite:///path or postgresql://...")
        return url

    @property
    def database(self) -> str:
        """The SQLAlchemy URL of the submissions database."""
        return self.database_url or f"sqlite:///{self.data_dir / 'grader.db'}"

    @property
    def redis_dir(self) -> Path:
        """Socket, pidfile and append-only file of the embedded redis-server."""
        return self.data_dir / "redis"

    @model_validator(mode="after")
    def _job_timeout_covers_the_stages(self) -> Settings:
        stages = self.clone_timeout_s + self.build_timeout_s + self.boot_timeout_s + self.suite_timeout_s
        if self.job_timeout_s == 0:
            object.__setattr__(self, "job_timeout_s", stages + 120)  # the model is frozen once validated
        elif self.job_timeout_s < stages:
            raise ValueError(
                f"job_timeout_s ({self.job_timeout_s:.0f}) is below the sum of the stage limits ({stages:.0f} s: "
                "clone, build, boot, suite); raise it or leave it at 0 to derive it"
            )
        return self

    @property
    def lane_slot_count(self) -> int:
        """`lane_slots`, or its default: one per core, plus one."""
        return self.lane_slots or (os.cpu_count() or 1) + 1

    @property
    def sockets_dir(self) -> Path:
        return self.data_dir / "sockets"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def locks_dir(self) -> Path:
        return self.data_dir / "locks"
