"""Object storage for reviews, datasets and models: a local folder or an S3-compatible store.

Both backends take keys like ``reviews/source=megabox/part.parquet`` and guarantee that a
reader never sees a half-written object under its final key: the local backend writes a
temporary file and renames it; S3 makes an object visible only once its upload completed.

S3-compatible servers (MinIO, moto, Ceph) need path-style addressing, and boto3 ≥ 1.36
sends integrity checksums by default that some of them reject; both are set here.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from cinesense.config import Settings, StorageSettings
from cinesense.errors import StorageError


class ObjectStore(Protocol):
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def uri(self, key: str) -> str: ...


def open_store(settings: Settings) -> ObjectStore:
    options = settings.storage
    if options.backend == "local":
        return LocalStore(options.local_root or settings.home / "storage")
    return S3Store(options)


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"Invalid storage key {key!r}: use relative keys like 'a/b.parquet'.")
    return key


class LocalStore:
    """Objects as files under ``root``; writes go to a temp file that is renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged: Path | None = None
        try:
            with tempfile.NamedTemporaryFile(
                dir=target.parent, prefix=".tmp-", delete=False
            ) as tmp:
                staged = Path(tmp.name)
                tmp.write(data)
            os.replace(staged, target)
        except BaseException:  # an interrupted write leaves neither target nor temp file
            if staged is not None:
                staged.unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"No object {self.uri(key)}.")
        return path.read_bytes()

    def put_file(self, key: str, path: Path) -> None:
        self.put_bytes(key, Path(path).read_bytes())

    def get_file(self, key: str, path: Path) -> None:
        Path(path).write_bytes(self.get_bytes(key))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.exists():
            return []
        keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(
            k for k in keys if k.startswith(prefix) and not Path(k).name.startswith(".tmp-")
        )

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def uri(self, key: str) -> str:
        return (self.root / key).resolve().as_uri()


class S3Store:
    """An S3-compatible bucket through boto3, with bounded retries and clear errors."""

    def __init__(self, options: StorageSettings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = options.bucket
        self.endpoint = options.endpoint_url or "AWS S3"
        secret = options.secret_access_key
        self.client = boto3.client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=options.region,
            aws_access_key_id=options.access_key_id.get_secret_value()
            if options.access_key_id
            else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=options.timeout_s,
                read_timeout=options.timeout_s,
                retries={"max_attempts": options.max_attempts, "mode": "standard"},
            ),
        )
        self._ensure_bucket(options.create_bucket)

    def _ensure_bucket(self, create: bool) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call(self.client.head_bucket, Bucket=self.bucket)
        except StorageError as error:
            cause = error.__cause__
            missing = isinstance(cause, ClientError) and _code(cause) in {"404", "NoSuchBucket"}
            if not missing:
                raise
            if not create:
                raise StorageError(
                    f"Bucket {self.bucket!r} does not exist at {self.endpoint}. Create it "
                    "(e.g. `mc mb`) or set CINESENSE_STORAGE__CREATE_BUCKET=true."
                ) from error
            self._call(self.client.create_bucket, Bucket=self.bucket)

    def _call(self, method, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return method(**kwargs)
        except ClientError as error:
            code = _code(error)
            if code in {
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "403",
                "AccessDenied",
                "InvalidClientTokenId",
            }:
                raise StorageError(
                    f"{self.endpoint} refused the credentials for bucket {self.bucket!r} "
                    f"({code}). Check CINESENSE_STORAGE__ACCESS_KEY_ID and "
                    "CINESENSE_STORAGE__SECRET_ACCESS_KEY."
                ) from error
            raise StorageError(f"{self.endpoint}: {method.__name__} failed ({code}).") from error
        except BotoCoreError as error:
            raise StorageError(
                f"Cannot reach object storage at {self.endpoint} ({error}). Is it running, and "
                "is CINESENSE_STORAGE__ENDPOINT_URL right?"
            ) from error

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(self.client.put_object, Bucket=self.bucket, Key=_check_key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        if not self.exists(key):
            raise StorageError(f"No object {self.uri(key)}.")
        response = self._call(self.client.get_object, Bucket=self.bucket, Key=key)
        return response["Body"].read()

    def put_file(self, key: str, path: Path) -> None:
        self._call(
            self.client.upload_file, Filename=str(path), Bucket=self.bucket, Key=_check_key(key)
        )

    def get_file(self, key: str, path: Path) -> None:
        Path(path).write_bytes(self.get_bytes(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=_check_key(key))
        except ClientError as error:
            if _code(error) in {"404", "NoSuchKey", "NotFound"}:
                return False
            self._call(self.client.head_object, Bucket=self.bucket, Key=key)
        return True

    def list(self, prefix: str = "") -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        keys: list[str] = []
        pages = self._call(paginator.paginate, Bucket=self.bucket, Prefix=prefix)
        try:
            for page in pages:
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except Exception as error:  # paging is lazy: errors surface while iterating
            raise StorageError(f"{self.endpoint}: listing {prefix!r} failed ({error}).") from error
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._call(self.client.delete_object, Bucket=self.bucket, Key=_check_key(key))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def _code(error: Exception) -> str:
    response = getattr(error, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))
