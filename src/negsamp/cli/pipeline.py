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

stage_app = typer.Typer(
    no_args_is_help=True,
    help="Run one pipeline stage, as dvc.yaml does: it reads the previous stages' outputs "
    "and writes its own (data/...).",
)

# One line per stage for `negsamp stage --help` (kept here: importing the stage modules for
# their docstrings would make --help slow); tests/unit/test_cli.py checks every stage has one.
STAGE_HELP = {
    "synthesize": "Write the synthetic interaction log (data.synthetic) that ingest reads "
    "when data.source is synthetic.",
    "ingest": "Read data.path as data.source, keep the positives, give users and items dense "
    "ids (data/interim/).",
    "validate": "Check the ingested interactions with the Great Expectations suite "
    "(validate.*); a failure stops the pipeline.",
    "split": "Split the interactions into train, validation and test (split.*).",
    "candidates": "Draw the evaluation candidates once per split (evaluate.n_eval_neg).",
    "sample-negatives": "Draw each configuration's training pool of negatives (sampler.*).",
    "train": "Train each configuration's model on its pool (model.*, train.*), with early "
    "stopping on validation.",
    "evaluate": "Score each configuration: sampled, corrected and full-ranking metrics with "
    "bootstrap CIs.",
    "report": "Compare every configuration side by side (data/report/comparison.*).",
    "register": "Log every configuration to MLflow and register the best through the "
    "champion gate.",
    "recommend": "Write the champion's top-K for every known user (data/recommendations/).",
}


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
        from negsamp.runner import run_stage
        from negsamp.stages import PER_VARIANT

        with reported(), held(root_of(params), f"stage {name}"):
            cfg = configure(params, set_)
            paths = Paths(root_of(params))
            if name not in PER_VARIANT:
                run_stage(name, cfg, paths)
                return
            for v in [config_name] if config_name else cfg.variants:
                run_stage(name, cfg, paths, v)

    command.__doc__ = STAGE_HELP[name]
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
