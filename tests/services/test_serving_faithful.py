"""The service reads what users wrote: unreadable texts are refused, symbols are uncertain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cinesense.serving.app import create_app
from tests.services.test_serving import serve_settings


@pytest.fixture
def client(tmp_path: Path, tiny_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(serve_settings(tmp_path, bundle_dir=tiny_bundle))) as test_client:
        yield test_client


@pytest.mark.parametrize("text", ["\x00\x01", "\u200b\ufeff", "<br><p></p>"])
def test_a_text_empty_after_normalization_is_refused(client: TestClient, text: str) -> None:
    response = client.post("/v1/predict", json={"texts": ["좋아요", text]})
    assert response.status_code == 422
    assert "no readable text" in response.text


def test_symbol_only_text_is_uncertain(client: TestClient) -> None:
    response = client.post("/v1/predict", json={"texts": ["!!! ^^ ...", "돈이 아깝다 <최악>"]})
    assert response.status_code == 200, response.text
    symbols, words = response.json()["predictions"]
    assert symbols["label"] == "uncertain"
    assert words["label"] in ("positive", "negative", "uncertain")


def test_analyze_refuses_unreadable_reviews_too(client: TestClient) -> None:
    response = client.post("/v1/analyze", json={"reviews": [{"text": "\x07"}]})
    assert response.status_code == 422
