"""Object storage: the local backend, and S3 against a real S3-compatible server on loopback.

The S3 server is moto's standalone server (``moto_server``), a real HTTP process; nothing
is patched in this test process.
"""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinesense.config import Settings, StorageSettings
from cinesense.errors import StorageError
from cinesense.storage import LocalStore, S3Store, open_store
from tests.servers import free_port, moto_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


def s3_settings(endpoint: str, **overrides: object) -> StorageSettings:
    return StorageSettings(
        backend="s3",
        endpoint_url=endpoint,
        bucket=overrides.pop("bucket", "test-bucket"),
        access_key_id="test-key",
        secret_access_key="test-secret",
        timeout_s=2,
        max_attempts=2,
        **overrides,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalStore(tmp_path / "objects")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3Store(s3_settings(endpoint, bucket=f"b-{os.getpid()}-{time.monotonic_ns()}"))


def test_round_trip(store, tmp_path: Path) -> None:
    store.put_bytes("reviews/source=megabox/a.parquet", b"one")
    source = tmp_path / "model.onnx"
    source.write_bytes(b"\x00" * 1000)
    store.put_file("models/1/model.onnx", source)
    assert store.get_bytes("reviews/source=megabox/a.parquet") == b"one"
    store.get_file("models/1/model.onnx", tmp_path / "copy.onnx")
    assert (tmp_path / "copy.onnx").read_bytes() == source.read_bytes()
    assert store.list("reviews/") == ["reviews/source=megabox/a.parquet"]
    assert store.list() == ["models/1/model.onnx", "reviews/source=megabox/a.parquet"]
    assert store.exists("models/1/model.onnx") and not store.exists("models/2/model.onnx")
    store.put_bytes("reviews/source=megabox/a.parquet", b"two")
    assert store.get_bytes("reviews/source=megabox/a.parquet") == b"two"
    store.delete("models/1/model.onnx")
    assert not store.exists("models/1/model.onnx")


def test_missing_object(store) -> None:
    with pytest.raises(StorageError, match="No object"):
        store.get_bytes("nothing/here")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b"])
def test_bad_keys(store, key: str) -> None:
    with pytest.raises(StorageError, match="Invalid storage key"):
        store.put_bytes(key, b"x")


def test_local_writes_leave_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("a/b", b"1")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["b"]


def test_bucket_created_when_allowed(s3_endpoint: str) -> None:
    store = S3Store(s3_settings(s3_endpoint, bucket="fresh-bucket", create_bucket=True))
    store.put_bytes("k", b"v")
    assert store.get_bytes("k") == b"v"


def test_missing_bucket_when_creation_is_off(s3_endpoint: str) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        S3Store(s3_settings(s3_endpoint, bucket="absent-bucket", create_bucket=False))


def test_wrong_credentials() -> None:
    # With authentication on from the first request, moto knows no access key at all.
    with (
        moto_server(INITIAL_NO_AUTH_ACTION_COUNT="0") as endpoint,
        pytest.raises(StorageError, match="refused the credentials"),
    ):
        S3Store(s3_settings(endpoint, bucket="locked"))


def test_unreachable_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StorageError, match="Cannot reach object storage"):
        S3Store(s3_settings(endpoint, bucket="any"))


def test_open_store_follows_settings(tmp_path: Path, s3_endpoint: str) -> None:
    assert isinstance(open_store(Settings(home=tmp_path)), LocalStore)
    settings = Settings(home=tmp_path, storage=s3_settings(s3_endpoint))
    assert isinstance(open_store(settings), S3Store)


def test_settings_do_not_show_secrets() -> None:
    shown = repr(s3_settings("http://127.0.0.1:1"))
    assert "test-secret" not in shown and "test-key" not in shown
