"""The build stage against the real engine: what uv puts in the dependency layer, and what it refuses."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from grader.errors import BuildFailed
from grader.models import Snapshot, SubmissionImage
from grader.pipeline import new_submission_id
from grader.sandbox.docker import DockerSandbox, remove_submission_resources
from grader.settings import Settings
from grader.stages.build import build_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# sha256 of itsdangerous-2.2.0-py3-none-any.whl on PyPI
ITSDANGEROUS_HASH = "sha256:c6242fc49e35958c8b15141343aa660db5fc54d4f13a1db01a3f5891b98700ef"


@pytest.fixture
def build(
    settings: Settings, engine: docker.DockerClient, graded_ids: list[str], tmp_path: Path
) -> Iterator[Callable[[str], SubmissionImage]]:
    """Build a tree holding only `requirements` (made unique, so the install is cold); clean up after."""
    built: list[str] = []

    def run(requirements: str) -> SubmissionImage:
        job = new_submission_id()
        graded_ids.append(job)
        tree = tmp_path / job
        tree.mkdir()
        # a requirement no Python installs (its marker is false), unique: the normalized text, so the key, is new
        (tree / "requirements.txt").write_text(f"{requirements}cold-{uuid.uuid4().hex}==1.0; python_version < '3'\n")
        snapshot = Snapshot(submission_id=job, url=str(tree), ref=None, commit="0" * 40, path=tree)
        image = build_image(snapshot, settings, DockerSandbox(engine, settings))
        built.append(image.deps_key)
        return image

    yield run
    for job in graded_ids:
        remove_submission_resources(engine, job)
    for key in built:
        try:
            engine.images.remove(f"grader-deps:{key}")
        except docker.errors.ImageNotFound:
            pass


_PROBE = """
set -e
echo "python=$(readlink -f /opt/venv/bin/python)"
echo "gunicorn=$(command -v gunicorn)"
gunicorn --version
python -c 'import gunicorn, packaging'
echo "py=$(find /opt/venv/lib -name '*.py' | wc -l)"
echo "pyc=$(find /opt/venv/lib -name '*.pyc' | wc -l)"
test ! -e /opt/venv/.uv-cache && echo "no cache"
"""


def test_cold_install_is_a_compiled_venv_on_the_base_python(build, engine, settings):
    """The layer: /opt/venv on the base's python3, console scripts on PATH, every module compiled, no uv cache,
    and the base image's environment (nothing the build used)."""
    image = build("gunicorn==23.0.0\n")
    assert image.deps_cached is False
    output = engine.containers.run(
        image.tag, ["/bin/sh", "-c", _PROBE], remove=True, network_mode="none", read_only=True, user="10001:10001",
        environment={"HOME": "/tmp"},
    ).decode()
    facts = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    assert facts["python"].startswith("/usr/bin/python3")
    assert facts["gunicorn"] == "/opt/venv/bin/gunicorn"
    assert "gunicorn" in output and "(version 23.0.0)" in output
    assert int(facts["py"]) > 50 and int(facts["pyc"]) >= int(facts["py"])
    assert "no cache" in output
    base_env = engine.images.get(settings.sandbox.base_image).attrs["Config"]["Env"]
    assert engine.images.get(image.tag).attrs["Config"]["Env"] == base_env


def test_one_hash_requires_hashes_for_every_requirement(build):
    """As with pip, a file with one `--hash` is checked in full: an unhashed requirement is build_failed."""
    with pytest.raises(BuildFailed) as failed:
        build(f"itsdangerous==2.2.0 --hash={ITSDANGEROUS_HASH}\nblinker==1.9.0\n")
    assert "uv exited" in failed.value.reason
    assert "blinker" in failed.value.reason
    assert "blinker" in failed.value.log_tail


def test_requirements_with_matching_hashes_install(build):
    image = build(f"itsdangerous==2.2.0 --hash={ITSDANGEROUS_HASH}\n")
    assert image.deps_cached is False
