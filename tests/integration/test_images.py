"""The base image is reproducible: a second host that builds it from the same packages gets the same content digest,
the one every report's provenance records (`base_image_digest`)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import docker

from grader.sandbox.docker import DockerSandbox
from grader.sandbox.images import build_base_root
from grader.settings import Settings


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _versions(status: str) -> str:
    return "\n".join(line for line in status.splitlines() if line.startswith(("Package:", "Version:")))


def _tar_packages(tarball: Path) -> str:
    """The installed packages and their versions, as dpkg recorded them in a root's tarball."""
    with tarfile.open(tarball) as archive:
        member = next(m for m in archive.getmembers() if m.name.lstrip("./") == "var/lib/dpkg/status")
        handle = archive.extractfile(member)
        assert handle is not None
        return _versions(handle.read().decode())


def _image_packages(client: docker.DockerClient, image: str) -> str:
    """The same, read from a created (never started) container of the image."""
    container = client.containers.create(image, command=["true"], network_mode="none")
    try:
        chunks, _ = container.get_archive("/var/lib/dpkg/status")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            handle = archive.extractfile("status")
            assert handle is not None
            return _versions(handle.read().decode())
    finally:
        container.remove(force=True)


def test_a_second_build_of_the_base_has_the_digest_of_the_first(settings: Settings, tmp_path: Path) -> None:
    """The base this host imported (`make setup`) against one built again now, as another host would build it.

    Debian's mirror can publish a new version of a package between the two builds: then the digests must differ
    too, and the packages say why. Otherwise the two roots must be byte for byte the same."""
    sandbox = DockerSandbox.connect(settings)
    image_digest = sandbox.image_digest(settings.sandbox.base_image)
    assert image_digest is not None, "run `make setup` (grader images build) first"
    again = tmp_path / "base.tar"
    build_base_root(settings.sandbox.debian_suite, again)
    if _image_packages(sandbox.client, settings.sandbox.base_image) != _tar_packages(again):
        assert _sha256(again) != image_digest, "other package versions, the same digest: the digest says nothing"
        return
    assert _sha256(again) == image_digest, "the same packages built twice give two different roots"
