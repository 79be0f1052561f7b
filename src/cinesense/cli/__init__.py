"""The ``cinesense`` command line (console script ``cinesense = "cinesense.cli:app"``).

One module per area; each defines its own ``app = typer.Typer()``. Add a new area by
writing ``cli/<area>.py`` and one line below: ``app.add_typer(<area>.app, name="<area>")``
for a command group (``cinesense <area> …``), or without ``name`` to add its commands
at the top level. Shared helpers (settings, errors, JSON output) live in
:mod:`cinesense.cli.common`.
"""

from __future__ import annotations

import typer

from cinesense.cli import crawl, model, quickstart, registry, serve, stack

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="cinesense: Korean movie-review sentiment, from corpus to model.",
)

# Top-level commands (cinesense build-dataset, train, register, serve, …).
app.add_typer(model.app)
app.add_typer(registry.app)
app.add_typer(serve.app)
app.add_typer(quickstart.app)
# Command groups (cinesense <name> …).
app.add_typer(crawl.app, name="crawl")
app.add_typer(stack.app, name="stack")


def main() -> None:
    app()
