"""The commands that run the pipeline: ``stage <name>``, ``run``, ``sweep``, ``show``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from negsamp.cli import output
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
RecordOpt = Annotated[bool, typer.Option(help="record outputs with `dvc commit` (and push)")]


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
        from negsamp.stages import PER_VARIANT, run_stage

        with reported():
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


def run(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    record: RecordOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole pipeline as a Prefect flow, then print the metrics and the registered model."""
    setup(verbose, params)
    with reported():
        cfg = configure(params, set_)
        from flows.pipeline import pipeline

        result = pipeline(cfg, root=str(root_of(params)), record_outputs=record)
    output.result(result)


def sweep(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            help="cross every configuration with values, e.g. --grid sampler.n_neg=1,4,16 "
            "(the expanded list is written to sweep.configs in params.yaml)",
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="configurations trained at once (sweep.concurrency)")
    ] = None,
    record: RecordOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Train and compare every configuration of sweep.configs (a Prefect flow), register the best.

    The best is chosen on the validation split; the test split only reports. MLflow gets
    one parent run with a child run per configuration and the comparison report; the table
    is printed here and written to data/report/comparison.{md,html}.
    """
    setup(verbose, params)
    with reported():
        overrides = list(set_ or [])
        if grid:
            from negsamp import config
            from negsamp.sweep.grid import expand, parse

            current = config.load(params, overrides).sweep.configs
            base = {k: v.model_dump(exclude_defaults=True) for k, v in current.items()}
            expanded = expand(base, parse(grid))
            overrides.append(f"sweep.configs={json.dumps(expanded)}")
        if concurrency is not None:
            overrides.append(f"sweep.concurrency={concurrency}")
        cfg = configure(params, overrides)
        from flows.sweep import sweep as sweep_flow

        result = sweep_flow(cfg, root=str(root_of(params)), record_outputs=record)
    output.comparison(result["comparison"])
    output.registration(result["registration"])


def show(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Print the validated configuration (after defaults and --set, which show does not write)."""
    from negsamp import config

    with reported():
        typer.echo(json.dumps(config.dump(configure(params, set_, write=False)), indent=2))
