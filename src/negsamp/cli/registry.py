"""``negsamp registry``: the MLflow model registry's aliases, and rollback."""

from __future__ import annotations

from pathlib import Path

import typer

from negsamp.cli.common import ParamsOpt, configure, fail, root_of, setup

registry_app = typer.Typer(
    no_args_is_help=True, help="The MLflow model registry: aliases, rollback."
)


@registry_app.command("rollback")
def registry_rollback(params: ParamsOpt = Path("params.yaml")) -> None:
    """Make the previous champion the champion again (one command, reversible)."""
    setup(params=params)
    from negsamp import config
    from negsamp.mlops.errors import RegistrationError
    from negsamp.mlops.registry import rollback
    from negsamp.mlops.uri import tracking_uri

    try:
        cfg = configure(params, None, write=False)
        out = rollback(cfg.registry.model_name, tracking_uri(root_of(params)))
    except (config.ConfigError, RegistrationError) as err:
        fail(err)
    typer.echo(out["reason"])


@registry_app.command("show")
def registry_show(params: ParamsOpt = Path("params.yaml")) -> None:
    """List the registered versions: aliases, metric with its CI, data, refit, the gate's reason."""
    setup(params=params)
    from negsamp import config
    from negsamp.cli.output import registry_versions
    from negsamp.mlops.listing import versions  # no MLflow import for a sqlite store
    from negsamp.mlops.uri import tracking_uri

    try:
        cfg = configure(params, None, write=False)
    except config.ConfigError as err:
        fail(err)
    name = cfg.registry.model_name
    uri = tracking_uri(root_of(params))
    registry_versions(name, uri, versions(name, uri))
