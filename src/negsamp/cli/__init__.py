"""The ``negsamp`` command line: one command per stage, plus ``run``, ``sweep`` and ``drift``.

Heavy libraries are imported inside the commands so ``negsamp --help`` is instant.
Modules: ``common`` (options, --set, errors), ``pipeline`` (stage, show), ``ops`` (ingest,
serve, compare), ``registry``, ``output`` (tables). The commands that run Prefect flows
(``run``, ``sweep``, ``drift``, ``demo-drift``) live with the flows (flows/cli.py) and join
through the ``negsamp.commands`` entry point: this package never imports flows/.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from negsamp.cli import ops, pipeline
from negsamp.cli.registry import registry_app
from negsamp.cli.tune import tune

PLUGIN_GROUP = "negsamp.commands"

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])


def _plugins(app: typer.Typer) -> None:
    """Commands other installed packages add (``register(app)`` of each entry point)."""
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        ep.load()(app)


_plugins(app)
app.command()(pipeline.show)
app.add_typer(pipeline.stage_app, name="stage")
app.command()(ops.ingest)
app.command()(ops.serve)
app.command()(ops.compare)
app.command()(tune)
app.add_typer(registry_app, name="registry")


def main() -> None:
    app()


__all__ = ["app", "main"]
