"""The commands around the configuration and single stages: ``stage <name>``, ``show``.

``run`` and ``sweep`` run Prefect flows: they live in flows/cli.py (see :mod:`negsamp.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from negsamp.cli.common import (
    ParamsOpt,
    SetOpt,
    VerboseOpt,
    configure,
    reported,
    root_of,
    setup,
)

stage_app = typer.Typer(no_args_is_help=True, help="Run one pipeline stage (what dvc.yaml calls).")


def _make_stage_command(name: str) -> None:
    def command(
        params: ParamsOpt = Path("params.yaml"),
        set_: SetOpt = None,
        config_name: Annotated[
            str | None,
            typer.Option(
                "--config",
                help="configuration of sweep.configs (per-configuration stages; default: all)",
            ),
        ] = None,
        verbose: VerboseOpt = False,
    ) -> None:
        setup(verbose, params)
        from negsamp.paths import Paths
        from negsamp.runlock import held
        from negsamp.stages import PER_VARIANT, run_stage

        with reported(), held(root_of(params), f"stage {name}"):
            cfg = configure(params, set_)
            paths = Paths(root_of(params))
            if name not in PER_VARIANT:
                run_stage(name, cfg, paths)
                return
            for v in [config_name] if config_name else cfg.variants:
                run_stage(name, cfg, paths, v)

    command.__doc__ = f"Run the `{name}` stage."
    stage_app.command(name)(command)


def _register_stage_commands() -> None:
    from negsamp.stages import ORDER

    for name in ORDER:
        _make_stage_command(name)


_register_stage_commands()


def show(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Print the validated configuration (after defaults and --set, which show does not write)."""
    from negsamp import config

    with reported():
        typer.echo(json.dumps(config.dump(configure(params, set_, write=False)), indent=2))
