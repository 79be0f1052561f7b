"""Review tables in and out of the analysis UI: uploads (CSV/TSV in UTF-8 or the CP949 /
EUC-KR that Korean Excel writes, and .xlsx), pasted text, and the results CSV (UTF-8
with a BOM, so Excel shows Korean correctly).

Errors are :class:`UploadError` with a sentence in Korean for the person uploading.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pandas as pd

ENCODINGS = ("utf-8-sig", "cp949")  # CP949 is a superset of EUC-KR
MAX_ROWS = 100_000


class UploadError(ValueError):
    """What is wrong with an upload, said for the person who uploaded it."""


@dataclass
class Upload:
    frame: pd.DataFrame
    encoding: str | None  # None for Excel


def read_upload(name: str, data: bytes, max_rows: int = MAX_ROWS) -> Upload:
    """A table from an uploaded file (.csv, .tsv, .txt, .xlsx); every column as text."""
    suffix = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    if not data:
        raise UploadError("빈 파일입니다. 리뷰가 들어 있는 파일을 올려 주세요.")
    if suffix == "xls":
        raise UploadError(
            "오래된 Excel 형식(.xls)은 읽을 수 없습니다. Excel에서 .xlsx 또는 'CSV UTF-8'로 "
            "다시 저장해 주세요."
        )
    if suffix == "xlsx":
        upload = Upload(_excel(data), None)
    elif suffix in ("csv", "tsv", "txt"):
        text, encoding = _decode(data)
        upload = Upload(_delimited(text, "\t" if suffix == "tsv" else None), encoding)
    else:
        raise UploadError(
            f"'{name}'은(는) 지원하지 않는 형식입니다. CSV, TSV 또는 Excel(.xlsx) 파일을 "
            "올려 주세요."
        )
    frame = upload.frame.dropna(how="all")
    if frame.empty or len(frame.columns) == 0:
        raise UploadError(
            "파일에 데이터 행이 없습니다. 첫 줄은 열 이름, 그 아래에 리뷰를 넣어 주세요."
        )
    if len(frame) > max_rows:
        raise UploadError(
            f"행이 너무 많습니다({len(frame):,}행). 한 번에 {max_rows:,}행까지 분석할 수 있습니다."
        )
    upload.frame = frame.reset_index(drop=True)
    return upload


def _decode(data: bytes) -> tuple[str, str]:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), "cp949" if encoding == "cp949" else "utf-8"
        except UnicodeDecodeError:
            continue
    raise UploadError(
        "파일의 문자 인코딩을 읽을 수 없습니다(UTF-8도 CP949/EUC-KR도 아닙니다). Excel에서 "
        "'다른 이름으로 저장 → CSV UTF-8(쉼표로 분리)'로 다시 저장해 주세요."
    )


def _delimited(text: str, delimiter: str | None) -> pd.DataFrame:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:5000], delimiters=",\t;|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        return pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_values=[""]
        )
    except (pd.errors.ParserError, ValueError) as error:
        raise UploadError(
            f"CSV를 읽을 수 없습니다: {error}. 따옴표와 구분자(쉼표/탭)를 확인해 주세요."
        ) from error


def _excel(data: bytes) -> pd.DataFrame:
    try:
        return pd.read_excel(io.BytesIO(data), dtype=str, engine="openpyxl")
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        raise UploadError(
            f"Excel 파일을 읽을 수 없습니다({type(error).__name__}). 파일이 손상되지 않았는지 "
            "확인하거나 CSV로 저장해 주세요."
        ) from error


def reviews_from_table(
    frame: pd.DataFrame, text_column: str, rating_column: str | None, max_chars: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """API review bodies from the chosen columns, and notes about what was left out."""
    texts = frame[text_column].astype("string").str.strip()
    keep = texts.notna() & (texts != "")
    notes = []
    if (~keep).sum():
        notes.append(f"빈 리뷰 {int((~keep).sum()):,}개는 건너뛰었습니다.")
    too_long = keep & (texts.str.len() > max_chars)
    if too_long.sum():
        notes.append(
            f"{max_chars:,}자를 넘는 리뷰 {int(too_long.sum()):,}개는 앞부분만 보냈습니다."
        )
    ratings: pd.Series | None = None
    if rating_column:
        ratings = pd.to_numeric(frame[rating_column], errors="coerce").round()
        bad = keep & ratings.notna() & ((ratings < 1) | (ratings > 10))
        if bad.sum():
            notes.append(f"1–10 밖의 평점 {int(bad.sum()):,}개는 평점 없이 분석했습니다.")
        ratings = ratings.where((ratings >= 1) & (ratings <= 10))
    reviews = []
    for index in frame.index[keep]:
        review: dict[str, Any] = {"text": str(texts[index])[:max_chars]}
        if ratings is not None and pd.notna(ratings[index]):
            review["rating"] = int(ratings[index])
        reviews.append(review)
    return reviews, notes


def reviews_from_lines(text: str, max_chars: int) -> list[dict[str, Any]]:
    """One review per non-blank line."""
    lines = (line.strip() for line in text.splitlines())
    return [{"text": line[:max_chars]} for line in lines if line]


LABELS_KO = {"positive": "긍정", "negative": "부정", "uncertain": "애매"}


def results_frame(reviews: list[dict[str, Any]], analysis: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for review, item in zip(reviews, analysis["items"], strict=True):
        rows.append(
            {
                "리뷰": review["text"],
                "감성": LABELS_KO[item["label"]],
                "신뢰도": round(item["confidence"], 4),
                "긍정 확률": round(item["probability_positive"], 4),
                "AI 평점": round(item["rating"], 1),
                "실제 평점": item.get("real_rating"),
                "잘림": bool(item["truncated"]),
            }
        )
    return pd.DataFrame(rows)


def results_csv(frame: pd.DataFrame) -> bytes:
    """CSV in UTF-8 with a byte-order mark: Excel then reads Korean correctly."""
    return frame.to_csv(index=False).encode("utf-8-sig")
