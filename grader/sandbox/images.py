"""The local images: the Debian base (mmdebstrap + docker import), the trusted relay (socat), and the trusted
services image (PostgreSQL 15, Redis 7, Nginx from bookworm, also by mmdebstrap) that pods with services run.

Each image carries the hash of its recipe in a label, so a rebuild is skipped when nothing changed. The Debian
roots are built with a fixed SOURCE_DATE_EPOCH, so two hosts that build them from the same package versions get
byte-identical tarballs, and the base image's layer digest (in every report's provenance) says so.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from grader.errors import InfraError
from grader.sandbox.docker import KIND_LABEL, engine_errors
from grader.settings import Settings

RECIPE_LABEL = "grader.recipe"
APP_UID = 10001
BASE_PACKAGES = ["python3", "python3-venv", "ca-certificates", "socat", "coreutils"]
_HOOKS = [
    f'chroot "$1" useradd --uid {APP_UID} --user-group --create-home --shell /usr/sbin/nologin app',
    'mkdir -p "$1/opt/venv" "$1/app" "$1/data" "$1/run/grader"',
    f'chown {APP_UID}:{APP_UID} "$1/opt/venv" "$1/app" "$1/data"',
    'rm -rf "$1/var/cache/apt/archives"/*.deb "$1/var/lib/apt/lists"/*',
]
SOURCE_DATE_EPOCH = "1700000000"
"""The time every file of a Debian root carries: mmdebstrap's output then depends only on the packages."""
SERVICES_PACKAGES = ["postgresql-15", "redis-server", "nginx-light", "procps"]
SERVICES_FILES = Path(__file__).parent / "services_files"
_SERVICES_HOOKS = ['rm -rf "$1/var/cache/apt/archives"/*.deb "$1/var/lib/apt/lists"/*']
_SERVICES_DOCKERFILE = """\
FROM {root}
LABEL {kind}=services
COPY files/ /etc/grader/
RUN mv /etc/grader/grader-services /usr/local/bin/grader-services \\
 && install -d -o postgres -g postgres -m 700 /var/lib/grader-pg \\
 && runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb --pgdata /var/lib/grader-pg/data --username postgres \\
      --auth-local trust --auth-host scram-sha-256 --encoding UTF8 --locale C.UTF-8 --no-sync --no-instructions >/dev/null
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
USER postgres
ENTRYPOINT ["/usr/local/bin/grader-services"]
"""
_RELAY_DOCKERFILE = """\
FROM {base}
LABEL {kind}=relay
USER 0
ENTRYPOINT ["socat"]
"""


@dataclass(frozen=True)
class ImageStatus:
    name: str
    image_id: str
    built: bool


def _recipe_hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _existing(client: docker.DockerClient, name: str, recipe: str) -> str | None:
    try:
        image = client.images.get(name)
    except docker.errors.ImageNotFound:
        return None
    return image.id if image.labels.get(RECIPE_LABEL) == recipe else None


def build_base_image(client: docker.DockerClient, settings: Settings, force: bool = False) -> ImageStatus:
    """A Debian rootfs with Python, made by mmdebstrap and imported; or a registry image, pulled."""
    name = settings.sandbox.base_image
    if not name.startswith("grader-base"):
        with engine_errors(f"pulling {name}"):
            image = client.images.pull(name)
        return ImageStatus(name, image.id, built=False)
    recipe = _recipe_hash(settings.sandbox.debian_suite, *BASE_PACKAGES, *_HOOKS, SOURCE_DATE_EPOCH)
    if not force and (existing := _existing(client, name, recipe)):
        return ImageStatus(name, existing, built=False)
    with tempfile.TemporaryDirectory(prefix="grader-base-") as tmp:
        tarball = Path(tmp) / "base.tar"
        build_base_root(settings.sandbox.debian_suite, tarball)
        changes = [
            f"LABEL {RECIPE_LABEL}={recipe} {KIND_LABEL}=base",
            "ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1",
            "WORKDIR /app",
            f"USER {APP_UID}:{APP_UID}",
        ]
        repository, _, tag = name.partition(":")
        with engine_errors("importing the base image"):
            client.api.import_image_from_file(str(tarball), repository=repository, tag=tag or "latest", changes=changes)
    return ImageStatus(name, client.images.get(name).id, built=True)


def build_relay_image(client: docker.DockerClient, settings: Settings, base_id: str, force: bool = False) -> ImageStatus:
    """The trusted relay: socat from the base, run by the grader only, never by a submission."""
    name = settings.sandbox.relay_image
    dockerfile = _RELAY_DOCKERFILE.format(base=settings.sandbox.base_image, kind=KIND_LABEL)
    recipe = _recipe_hash(base_id, dockerfile)
    if not force and (existing := _existing(client, name, recipe)):
        return ImageStatus(name, existing, built=False)
    return ImageStatus(name, _build_from_dockerfile(client, name, dockerfile, recipe, {}), built=True)


def build_base_root(suite: str, tarball: Path) -> None:
    """The base image's root as a tarball: the same bytes from the same packages, on any host."""
    _mmdebstrap(suite, BASE_PACKAGES, _HOOKS, tarball)


def _mmdebstrap(suite: str, packages: list[str], hooks: list[str], tarball: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise InfraError("mmdebstrap is not installed; run `apt-get install -y mmdebstrap` (or `make setup`)")
    command = [
        "mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(packages)}",
        *(f"--customize-hook={hook}" for hook in hooks), suite, str(tarball),
    ]
    environment = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}  # our environment, made reproducible
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if result.returncode != 0:
        raise InfraError(f"mmdebstrap failed: {result.stderr[-2000:]}")


def _build_from_dockerfile(client: docker.DockerClient, name: str, dockerfile: str, recipe: str, files: dict[str, bytes]) -> str:
    """The classic builder over an in-memory context (never `--pull`: every FROM is a local image)."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for path, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o755 if path.endswith("grader-services") else 0o644
            archive.addfile(info, io.BytesIO(data))
    context.seek(0)
    with engine_errors(f"building {name}"):
        image, _logs = client.images.build(
            fileobj=context, custom_context=True, tag=name, labels={RECIPE_LABEL: recipe}, rm=True, forcerm=True,
        )
    return str(image.id)


def build_services_image(client: docker.DockerClient, settings: Settings, force: bool = False) -> ImageStatus:
    """PostgreSQL, Redis and Nginx from Debian's packages, the cluster made once here (initdb), never by a pod."""
    name = settings.sandbox.services_image
    files = {f"files/{path.name}": path.read_bytes() for path in sorted(SERVICES_FILES.iterdir()) if path.is_file()}
    recipe = _recipe_hash(settings.sandbox.debian_suite, *SERVICES_PACKAGES, _SERVICES_DOCKERFILE,
                          *(hashlib.sha256(data).hexdigest() for data in files.values()))
    if not force and (existing := _existing(client, name, recipe)):
        return ImageStatus(name, existing, built=False)
    root = f"{name.partition(':')[0]}-root"
    with tempfile.TemporaryDirectory(prefix="grader-services-") as tmp:
        tarball = Path(tmp) / "services.tar"
        _mmdebstrap(settings.sandbox.debian_suite, SERVICES_PACKAGES, _SERVICES_HOOKS, tarball)
        with engine_errors("importing the services root"):
            client.api.import_image_from_file(str(tarball), repository=root, tag=recipe, changes=[f"LABEL {KIND_LABEL}=services"])
    dockerfile = _SERVICES_DOCKERFILE.format(root=f"{root}:{recipe}", kind=KIND_LABEL)
    image_id = _build_from_dockerfile(client, name, dockerfile, recipe, files)
    with engine_errors("removing the services root"):
        client.images.remove(f"{root}:{recipe}", noprune=False)
    return ImageStatus(name, image_id, built=True)


def build_images(client: docker.DockerClient, settings: Settings, force: bool = False) -> list[ImageStatus]:
    base = build_base_image(client, settings, force=force)
    relay = build_relay_image(client, settings, base.image_id, force=force)
    services = build_services_image(client, settings, force=force)
    return [base, relay, services]
