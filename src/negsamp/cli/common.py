"""What every command shares: the --params and --set options, logging, one-line errors.

Every command that takes a configuration gets it from :func:`configure`: ``--set``
overrides are applied to params.yaml's document by the one override function, validated,
and (except for ``show``) written back to params.yaml, as ``dvc exp run -S`` does, so DVC
and MLflow record what ran. The typed :class:`negsamp.config.Config` is passed on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from negsamp.config import Config

ParamsOpt = Annotated[
    Path, typer.Option("--params", help="the params file; its folder is the project root")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-S",
        help="override a parameter, e.g. --set sampler.n_neg=8 or --set "
        "sampler.popularity.alpha=0.5 (written to params.yaml)",
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", help="log at DEBUG level")]


def setup(verbose: bool = False, params: Path | None = None) -> None:
    """Logging and the stack's quiet defaults; state (Prefect's database) goes under the
    project root, the folder of ``params``, wherever the command is run from."""
    from negsamp.env import set_defaults

    set_defaults(root_of(params) if params is not None else None)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "alembic", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fail(err: BaseException) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def user_errors() -> tuple[type[Exception], ...]:
    """Errors a user can cause and fix: reported in one sentence, without a traceback."""
    from negsamp.config import ConfigError

    return (ConfigError, ValueError, FileNotFoundError, RuntimeError)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn a user error raised inside into ``error: ...`` and exit status 1."""
    try:
        yield
    except user_errors() as err:
        fail(err)


def root_of(params: Path) -> Path:
    """The project root: the folder of the params file (so commands run from anywhere)."""
    return params.resolve().parent


def configure(params: Path, overrides: list[str] | None, write: bool = True) -> Config:
    """The validated configuration of ``params`` with ``overrides`` applied (and written)."""
    from negsamp import config

    if not write:
        return config.load(params, overrides)
    cfg, changed = config.update(params, overrides or [])
    for ov in changed:
        typer.echo(f"{params.name} updated: {ov} (DVC lineage and MLflow record this value)")
    return cfg
