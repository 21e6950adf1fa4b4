"""The local images: the Debian base (mmdebstrap + docker import) and the trusted relay (socat).

Each image carries the hash of its recipe in a label, so a rebuild is skipped when nothing changed.
"""

from __future__ import annotations

import hashlib
import io
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
    recipe = _recipe_hash(settings.sandbox.debian_suite, *BASE_PACKAGES, *_HOOKS)
    if not force and (existing := _existing(client, name, recipe)):
        return ImageStatus(name, existing, built=False)
    if shutil.which("mmdebstrap") is None:
        raise InfraError("mmdebstrap is not installed; run `apt-get install -y mmdebstrap` (or `make setup`)")
    with tempfile.TemporaryDirectory(prefix="grader-base-") as tmp:
        tarball = Path(tmp) / "base.tar"
        command = [
            "mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(BASE_PACKAGES)}",
            *(f"--customize-hook={hook}" for hook in _HOOKS), settings.sandbox.debian_suite, str(tarball),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise InfraError(f"mmdebstrap failed: {result.stderr[-2000:]}")
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
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    context.seek(0)
    with engine_errors("building the relay image"):
        image, _logs = client.images.build(
            fileobj=context, custom_context=True, tag=name, labels={RECIPE_LABEL: recipe}, rm=True, forcerm=True,
        )
    return ImageStatus(name, image.id, built=True)


def build_images(client: docker.DockerClient, settings: Settings, force: bool = False) -> list[ImageStatus]:
    base = build_base_image(client, settings, force=force)
    relay = build_relay_image(client, settings, base.image_id, force=force)
    return [base, relay]
