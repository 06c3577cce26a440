"""The commands that run Prefect flows: ``negsamp run``, ``sweep``, ``drift``, ``demo-drift``,
``simulate``.

negsamp's own CLI knows no Prefect and imports nothing from flows/: these commands reach it
through the ``negsamp.commands`` entry point (pyproject.toml), which calls :func:`register`.
Each command takes its configuration from the same :func:`negsamp.cli.common.configure` as
every other command, then hands the typed configuration to the flow.
"""

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
from negsamp.runlock import held

RecordOpt = Annotated[bool, typer.Option(help="record outputs with `dvc commit` (and push)")]


def run(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    record: RecordOpt = True,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="run the flow even when `dvc status` finds nothing changed since the last "
            "recorded run (otherwise its recorded results are printed)",
        ),
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole pipeline as a Prefect flow, then print the metrics and the registered
    model; with nothing changed since the last recorded run, print that run's results."""
    setup(verbose, params)
    with reported(), held(root_of(params), "run"):
        cfg = configure(params, set_)
        from flows import results
        from negsamp.paths import Paths

        paths = Paths(root_of(params))
        if record and not force and results.unchanged(paths):
            typer.echo(
                "nothing changed since the last recorded run (`dvc status`: every stage up "
                "to date, the registration in this tracking store): its results follow; "
                "--force runs the pipeline anyway"
            )
            output.result(results.collect(list(cfg.variants), paths))
            return
        from flows.engine import bind
        from flows.pipeline import pipeline

        result = bind(pipeline, cfg)(cfg, root=str(root_of(params)), record_outputs=record)
    output.result(result)


def sweep(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            help="cross every configuration with values, e.g. --grid sampler.n_neg=1,4,16; "
            "runs the grid without changing params.yaml (see --keep)",
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="write the --grid's configurations to sweep.configs in params.yaml, so "
            "`negsamp run` and `dvc repro` train them from now on, and record the outputs",
        ),
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="configurations trained at once (sweep.concurrency)")
    ] = None,
    record: RecordOpt = True,
    verbose: VerboseOpt = False,
) -> None:
    """Train and compare every configuration of sweep.configs (a Prefect flow), register the best.

    The best is chosen on validation; the test split only reports. MLflow gets one parent
    run with a child run per configuration and the comparison report; the table is printed
    here and written to data/report/comparison.{md,html}. A --grid run leaves params.yaml as it
    was (its configurations are in MLflow, each run's `reproduce` tag says how to rebuild it)
    unless --keep writes them into sweep.configs.
    """
    setup(verbose, params)
    with reported(), held(root_of(params), "sweep"):
        overrides = list(set_ or [])
        if concurrency is not None:
            overrides.append(f"sweep.concurrency={concurrency}")
        if keep and not grid:
            raise ValueError("--keep keeps the configurations of a --grid: give --grid too")
        cfg = configure(params, overrides)  # --set and --concurrency are written, as always
        if grid:
            from negsamp.sweep.grid import expand, parse

            base = {k: v.model_dump(exclude_defaults=True) for k, v in cfg.sweep.configs.items()}
            entry = f"sweep.configs={json.dumps(expand(base, parse(grid)))}"
            cfg = configure(params, [entry], write=keep)
            if not keep:
                record = False  # params.yaml does not declare these configurations
        from flows.engine import bind
        from flows.sweep import sweep as sweep_flow

        result = bind(sweep_flow, cfg)(cfg, root=str(root_of(params)), record_outputs=record)
    output.comparison(result["comparison"])
    output.registration(result["registration"])
    if grid and not keep:
        typer.echo(
            f"params.yaml was not changed: the grid's {len(cfg.sweep.configs)} configurations "
            "are in MLflow and data/report/ (not recorded with DVC); `--keep` writes them to "
            "sweep.configs"
        )


def drift(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    force: Annotated[bool, typer.Option(help="retrain even when no signal fires")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check the new data against the champion's; retrain and gate when a signal fires."""
    setup(verbose, params)
    with reported(), held(root_of(params), "drift"):
        cfg = configure(params, set_)
        from flows.drift import drift_check

        out = drift_check(cfg, root=str(root_of(params)), force=force)
    typer.echo(f"drift: {out['drift']['summary']}")
    if out["retrained"]:
        reg = out["registration"]
        typer.echo(
            f"retrained ({out['reason']}): {reg['model_name']} v{reg['version']} is {reg['alias']} - {reg['reason']}"
        )
    else:
        typer.echo("no retrain")


def demo_drift(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """Ingest three simulated windows (no drift, mild, strong) and run the drift check on each.

    Runs in its own workspace, .negsamp/demo/ (own params.yaml with synthetic data, git, DVC,
    MLflow store and registered model negsamp-demo): the project is left exactly as it was.
    """
    setup(verbose, params)
    with reported():
        cfg = configure(params, set_)
        from flows.demo import demo_drift as flow_

        out = flow_(cfg, root=str(root_of(params)))
    for o in out["outcomes"]:
        typer.echo(
            f"window {o['window']} (drift {o['level']:.1f}): {o['verdict']:<7} {o['summary']}"
        )
    typer.echo(
        f"demo workspace: {out['workspace']} (your project, params.yaml and registry untouched)\n"
        f"its models: registered model {out['model_name']}; open them with\n"
        f"  mlflow ui --backend-store-uri {out['tracking_uri']}"
    )


def simulate(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    days: Annotated[int, typer.Option(min=4, help="days to simulate")] = 30,
    rows_per_day: Annotated[
        int | None,
        typer.Option(min=1, help="interactions a day (default: the synthetic log's daily rate)"),
    ] = None,
    request_every: Annotated[
        float, typer.Option(min=0.05, help="seconds between the client's serving requests")
    ] = 0.5,
    verbose: VerboseOpt = False,
) -> None:
    """Simulate DAYS of production against a real Prefect server and `negsamp serve`.

    Each day a batch arrives (quiet days, a slow popularity shift, a broken export, a sudden
    catalog change), is appended, and the drift check runs through the served deployment,
    retraining and gating when a signal fires, while a client keeps asking the serving
    endpoint for recommendations. Runs in its own workspace, .negsamp/simulation/ (your
    project, params.yaml and registry untouched); writes report/simulation.{md,json} there
    and exits non-zero when a check fails (a batch lost or ingested twice, the broken one
    accepted, a worse model promoted, a failed request).
    """
    setup(verbose, params)
    with reported():
        cfg = configure(params, set_, write=False)
        from flows.simulate import simulate as simulate_

        out = simulate_(
            cfg, root=str(root_of(params)), days=days, rows_per_day=rows_per_day,
            request_every=request_every,
        )  # fmt: skip
    typer.echo("")
    typer.echo(Path(out["files"][1]).read_text())
    typer.echo(f"report: {out['files'][1]} (and .json)")
    if out["problems"]:
        for p in out["problems"]:
            typer.echo(f"error: {p}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the flow commands to negsamp's CLI (the ``negsamp.commands`` entry point)."""
    app.command()(run)
    app.command()(sweep)
    app.command()(drift)
    app.command("demo-drift")(demo_drift)
    app.command()(simulate)
