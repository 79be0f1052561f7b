"""The per-run training options are declared once, in the settings: the CLI options and the
DAG Params (tests/code/test_dags.py) are generated from the fields, and every override is
validated like an environment value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import ValidationError

from cinesense.cli import app
from cinesense.config import PretrainSettings, Settings, TrainSettings
from cinesense.options import OPTIONS, PYTHON_TYPES, field_schema, param_specs
from cinesense.pipelines.common import with_overrides

COMMANDS = {"train": "train", "pretrain": "pretrain"}
FIELDS = {"train": TrainSettings, "pretrain": PretrainSettings}


def cli_params(command: str) -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params if p.name}


@pytest.mark.parametrize("group", ["train", "pretrain"])
def test_cli_options_are_the_settings_fields(group: str) -> None:
    params = cli_params(COMMANDS[group])
    for name in OPTIONS[group]:
        option = params[name]
        field = FIELDS[group].model_fields[name]
        assert option.opts == ["--" + name.replace("_", "-")]
        assert option.help.startswith(str(field.description))
        schema = field_schema(group, name)
        assert option.type_descriptor.annotation is PYTHON_TYPES[schema["type"]]
        assert option.max == schema.get("maximum")
        assert option.min == schema.get("minimum")
        assert option.default is None


@pytest.mark.parametrize("group", ["train", "pretrain"])
def test_dag_params_describe_the_same_fields(group: str) -> None:
    specs = param_specs(group)
    assert tuple(specs) == OPTIONS[group]
    for name, spec in specs.items():
        field = FIELDS[group].model_fields[name]
        assert spec["title"] == field.title
        assert spec["description"].startswith(str(field.description))


def test_overrides_are_validated_like_the_environment(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    for group, bad in (("train", {"epochs": 1000}), ("pretrain", {"preset": "huge"})):
        with pytest.raises(ValidationError):
            with_overrides(settings, group, **bad)


def test_the_cli_refuses_an_out_of_range_option(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["pretrain", "--preset", "huge", "--dataset", "x"])
    assert result.exit_code == 1
    assert "--preset: Input should be 'tiny' or 'small'" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["train", "--epochs", "1000"])
    assert result.exit_code == 2 and "--epochs" in result.output


def test_the_api_train_job_body_is_the_settings_fields() -> None:
    """``POST /v1/jobs/train`` takes the same options with the same bounds, all optional."""
    from cinesense.serving.routers.jobs import TrainJob

    properties = TrainJob.model_json_schema()["properties"]
    for name in OPTIONS["train"]:
        (variant,) = [v for v in properties[name]["anyOf"] if v["type"] != "null"]
        expected = field_schema("train", name)
        assert variant["type"] == expected["type"]
        for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            assert variant.get(bound) == expected.get(bound), (name, bound)
        assert properties[name]["description"] == expected["description"]
    assert TrainJob().model_dump(exclude_none=True) == {}
    with pytest.raises(ValidationError):
        TrainJob(epochs=0)
    with pytest.raises(ValidationError):
        TrainJob(unknown_option=1)
