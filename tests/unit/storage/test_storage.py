"""The seam's own helpers: keys, rows of before the seam, and the settings that choose a backend."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from grader.settings import Settings
from grader.storage import check_key, open_storage, read_stored, stored_names
from grader.storage.local import LocalStorage
from grader.storage.s3 import S3Storage


@pytest.mark.parametrize("key", ["reports/s-1/report.json", "snapshots/s-1/app/views.py", "reports/.staging/t/s-1/x"])
def test_plain_relative_keys_pass(key):
    assert check_key(key) == key


def test_a_legacy_absolute_path_is_read_as_a_local_file(tmp_path):
    """Rows written before the seam hold a path on the grading host: still read, with the files beside it."""
    folder = tmp_path / "old-reports" / "s-old"
    folder.mkdir(parents=True)
    (folder / "report.json").write_bytes(b"{}")
    (folder / "junit.xml").write_bytes(b"<x/>")
    storage = LocalStorage(tmp_path / "elsewhere")
    assert read_stored(storage, str(folder / "report.json")) == b"{}"
    assert stored_names(storage, str(folder / "report.json")) == ["junit.xml", "report.json"]
    assert read_stored(storage, str(folder / "gone.json")) is None and read_stored(storage, "../x") is None


def test_the_backend_comes_from_grader_storage_variables(settings):
    """GRADER_STORAGE__BACKEND=s3 and its fields give an S3Storage; the secret is masked when logged."""
    os.environ.update({"GRADER_STORAGE__BACKEND": "s3", "GRADER_STORAGE__S3_BUCKET": "grades",
                       "GRADER_STORAGE__S3_ENDPOINT_URL": "http://127.0.0.1:9000", "GRADER_STORAGE__S3_PREFIX": "team-a",
                       "GRADER_STORAGE__S3_SECRET_ACCESS_KEY": "hunter2", "GRADER_STORAGE__S3_ACCESS_KEY_ID": "id"})
    configured = Settings(data_dir=settings.paths.data_dir)
    assert configured.storage.backend == "s3" and configured.storage.s3_bucket == "grades"
    assert "hunter2" not in str(configured.masked()) and "hunter2" not in repr(configured)
    storage = open_storage(configured)
    assert isinstance(storage, S3Storage) and storage.bucket == "grades" and storage.prefix == "team-a/"


def test_s3_without_a_bucket_is_refused_with_the_variable_to_set():
    with pytest.raises(ValidationError, match="GRADER_STORAGE__S3_BUCKET"):
        Settings(storage={"backend": "s3"})
    with pytest.raises(ValidationError):
        Settings(storage={"backend": "ftp"})
