"""``cinesense serve``: the inference API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cinesense.cli.common import friendly_errors, load_settings

app = typer.Typer()


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

    settings = load_settings(torch_threads=False)  # the service never imports torch
    if bundle is not None:
        settings = settings.model_copy(
            update={"serve": settings.serve.model_copy(update={"bundle_dir": bundle})}
        )
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings), host=host, port=port, log_config=None, timeout_graceful_shutdown=15
    )
