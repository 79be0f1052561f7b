"""The registry flow end to end, as a user runs it, against real servers on loopback.

An MLflow server (SQLite backend) proxies artifacts to an S3-compatible server (moto's
server mode); both are real processes. Every step is the ``cinesense`` command in its own
process, with no storage credentials in its environment: build a dataset, pretrain and
fine-tune the tiny preset and evaluate it (``quickstart``), quantize, try to register
while the server's artifact bucket does not exist yet (a clear error, nothing
registered), then register two challengers and promote both at the same moment, promote
the loser on a tie, roll back, list the versions, and predict with the champion from a
fresh home.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.servers import S3_KEY, S3_SECRET, create_bucket, mlflow_server, moto_server

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
BUCKET = "mlflow"


def environment(home: Path, tracking_uri: str) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "MLFLOW_", "CINESENSE_"))
    }
    return {
        **inherited,
        "CINESENSE_HOME": str(home),
        "CINESENSE_NUM_THREADS": "1",
        "CINESENSE_HF_OFFLINE": "true",
        "CINESENSE_PRETRAIN__PRESET": "tiny",
        "CINESENSE_MLFLOW__TRACKING_URI": tracking_uri,
        "CINESENSE_MLFLOW__MAX_RETRIES": "1",
    }


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cinesense", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen[str], parse: bool = True, code: int = 0) -> Any:
    out, err = process.communicate(timeout=600)
    assert process.returncode == code, f"{process.args}: {err[-3000:]}"
    assert "Traceback" not in err
    if code:
        return err
    return json.loads(out) if parse else out  # JSON only, even when MLflow has a server


def cli(env: dict[str, str], *args: str) -> Any:
    return finish(start(env, *args))


def bucket_keys(endpoint: str) -> list[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_train_quantize_register_promote_and_predict_with_the_champion(tmp_path: Path) -> None:
    # The server's artifact bucket is created only later in the test.
    with moto_server() as s3, mlflow_server(tmp_path, s3, BUCKET) as url:
        env = environment(tmp_path / "home", url)
        epochs = {"CINESENSE_PRETRAIN__EPOCHS": "2", "CINESENSE_TRAIN__EPOCHS": "2"}
        finish(start({**env, **epochs}, "quickstart"), parse=False)
        report = tmp_path / "home/models/sentiment/evaluation.json"
        bundle = cli(env, "quantize")
        assert bundle["served"] in {"int8", "fp32"}

        # The tiny model, trained in seconds on the bundled sample, does not beat the
        # TF-IDF baseline there (at most about 0.76 against 0.82; two epochs can leave it
        # at chance), so the gate rightly refuses it (test_registry tests that rule). To
        # carry the flow past the gate, these registrations record a baseline that any
        # model beats.
        weak = json.loads(report.read_text())
        weak["baseline"]["accuracy"] = 0.0
        weak_report = tmp_path / "weak-baseline.json"
        weak_report.write_text(json.dumps(weak, ensure_ascii=False))

        # The server's artifact bucket does not exist yet: clients cannot create it.
        error = finish(start(env, "register", "--report", str(weak_report)), code=1)
        assert "artifact store" in error and "bucket" in error
        assert cli(env, "models") == []
        create_bucket(s3, BUCKET)

        registering = [start(env, "register", "--report", str(weak_report)) for _ in "ab"]
        versions = sorted(finish(process)["version"] for process in registering)
        assert versions == ["1", "2"]

        # Two challengers promoted at the same moment by two processes: one wins.
        decisions = [finish(p) for p in [start(env, "promote", v) for v in versions]]
        winners = [d["version"] for d in decisions if d["promoted"]]
        assert len(winners) == 1, decisions
        (loser,) = set(versions) - set(winners)
        rejected = next(d for d in decisions if not d["promoted"])
        assert "does not beat champion" in rejected["reason"]

        tie = cli(env, "promote", loser, "--margin", "0")  # the same model: gain 0
        assert tie["promoted"]
        assert cli(env, "rollback") == {"champion": winners[0]}
        listed = {row["version"]: row for row in cli(env, "models")}
        assert "champion" in listed[winners[0]]["aliases"]
        assert "champion" not in listed[loser]["aliases"]
        # (registered at once, either may have set "challenger" last)
        assert sum("challenger" in row["aliases"] for row in listed.values()) == 1
        assert "gate.rolled_back_at" in listed[loser]["tags"]
        assert {listed[v]["tags"]["gate.decision"] for v in versions} == {"promoted"}

        # A fresh process with an empty home serves the champion from the registry.
        fresh = environment(tmp_path / "fresh", url)
        predictions = cli(fresh, "predict", "--registry", "champion", "정말 재밌어요", "최악")
        assert [p["version"] for p in predictions] == [winners[0]] * 2
        assert {p["label"] for p in predictions} <= {"positive", "negative", "uncertain"}

        # What each training run logged went through the server into the bucket.
        keys = bucket_keys(s3)
        for artifact in ("confusion_matrix.png", "calibration.png", "worst_errors.json"):
            assert sum(key.endswith(f"/evaluation/{artifact}") for key in keys) == 2
        assert any(key.endswith("/bundle/manifest.json") for key in keys)
