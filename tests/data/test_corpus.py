import gzip
import hashlib
import http.server
import io
import json
import socket
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinesense.config import DataSettings, Settings
from cinesense.data.corpus import download_corpus, read_corpus, sample_corpus_path
from cinesense.errors import DataError, NetworkUnavailableError

NAVER_HEADER = "review_id\tmovie_id\trating\tdate\treview\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_sample_reads() -> None:
    frame = read_corpus(sample_corpus_path())
    assert len(frame) > 5000
    assert frame["movie_id"].nunique() >= 50
    assert set(frame["rating"].unique()) == set(range(1, 11))
    assert list(frame.columns) == ["source", "review_id", "movie_id", "rating", "date", "text"]


def test_naver_reader_keeps_quotes_and_na_like_text(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.tsv",
        NAVER_HEADER + '1\t10\t10\t2015-01-01\t"따옴표" 최고\n2\t10\t1\t2015-01-02\tNA\n',
    )
    frame = read_corpus(path)
    assert frame["text"].tolist() == ['"따옴표" 최고', "NA"]
    assert frame["rating"].tolist() == [10, 1]


def test_gzipped_corpus(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.write(NAVER_HEADER + "1\t10\t7\t2015-01-01\t괜찮음\n")
    assert read_corpus(path)["rating"].tolist() == [7]


def test_nsmc_reader(tmp_path: Path) -> None:
    path = write(tmp_path / "ratings_test.txt", "id\tdocument\tlabel\n1\t재밌다\t1\n2\t별로\t0\n")
    frame = read_corpus(path)
    assert frame["nsmc_label"].tolist() == [1, 0]
    assert frame["rating"].isna().all()
    assert (frame["source"] == "nsmc").all()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        (NAVER_HEADER, "no reviews"),
        ("a\tb\n1\t2\n", "unknown file format"),
        (NAVER_HEADER + "1\t10\t11\t2015-01-01\t너무 좋아\n", "line 2: rating '11'"),
        (NAVER_HEADER + "1\t10\t\t2015-01-01\t점수 없음\n", "not a whole number"),
        (NAVER_HEADER + "1\t10\t7.5\t2015-01-01\t반쪽\n", "not a whole number"),
        (NAVER_HEADER + "1\t10\t7\t2015-01-01\t너무\t많은\t칸\n", "malformed line"),
        ("id\tdocument\tlabel\n1\t좋아\t2\n", "not 0 or 1"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_corpus(write(tmp_path / "bad.tsv", content))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_corpus(tmp_path / "nope.tsv")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "euc.tsv"
    path.write_bytes(NAVER_HEADER.encode() + "1\t1\t1\t2015-01-01\t별로\n".encode("euc-kr"))
    with pytest.raises(DataError, match="UTF-8"):
        read_corpus(path)


# --- download, against a real HTTP server on loopback ----------------------------------


def make_archive() -> bytes:
    reviews = [
        {
            "review": "정말 좋았다",
            "date": "15.08.25",
            "rating": "10",
            "author": "abcd****",
            "review_id": "11",
            "movie_id": "500",
        },
        {
            "review": "  ",
            "date": "15.08.24",
            "rating": "1",
            "author": "efgh****",
            "review_id": "12",
            "movie_id": "500",
        },
        {
            "review": "그냥\t그래",
            "date": "15.08.23",
            "rating": "5",
            "author": "ijkl****",
            "review_id": "13",
            "movie_id": "500",
        },
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = json.dumps(reviews, ensure_ascii=False).encode()
        info = tarfile.TarInfo("nsmc-abc/raw/500.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def corpus_server() -> Iterator[tuple[str, bytes]]:
    archive = make_archive()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(archive)))
            self.end_headers()
            self.wfile.write(archive)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/nsmc.tar.gz", archive
    server.shutdown()
    server.server_close()


def test_download_converts_and_verifies(tmp_path: Path, corpus_server: tuple[str, bytes]) -> None:
    url, archive = corpus_server
    digest = hashlib.sha256(archive).hexdigest()
    settings = Settings(home=tmp_path, data=DataSettings(corpus_url=url, corpus_sha256=digest))
    frame = read_corpus(download_corpus(settings))
    assert frame["review_id"].tolist() == ["11", "13"]  # the empty review is dropped
    assert frame["date"].tolist() == ["2015-08-25", "2015-08-23"]
    assert frame["text"].tolist() == ["정말 좋았다", "그냥 그래"]
    assert "author" not in frame.columns


def test_download_checksum_mismatch(tmp_path: Path, corpus_server: tuple[str, bytes]) -> None:
    url, _ = corpus_server
    settings = Settings(home=tmp_path, data=DataSettings(corpus_url=url, corpus_sha256="0" * 64))
    with pytest.raises(DataError, match="checksum"):
        download_corpus(settings)
    assert not (tmp_path / "corpus" / "naver_movie_reviews.tsv.gz").exists()


def test_download_records_checksum_on_first_use(
    tmp_path: Path, corpus_server: tuple[str, bytes]
) -> None:
    url, archive = corpus_server
    settings = Settings(home=tmp_path, data=DataSettings(corpus_url=url))
    download_corpus(settings)
    record = tmp_path / "corpus" / "nsmc.tar.gz.sha256"
    assert record.read_text().strip() == hashlib.sha256(archive).hexdigest()
    (tmp_path / "corpus" / "nsmc.tar.gz").write_bytes(b"tampered")
    with pytest.raises(DataError, match="checksum"):
        download_corpus(settings)


def test_download_offline_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        home=tmp_path,
        data=DataSettings(corpus_url=f"http://127.0.0.1:{port}/nsmc.tar.gz", download_timeout_s=5),
    )
    with pytest.raises(NetworkUnavailableError, match="--corpus PATH"):
        download_corpus(settings)
    assert not list((tmp_path / "corpus").iterdir())


@pytest.mark.shared_data
def test_full_corpus_reads(shared_corpus: Path) -> None:
    frame = read_corpus(shared_corpus)
    assert len(frame) > 600_000
    assert frame["rating"].between(1, 10).all()
