"""Stage 2: an image per submission: a cached dependency layer, then the candidate's code on top.

The dependency layer is keyed by the base image and the bytes of `requirements.txt`, so a
resubmission or a common stack skips the install. The install runs in a hardened container as the
unprivileged app user, because `pip install` runs code from the packages it builds.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile

import docker
import docker.errors
import requests
from docker.types import Mount

from grader.engine import KIND_LABEL, engine_errors, job_labels, log_tail
from grader.errors import BuildFailed
from grader.filelock import exclusive
from grader.images import APP_UID
from grader.intake import read_regular_file
from grader.models import Snapshot, SubmissionImage
from grader.sandbox import hardening
from grader.settings import Settings

MAX_REQUIREMENTS_BYTES = 256 * 1024
DEPS_REPOSITORY = "grader-deps"
SUBMISSION_REPOSITORY = "grader-submission"
_INSTALL = (
    "python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "
    "--no-input --progress-bar off -r /run/req/requirements.txt"
)


def _read_requirements(snapshot: Snapshot) -> bytes:
    content = read_regular_file(snapshot.path / "requirements.txt", MAX_REQUIREMENTS_BYTES)
    if content is None:
        raise BuildFailed(
            "the repository has no requirements.txt at its root (or it is not a regular file); "
            "add one that lists your dependencies in pip format"
        )
    if len(content) > MAX_REQUIREMENTS_BYTES:
        raise BuildFailed(f"requirements.txt is larger than {MAX_REQUIREMENTS_BYTES} bytes")
    check_requirements(content)
    return content


_ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar")
_ALLOWED_OPTIONS = ("--hash", "--require-hashes", "--prefer-binary", "--only-binary", "--no-binary", "--pre")
_SOURCE_CHANGING = re.compile(r"(^|\s)(-[ifce]\b|--(index-url|extra-index-url|find-links|trusted-host|no-index|editable|"
                              r"constraint|requirement|use-pep517|config-settings|global-option|install-option)\b)")


def check_requirements(content: bytes) -> None:
    """Refuse lines that change where packages come from, or that pull in what the build cannot see."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise BuildFailed("requirements.txt is not UTF-8 text") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        changing = _SOURCE_CHANGING.search(line)
        if line.startswith("-") or changing:
            option = changing.group(2) if changing else line.split()[0].split("=")[0]
            if option in _ALLOWED_OPTIONS and not changing:
                continue
            raise BuildFailed(
                f"requirements.txt line {number}: the option {option!r} is not allowed; packages come from "
                "the grader's package index only, so list plain requirements such as `flask==3.1.0`"
            )
        requirement = line.split(";", 1)[0]
        if (
            "://" in requirement or "/" in requirement or "\\" in requirement or " @ " in requirement
            or requirement.startswith((".", "~", "git+")) or requirement.rstrip().endswith(_ARCHIVES)
        ):
            raise BuildFailed(
                f"requirements.txt line {number}: {line[:80]!r} installs from a URL or a path; "
                "list packages by name and version only"
            )


def _install_dependencies(
    client: docker.DockerClient, settings: Settings, job_id: str, requirements: bytes, key: str
) -> str:
    """Install requirements into /opt/venv in a throwaway container and commit it as the cached layer."""
    req_dir = settings.work_dir / job_id / "req"
    req_dir.mkdir(parents=True, exist_ok=True)
    req_dir.chmod(0o755)
    (req_dir / "requirements.txt").write_bytes(requirements)
    (req_dir / "requirements.txt").chmod(0o644)
    ca = str(settings.ca_bundle)
    with engine_errors("creating the build container"):
        container = client.containers.create(
            settings.base_image,
            command=["/bin/sh", "-c", _INSTALL],
            user=f"{APP_UID}:{APP_UID}",
            environment={"HOME": "/tmp", "PIP_CERT": ca, "SSL_CERT_FILE": ca, "PIP_DEFAULT_TIMEOUT": "60"},
            mounts=[
                Mount("/run/req", str(req_dir), type="bind", read_only=True),
                Mount(ca, ca, type="bind", read_only=True),
            ],
            network_mode=settings.build_network,
            labels=job_labels(job_id, "build"),
            **hardening(settings, read_only=False),
        )
    try:
        with engine_errors("starting the build container"):
            container.start()
        try:
            result = container.wait(timeout=settings.build_timeout_s)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            container.kill()
            raise BuildFailed(
                f"installing requirements.txt took longer than {settings.build_timeout_s:.0f} s (build time limit)",
                log_tail=log_tail(container, settings.log_bytes), limit="build_time",
            ) from None
        tail = log_tail(container, settings.log_bytes)
        if result.get("StatusCode") != 0:
            container.reload()
            if container.attrs["State"].get("OOMKilled"):
                raise BuildFailed(
                    f"installing requirements.txt ran out of memory (limit {settings.memory})", log_tail=tail, limit="memory"
                )
            raise BuildFailed(
                f"installing requirements.txt failed (pip exited with {result.get('StatusCode')}); "
                "see the build log below",
                log_tail=tail,
            )
        with engine_errors("saving the dependency layer"):
            image = container.commit(
                repository=DEPS_REPOSITORY, tag=key,
                conf={"Labels": {KIND_LABEL: "deps", "grader.job": "", "grader.role": ""}, "Cmd": ["/bin/true"]},
            )
        return image.id
    finally:
        with engine_errors("removing the build container"):
            container.remove(force=True)


def _context_tar(snapshot: Snapshot, deps_tag: str) -> io.BytesIO:
    """A build context: our Dockerfile at the root, the candidate's tree under src/ (links kept as links)."""
    dockerfile = f"FROM {deps_tag}\nCOPY --chown={APP_UID}:{APP_UID} src/ /app/\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        archive.addfile(info, io.BytesIO(dockerfile))
        archive.add(snapshot.path, arcname="src", recursive=True)
    buffer.seek(0)
    return buffer


def build_image(snapshot: Snapshot, settings: Settings, client: docker.DockerClient) -> SubmissionImage:
    """Return the submission's image, installing its requirements only when no cached layer matches."""
    requirements = _read_requirements(snapshot)
    with engine_errors("reading the base image"):
        base_id = client.images.get(settings.base_image).id
    key = hashlib.sha256(base_id.encode() + b"\0" + requirements).hexdigest()[:32]
    deps_tag = f"{DEPS_REPOSITORY}:{key}"
    cached = True
    with exclusive(settings.locks_dir / f"deps-{key}.lock"):  # builds of one layer take turns
        try:
            client.images.get(deps_tag)
        except docker.errors.ImageNotFound:
            cached = False
            _install_dependencies(client, settings, snapshot.job_id, requirements, key)
    tag = f"{SUBMISSION_REPOSITORY}:{snapshot.job_id}"
    with engine_errors("building the submission image"):
        image, _ = client.images.build(
            fileobj=_context_tar(snapshot, deps_tag), custom_context=True, tag=tag,
            labels=job_labels(snapshot.job_id, "submission"), rm=True, forcerm=True, network_mode="none",
        )
    return SubmissionImage(
        job_id=snapshot.job_id, image_id=image.id, tag=tag, deps_key=key, deps_cached=cached,
        requirements_sha256=hashlib.sha256(requirements).hexdigest(),
    )
