"""Stage 2: an image per submission: a cached dependency layer, then the candidate's code on top.

The dependency layer is keyed by the base image, the installer recipe and the bytes of
`requirements.txt`, so a resubmission or a common stack skips the install. The install runs in a
hardened container as the unprivileged app user, because installing runs code from the packages it
builds. The installer is uv: the grader's own binary (from the `uv` package it depends on) is
mounted read-only into the build container, so the base image does not carry it and its version
follows the grader's. uv's cache lives in the build container and is deleted before the layer is
saved: no cache is shared between candidates.
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import requests
from docker.types import Mount

from grader.errors import BuildFailed, InfraError
from grader.filelock import exclusive
from grader.models import Snapshot, SubmissionImage
from grader.sandbox.docker import KIND_LABEL, engine_errors, job_labels, log_tail
from grader.sandbox.images import APP_UID
from grader.sandbox.limits import hardening
from grader.settings import Settings
from grader.stages.intake import read_regular_file

MAX_REQUIREMENTS_BYTES = 256 * 1024
DEPS_REPOSITORY = "grader-deps"
SUBMISSION_REPOSITORY = "grader-submission"
# Part of the deps key: a layer made by another installer or recipe (pip's, before) is never reused.
# Change it whenever the install below changes what ends up in /opt/venv.
INSTALLER = "uv-1"
VENV = "/opt/venv"
UV = "/run/uv/uv"  # where the grader's uv binary is mounted, read-only
REQUIREMENTS = "/run/req/requirements.txt"
# Per build, in the container's own writable layer (same filesystem as the venv, so uv hardlinks
# instead of copying); removed before the commit, so it is neither shared nor saved in the layer.
UV_CACHE = f"{VENV}/.uv-cache"


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


def _requirement_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of requirements.txt with comments and blank lines left out, as pip reads them."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            yield number, line


def check_requirements(content: bytes) -> None:
    """Refuse lines that change where packages come from, or that pull in what the build cannot see."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise BuildFailed("requirements.txt is not UTF-8 text") from None
    for number, line in _requirement_lines(text):
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


def _requirement_options(content: bytes) -> set[str]:
    """The options (allowed by `check_requirements`) present in requirements.txt, e.g. {"--pre", "--hash"}."""
    found: set[str] = set()
    for _, line in _requirement_lines(content.decode("utf-8")):
        for token in line.split():
            name = token.split("=", 1)[0]
            if name in _ALLOWED_OPTIONS:
                found.add(name)
    return found


def install_command(requirements: bytes) -> list[str]:
    """`uv pip install` of requirements.txt into the venv, with pip's meaning of the options we allow.

    uv reads `--hash`, `--require-hashes`, `--only-binary` and `--no-binary` from the file itself.
    Two need help: pip turns on hash-checking of every requirement as soon as one line has a
    `--hash` (uv would only check the hashes given), and uv ignores `--pre` in a file (it wants it on
    the command line). `--prefer-binary` has no uv counterpart: uv warns and ignores it.
    """
    options = _requirement_options(requirements)
    command = [
        UV, "pip", "install", "--python", f"{VENV}/bin/python", "--cache-dir", UV_CACHE,
        "--compile-bytecode",  # the app runs with a read-only root and no bytecode writing: compile now
        "--no-config", "--no-python-downloads", "--no-progress", "--color", "never",
    ]
    if options & {"--hash", "--require-hashes"}:
        command.append("--require-hashes")
    if "--pre" in options:
        command += ["--prerelease", "allow"]
    return [*command, "-r", REQUIREMENTS]


def install_script(requirements: bytes, settings: Settings) -> str:
    """The build container's shell script: a venv on the base image's Python, the install, no cache left.

    The variables are exported by the script, not given to the container, so they do not end up in
    the committed image's environment (which stays the base image's).
    """
    environment = {"HOME": "/tmp", "SSL_CERT_FILE": str(settings.sandbox.ca_bundle), "UV_HTTP_TIMEOUT": "60"}
    venv = [UV, "venv", "--quiet", "--no-config", "--no-python-downloads", "--python", settings.sandbox.system_python, VENV]
    return "\n".join([
        "set -e",
        "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in environment.items()),
        shlex.join(venv),
        shlex.join(install_command(requirements)),
        f"rm -rf {shlex.quote(UV_CACHE)}",
    ])


def uv_binary(settings: Settings) -> Path:
    """The uv executable on this host: the setting, or the binary of the `uv` package the grader depends on."""
    if settings.sandbox.uv_binary is not None:
        path = settings.sandbox.uv_binary
    else:
        try:
            from uv import find_uv_bin

            path = Path(find_uv_bin())
        except (ImportError, FileNotFoundError):
            raise InfraError(
                "uv is not installed next to the grader; run `.venv/bin/pip install -e .` (or `make setup`)"
            ) from None
    path = path.resolve()
    if not path.is_file():
        raise InfraError(f"the uv binary {path} does not exist; set GRADER_UV_BINARY or reinstall the grader")
    return path


def install_error(tail: str, limit: int = 600) -> str:
    """uv's own error for the report's reason: its last `error:` line, the indented causes, a `hint:`."""
    lines = tail.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
    if not starts:
        return ""
    block = [lines[starts[-1]].removeprefix("error:").strip()]
    following = lines[starts[-1] + 1:]
    while following and following[0].startswith((" ", "\t")) and following[0].strip():
        block.append(following.pop(0).strip().removeprefix("cause:").strip())
    text = ": ".join(block)
    rest = [line for line in following if line.strip()]
    if rest and rest[0].startswith("hint:"):
        text += f" ({rest[0].strip()})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _install_dependencies(
    client: docker.DockerClient, settings: Settings, job_id: str, requirements: bytes, key: str
) -> str:
    """Install requirements into /opt/venv in a throwaway container and commit it as the cached layer."""
    req_dir = settings.paths.work_dir / job_id / "req"
    req_dir.mkdir(parents=True, exist_ok=True)
    req_dir.chmod(0o755)
    (req_dir / "requirements.txt").write_bytes(requirements)
    (req_dir / "requirements.txt").chmod(0o644)
    ca = str(settings.sandbox.ca_bundle)
    uv = uv_binary(settings)
    with engine_errors("creating the build container"):
        container = client.containers.create(
            settings.sandbox.base_image,
            command=["/bin/sh", "-c", install_script(requirements, settings)],
            user=f"{APP_UID}:{APP_UID}",
            mounts=[
                Mount("/run/req", str(req_dir), type="bind", read_only=True),
                Mount(ca, ca, type="bind", read_only=True),
                Mount(UV, str(uv), type="bind", read_only=True),
            ],
            network_mode=settings.sandbox.build_network,
            labels=job_labels(job_id, "build"),
            **hardening(settings, read_only=False),
        )
    try:
        with engine_errors("starting the build container"):
            container.start()
        try:
            result = container.wait(timeout=settings.timeouts.build_s)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            container.kill()
            raise BuildFailed(
                f"installing requirements.txt took longer than {settings.timeouts.build_s:.0f} s (build time limit)",
                log_tail=log_tail(container, settings.sandbox.log_bytes), limit="build_time",
            ) from None
        tail = log_tail(container, settings.sandbox.log_bytes)
        if result.get("StatusCode") != 0:
            container.reload()
            if container.attrs["State"].get("OOMKilled"):
                raise BuildFailed(
                    f"installing requirements.txt ran out of memory (limit {settings.sandbox.memory})", log_tail=tail, limit="memory"
                )
            error = install_error(tail)
            raise BuildFailed(
                f"installing requirements.txt failed (uv exited with {result.get('StatusCode')})"
                + (f": {error}" if error else "; see the build log below"),
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


def deps_key(base_id: str, requirements: bytes) -> str:
    """The dependency layer's key: base image, installer recipe, requirements bytes."""
    return hashlib.sha256(base_id.encode() + b"\0" + INSTALLER.encode() + b"\0" + requirements).hexdigest()[:32]


def build_image(snapshot: Snapshot, settings: Settings, client: docker.DockerClient) -> SubmissionImage:
    """Return the submission's image, installing its requirements only when no cached layer matches."""
    requirements = _read_requirements(snapshot)
    with engine_errors("reading the base image"):
        base_id = client.images.get(settings.sandbox.base_image).id
    key = deps_key(base_id, requirements)
    deps_tag = f"{DEPS_REPOSITORY}:{key}"
    cached = True
    with exclusive(settings.paths.locks_dir / f"deps-{key}.lock"):  # builds of one layer take turns
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
