"""What every ``cinesense`` command shares: settings, logging, error printing, JSON output."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from cinesense.config import Settings, get_settings
from cinesense.errors import CinesenseError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_DATASET = "default"

DatasetOpt = Annotated[str, typer.Option(help="Dataset name (under CINESENSE_HOME) or directory.")]
ModelOpt = Annotated[Path | None, typer.Option(help="Model directory (default: the last trained).")]


def fail(message: str) -> NoReturn:
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
            fail(str(error))
        except ValidationError as error:
            fail(describe_settings_error(error))
        except KeyboardInterrupt:
            fail("interrupted; nothing half-written was kept.")

    return wrapper  # type: ignore[return-value]


def configure_cli_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise


def load_settings(*, torch_threads: bool = True) -> Settings:
    """The settings, with logging configured (and torch's thread count, unless not needed).

    Commands that never touch torch (crawling) pass ``torch_threads=False`` so they do not
    import it.
    """
    settings = get_settings()
    configure_cli_logging(settings)
    if torch_threads:
        from cinesense.model.loop import set_threads

        set_threads(settings.num_threads)
    return settings


def echo_json(data: object) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def dataset_dir(settings: Settings, dataset: str) -> Path:
    path = Path(dataset)
    return path if path.is_dir() or "/" in dataset else settings.datasets_dir / dataset
