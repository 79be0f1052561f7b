"""Readers for review corpora, and the download of the Naver corpus for real installs.

Every reader returns a DataFrame with the columns of ``REVIEW_COLUMNS``:
``source, review_id, movie_id, rating, date, text`` — ``rating`` is a nullable integer
(1–10, missing for sources that only carry a binary label), ``label`` is added by
:mod:`cinesense.data.dataset`.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import pandas as pd

from cinesense.config import Settings
from cinesense.errors import DataError, NetworkUnavailableError
from cinesense.files import sha256_file

REVIEW_COLUMNS = ["source", "review_id", "movie_id", "rating", "date", "text"]
NAVER_COLUMNS = ["review_id", "movie_id", "rating", "date", "review"]
NSMC_COLUMNS = ["id", "document", "label"]


def sample_corpus_path() -> Path:
    """The small Naver sample shipped inside the package (see scripts/make_sample.py)."""
    return Path(str(resources.files("cinesense.data") / "sample" / "naver_sample.tsv.gz"))


def read_corpus(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a review file, recognising its format from the header line."""
    path = Path(path)
    header = _header(path)
    if header[: len(NAVER_COLUMNS)] == NAVER_COLUMNS:
        return read_naver_tsv(path)
    if header == NSMC_COLUMNS:
        return read_nsmc(path)
    raise DataError(
        f"{path}: unknown file format (header {header!r}). Expected a Naver corpus TSV with "
        f"columns {NAVER_COLUMNS} or an NSMC ratings file with columns {NSMC_COLUMNS}."
    )


def read_naver_tsv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the Naver review corpus (``review_id movie_id rating date review``, TSV)."""
    path = Path(path)
    frame = _read_tsv(path, NAVER_COLUMNS)
    rating = _parse_ratings(path, frame["rating"])
    return pd.DataFrame(
        {
            "source": "naver",
            "review_id": frame["review_id"].str.strip(),
            "movie_id": frame["movie_id"].str.strip(),
            "rating": rating,
            "date": frame["date"].str.strip(),
            "text": frame["review"],
        }
    )[REVIEW_COLUMNS]


def read_nsmc(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an NSMC ``ratings_*.txt`` file (``id document label``, label 0/1).

    NSMC carries neither movie ids nor 1–10 ratings: rows get an empty ``movie_id`` and a
    missing rating, and keep their binary label in ``nsmc_label``.
    """
    path = Path(path)
    frame = _read_tsv(path, NSMC_COLUMNS)
    bad = ~frame["label"].isin(["0", "1"])
    if bad.any():
        line = int(frame.index[bad][0]) + 2
        raise DataError(
            f"{path}, line {line}: label {frame['label'][bad].iloc[0]!r} is not 0 or 1. "
            "NSMC files label negative reviews 0 and positive reviews 1."
        )
    return pd.DataFrame(
        {
            "source": "nsmc",
            "review_id": frame["id"].str.strip(),
            "movie_id": "",
            "rating": pd.array([pd.NA] * len(frame), dtype="Int64"),
            "date": "",
            "text": frame["document"],
            "nsmc_label": frame["label"].astype(int),
        }
    )


def _header(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path, or run `cinesense download`.")
    try:
        with _open_text(path) as handle:
            first = handle.readline()
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({error}).") from error
    if not first.strip():
        raise DataError(f"{path}: the file is empty; expected a header line and reviews.")
    return first.rstrip("\r\n").split("\t")


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _read_tsv(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a headed TSV strictly: every line must have exactly the header's fields.

    Quote characters are ordinary text (reviews contain them) and nothing is read as NA.
    """
    rows: list[list[str]] = []
    try:
        with _open_text(path) as handle:
            header = handle.readline().rstrip("\r\n").split("\t")
            width = len(header)
            for number, line in enumerate(handle, start=2):
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) != width:
                    if not line.strip():
                        continue
                    raise DataError(
                        f"{path}, line {number}: malformed line with {len(fields)} "
                        f"tab-separated fields; expected {width} ({', '.join(header)}). "
                        "Fix or remove the line (a tab inside a review must be a space)."
                    )
                rows.append(fields)
    except (UnicodeDecodeError, EOFError, OSError) as error:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({error}).") from error
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected {columns}.")
    if not rows:
        raise DataError(f"{path}: the file has a header but no reviews.")
    return pd.DataFrame(rows, columns=header, dtype=str)


def _parse_ratings(path: Path, ratings: pd.Series) -> pd.Series:
    parsed = pd.to_numeric(ratings.str.strip(), errors="coerce")
    bad = parsed.isna() | (parsed % 1 != 0) | (parsed < 1) | (parsed > 10)
    if bad.any():
        line = int(ratings.index[bad][0]) + 2
        raise DataError(
            f"{path}, line {line}: rating {ratings[bad].iloc[0]!r} is not a whole number "
            f"from 1 to 10 ({int(bad.sum())} such line(s) in the file). Fix or remove them."
        )
    return parsed.astype("Int64")


# --- download (real installs) -----------------------------------------------------------


def download_corpus(settings: Settings, force: bool = False) -> Path:
    """Download the Naver corpus archive, verify it, and convert it to a local TSV.

    Returns the path of ``naver_movie_reviews.tsv.gz`` in the corpus cache. The archive's
    SHA-256 is checked against ``settings.data.corpus_sha256`` when set; otherwise the
    checksum of the first download is recorded beside it and verified on later runs.
    """
    cache = settings.corpus_cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / "nsmc.tar.gz"
    target = cache / "naver_movie_reviews.tsv.gz"
    if target.exists() and not force:
        _verify_archive(archive, settings)
        return target
    if force or not archive.exists():
        _fetch(settings.data.corpus_url, archive, settings.data.download_timeout_s)
    _verify_archive(archive, settings)
    _convert_archive(archive, target)
    return target


def _fetch(url: str, destination: Path, timeout_s: float) -> None:
    partial = destination.with_suffix(destination.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        partial.unlink(missing_ok=True)
        raise NetworkUnavailableError(
            f"Could not download the review corpus from {url} ({error}). Check the network, "
            "or copy a Naver corpus TSV onto this machine and pass it with --corpus PATH."
        ) from error
    os.replace(partial, destination)


def _verify_archive(archive: Path, settings: Settings) -> None:
    if not archive.exists():
        return
    actual = sha256_file(archive)
    record = archive.with_name(archive.name + ".sha256")
    expected = settings.data.corpus_sha256 or (
        record.read_text().strip() if record.exists() else None
    )
    if expected is None:
        record.write_text(actual + "\n")
        return
    if actual != expected:
        raise DataError(
            f"{archive}: checksum {actual} does not match the expected {expected}. The "
            "download is corrupt or the source changed; delete the file and run "
            "`cinesense download --force`."
        )


def _convert_archive(archive: Path, target: Path) -> None:
    """Turn the per-movie JSON files of the archive into one TSV (author ids dropped)."""
    rows: list[tuple[str, str, str, str, str]] = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = member.name
                if not (member.isfile() and "/raw/" in name and name.endswith(".json")):
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                for item in json.load(handle):
                    text = " ".join(str(item.get("review", "")).split())
                    if text:
                        rows.append(
                            (
                                str(item["review_id"]),
                                str(item["movie_id"]),
                                str(item["rating"]),
                                _iso_date(str(item.get("date", ""))),
                                text,
                            )
                        )
    except (tarfile.TarError, json.JSONDecodeError, KeyError, EOFError) as error:
        raise DataError(
            f"{archive}: not a valid corpus archive ({error}). Delete it and run "
            "`cinesense download --force`."
        ) from error
    if not rows:
        raise DataError(f"{archive}: the archive holds no raw/*.json review files.")
    with (
        tempfile.NamedTemporaryFile("wb", dir=target.parent, delete=False) as tmp,
        gzip.open(tmp, "wt", encoding="utf-8") as out,
    ):
        out.write("\t".join(NAVER_COLUMNS) + "\n")
        out.writelines("\t".join(row) + "\n" for row in rows)
    os.replace(tmp.name, target)


def _iso_date(value: str) -> str:
    """'15.08.25' (the raw files' form) → '2015-08-25'; other forms are kept."""
    parts = value.split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[0]) == 2:
        return f"20{parts[0]}-{parts[1]}-{parts[2]}"
    return value
