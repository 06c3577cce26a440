"""The ``negsamp`` command line: one command per stage, plus ``run``, ``sweep`` and ``drift``.

Heavy libraries are imported inside the commands so ``negsamp --help`` is instant.
Modules: ``common`` (options, --set, errors), ``pipeline`` (stage, show), ``ops`` (ingest,
serve, compare), ``registry``, ``output`` (tables). The commands that run Prefect flows
(``run``, ``sweep``, ``drift``, ``demo-drift``) live with the flows (flows/cli.py) and join
through the ``negsamp.commands`` entry point: this package never imports flows/.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Annotated, Any

import typer
from typer import rich_utils
from typer.core import TyperOption

from negsamp import __version__
from negsamp.cli import ops, pipeline
from negsamp.cli.registry import registry_app
from negsamp.cli.tune import tune

PLUGIN_GROUP = "negsamp.commands"

# one line a paragraph: typer's rich help keeps a docstring's line breaks, then wraps again
# at the terminal's width, which left ragged half-lines (issue #15)
HELP = "\n\n".join(
    (
        "Negative sampling for implicit-feedback recommenders, as a reproducible workflow.",
        "validate -> split -> sample-negatives -> train -> evaluate -> register -> recommend, "
        "run as a Prefect flow (`negsamp run`), with DVC (`dvc repro`) or one stage at a time "
        "(`negsamp stage`); configurations compared side by side (`negsamp sweep`), MLflow's "
        "registry gated by a champion/challenger test, and a drift check that decides when to "
        "retrain (`negsamp drift`).",
        "Settings live in params.yaml; every command takes --params and --set KEY=VALUE.",
    )
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"negsamp {__version__}")
        raise typer.Exit()


app = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    pass


def _type_column(self: TyperOption, ctx: Any) -> str | None:
    """The help's type column, without ``<bool>`` beside every on/off flag."""
    return None if self.is_flag else _plain_type_column(self, ctx)


_plain_type_column = TyperOption.display_type_rich
TyperOption.display_type_rich = _type_column  # typer 0.29 labels flags <bool>


def _paragraphs(paragraphs: list[str], markup_mode: Any) -> str:
    """A docstring's later paragraphs with their line breaks made spaces, as typer does for
    the first one (0.29 keeps them, then wraps again: ragged half-lines at 80 columns).
    A paragraph that starts with click's ``\\b``, or holds a list or an indented line,
    keeps its lines."""
    out = []
    for p in paragraphs:
        lines = p.split("\n")
        keep = p.startswith("\b") or any(ln.startswith((" ", "-", "*")) for ln in lines)
        out.append(p if keep else " ".join(ln.strip() for ln in lines))
    return "\n\n".join(out)


rich_utils._fix_linebreaks = _paragraphs


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
