"""``cinesense stack …``: the whole platform on this machine (what ``make up`` runs), and
``cinesense stack run SERVICE``, the one entrypoint of every service (containers too)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cinesense.cli.common import configure_cli_logging, friendly_errors
from cinesense.config import Settings
from cinesense.stack import control, layout
from cinesense.stack.services import RUNNABLE

app = typer.Typer(no_args_is_help=True, help="Run the whole platform on this machine.")


def say(text: str) -> None:
    typer.echo(text)


def print_urls(settings: Settings) -> None:
    for name, url in control.urls(settings).items():
        typer.echo(f"  {name:<17} {url}")


def print_credentials() -> None:
    for name, value in control.credentials().items():
        typer.echo(f"  {name:<27} {value}")


@app.command()
@friendly_errors
def up(
    demo: Annotated[
        bool | None,
        typer.Option(
            "--demo/--no-demo",
            help="Crawl the local fake site once (demo data). Default: CINESENSE_STACK__DEMO.",
        ),
    ] = None,
) -> None:
    """Start every service (set-up on first start), wait until all are healthy."""
    if demo is not None:
        os.environ["CINESENSE_STACK__DEMO"] = "true" if demo else "false"
    settings = Settings()
    configure_cli_logging(settings)
    report = control.up(say)
    from cinesense.stack.secrets import with_secrets

    settings = with_secrets(settings)
    if report.already_running:
        typer.echo("cinesense is already running; nothing to do.")
    else:
        typer.echo(f"cinesense is up ({report.seconds:.0f} s): all services healthy.")
    if report.champion:
        typer.echo(f"model: {report.champion}")
    if report.demo:
        typer.echo(f"DEMO DATA: {report.demo}")
    print_urls(settings)
    if report.secrets_created:
        typer.echo("First start: generated credentials (shown once; `make credentials` again):")
        print_credentials()
    else:
        typer.echo(f"Credentials: {layout.secrets_file(settings)} (`make credentials` shows them).")
    typer.echo(
        "Logs: `make logs` (one file per service in "
        f"{layout.logs_dir(settings)}); stop: `make down`."
    )


@app.command()
@friendly_errors
def down() -> None:
    """Stop every service; the data stays."""
    if control.down(say):
        typer.echo("cinesense stopped; data kept.")
    else:
        typer.echo("cinesense is not running.")


@app.command()
@friendly_errors
def status() -> None:
    """Each service: supervisor state, health, unexpected exits. Exit 1 if any is unhealthy."""
    rows = control.status()
    if not rows:
        typer.echo("cinesense is not running (`make up` starts it).")
        raise typer.Exit(code=3)
    for row in rows:
        health = "healthy" if row.problem is None else f"UNHEALTHY: {row.problem}"
        restarts = (
            f", restarted after {row.unexpected_exits} crash(es)" if row.unexpected_exits else ""
        )
        typer.echo(f"{row.name:<22} {row.state:<9} {health}{restarts}  [{row.detail}]")
    if any(row.problem for row in rows):
        raise typer.Exit(code=1)


@app.command()
@friendly_errors
def logs(
    service: Annotated[str | None, typer.Argument(help="One service (default: all).")] = None,
    lines: Annotated[int, typer.Option(help="Lines per service.")] = 40,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
) -> None:
    """The last lines of each service's log (or follow them)."""
    from cinesense.stack.secrets import with_secrets

    files = control.log_files(with_secrets(), service)
    if follow:
        os.execvp("tail", ["tail", "-n", str(lines), "-F", *map(str, files)])
    for path in files:
        if path.exists():
            typer.echo(f"==> {path} <==")
            typer.echo(control.tail(path, lines))


@app.command()
@friendly_errors
def credentials() -> None:
    """Logins and keys of this platform (from its private secrets file)."""
    print_credentials()


@app.command()
@friendly_errors
def run(
    service: Annotated[str, typer.Argument(help=f"One of: {', '.join(RUNNABLE)}.")],
) -> None:
    """Render SERVICE's configuration and become its server (supervisord and containers)."""
    from cinesense.stack.secrets import with_secrets
    from cinesense.stack.services import run as run_service

    settings = with_secrets()
    configure_cli_logging(settings)
    run_service(settings, service)
