"""The registry against real servers on loopback: MLflow (SQLite) proxying artifacts to an
S3-compatible server (moto). Clients hold no storage credentials."""

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cinesense.config import MlflowSettings, Settings
from cinesense.data.dataset import Dataset
from cinesense.errors import ModelError, RegistryError
from cinesense.registry import (
    CHALLENGER,
    CHAMPION,
    connect,
    experiment_id,
    gate_set,
    list_versions,
    load_predictor,
    promote,
    register_bundle,
    rollback,
)
from tests.servers import create_bucket, free_port, mlflow_server, moto_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("mlflow")
    with moto_server() as s3:
        create_bucket(s3, "mlflow")
        with mlflow_server(directory, s3, "mlflow") as url:
            yield url


@pytest.fixture
def settings(tracking_uri: str, tmp_path: Path) -> Settings:
    name = f"sentiment-{os.urandom(4).hex()}"  # a fresh registered model per test
    return Settings(
        home=tmp_path,
        mlflow=MlflowSettings(tracking_uri=tracking_uri, model_name=name, max_retries=1),
    )


def new_version(settings: Settings, bundle: Path) -> str:
    import mlflow

    connect(settings)
    with mlflow.start_run(experiment_id=experiment_id(settings)) as run:
        pass
    return register_bundle(settings, run.info.run_id, bundle, {"data_fingerprint": "abc"})


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


def test_server_down_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        mlflow=MlflowSettings(
            tracking_uri=f"http://127.0.0.1:{free_port()}", max_retries=1, request_timeout_s=2
        ),
    )
    with pytest.raises(RegistryError, match="does not answer"):
        connect(settings)


def test_history_is_readable_json(settings: Settings, tiny_bundle: Path, evaluation) -> None:
    from cinesense.registry import HISTORY_TAG

    version = new_version(settings, tiny_bundle)
    promote(settings, version, evaluation, baseline_accuracy=0.5)
    client = connect(settings)
    history = json.loads(client.get_registered_model(settings.mlflow.model_name).tags[HISTORY_TAG])
    assert history[-1]["version"] == version and history[-1]["kind"] == "promotion"
