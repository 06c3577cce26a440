"""The ``negsamp`` command line: one command per stage, plus ``run``, ``sweep`` and ``drift``.

Heavy libraries are imported inside the commands so ``negsamp --help`` is instant.
Modules: ``common`` (options, --set, errors), ``pipeline`` (stage, run, sweep, show),
``ops`` (drift, demo-drift, ingest, serve, compare), ``registry``, ``output`` (tables).
"""

from __future__ import annotations

import typer

from negsamp.cli import ops, pipeline
from negsamp.cli.registry import registry_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0])
app.add_typer(pipeline.stage_app, name="stage")
app.add_typer(registry_app, name="registry")
app.command()(pipeline.run)
app.command()(pipeline.sweep)
app.command()(pipeline.show)
app.command()(ops.drift)
app.command("demo-drift")(ops.demo_drift)
app.command()(ops.ingest)
app.command()(ops.serve)
app.command()(ops.compare)


def main() -> None:
    app()


__all__ = ["app", "main"]
