"""The ``negsamp`` command line: one command per stage, plus ``run``.

Heavy libraries are imported inside the commands so ``negsamp --help`` is instant.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
stage_app = typer.Typer(no_args_is_help=True, help="Run one pipeline stage (what dvc.yaml calls).")
app.add_typer(stage_app, name="stage")

ParamsOpt = Annotated[Path, typer.Option("--params", help="the params file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-S",
        help="override a parameter, e.g. --set sampler.n_neg=8 (written to params.yaml)",
    ),
]


def _setup(verbose: bool = False) -> None:
    from negsamp.env import set_defaults

    set_defaults()
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def _apply_overrides(params: Path, overrides: list[str] | None) -> None:
    """Write --set overrides into params.yaml (as `dvc exp run -S` does) and say so."""
    from negsamp.config import write_overrides

    if not overrides:
        return
    changed = write_overrides(params, overrides)
    for ov in changed:
        typer.echo(f"params.yaml updated: {ov} (DVC lineage and MLflow record this value)")


def _user_errors() -> tuple[type[Exception], ...]:
    from negsamp.config import ConfigError

    return (ConfigError, ValueError, FileNotFoundError, RuntimeError)


def _make_stage_command(name: str) -> None:
    def command(
        params: ParamsOpt = Path("params.yaml"),
        config_name: Annotated[
            str | None,
            typer.Option(
                "--config",
                help="configuration of sweep.configs (per-configuration stages; default: all)",
            ),
        ] = None,
        verbose: bool = False,
    ) -> None:
        _setup(verbose)
        from negsamp import config
        from negsamp.paths import Paths
        from negsamp.stages import PER_VARIANT, module

        try:
            cfg = config.load(params)
            stage = module(name)
            if name not in PER_VARIANT:
                stage.run(cfg)
                return
            for v in [config_name] if config_name else cfg.variants:
                stage.run(cfg, Paths(), v)
        except _user_errors() as err:
            _fail(err)

    command.__doc__ = f"Run the `{name}` stage."
    stage_app.command(name)(command)


def _register_stage_commands() -> None:
    from negsamp.stages import ORDER

    for name in ORDER:
        _make_stage_command(name)


_register_stage_commands()


@app.command()
def run(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    record: Annotated[
        bool, typer.Option(help="record outputs with `dvc commit` (and push)")
    ] = True,
    verbose: bool = False,
) -> None:
    """Run the whole pipeline as a Prefect flow, then print the metrics and the registered model."""
    _setup(verbose)
    try:
        _apply_overrides(params, set_)
        sys.path.insert(0, str(Path.cwd()))
        from flows.pipeline import pipeline

        result = pipeline(params=str(params), record_outputs=record)
    except _user_errors() as err:
        _fail(err)
    _print_result(result)


def _metric_order(name: str) -> tuple[int, int, str]:
    """sampled before full, then by K, then by metric: the order people read them in."""
    family, _, rest = name.partition("_")
    metric, _, k = rest.rpartition("_")
    if family not in ("sampled", "full") or not k.isdigit():
        return (2, 0, name)
    return (0 if family == "sampled" else 1, int(k), metric)


def _print_result(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    per_config, reg = result["metrics"], result["registration"]
    names = list(per_config)
    table = Table(title="negsamp: test metrics")
    table.add_column("metric")
    for n in names:
        table.add_column(
            n + (" *" if n == reg.get("config") and len(names) > 1 else ""), justify="right"
        )
    for key in sorted(per_config[names[0]], key=_metric_order):
        cells = [per_config[n].get(key) for n in names]
        table.add_row(key, *(f"{c:.4f}" if isinstance(c, float) else str(c) for c in cells))
    console = Console()
    console.print(table)
    console.print(
        f"registered {reg['model_name']} version {reg['version']} as "
        f"{reg['alias']} (configuration {reg.get('config')}: {reg['metric']} = {reg['value']:.4f}; "
        f"{reg['reason']})"
    )
    console.print("next: `make ui` (MLflow on 127.0.0.1:5000), `dvc metrics show`")


@app.command()
def ingest(
    params: ParamsOpt = Path("params.yaml"),
    append: Annotated[
        Path | None,
        typer.Option(
            "--append", help="add this file (same format as data.source) as a new data snapshot"
        ),
    ] = None,
    verbose: bool = False,
) -> None:
    """Run the ingest stage, or with --append add a batch of new interactions.

    An appended batch is validated with the rest of the log, stored under
    data/raw/appends/, recorded in params.yaml (data.appends, with its md5) and versioned
    with `dvc add`; existing users and items keep their ids, new ones get new ids.
    """
    import json

    _setup(verbose)
    from negsamp import config, dvcops
    from negsamp.paths import Paths
    from negsamp.stages import ingest as stage

    try:
        cfg = config.load(params)
        if append is None:
            stage.run(cfg)
            return
        entry = stage.append(cfg, append, Paths())
        appends = [a.model_dump() for a in cfg.data.appends] + [entry]
        config.write_overrides(params, [f"data.appends={json.dumps(appends)}"])
        versioned = dvcops.add(Path.cwd(), entry["path"])
    except _user_errors() as err:
        _fail(err)
    typer.echo(
        f"appended {append} as {entry['path']} (snapshot {len(appends)}); params.yaml data.appends updated"
    )
    if versioned:
        typer.echo(f"versioned with DVC: commit {entry['path']}.dvc and params.yaml to git")


@app.command()
def serve(
    params: ParamsOpt = Path("params.yaml"),
    alias: Annotated[str, typer.Option(help="registered model alias to serve")] = "champion",
    host: Annotated[
        str, typer.Option(help="interface to bind (keep 127.0.0.1 outside a container)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 5001,
    workers: Annotated[int, typer.Option(help="uvicorn workers")] = 1,
) -> None:
    """Serve top-K recommendations of `models:/<registry.model_name>@<alias>` over HTTP.

    POST /invocations with {"dataframe_records": [{"user": <original id>}], "params": {"k": 10}}.
    """
    import os

    from negsamp import config
    from negsamp.registry import tracking_uri

    _setup()
    try:
        cfg = config.load(params)
    except config.ConfigError as err:
        _fail(err)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri(Path.cwd())
    bindir = Path(sys.executable).parent  # mlflow starts `uvicorn` from PATH
    os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    mlflow = str(bindir / "mlflow")
    uri = f"models:/{cfg.registry.model_name}@{alias}"
    typer.echo(f"serving {uri} from {os.environ['MLFLOW_TRACKING_URI']} on http://{host}:{port}")
    args = ["models", "serve", "-m", uri, "--host", host, "--port", str(port)]
    os.execv(mlflow, [mlflow, *args, "--env-manager", "local", "--workers", str(workers)])


@app.command()
def show(params: ParamsOpt = Path("params.yaml")) -> None:
    """Print the validated configuration (after defaults)."""
    import json

    from negsamp import config

    try:
        typer.echo(json.dumps(config.dump(config.load(params)), indent=2))
    except config.ConfigError as err:
        _fail(err)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
