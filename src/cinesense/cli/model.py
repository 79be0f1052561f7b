"""``cinesense download | build-dataset | pretrain | train | evaluate | quantize | predict``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cinesense.cli.common import (
    DEFAULT_DATASET,
    DatasetOpt,
    ModelOpt,
    dataset_dir,
    echo_json,
    fail,
    friendly_errors,
    load_settings,
)
from cinesense.options import cli_options
from cinesense.text import has_letters, normalize_review

if TYPE_CHECKING:
    from cinesense.model.onnx_predict import ServedPrediction

app = typer.Typer()


@app.command()
@friendly_errors
def download(force: Annotated[bool, typer.Option(help="Download again.")] = False) -> None:
    """Download the Naver review corpus (real installs; needs the network)."""
    from cinesense.data.corpus import download_corpus

    typer.echo(download_corpus(load_settings(), force=force))


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
    from cinesense.pipelines.dataset import build_training_dataset

    settings = load_settings()
    directory = dataset_dir(settings, name)
    dataset = build_training_dataset(
        settings, directory, corpus or [sample_corpus_path()], include_crawled
    )
    manifest = dataset.manifest
    echo_json(
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
@cli_options("pretrain")
def pretrain(
    dataset: DatasetOpt = DEFAULT_DATASET,
    text_file: Annotated[
        list[Path] | None,
        typer.Option(help="Extra review files (any supported format); labels are not needed."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Default: CINESENSE_HOME/models/base.")] = None,
    *,
    overrides: dict[str, Any],
) -> None:
    """Build the self-built Korean BERT base: WordPiece vocabulary + masked-LM pretraining.

    Uses the text of the dataset's train and validation splits (never its test movies)
    plus any --text-file.
    """
    from cinesense.pipelines.common import with_overrides
    from cinesense.pipelines.train import pretrain_base

    settings = with_overrides(load_settings(), "pretrain", **overrides)
    target = out or settings.self_built_base_dir
    echo_json(pretrain_base(settings, dataset_dir(settings, dataset), target, text_file))


@app.command()
@friendly_errors
@cli_options("train")
def train(
    dataset: DatasetOpt = DEFAULT_DATASET,
    out: Annotated[
        Path | None, typer.Option(help="Default: CINESENSE_HOME/models/sentiment.")
    ] = None,
    *,
    overrides: dict[str, Any],
) -> None:
    """Fine-tune the sentiment + rating model on a dataset."""
    from cinesense.pipelines.common import with_overrides
    from cinesense.pipelines.train import train_sentiment

    settings = with_overrides(load_settings(), "train", **overrides)
    target = out or settings.models_dir / "sentiment"
    echo_json(train_sentiment(settings, dataset_dir(settings, dataset), target))


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
    bundle: Annotated[
        Path | None,
        typer.Option(help="Score this serving bundle (ONNX, as served; no torch needed)."),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(help="Score a registered version: an alias (champion) or a number."),
    ] = None,
) -> None:
    """Score a model on the dataset's test movies (or --data), beside the TF-IDF baseline."""
    settings = load_settings()
    if bundle is not None or registry is not None:
        if model is not None:
            fail("give one of --model, --bundle or --registry.")
        from cinesense.pipelines.train import evaluate_served

        echo_json(
            evaluate_served(
                settings,
                dataset_dir(settings, dataset),
                bundle=bundle,
                registry=registry,
                test_file=data,
                report_path=report,
                with_baseline=baseline,
            )
        )
        return
    from cinesense.pipelines.train import evaluate_sentiment

    result = evaluate_sentiment(
        settings,
        model or settings.models_dir / "sentiment",
        dataset_dir(settings, dataset),
        report,
        with_baseline=baseline,
        test_file=data,
    )
    echo_json(result)


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
    from cinesense.pipelines.train import quantize_sentiment

    settings = load_settings()
    target = out or settings.models_dir / "serving"
    manifest = quantize_sentiment(
        settings,
        model or settings.models_dir / "sentiment",
        dataset_dir(settings, dataset),
        target,
        max_accuracy_loss,
    )
    echo_json({"directory": str(target), **{k: v for k, v in manifest.items() if k != "files"}})


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
    bundle: Annotated[
        Path | None,
        typer.Option(help="Use this serving bundle (ONNX, as served; no torch needed)."),
    ] = None,
) -> None:
    """Predict sentiment and a 1–10 rating for reviews. With no option and no model trained
    yet, the model shipped with the package answers."""
    settings = load_settings()
    reviews = list(texts or [])
    if file is not None:
        if not file.exists():
            fail(f"{file}: file not found.")
        reviews.extend(line for line in file.read_text(encoding="utf-8").splitlines())
    reviews = [r for r in reviews if r.strip()]
    if not reviews:
        fail("no review text given. Pass text as arguments or --file with one review per line.")
    unreadable = [i + 1 for i, r in enumerate(reviews) if not normalize_review(r)]
    if unreadable:
        fail(
            f"review(s) {', '.join(map(str, unreadable))} hold no readable text (only control "
            "characters, zero-width characters or HTML markup); give the reviews' text."
        )
    if sum(option is not None for option in (model, registry, bundle)) > 1:
        fail("give one of --model, --bundle or --registry.")
    trained = model or settings.models_dir / "sentiment"
    shipped = settings.stack.default_bundle
    if registry is None and bundle is None and model is None and not trained.exists() and shipped:
        typer.echo(f"note: no model trained in {trained}; the shipped model answers.", err=True)
        bundle = shipped
    extra = {}
    if registry is not None:
        from cinesense.registry import load_predictor

        served, version = load_predictor(settings, registry, settings.num_threads)
        predictions = served.predict(reviews)
        extra = {"version": version}
    elif bundle is not None:
        from cinesense.model.onnx_predict import OnnxPredictor

        predictions = OnnxPredictor.from_bundle(bundle, settings.num_threads).predict(reviews)
    else:
        predictions = _torch_predictions(trained, reviews)
    # As the service shows them: "uncertain" when the model is unsure of a text (confidence
    # under CINESENSE_SERVE__UNCERTAIN_BELOW) or the text holds only symbols.
    uncertain_below = settings.serve.uncertain_below
    echo_json(
        [
            {"text": text, **p.__dict__, "label": p.shown_label(uncertain_below), **extra}
            for text, p in zip(reviews, predictions, strict=True)
        ]
    )


def _torch_predictions(directory: Path, reviews: list[str]) -> list[ServedPrediction]:
    """A trained (torch) model's predictions in the served bundle's form."""
    from cinesense.model.onnx_predict import ServedPrediction
    from cinesense.model.predict import TorchPredictor

    return [
        ServedPrediction(
            p.label, p.probability_positive, p.confidence, p.rating, readable=has_letters(p.text)
        )
        for p in TorchPredictor.from_directory(directory).predict(reviews)
    ]
