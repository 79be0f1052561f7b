"""``cinesense register | promote | rollback | models``: the MLflow model registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cinesense.cli.common import (
    DEFAULT_DATASET,
    DatasetOpt,
    ModelOpt,
    dataset_dir,
    echo_json,
    friendly_errors,
    load_settings,
)

app = typer.Typer()


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
    from cinesense.pipelines.train import register_version

    settings = load_settings()
    model_dir = model or settings.models_dir / "sentiment"
    result = register_version(
        settings,
        None,
        model_dir,
        bundle or settings.models_dir / "serving",
        report or model_dir / "evaluation.json",
        dataset_dir(settings, dataset),
    )
    echo_json(result)


@app.command()
@friendly_errors
def promote(
    version: Annotated[str, typer.Argument(help="The version to promote.")],
    dataset: DatasetOpt = DEFAULT_DATASET,
    margin: Annotated[float | None, typer.Option(help="Accuracy gain needed (fraction).")] = None,
) -> None:
    """Gate a version against the champion on the dataset's test movies; promote if better."""
    from cinesense.pipelines.train import gate_version

    settings = load_settings()
    decision = gate_version(settings, version, dataset_dir(settings, dataset), margin)
    echo_json(decision.__dict__)


@app.command()
@friendly_errors
def rollback() -> None:
    """Move the champion alias back to the previous champion."""
    from cinesense.registry import rollback as run_rollback

    echo_json({"champion": run_rollback(load_settings())})


@app.command()
@friendly_errors
def models() -> None:
    """List registered versions with their aliases and gate decisions."""
    from cinesense.registry import list_versions

    echo_json(list_versions(load_settings()))
