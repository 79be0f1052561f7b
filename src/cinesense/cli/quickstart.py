"""``cinesense quickstart``: the main job on embedded defaults, in one command."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import BaseModel

from cinesense.cli.common import DEFAULT_DATASET, friendly_errors, load_settings
from cinesense.cli.model import build_dataset_command, evaluate, predict, pretrain, train

app = typer.Typer()

QUICKSTART_EPOCHS = 4.0  # the bundled sample is small: a few passes over it take seconds
EXAMPLE_REVIEW = "배우들 연기가 정말 좋았고 마지막 장면에서 울었어요"


def _explicit_or(group: BaseModel, field: str, default: float) -> float:
    """The setting when the user set it (environment or .env), else ``default``."""
    return getattr(group, field) if field in group.model_fields_set else default


@app.command()
@friendly_errors
def quickstart(
    preset: Annotated[str, typer.Option(help="Base model size.")] = "tiny",
) -> None:
    """The main job on embedded defaults: sample → dataset → base model → train → predict."""
    settings = load_settings()
    typer.secho("1/5 building a dataset from the bundled sample", bold=True, err=True)
    build_dataset_command(corpus=None, name=DEFAULT_DATASET)
    typer.secho(f"2/5 pretraining the {preset} self-built Korean BERT", bold=True, err=True)
    pretrain(
        dataset=DEFAULT_DATASET,
        text_file=None,
        out=None,
        overrides={
            "preset": preset,
            "epochs": _explicit_or(settings.pretrain, "epochs", QUICKSTART_EPOCHS),
        },
    )
    typer.secho("3/5 fine-tuning on the sample", bold=True, err=True)
    train(
        dataset=DEFAULT_DATASET,
        out=None,
        overrides={
            "base_model": "self-built",
            "epochs": _explicit_or(settings.train, "epochs", QUICKSTART_EPOCHS),
        },
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
