"""The registry against real servers on loopback: MLflow (SQLite) proxying artifacts to an
S3-compatible server (moto). Clients hold no storage credentials.

Failure cases: the server down, silent or hanging midway (bounded by the settings'
timeout and retries, then a clear error, nothing half registered), a corrupt artifact in
the bucket, gate rejections and concurrent promotions. The server's artifact bucket
missing is part of tests/services/test_integration.py, where a user meets it.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cinesense.config import MlflowSettings, Settings
from cinesense.data.dataset import Dataset
from cinesense.errors import ModelError, RegistryError
from cinesense.gate import gate_set, promote
from cinesense.registry import (
    CHALLENGER,
    CHAMPION,
    connect,
    experiment_id,
    list_versions,
    load_predictor,
    mlflow_environment,
    register_bundle,
    rollback,
)
from tests.servers import (
    S3_KEY,
    S3_SECRET,
    create_bucket,
    free_port,
    mlflow_server,
    moto_server,
    silent_server,
    stalling_proxy,
)

pytestmark = pytest.mark.slow
BUCKET = "mlflow"


@dataclass(frozen=True)
class Servers:
    tracking_uri: str
    s3_endpoint: str


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("mlflow")
    with moto_server() as s3:
        create_bucket(s3, BUCKET)
        with mlflow_server(directory, s3, BUCKET) as url:
            yield Servers(url, s3)


@pytest.fixture(scope="module")
def tracking_uri(servers: Servers) -> str:
    return servers.tracking_uri


@pytest.fixture
def settings(tracking_uri: str, tmp_path: Path) -> Settings:
    name = f"sentiment-{os.urandom(4).hex()}"  # a fresh registered model per test
    return Settings(
        home=tmp_path,
        mlflow=MlflowSettings(tracking_uri=tracking_uri, model_name=name, max_retries=1),
    )


def new_run(settings: Settings) -> str:
    import mlflow

    connect(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings)) as run:
        pass
    return str(run.info.run_id)


def new_version(settings: Settings, bundle: Path) -> str:
    return register_bundle(settings, new_run(settings), bundle, {"data_fingerprint": "abc"})


def versions_of(settings: Settings) -> list[str]:
    """Every version of the settings' model, read straight from the server."""
    client = connect(settings)
    found = client.search_model_versions(f"name = '{settings.mlflow.model_name}'")
    return sorted(str(v.version) for v in found)


@pytest.fixture
def evaluation(sample_dataset: Dataset):
    return gate_set(sample_dataset["test"], seed=1)


def test_register_promote_and_load_in_a_fresh_process(
    settings: Settings, tiny_bundle: Path, evaluation
) -> None:
    version = new_version(settings, tiny_bundle)
    rows = list_versions(settings)
    assert rows[0]["version"] == version and rows[0]["aliases"] == [CHALLENGER]
    assert rows[0]["tags"]["data_fingerprint"] == "abc"

    decision = promote(settings, version, evaluation, baseline_accuracy=0.5)
    assert decision.promoted and "first champion" in decision.reason
    assert list_versions(settings)[0]["aliases"] == [CHALLENGER, CHAMPION]

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from cinesense.config import Settings\n"
        "from cinesense.registry import load_predictor\n"
        "predictor, version = load_predictor(Settings())\n"
        "print(version, predictor.predict(['정말 재밌어요'])[0].label)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        CINESENSE_HOME=str(settings.home / "fresh"),
        CINESENSE_MLFLOW__TRACKING_URI=settings.tracking_uri,
        CINESENSE_MLFLOW__MODEL_NAME=settings.mlflow.model_name,
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == version


def test_gate_rejections_are_recorded(settings: Settings, tiny_bundle: Path, evaluation) -> None:
    first = new_version(settings, tiny_bundle)
    assert promote(settings, first, evaluation, baseline_accuracy=0.5).promoted
    again = promote(settings, first, evaluation, baseline_accuracy=0.5)
    assert not again.promoted and again.reason == "already champion"

    second = new_version(settings, tiny_bundle)  # the same model: no gain
    decision = promote(settings, second, evaluation, baseline_accuracy=0.5, margin=0.01)
    assert not decision.promoted and "does not beat champion" in decision.reason
    tags = {row["version"]: row["tags"] for row in list_versions(settings)}
    assert tags[second]["gate.decision"] == "rejected"
    assert tags[second]["gate.champion_version"] == first

    third = new_version(settings, tiny_bundle)
    below_baseline = promote(settings, third, evaluation, baseline_accuracy=0.999, margin=-1)
    assert not below_baseline.promoted and "TF-IDF baseline" in below_baseline.reason


def test_rollback(settings: Settings, tiny_bundle: Path, evaluation) -> None:
    versions = [new_version(settings, tiny_bundle) for _ in range(3)]
    for version in versions:
        assert promote(settings, version, evaluation, baseline_accuracy=0.5, margin=-1).promoted
    assert rollback(settings) == versions[1]
    assert rollback(settings) == versions[0]
    with pytest.raises(RegistryError, match="no earlier champion"):
        rollback(settings)
    champion = [r["version"] for r in list_versions(settings) if CHAMPION in r["aliases"]]
    assert champion == [versions[0]]


def test_concurrent_promotions_end_consistent(
    settings: Settings, tiny_bundle: Path, evaluation
) -> None:
    versions = [new_version(settings, tiny_bundle) for _ in range(2)]
    decisions = {}

    def run(version: str) -> None:
        decisions[version] = promote(settings, version, evaluation, baseline_accuracy=0.5)

    threads = [threading.Thread(target=run, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = {r["version"]: r for r in list_versions(settings)}
    champions = [v for v, r in rows.items() if CHAMPION in r["aliases"]]
    assert len(champions) == 1
    assert rows[champions[0]]["tags"]["gate.decision"] == "promoted"
    assert sum(d.promoted for d in decisions.values()) == 1  # equal models: one wins


def test_corrupt_artifact_is_refused(settings: Settings, tiny_bundle: Path, evaluation) -> None:
    version = new_version(settings, tiny_bundle)
    predictor, _ = load_predictor(settings, version)
    served = predictor.directory / predictor.manifest["served_file"]
    served.write_bytes(b"corrupted")
    with pytest.raises(ModelError, match="corrupt"):
        load_predictor(settings, version)


def test_unknown_version(settings: Settings, tiny_bundle: Path) -> None:
    new_version(settings, tiny_bundle)
    with pytest.raises(ModelError, match="No model version"):
        load_predictor(settings, "99")
    with pytest.raises(ModelError, match="No model version"):
        load_predictor(settings, CHAMPION)


def test_corrupt_artifact_in_the_bucket_is_refused(
    servers: Servers, settings: Settings, tiny_bundle: Path
) -> None:
    import boto3

    version = new_version(settings, tiny_bundle)
    source = connect(settings).get_model_version(settings.mlflow.model_name, version).source
    model_id = source.removeprefix("models:/")  # the logged model's artifacts hold the bundle
    served = json.loads((tiny_bundle / "manifest.json").read_text())["served_file"]
    s3 = boto3.client(
        "s3",
        endpoint_url=servers.s3_endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for item in page.get("Contents", [])
        if model_id in item["Key"] and item["Key"].endswith(f"/{served}")
    ]
    assert len(keys) == 1, keys
    s3.put_object(Bucket=BUCKET, Key=keys[0], Body=b"corrupted in the bucket")
    with pytest.raises(ModelError, match="corrupt"):
        load_predictor(settings, version)  # a fresh home: downloaded from the bucket


def test_server_down_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        mlflow=MlflowSettings(
            tracking_uri=f"http://127.0.0.1:{free_port()}", max_retries=1, request_timeout_s=2
        ),
    )
    with pytest.raises(RegistryError, match="does not answer"):
        connect(settings)


def test_silent_server_is_given_up_on_in_bounded_time(tmp_path: Path) -> None:
    """Accepts connections, never answers: the timeout and retries from the settings bound
    the wait (two attempts of one second, one short pause)."""
    with silent_server() as url:
        settings = Settings(
            home=tmp_path,
            mlflow=MlflowSettings(tracking_uri=url, max_retries=1, request_timeout_s=1),
        )
        started = time.monotonic()
        with pytest.raises(RegistryError, match=r"does not answer.*after 2 attempts"):
            list_versions(settings)
        assert time.monotonic() - started < 8


def test_settings_bound_mlflow_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
        monkeypatch.setenv(name, "99")  # an earlier value is replaced (and restored after)
    settings = Settings(home=tmp_path, mlflow=MlflowSettings(request_timeout_s=2.5, max_retries=0))
    with mlflow_environment(settings):
        connect(settings)
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    # connecting leaves the process environment of unrelated code as it was
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "99"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "99"
    assert "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ


def test_server_hanging_midway_leaves_nothing_registered(
    settings: Settings, tiny_bundle: Path
) -> None:
    """The server stops answering once the version exists (tagging it hangs): MLflow's own
    requests give up after the settings' timeout and retries, and the version is removed."""
    stalls = []

    def stall(method: str, path: str) -> bool:
        hang = "model-versions/set-tag" in path
        stalls.extend([path] if hang else [])
        return hang

    with stalling_proxy(settings.tracking_uri, stall) as proxy:
        flaky = settings.model_copy(
            update={
                "mlflow": settings.mlflow.model_copy(
                    update={"tracking_uri": proxy, "request_timeout_s": 2, "max_retries": 1}
                )
            }
        )
        run_id = new_run(flaky)
        started = time.monotonic()
        with pytest.raises(RegistryError, match="so it was removed"):
            register_bundle(flaky, run_id, tiny_bundle, {"data_fingerprint": "abc"})
        assert time.monotonic() - started < 20
    assert len(stalls) == 2  # the first try and one retry, each abandoned after 2 s
    assert versions_of(settings) == []


def test_storage_refusing_the_servers_credentials_leaves_nothing_registered(
    tmp_path: Path, tiny_bundle: Path
) -> None:
    """The S3-compatible store rejects the MLflow server's credentials (moto with IAM
    checks on, after the bucket exists): registering fails with a clear error naming the
    artifact store, and no version is left behind."""
    directory = tmp_path / "mlflow"
    directory.mkdir()
    with moto_server(INITIAL_NO_AUTH_ACTION_COUNT="2") as s3:
        create_bucket(s3, BUCKET)  # unauthenticated actions allowed: readiness probe, bucket
        with mlflow_server(directory, s3, BUCKET) as url:
            settings = Settings(
                home=tmp_path,
                mlflow=MlflowSettings(tracking_uri=url, model_name="creds", max_retries=1),
            )
            run_id = new_run(settings)
            with pytest.raises(RegistryError) as failure:
                register_bundle(settings, run_id, tiny_bundle, {"data_fingerprint": "abc"})
            assert versions_of(settings) == []
    message = str(failure.value)
    assert "artifact" in message.lower(), message
    assert "Traceback" not in message
