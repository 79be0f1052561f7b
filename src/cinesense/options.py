"""The per-run options of the training jobs, declared once: in the settings.

A few fields of :class:`~cinesense.config.TrainSettings` and
:class:`~cinesense.config.PretrainSettings` may be chosen per run. Their name, type, bounds,
title and help text come from the settings field; from them this module derives the CLI
options (:func:`cli_options`), the Airflow DAG Params (:func:`param_specs`) and the REST
API's request bodies (:func:`request_fields`), and every
override is validated like an environment value
(:func:`cinesense.pipelines.common.with_overrides`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, get_args

from pydantic import BaseModel, Field, ValidationError

from cinesense.config import PretrainSettings, TrainSettings
from cinesense.errors import SettingsError

F = TypeVar("F", bound=Callable[..., Any])

GROUPS: dict[str, type[BaseModel]] = {"train": TrainSettings, "pretrain": PretrainSettings}
OPTIONS: dict[str, tuple[str, ...]] = {
    "train": ("base_model", "epochs", "learning_rate", "max_train_samples", "max_minutes"),
    "pretrain": ("preset", "epochs", "max_minutes"),
}
CONSTRAINTS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "enum")
PYTHON_TYPES: dict[str, type] = {"number": float, "integer": int, "string": str}


def field_schema(group: str, name: str) -> dict[str, Any]:
    """The JSON schema of one option (without ``null``), with its title and description."""
    model = GROUPS[group]
    schema = model.model_json_schema()["properties"][name]
    variants = [v for v in schema.get("anyOf", [schema]) if v.get("type") != "null"]
    (base,) = variants
    return {
        "type": base["type"],
        **{key: base[key] for key in CONSTRAINTS if key in base},
        "title": schema["title"],
        "description": schema["description"],
        "default": schema.get("default"),
    }


def env_name(group: str, name: str) -> str:
    return f"CINESENSE_{group.upper()}__{name.upper()}"


def param_specs(group: str) -> dict[str, dict[str, Any]]:
    """Keyword arguments of an Airflow ``Param`` per option of ``group``.

    An option with a fixed set of values defaults to the setting's default; the others
    may be left empty (``None``), which keeps the value from the environment.
    """
    specs: dict[str, dict[str, Any]] = {}
    for name in OPTIONS[group]:
        schema = field_schema(group, name)
        default = schema.pop("default")
        if "enum" in schema:
            specs[name] = {"default": default, **schema}
            continue
        schema["type"] = ["null", schema["type"]]
        schema["description"] += f" Empty: {env_name(group, name)}."
        specs[name] = {"default": None, **schema}
    return specs


def request_fields(group: str) -> dict[str, Any]:
    """``group``'s options as optional pydantic fields (for ``create_model``): the settings
    field's type, bounds, title and help; ``None`` (left out) keeps the configured value."""
    fields: dict[str, Any] = {}
    for name in OPTIONS[group]:
        info = GROUPS[group].model_fields[name]
        kinds = [k for k in get_args(info.annotation) or (info.annotation,) if k is not type(None)]
        (kind,) = kinds
        constrained = Annotated[kind, *info.metadata] if info.metadata else kind
        described = Field(None, title=info.title, description=info.description)
        fields[name] = (Union[constrained, None], described)  # noqa: UP007
    return fields


def check_overrides(group: str, overrides: dict[str, Any]) -> None:
    """Raise a :class:`SettingsError` naming each ``--option`` whose value the settings
    field refuses."""
    try:
        GROUPS[group].model_validate(overrides)
    except ValidationError as error:
        problems = [
            f"--{str(item['loc'][0]).replace('_', '-')}: {item['msg']}" for item in error.errors()
        ]
        raise SettingsError("; ".join(problems) + ".") from None


def cli_options(group: str) -> Callable[[F], F]:
    """Add ``group``'s options to a typer command as ``--option`` flags.

    The command takes ``overrides: dict`` instead (Python callers pass it directly): the
    options that were given, to pass to
    :func:`~cinesense.pipelines.common.with_overrides` (which validates them). Inclusive
    bounds are also checked by typer; exclusive ones and choices by the settings model.
    """
    import typer

    names = OPTIONS[group]
    options = []
    for name in names:
        schema = field_schema(group, name)
        hint = PYTHON_TYPES[schema["type"]]
        choices = f" One of: {', '.join(schema['enum'])}." if "enum" in schema else ""
        option = typer.Option(
            help=schema["description"] + choices,
            min=schema.get("minimum"),
            max=schema.get("maximum"),
        )
        options.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[hint | None, option],
            )
        )

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        kept = [p for p in signature.parameters.values() if p.name != "overrides"]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name, None) for name in names}
            overrides = dict(kwargs.pop("overrides", None) or {})  # a direct call's own
            overrides |= {key: value for key, value in given.items() if value is not None}
            check_overrides(group, overrides)
            return command(*args, overrides=overrides, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*kept, *options])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {
            **{p.name: p.annotation for p in kept},
            **{p.name: p.annotation for p in options},
        }
        return wrapper  # type: ignore[return-value]

    return decorate
