"""LocalStorage: keys as files under a root, never outside it, with the default layout on disk kept."""

from __future__ import annotations

import os

import pytest

from grader.storage import open_storage
from grader.storage.local import LocalStorage


@pytest.fixture
def local(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "data", areas={"reports": tmp_path / "reports"})


def test_an_area_keeps_its_prefix_in_its_own_folder(local, tmp_path):
    """reports/<id>/... lands in the reports folder, every other key under the root."""
    local.put("reports/s-1/report.json", b"{}")
    local.put("checks/tiny.json", b"[]")
    assert (tmp_path / "reports" / "s-1" / "report.json").read_bytes() == b"{}"
    assert (tmp_path / "data" / "checks" / "tiny.json").read_bytes() == b"[]"


def test_the_default_layout_is_the_one_of_before(settings):
    """open_storage of the default settings: reports in paths.reports_dir, kept code in paths.snapshots_dir."""
    storage = open_storage(settings)
    assert isinstance(storage, LocalStorage)
    assert storage.path("reports/s-1/report.json") == settings.paths.reports_dir / "s-1" / "report.json"
    assert storage.path("snapshots/s-1") == settings.paths.snapshots_dir / "s-1"
    assert storage.path("checks/tiny.json") == settings.paths.data_dir / "checks" / "tiny.json"


def test_a_local_root_holds_reports_kept_code_and_checks_alike(settings, tmp_path):
    """storage.local_root (a folder every host mounts): every key under it, nothing in this host's own folders."""
    shared = tmp_path / "shared"
    storage = open_storage(settings.replace(storage={"backend": "local", "local_root": shared}))
    assert isinstance(storage, LocalStorage)
    storage.put("reports/s-1/report.json", b"{}")
    storage.put("snapshots/s-1/app.py", b"app = 1")
    storage.put("checks/tiny.json", b"[]")
    assert sorted(p.relative_to(shared).as_posix() for p in shared.rglob("*") if p.is_file()) == [
        "checks/tiny.json", "reports/s-1/report.json", "snapshots/s-1/app.py",
    ]
    assert not settings.paths.reports_dir.exists() and not settings.paths.snapshots_dir.exists()


def test_a_link_planted_in_the_tree_is_not_followed_out(local, tmp_path):
    """A folder that is a link to outside the root is refused, as a '..' key is."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("root:x")
    (tmp_path / "data").mkdir()
    os.symlink(outside, tmp_path / "data" / "snapshots")
    with pytest.raises(ValueError, match="resolves outside"):
        local.get("snapshots/secret")
    with pytest.raises(ValueError, match="refused"):
        local.get("snapshots/../../outside/secret")


def test_put_replaces_whole_and_leaves_no_temporary_file(local, tmp_path):
    """A write goes through a temporary file and a rename: nothing else stays in the folder."""
    local.put("reports/s-1/report.json", b"first")
    local.put("reports/s-1/report.json", b"second")
    assert os.listdir(tmp_path / "reports" / "s-1") == ["report.json"]
    assert local.get("reports/s-1/report.json") == b"second"


def test_a_whole_area_is_never_deleted(local):
    """delete_tree of the root or an area is refused: a prefix names a folder inside them."""
    local.put("reports/s-1/report.json", b"{}")
    for prefix in ("reports", "snapshots/.."):
        with pytest.raises(ValueError):
            local.delete_tree(prefix)
    assert local.exists("reports/s-1/report.json")


def test_move_tree_in_place_is_nothing_and_from_elsewhere_a_rename(local, tmp_path):
    """The pipeline's kept code already at snapshots/<id> stays as it is; a folder from elsewhere replaces it."""
    kept = tmp_path / "data" / "snapshots" / "s-1"
    kept.mkdir(parents=True)
    (kept / "app.py").write_text("a = 1\n")
    local.move_tree(kept, "snapshots/s-1")
    assert (kept / "app.py").read_text() == "a = 1\n"
    other = tmp_path / "scratch"
    other.mkdir()
    (other / "views.py").write_text("b = 2\n")
    local.move_tree(other, "snapshots/s-1")
    assert not other.exists() and local.list("snapshots/s-1") == ["views.py"]
    assert not (tmp_path / "data" / "snapshots" / "s-1.partial").exists()


def test_open_tree_is_the_folder_itself(local, tmp_path):
    """Nothing is copied on this host: the kept code is read where it is; an empty tree is None."""
    local.put("snapshots/s-1/app.py", b"x = 1\n")
    with local.open_tree("snapshots/s-1") as folder:
        assert folder == tmp_path / "data" / "snapshots" / "s-1"
    (tmp_path / "data" / "snapshots" / "s-2").mkdir()
    with local.open_tree("snapshots/s-2") as empty:
        assert empty is None


def test_links_in_a_tree_are_neither_listed_nor_read(local, tmp_path):
    """A link the candidate's tree carried is not a file of the storage: not listed, not read, out or in."""
    local.put("snapshots/s-1/app.py", b"x = 1\n")
    os.symlink("/etc/passwd", tmp_path / "data" / "snapshots" / "s-1" / "passwd.py")
    os.symlink("app.py", tmp_path / "data" / "snapshots" / "s-1" / "again.py")
    assert local.list("snapshots/s-1") == ["app.py"] and local.get("snapshots/s-1/again.py") is None
    with pytest.raises(ValueError, match="resolves outside"):
        local.get("snapshots/s-1/passwd.py")
