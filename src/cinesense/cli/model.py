"""The ``cinesense`` command line: datasets, pretraining, training, evaluation, prediction."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from cinesense.config import Settings, get_settings
from cinesense.crawl.cli import crawl_app
from cinesense.errors import CinesenseError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="cinesense: Korean movie-review sentiment, from corpus to model.",
)
app.add_typer(crawl_app, name="crawl")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DATASET = "default"
QUICKSTART_EPOCHS = 4.0  # the bundled sample is small: a few passes over it take seconds
EXAMPLE_REVIEW = "배우들 연기가 정말 좋았고 마지막 장면에서 울었어요"


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def describe_settings_error(error: ValidationError) -> str:
    problems = [
        f"CINESENSE_{'__'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
        for item in error.errors()
    ]
    return "invalid setting(s): " + "; ".join(problems) + ". Fix the environment or .env file."


def friendly_errors(command: F) -> F:
    """Print a CinesenseError's message (no traceback) and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CinesenseError as error:
            _fail(str(error))
        except ValidationError as error:
            _fail(describe_settings_error(error))
        except KeyboardInterrupt:
            _fail("interrupted; nothing half-written was kept.")

    return wrapper  # type: ignore[return-value]


def configure_cli_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _settings() -> Settings:
    settings = get_settings()
    configure_cli_logging(settings)
    from cinesense.model.loop import set_threads

    set_threads(settings.num_threads)
    return settings


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _dataset_dir(settings: Settings, dataset: str) -> Path:
    path = Path(dataset)
    return path if path.is_dir() or "/" in dataset else settings.datasets_dir / dataset


DatasetOpt = Annotated[str, typer.Option(help="Dataset name (under CINESENSE_HOME) or directory.")]
ModelOpt = Annotated[Path | None, typer.Option(help="Model directory (default: the last trained).")]


@app.command()
@friendly_errors
def download(force: Annotated[bool, typer.Option(help="Download again.")] = False) -> None:
    """Download the Naver review corpus (real installs; needs the network)."""
    from cinesense.data.corpus import download_corpus

    typer.echo(download_corpus(_settings(), force=force))


@app.command("build-dataset")
@friendly_errors
def build_dataset_command(
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            help="Review file(s): Naver corpus TSV or NSMC ratings_*.txt, .gz allowed. "
            "Default: the sample bundled with the package."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="Dataset name.")] = DEFAULT_DATASET,
    include_crawled: Annotated[
        bool,
        typer.Option(help="Add crawled reviews that may train models (see `cinesense crawl`)."),
    ] = False,
) -> None:
    """Normalize, label, deduplicate and split reviews by movie; print the manifest."""
    from cinesense.data.corpus import sample_corpus_path
    from cinesense.pipelines import build_training_dataset

    settings = _settings()
    directory = _dataset_dir(settings, name)
    dataset = build_training_dataset(
        settings, directory, corpus or [sample_corpus_path()], include_crawled
    )
    manifest = dataset.manifest
    _echo_json(
        {
            "directory": str(directory),
            "fingerprint": manifest.fingerprint,
            "sizes": manifest.sizes,
            "movies": manifest.movies,
            "label_counts": manifest.label_counts,
            "dropped": manifest.dropped,
        }
    )


@app.command()
@friendly_errors
def pretrain(
    dataset: DatasetOpt = DEFAULT_DATASET,
    preset: Annotated[str | None, typer.Option(help="tiny (tests) or small (real use).")] = None,
    text_file: Annotated[
        list[Path] | None,
        typer.Option(help="Extra review files (any supported format); labels are not needed."),
    ] = None,
    epochs: Annotated[float | None, typer.Option(min=0.01)] = None,
    max_minutes: Annotated[float | None, typer.Option(min=0.01)] = None,
    out: Annotated[Path | None, typer.Option(help="Default: CINESENSE_HOME/models/base.")] = None,
) -> None:
    """Build the self-built Korean BERT base: WordPiece vocabulary + masked-LM pretraining.

    Uses the text of the dataset's train and validation splits (never its test movies)
    plus any --text-file.
    """
    from cinesense.pipelines import pretrain_base

    settings = _settings()
    overrides = {
        k: v
        for k, v in {"preset": preset, "epochs": epochs, "max_minutes": max_minutes}.items()
        if v is not None
    }
    if preset is not None and preset not in ("tiny", "small"):
        raise typer.BadParameter("preset must be 'tiny' or 'small'", param_hint="--preset")
    settings = settings.model_copy(
        update={"pretrain": settings.pretrain.model_copy(update=overrides)}
    )
    target = out or settings.self_built_base_dir
    _echo_json(pretrain_base(settings, _dataset_dir(settings, dataset), target, text_file))


@app.command()
@friendly_errors
def train(
    dataset: DatasetOpt = DEFAULT_DATASET,
    base_model: Annotated[
        str | None,
        typer.Option(help="'self-built', a model directory or a hub id (e.g. klue/bert-base)."),
    ] = None,
    epochs: Annotated[float | None, typer.Option(min=0.01)] = None,
    learning_rate: Annotated[float | None, typer.Option(min=0.0)] = None,
    max_train_samples: Annotated[int | None, typer.Option(min=1)] = None,
    max_minutes: Annotated[float | None, typer.Option(min=0.01)] = None,
    out: Annotated[
        Path | None, typer.Option(help="Default: CINESENSE_HOME/models/sentiment.")
    ] = None,
) -> None:
    """Fine-tune the sentiment + rating model on a dataset."""
    from cinesense.pipelines import train_sentiment

    settings = _settings()
    overrides = {
        k: v
        for k, v in {
            "base_model": base_model,
            "epochs": epochs,
            "learning_rate": learning_rate,
            "max_train_samples": max_train_samples,
            "max_minutes": max_minutes,
        }.items()
        if v is not None
    }
    settings = settings.model_copy(update={"train": settings.train.model_copy(update=overrides)})
    target = out or settings.models_dir / "sentiment"
    _echo_json(train_sentiment(settings, _dataset_dir(settings, dataset), target))


@app.command()
@friendly_errors
def evaluate(
    model: ModelOpt = None,
    dataset: DatasetOpt = DEFAULT_DATASET,
    baseline: Annotated[
        bool, typer.Option(help="Also train and score the TF-IDF baseline.")
    ] = True,
    report: Annotated[Path | None, typer.Option(help="Also write the report as JSON here.")] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="Score on this review file (e.g. NSMC ratings_test.txt) instead."),
    ] = None,
) -> None:
    """Score a model on the dataset's test movies (or --data), beside the TF-IDF baseline."""
    from cinesense.pipelines import evaluate_sentiment

    settings = _settings()
    result = evaluate_sentiment(
        settings,
        model or settings.models_dir / "sentiment",
        _dataset_dir(settings, dataset),
        report,
        with_baseline=baseline,
        test_file=data,
    )
    _echo_json(result)


@app.command()
@friendly_errors
def quantize(
    model: ModelOpt = None,
    dataset: DatasetOpt = DEFAULT_DATASET,
    out: Annotated[
        Path | None, typer.Option(help="Default: CINESENSE_HOME/models/serving.")
    ] = None,
    max_accuracy_loss: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Largest INT8 accuracy loss (fraction).")
    ] = 0.005,
) -> None:
    """Export to ONNX, quantize to INT8, check parity and accuracy; write a serving bundle."""
    from cinesense.pipelines import quantize_sentiment

    settings = _settings()
    target = out or settings.models_dir / "serving"
    manifest = quantize_sentiment(
        settings,
        model or settings.models_dir / "sentiment",
        _dataset_dir(settings, dataset),
        target,
        max_accuracy_loss,
    )
    _echo_json({"directory": str(target), **{k: v for k, v in manifest.items() if k != "files"}})


@app.command()
@friendly_errors
def predict(
    texts: Annotated[list[str] | None, typer.Argument(help="Review text(s).")] = None,
    model: ModelOpt = None,
    file: Annotated[Path | None, typer.Option(help="A file with one review per line.")] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            help="Use a registered version instead: an alias (champion, challenger) or a "
            "version number, served with ONNX Runtime as the service does."
        ),
    ] = None,
) -> None:
    """Predict sentiment and a 1–10 rating for reviews."""
    settings = _settings()
    reviews = list(texts or [])
    if file is not None:
        if not file.exists():
            _fail(f"{file}: file not found.")
        reviews.extend(line for line in file.read_text(encoding="utf-8").splitlines())
    reviews = [r for r in reviews if r.strip()]
    if not reviews:
        _fail("no review text given. Pass text as arguments or --file with one review per line.")
    if registry is not None:
        if model is not None:
            _fail("give either --model or --registry, not both.")
        from cinesense.registry import load_predictor

        served, version = load_predictor(settings, registry, settings.num_threads)
        results = served.predict(reviews)
        _echo_json(
            [
                {"text": text, **p.__dict__, "version": version}
                for text, p in zip(reviews, results, strict=True)
            ]
        )
        return
    from cinesense.model.predict import TorchPredictor

    predictor = TorchPredictor.from_directory(model or settings.models_dir / "sentiment")
    _echo_json([p.__dict__ for p in predictor.predict(reviews)])


def _explicit_or(group: BaseModel, field: str, default: float) -> float:
    """The setting when the user set it (environment or .env), else ``default``."""
    return getattr(group, field) if field in group.model_fields_set else default


@app.command()
@friendly_errors
def register(
    model: ModelOpt = None,
    bundle: Annotated[
        Path | None, typer.Option(help="Default: CINESENSE_HOME/models/serving.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Evaluation report (cinesense evaluate --report). Default: "
            "evaluation.json beside the trained model."
        ),
    ] = None,
    dataset: DatasetOpt = DEFAULT_DATASET,
) -> None:
    """Log the training run in MLflow and register its serving bundle (alias: challenger)."""
    from cinesense.data.dataset import load_dataset
    from cinesense.tracking import record_and_register

    settings = _settings()
    model_dir = model or settings.models_dir / "sentiment"
    dataset_dir = _dataset_dir(settings, dataset)
    result = record_and_register(
        settings,
        model_dir,
        bundle or settings.models_dir / "serving",
        report or model_dir / "evaluation.json",
        load_dataset(dataset_dir),
        dataset_dir.resolve().as_uri(),
    )
    _echo_json(result)


@app.command()
@friendly_errors
def promote(
    version: Annotated[str, typer.Argument(help="The version to promote.")],
    dataset: DatasetOpt = DEFAULT_DATASET,
    margin: Annotated[float | None, typer.Option(help="Accuracy gain needed (fraction).")] = None,
) -> None:
    """Gate a version against the champion on the dataset's test movies; promote if better."""
    from cinesense.pipelines import gate_version

    settings = _settings()
    decision = gate_version(settings, version, _dataset_dir(settings, dataset), margin)
    _echo_json(decision.__dict__)


@app.command()
@friendly_errors
def rollback() -> None:
    """Move the champion alias back to the previous champion."""
    from cinesense.registry import rollback as run_rollback

    _echo_json({"champion": run_rollback(_settings())})


@app.command()
@friendly_errors
def models() -> None:
    """List registered versions with their aliases and gate decisions."""
    from cinesense.registry import list_versions

    _echo_json(list_versions(_settings()))


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    bundle: Annotated[
        Path | None,
        typer.Option(help="Serve this bundle directory instead of the registry's champion."),
    ] = None,
) -> None:
    """Run the inference API (FastAPI under uvicorn) on the registry's champion."""
    import uvicorn

    from cinesense.serving.app import create_app
    from cinesense.serving.logs import configure_logging

    settings = _settings()
    if bundle is not None:
        settings = settings.model_copy(
            update={"serve": settings.serve.model_copy(update={"bundle_dir": bundle})}
        )
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings), host=host, port=port, log_config=None, timeout_graceful_shutdown=15
    )


@app.command()
@friendly_errors
def quickstart(
    preset: Annotated[str, typer.Option(help="Base model size.")] = "tiny",
) -> None:
    """The main job on embedded defaults: sample → dataset → base model → train → predict."""
    settings = _settings()
    typer.secho("1/5 building a dataset from the bundled sample", bold=True, err=True)
    build_dataset_command(corpus=None, name=DEFAULT_DATASET)
    typer.secho(f"2/5 pretraining the {preset} self-built Korean BERT", bold=True, err=True)
    pretrain(
        dataset=DEFAULT_DATASET,
        preset=preset,
        epochs=_explicit_or(settings.pretrain, "epochs", QUICKSTART_EPOCHS),
        max_minutes=None,
        text_file=None,
        out=None,
    )
    typer.secho("3/5 fine-tuning on the sample", bold=True, err=True)
    train(
        dataset=DEFAULT_DATASET,
        base_model="self-built",
        epochs=_explicit_or(settings.train, "epochs", QUICKSTART_EPOCHS),
        learning_rate=None,
        max_train_samples=None,
        max_minutes=None,
        out=None,
    )
    typer.secho("4/5 evaluating on held-out movies", bold=True, err=True)
    evaluate(
        model=None,
        dataset=DEFAULT_DATASET,
        baseline=True,
        report=settings.models_dir / "sentiment" / "evaluation.json",
        data=None,
    )
    typer.secho("5/5 predicting a review", bold=True, err=True)
    predict(texts=[EXAMPLE_REVIEW], model=None, file=None)


def main() -> None:
    app()
