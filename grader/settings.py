"""One settings object for the whole grader; every module receives it, none reads the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
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

    @property
    def sockets_dir(self) -> Path:
        return self.data_dir / "sockets"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"

    @property
    def locks_dir(self) -> Path:
        return self.data_dir / "locks"
