"""`S3Storage`: keys as objects of one bucket (under an optional key prefix) of S3 or an S3-compatible server.

For several hosts: every worker writes here and the web app reads here, so no report lives only on a worker's
disk. Objects are written whole (S3 has no partial object), so `put` is atomic as `LocalStorage.put` is. Every
failure of the store (refused connection, denied, no such bucket) is an `InfraError` with one line saying what
to check; a missing key is an answer (None, False, []), not an error.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from grader.errors import InfraError
from grader.storage import check_key, tree_files

if TYPE_CHECKING:
    from grader.settings import StorageSettings

T = TypeVar("T")
_MISSING = {"404", "NoSuchKey", "NotFound"}
_DELETE_BATCH = 1000
"""Keys per DeleteObjects request: S3's limit."""


class S3Storage:
    """One bucket; `client` is a boto3 S3 client (made from the settings by `from_settings`)."""

    def __init__(self, client: Any, bucket: str, *, prefix: str = "", where: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.where = where or f"s3://{bucket}"

    @classmethod
    def from_settings(cls, settings: StorageSettings) -> S3Storage:
        """A client for `settings`' endpoint and credentials; None fields fall back on boto3's own chain."""
        secret = settings.s3_secret_access_key
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(connect_timeout=settings.s3_timeout_s, read_timeout=settings.s3_timeout_s,
                          retries={"max_attempts": 3, "mode": "standard"},
                          # S3-compatible servers are addressed by path (no bucket DNS names); AWS as it prefers
                          s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"}),
        )
        assert settings.s3_bucket is not None  # StorageSettings refuses s3 without a bucket
        where = f"{settings.s3_endpoint_url or 's3:/'}/{settings.s3_bucket}"
        return cls(client, settings.s3_bucket, prefix=settings.s3_prefix, where=where)

    def __repr__(self) -> str:
        return f"S3Storage({self.where!r}, prefix={self.prefix!r})"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _failed(self, action: str, key: str, exc: Exception) -> InfraError:
        return InfraError(f"the object store {self.where} failed to {action} {key!r}: {exc}; check "
                          "GRADER_STORAGE__S3_ENDPOINT_URL, the bucket and the credentials")

    def _ask(self, action: str, key: str, call: Callable[[], T], *, missing_ok: bool = False) -> T | None:
        """`call()`; None for a missing key when `missing_ok`; every other failure an InfraError."""
        try:
            return call()
        except ClientError as exc:
            if missing_ok and _code(exc) in _MISSING:
                return None
            raise self._failed(action, key, exc) from exc
        except BotoCoreError as exc:
            raise self._failed(action, key, exc) from exc

    def put(self, key: str, data: bytes) -> None:
        self._ask("write", key, lambda: self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data))

    def get(self, key: str) -> bytes | None:
        def read() -> bytes:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read())

        return self._ask("read", key, read, missing_ok=True)

    def exists(self, key: str) -> bool:
        head = self._ask("look up", key, lambda: self.client.head_object(Bucket=self.bucket, Key=self._key(key)), missing_ok=True)
        return head is not None

    def _full_keys(self, prefix: str) -> list[str]:
        folder = self._key(prefix) + "/"
        found: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=folder):
                found += [item["Key"] for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("list", prefix, exc) from exc
        return found

    def list(self, prefix: str) -> list[str]:
        start = len(self._key(prefix)) + 1
        return sorted(key[start:] for key in self._full_keys(prefix))

    def delete(self, key: str) -> None:
        self._ask("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(key)))

    def _delete_keys(self, keys: Sequence[str], prefix: str) -> None:
        try:
            for at in range(0, len(keys), _DELETE_BATCH):
                batch = [{"Key": key} for key in keys[at:at + _DELETE_BATCH]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("delete under", prefix, exc) from exc

    def delete_tree(self, prefix: str) -> None:
        self._delete_keys(self._full_keys(prefix), prefix)

    def move_tree(self, folder: Path, prefix: str) -> None:
        """Upload the folder's files, then remove the keys of the tree before that are not among them (a reader
        never finds the tree empty), then the folder."""
        written = set()
        for rel, path in tree_files(folder):
            key = f"{prefix}/{rel}"
            self.put(key, path.read_bytes())
            written.add(self._key(key))
        self._delete_keys([key for key in self._full_keys(prefix) if key not in written], prefix)
        shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def open_tree(self, prefix: str) -> Iterator[Path | None]:
        """The tree downloaded into a temporary folder, removed when the context ends."""
        names = self.list(prefix)
        if not names:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="grader-tree-") as tmp:
            root = Path(tmp)
            for name in names:
                data = self.get(f"{prefix}/{check_key(name)}")
                if data is None:  # removed since the listing
                    continue
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            yield root


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
