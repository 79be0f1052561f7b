"""The command line as a user runs it: a subprocess, exit codes, messages, no tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def run(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "CINESENSE_HOME": str(home),
        "CINESENSE_NUM_THREADS": "1",
        "CINESENSE_HF_OFFLINE": "true",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "cinesense", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


def assert_clean_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


TINY = {
    "CINESENSE_PRETRAIN__PRESET": "tiny",
    "CINESENSE_PRETRAIN__EPOCHS": "3",
    "CINESENSE_TRAIN__EPOCHS": "3",
}


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path: Path) -> None:
    result = run(tmp_path, "quickstart", env=TINY)
    assert result.returncode == 0, result.stderr
    prediction = json.loads(result.stdout[result.stdout.rindex("[\n") :])
    assert prediction[0]["label"] in {"positive", "negative", "uncertain"}
    report = json.loads((tmp_path / "models/sentiment/evaluation.json").read_text())
    assert report["model"]["accuracy"] > 0.55 and "baseline" in report
    assert (tmp_path / "models/base/cinesense_manifest.json").exists()

    predicted = run(tmp_path, "predict", "재밌어요", "별로예요")
    assert predicted.returncode == 0, predicted.stderr
    assert len(json.loads(predicted.stdout)) == 2

    reviews = tmp_path / "reviews.txt"
    reviews.write_text("좋아요\n\n최악\n", encoding="utf-8")
    from_file = run(tmp_path, "predict", "--file", str(reviews))
    assert [p["text"] for p in json.loads(from_file.stdout)] == ["좋아요", "최악"]

    nsmc = tmp_path / "ratings_test.txt"
    nsmc.write_text(
        "id\tdocument\tlabel\n1\t최고의 영화\t1\n2\t최악이다\t0\n"
        "3\t정말 재밌다\t1\n4\t지루하고 별로\t0\n",
        encoding="utf-8",
    )
    scored = run(tmp_path, "evaluate", "--data", str(nsmc), "--no-baseline")
    assert scored.returncode == 0, scored.stderr
    nsmc_report = json.loads(scored.stdout)["model"]
    assert nsmc_report["test_balanced_reviews"] == 4 and "rating_mae" not in nsmc_report

    # the registry on the embedded default (SQLite + local artifacts in CINESENSE_HOME)
    assert run(tmp_path, "quantize").returncode == 0
    registered = run(tmp_path, "register")
    assert registered.returncode == 0, registered.stderr
    version = json.loads(registered.stdout)["version"]
    gate = run(tmp_path, "promote", version)
    assert gate.returncode == 0, gate.stderr
    decision = json.loads(gate.stdout)
    listed = {row["version"]: row for row in json.loads(run(tmp_path, "models").stdout)}
    expected = "promoted" if decision["promoted"] else "rejected"
    assert listed[version]["tags"]["gate.decision"] == expected
    assert "challenger" in listed[version]["aliases"]


def test_build_dataset_from_files(tmp_path: Path) -> None:
    corpus = tmp_path / "c.tsv"
    lines = ["review_id\tmovie_id\trating\tdate\treview"]
    lines += [
        f"{m}{i}\t{m}\t{1 + (i % 10)}\t2015-01-01\t영화 {m} 리뷰 {i}"
        for m in range(30)
        for i in range(10)
    ]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(tmp_path, "build-dataset", "--corpus", str(corpus), "--name", "mine")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert sum(manifest["sizes"].values()) == 300
    assert (tmp_path / "datasets/mine/manifest.json").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("review_id\tmovie_id\trating\tdate\treview\n1\t2\t0\t2015-01-01\t리뷰\n", "line 2"),
        ("review_id\tmovie_id\trating\tdate\treview\n1\t2\t5\t2015\n", "malformed line"),
        ("", "empty"),
    ],
)
def test_build_dataset_bad_input(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text(content, encoding="utf-8")
    assert_clean_error(run(tmp_path, "build-dataset", "--corpus", str(bad)), message)
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").iterdir())


def test_missing_corpus_file(tmp_path: Path) -> None:
    assert_clean_error(run(tmp_path, "build-dataset", "--corpus", "nope.tsv"), "not found")


def test_train_without_dataset(tmp_path: Path) -> None:
    assert_clean_error(run(tmp_path, "train"), "cinesense build-dataset")


def test_unknown_base_model(tmp_path: Path) -> None:
    assert run(tmp_path, "build-dataset").returncode == 0
    assert_clean_error(
        run(tmp_path, "train", "--base-model", "nonsense model"), "Unknown base model"
    )
    assert_clean_error(run(tmp_path, "train"), "cinesense pretrain")


def test_hub_model_without_network(tmp_path: Path) -> None:
    assert run(tmp_path, "build-dataset").returncode == 0
    assert_clean_error(
        run(tmp_path, "train", "--base-model", "klue/bert-base"), "hub access is off"
    )


def test_predict_needs_text(tmp_path: Path) -> None:
    assert_clean_error(run(tmp_path, "predict"), "no review text given")
    assert_clean_error(run(tmp_path, "predict", "   "), "no review text given")


def test_predict_without_a_trained_model_uses_the_shipped_one(tmp_path: Path) -> None:
    result = run(tmp_path, "predict", "정말 재밌어요 최고예요")
    assert result.returncode == 0, result.stderr
    assert "the shipped model answers" in result.stderr
    [prediction] = json.loads(result.stdout)
    assert prediction["label"] in {"positive", "negative", "uncertain"}


def test_predict_with_a_missing_model_directory(tmp_path: Path) -> None:
    result = run(tmp_path, "predict", "--model", str(tmp_path / "nowhere"), "좋아요")
    assert_clean_error(result, "cinesense train")


def test_download_offline(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "download",
        env={
            "CINESENSE_DATA__CORPUS_URL": "http://127.0.0.1:9/none.tar.gz",
            "CINESENSE_DATA__DOWNLOAD_TIMEOUT_S": "5",
        },
    )
    assert_clean_error(result, "Could not download")


def test_bad_setting_is_explained(tmp_path: Path) -> None:
    result = run(tmp_path, "build-dataset", env={"CINESENSE_DATA__TEST_FRACTION": "0.9"})
    assert result.returncode == 1
    assert "CINESENSE_DATA__TEST_FRACTION" in result.stderr and "Traceback" not in result.stderr
