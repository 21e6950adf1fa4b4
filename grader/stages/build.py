"""Stage 2: an image per submission: a cached dependency layer, then the candidate's code on top.

The dependency layer is keyed by the base image, the installer recipe and the normalized dependency
text of `stages/requirements.py` (whatever layout or lock format it came from), so a resubmission or a
common stack skips the install. The install runs in a
hardened container as the unprivileged app user, because installing runs code from the packages it
builds. The installer is uv: the grader's own binary (from the `uv` package it depends on) is
mounted read-only into the build container, so the base image does not carry it and its version
follows the grader's. uv's cache lives in the build container and is deleted before the layer is
saved: no cache is shared between candidates.
"""

from __future__ import annotations

import hashlib
import io
import shlex
import tarfile
from pathlib import Path

from grader.errors import BuildFailed, InfraError
from grader.filelock import exclusive
from grader.models import Snapshot, SubmissionImage
from grader.owner import current_owner
from grader.sandbox import ContainerSpec, Sandbox, forkserver
from grader.sandbox.docker import KIND_LABEL
from grader.sandbox.images import APP_UID
from grader.settings import Settings
from grader.stages.install_failure import explain_install_failure
from grader.stages.requirements import Dependencies, read_dependencies, requirement_options

DEPS_REPOSITORY = "grader-deps"
SUBMISSION_REPOSITORY = "grader-submission"
RUNTIME_REPOSITORY = "grader-runtime"
# Part of the deps key: a layer made by another installer or recipe (pip's, before) is never reused.
# Change it whenever the install below changes what ends up in /opt/venv.
INSTALLER = "uv-1"
VENV = "/opt/venv"
UV = "/run/uv/uv"  # where the grader's uv binary is mounted, read-only
REQUIREMENTS = "/run/req/requirements.txt"
CONSTRAINTS = "/run/req/constraints.txt"  # only when the requirements had `-c` includes
# Per build, in the container's own writable layer (same filesystem as the venv, so uv hardlinks
# instead of copying); removed before the commit, so it is neither shared nor saved in the layer.
UV_CACHE = f"{VENV}/.uv-cache"


def install_command(requirements: bytes, constraints: bool = False) -> list[str]:
    """`uv pip install` of requirements.txt into the venv, with pip's meaning of the options we allow.

    uv reads `--hash`, `--require-hashes`, `--only-binary` and `--no-binary` from the file itself.
    Two need help: pip turns on hash-checking of every requirement as soon as one line has a
    `--hash` (uv would only check the hashes given), and uv ignores `--pre` in a file (it wants it on
    the command line). `--prefer-binary` has no uv counterpart: uv warns and ignores it.
    """
    options = requirement_options(requirements)
    command = [
        UV, "pip", "install", "--python", f"{VENV}/bin/python", "--cache-dir", UV_CACHE,
        "--compile-bytecode",  # the app runs with a read-only root and no bytecode writing: compile now
        "--no-config", "--no-python-downloads", "--no-progress", "--color", "never",
    ]
    if options & {"--hash", "--require-hashes"}:
        command.append("--require-hashes")
    if "--pre" in options:
        command += ["--prerelease", "allow"]
    return [*command, "-r", REQUIREMENTS, *(["-c", CONSTRAINTS] if constraints else [])]


def install_script(requirements: bytes, settings: Settings, constraints: bool = False) -> str:
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
        shlex.join(install_command(requirements, constraints)),
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


def _install_dependencies(sandbox: Sandbox, settings: Settings, submission_id: str, deps: Dependencies, key: str) -> str:
    """Install the normalized requirements into /opt/venv in a throwaway container and commit it as the cached layer."""
    req_dir = settings.paths.work_dir / submission_id / "req"
    req_dir.mkdir(parents=True, exist_ok=True)
    req_dir.chmod(0o755)
    files = {"requirements.txt": deps.requirements, **({"constraints.txt": deps.constraints} if deps.constraints else {})}
    for name, content in files.items():
        (req_dir / name).write_bytes(content)
        (req_dir / name).chmod(0o644)
    script = install_script(deps.requirements, settings, constraints=bool(deps.constraints))
    ca = str(settings.sandbox.ca_bundle)
    container = sandbox.start(ContainerSpec(
        image=settings.sandbox.base_image, command=["/bin/sh", "-c", script],
        submission_id=submission_id, role="build", owner=current_owner(), user=f"{APP_UID}:{APP_UID}",
        network=settings.sandbox.build_network, limits="build",
        binds=((str(req_dir), "/run/req"), (ca, ca), (str(uv_binary(settings)), UV)),
    ))
    try:
        code = sandbox.wait(container, settings.timeouts.build_s)
        tail = sandbox.logs(container, settings.sandbox.log_bytes)
        if code is None:
            raise BuildFailed(
                f"installing {deps.label} took longer than {settings.timeouts.build_s:.0f} s (build time limit)",
                log_tail=tail, limit="build_time",
            )
        if code != 0:
            if sandbox.state(container).oom_killed:
                raise BuildFailed(
                    f"installing {deps.label} ran out of memory (limit {settings.sandbox.memory})",
                    log_tail=tail, limit="memory",
                )
            error = explain_install_failure(tail)
            raise BuildFailed(
                f"installing {deps.label} failed (uv exited with {code})"
                + (f": {error}" if error else "; see the build log below"),
                log_tail=tail,
            )
        return sandbox.commit(container, DEPS_REPOSITORY, key, {KIND_LABEL: "deps", "grader.job": "", "grader.role": ""})
    finally:
        sandbox.remove(container)


def _context_tar(dockerfile: str, files: dict[str, Path]) -> io.BytesIO:
    """A build context: our Dockerfile at the root and each file or tree under its name (links kept as links)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        archive.addfile(info, io.BytesIO(dockerfile.encode()))
        for name, path in files.items():
            archive.add(path, arcname=name, recursive=True)
    buffer.seek(0)
    return buffer


def _runtime_image(sandbox: Sandbox, submission_id: str, deps_tag: str, key: str) -> str:
    """The dependency layer plus our fork server, tagged: a job's image is built on it, and removing the job's
    image never prunes it (an untagged shared parent pruned under another job's build fails that build). The
    fork server is root's, under the image's read-only root: the candidate cannot change it."""
    server = Path(forkserver.host_path())
    tag = f"{RUNTIME_REPOSITORY}:{key}-{hashlib.sha256(server.read_bytes()).hexdigest()[:12]}"
    if sandbox.image_id(tag) is None:
        context = _context_tar(f"FROM {deps_tag}\nCOPY forkserver.py {forkserver.IMAGE_PATH}\n", {"forkserver.py": server})
        sandbox.build_image(context, tag, submission_id, shared=True)
    return tag


def deps_key(base_id: str, requirements: bytes, constraints: bytes = b"") -> str:
    """The dependency layer's key: base image, installer recipe, the normalized requirements (and constraints).

    The texts are those of `read_dependencies`, not the candidate's bytes: the same pins in a split `-r`
    layout, a flat file or a lock file give the same key, and so share one layer."""
    extra = b"\0constraints\0" + constraints if constraints else b""
    return hashlib.sha256(base_id.encode() + b"\0" + INSTALLER.encode() + b"\0" + requirements + extra).hexdigest()[:32]


def build_image(snapshot: Snapshot, settings: Settings, sandbox: Sandbox, deps: Dependencies | None = None) -> SubmissionImage:
    """Return the submission's image, installing its dependencies only when no cached layer matches.

    `deps` is `read_dependencies(snapshot)` when the caller has read them already (for the report's provenance)."""
    deps = deps or read_dependencies(snapshot)
    base_id = sandbox.image_id(settings.sandbox.base_image)
    if base_id is None:
        raise InfraError(f"the base image {settings.sandbox.base_image} is missing; run `grader images build`")
    key = deps_key(base_id, deps.requirements, deps.constraints)
    deps_tag = f"{DEPS_REPOSITORY}:{key}"
    cached = True
    with exclusive(settings.paths.locks_dir / f"deps-{key}.lock"):  # builds of one layer take turns
        if sandbox.image_id(deps_tag) is None:
            cached = False
            _install_dependencies(sandbox, settings, snapshot.submission_id, deps, key)
        runtime = _runtime_image(sandbox, snapshot.submission_id, deps_tag, key)
    tag = f"{SUBMISSION_REPOSITORY}:{snapshot.submission_id}"
    # Builds on one layer take turns: the engine's classic builder fails ("failed to export image") when two
    # builds commit the same layer (two identical trees on the same runtime) at the same time.
    with exclusive(settings.paths.locks_dir / f"image-{key}.lock"):
        context = _context_tar(f"FROM {runtime}\nCOPY --chown={APP_UID}:{APP_UID} src/ /app/\n", {"src": snapshot.path})
        image_id = sandbox.build_image(context, tag, snapshot.submission_id)
    return SubmissionImage(
        submission_id=snapshot.submission_id, image_id=image_id, tag=tag, deps_key=key, deps_cached=cached,
        requirements_sha256=deps.sha256, base_image_id=base_id,
        base_image_digest=sandbox.image_digest(settings.sandbox.base_image),
    )
