"""The build stage over the dependency layouts, through the fake sandbox: one layer per set of pins, the
constraints mounted beside the requirements, and a refused include stops the build before any container."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.errors import BuildFailed
from grader.models import Snapshot
from grader.sandbox.fake import FakeSandbox
from grader.settings import Settings
from grader.stages.build import CONSTRAINTS, REQUIREMENTS, RUNTIME_REPOSITORY, build_image
from grader.stages.requirements import read_dependencies
from tests.trees import snapshot_of, write_tree

PINS = "Flask==3.1.3\ngunicorn==23.0.0\n"


def _snapshot(root: Path, name: str, files: dict[str, str], links: dict[str, str] | None = None) -> Snapshot:
    return snapshot_of(write_tree(root / name, files, links), f"s-{name}")


def test_jobs_on_one_layer_build_on_one_tagged_runtime_image(tmp_path: Path, settings: Settings):
    """The dependency layer plus the fork server is built once per layer, tagged and labelled by kind, so the
    cleanup of one job's image (by its job label) never prunes what another job's build stands on."""
    sandbox = FakeSandbox()
    build_image(_snapshot(tmp_path, "one", {"requirements.txt": PINS}), settings, sandbox)
    build_image(_snapshot(tmp_path, "two", {"requirements.txt": PINS}), settings, sandbox)
    runtimes = [tag for tag in sandbox.images if tag.startswith(f"{RUNTIME_REPOSITORY}:")]
    assert len(runtimes) == 1 and sandbox.calls.count("build_image") == 3
    assert sandbox.images[runtimes[0]] == f"sha256:{runtimes[0]}", "shared: not labelled with either job"


def test_a_split_layout_reuses_the_layer_of_a_flat_one_with_the_same_pins(tmp_path: Path, settings: Settings):
    """The second build, `-r requirements/prod.txt` with the same pins, finds the first one's layer: no install."""
    sandbox = FakeSandbox()
    flat = build_image(_snapshot(tmp_path, "flat", {"requirements.txt": PINS}), settings, sandbox)
    starts = sandbox.calls.count("start build")
    split_snapshot = _snapshot(tmp_path, "split", {"requirements.txt": "-r requirements/prod.txt\n",
                                                   "requirements/prod.txt": "# pinned\n" + PINS})
    split = build_image(split_snapshot, settings, sandbox)
    assert (flat.deps_cached, split.deps_cached) == (False, True)
    assert flat.deps_key == split.deps_key
    assert sandbox.calls.count("start build") == starts == 1
    assert split.requirements_sha256 == read_dependencies(split_snapshot).sha256 == flat.requirements_sha256


def test_constraints_are_mounted_beside_the_requirements_and_passed_to_uv(tmp_path: Path, settings: Settings):
    snapshot = _snapshot(tmp_path, "c", {"requirements.txt": "flask\n-c constraints.txt\n", "constraints.txt": "flask==3.1.3\n"})
    sandbox = FakeSandbox()
    original_start = sandbox.start
    mounted: dict[str, bytes] = {}
    scripts: list[str] = []

    def start(spec):  # type: ignore[no-untyped-def]
        if spec.role == "build":
            folder = Path(next(host for host, inside in spec.binds if inside == "/run/req"))
            mounted.update({p.name: p.read_bytes() for p in folder.iterdir()})
            scripts.append(spec.command[-1])
        return original_start(spec)

    sandbox.start = start  # type: ignore[method-assign]
    build_image(snapshot, settings, sandbox)
    assert mounted == {"requirements.txt": b"flask\n", "constraints.txt": b"flask==3.1.3\n"}
    assert len(scripts) == 1 and f"-r {REQUIREMENTS} -c {CONSTRAINTS}" in scripts[0]


def test_a_refused_include_stops_the_build_before_any_container(tmp_path: Path, settings: Settings):
    (tmp_path / "host.txt").write_text("evil==1\n")
    snapshot = _snapshot(tmp_path, "evil", {"requirements.txt": "flask\n-r deps/x.txt\n"},
                         links={"deps/x.txt": str(tmp_path / "host.txt")})
    sandbox = FakeSandbox()
    with pytest.raises(BuildFailed, match="requirements.txt line 2: deps/x.txt is a symbolic link"):
        build_image(snapshot, settings, sandbox)
    assert not [call for call in sandbox.calls if call.startswith("start")]


def test_a_lock_file_build_names_it_when_the_install_fails(tmp_path: Path, settings: Settings):
    """A failing install of a uv.lock says `installing the packages locked in uv.lock failed`."""
    lock = ('version = 1\n[[package]]\nname = "n"\nversion = "0"\nsource = { virtual = "." }\n'
            'dependencies = [{ name = "flask" }]\n[[package]]\nname = "flask"\nversion = "99.0.0"\n'
            'source = { registry = "https://pypi.org/simple" }\n')
    sandbox = FakeSandbox()
    sandbox.wait = lambda container_id, timeout: 1  # type: ignore[method-assign]
    with pytest.raises(BuildFailed, match=r"^installing the packages locked in uv.lock failed \(uv exited with 1\)"):
        build_image(_snapshot(tmp_path, "lock", {"uv.lock": lock}), settings, sandbox)
