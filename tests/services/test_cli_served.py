"""The CLI on served bundles: evaluate a bundle as served; unreadable input is refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from cinesense.data.corpus import sample_corpus_path
from tests.services.test_cli import assert_clean_error, run

pytestmark = pytest.mark.e2e


def test_predict_refuses_text_that_is_empty_after_normalization(tmp_path: Path) -> None:
    assert_clean_error(run(tmp_path, "predict", "좋아요", "\x01\x02"), "no readable text")


def test_predict_with_a_bundle_shows_symbols_alone_as_uncertain(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    result = run(tmp_path, "predict", "--bundle", str(tiny_bundle), "재밌어요", "!!! ???")
    assert result.returncode == 0, result.stderr
    words, symbols = json.loads(result.stdout)
    assert words["text"] == "재밌어요" and words["readable"]
    assert symbols["label"] == "uncertain" and not symbols["readable"]


def test_predict_takes_one_model(tmp_path: Path, tiny_bundle: Path) -> None:
    result = run(
        tmp_path, "predict", "--bundle", str(tiny_bundle), "--registry", "champion", "좋아"
    )
    assert_clean_error(result, "give one of --model, --bundle or --registry")


@pytest.fixture
def labelled_file(tmp_path: Path) -> Path:
    """A few hundred rated reviews from the bundled sample, as a plain review file."""
    with gzip.open(sample_corpus_path(), "rt", encoding="utf-8") as sample:
        lines = sample.read().splitlines()
    path = tmp_path / "reviews.tsv"
    path.write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    return path


def test_evaluate_scores_a_serving_bundle_on_a_review_file(
    tmp_path: Path, tiny_bundle: Path, labelled_file: Path
) -> None:
    result = run(
        tmp_path,
        "evaluate",
        "--bundle",
        str(tiny_bundle),
        "--data",
        str(labelled_file),
        "--report",
        str(tmp_path / "report.json"),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert 0.0 <= report["model"]["accuracy"] <= 1.0
    assert "label_rating_contradictions" in report["model"]
    assert "baseline" not in report  # no dataset here to train it on


def test_evaluate_needs_reviews_to_score(tmp_path: Path, tiny_bundle: Path) -> None:
    assert_clean_error(run(tmp_path, "evaluate", "--bundle", str(tiny_bundle)), "--data FILE")


def test_evaluate_takes_one_model(tmp_path: Path, tiny_bundle: Path) -> None:
    result = run(tmp_path, "evaluate", "--bundle", str(tiny_bundle), "--model", str(tmp_path))
    assert_clean_error(result, "give one of --model, --bundle or --registry")
