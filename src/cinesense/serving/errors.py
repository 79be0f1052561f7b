"""Pydantic validation errors turned into sentences a person can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SHAPE = 'The body must be a JSON object such as {"texts": ["리뷰 내용"]}.'
# The body each endpoint expects, where it is not SHAPE's.
SHAPES = {
    "/v1/analyze": "The body must be a JSON object such as "
    '{"reviews": [{"text": "리뷰 내용", "rating": 8}]} (rating optional).',
}


def describe_validation_errors(errors: Sequence[Any], path: str = "") -> tuple[int, str, list[str]]:
    """(HTTP status, headline, one line per problem). Malformed JSON is a 400, the rest 422.
    ``path`` picks the example body the sentences show."""
    shape = next((s for suffix, s in SHAPES.items() if path.endswith(suffix)), SHAPE)
    for error in errors:
        if error.get("type") == "json_invalid":
            where = error.get("ctx", {}).get("error", "")
            return 400, f"The body is not valid JSON ({where}). {shape}", []
    problems = [_sentence(error, shape) for error in errors][:20]
    return 422, "The request is not valid: " + problems[0], problems


def _where(loc: Sequence[Any]) -> str:
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _sentence(error: dict[str, Any], shape: str) -> str:
    where, kind, ctx = _where(error.get("loc", ())), error.get("type", ""), error.get("ctx", {})
    given = error.get("input")
    if kind == "missing":
        return f"{where}: is required. {shape}" if where != "body" else shape
    if kind in ("model_attributes_type", "dict_type", "model_type"):
        return f"{where}: must be a JSON object. {shape}"
    if kind == "string_type":
        return f"{where}: must be a string, not {type(given).__name__}."
    if kind == "list_type":
        return f"{where}: must be a list."
    if kind == "too_short":
        return f"{where}: must not be empty; send at least one item."
    if kind == "too_long":
        return (
            f"{where}: {ctx.get('actual_length')} items is over the limit of "
            f"{ctx.get('max_length')} per request; split them into several requests."
        )
    if kind == "string_too_short":
        return f"{where}: is empty; send the review's text."
    if kind == "string_too_long":
        length = len(given) if isinstance(given, str) else "?"
        return (
            f"{where}: {length} characters is over the limit of {ctx.get('max_length')}; "
            "shorten the text."
        )
    if kind == "extra_forbidden":
        return f"{where}: unknown field."
    if kind == "value_error":
        return f"{where}: {ctx.get('error', error.get('msg'))}"
    return f"{where}: {error.get('msg', 'invalid value')}."
