"""Shared fixtures: settings in a temporary home, the bundled sample, tiny trained models.

Models are trained once per test session with the ``tiny`` preset on the sample bundled
in the package (seconds on one core), so every test that needs a model reuses them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cinesense.config import DataSettings, PretrainSettings, Settings, TrainSettings
from cinesense.data.corpus import read_corpus, sample_corpus_path
from cinesense.data.dataset import Dataset, build_dataset

SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared/data/naver_movie_reviews.tsv.gz"

TINY_PRETRAIN = PretrainSettings(preset="tiny", epochs=4, batch_size=64, learning_rate=1e-3)
TINY_TRAIN = dict(
    learning_rate=1e-3, epochs=5, batch_size=32, eval_every_steps=50, early_stopping_patience=3
)


def tiny_settings(home: Path, **train: object) -> Settings:
    return Settings(
        home=home,
        num_threads=1,
        environment="test",
        hf_offline=True,
        pretrain=TINY_PRETRAIN,
        train=TrainSettings(**{**TINY_TRAIN, **train}),
    )


@pytest.fixture(scope="session")
def sample_dataset() -> Dataset:
    return build_dataset(read_corpus(sample_corpus_path()), DataSettings())


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, sample_dataset: Dataset) -> Path:
    from cinesense.model.loop import set_threads
    from cinesense.model.pretrain import pretrain

    set_threads(1)
    directory = tmp_path_factory.mktemp("base") / "tiny"
    texts = [*sample_dataset["train"]["text"], *sample_dataset["validation"]["text"]]
    pretrain(texts, directory, TINY_PRETRAIN, progress=False)
    return directory


@pytest.fixture(scope="session")
def tiny_model(
    tmp_path_factory: pytest.TempPathFactory, sample_dataset: Dataset, tiny_base: Path
) -> Path:
    from cinesense.model.finetune import finetune

    home = tmp_path_factory.mktemp("home")
    directory = home / "sentiment"
    finetune(
        sample_dataset, directory, tiny_settings(home, base_model=str(tiny_base)), progress=False
    )
    return directory


@pytest.fixture(scope="session")
def tiny_bundle(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, sample_dataset: Dataset
) -> Path:
    """The tiny model exported to a serving bundle (ONNX FP32 + INT8)."""
    from cinesense.model.export import build_serving_bundle

    directory = tmp_path_factory.mktemp("bundle") / "bundle"
    build_serving_bundle(tiny_model, directory, sample_dataset["test"])
    return directory


@pytest.fixture
def shared_corpus() -> Path:
    """The full Naver corpus beside the project (../shared/data), for developer checks.

    It is not part of the product and not needed by CI's other tests: when the folder is
    absent (a plain clone), the test is skipped with this explanation.
    """
    if not SHARED_CORPUS.exists():
        pytest.skip(
            f"{SHARED_CORPUS} not found: this test reads the full Naver corpus that "
            "the project's shared/ folder provides beside the checkout."
        )
    return SHARED_CORPUS
