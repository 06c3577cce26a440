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
registry_app = typer.Typer(
    no_args_is_help=True, help="The MLflow model registry: aliases, rollback."
)
app.add_typer(registry_app, name="registry")

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
    for noisy in ("httpx", "httpcore", "alembic", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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


@app.command()
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
    record: Annotated[
        bool, typer.Option(help="record outputs with `dvc commit` (and push)")
    ] = True,
    verbose: bool = False,
) -> None:
    """Train and compare every configuration of sweep.configs (a Prefect flow), register the best.

    MLflow gets one parent run with a child run per configuration and the comparison
    report; the table is printed here and written to data/report/comparison.{md,html}.
    """
    import json

    _setup(verbose)
    try:
        overrides = list(set_ or [])
        if grid:
            from negsamp import config
            from negsamp.sweep.grid import expand, parse

            current = config.load(params).sweep.configs
            base = {k: v.model_dump(exclude_defaults=True) for k, v in current.items()}
            expanded = expand(base, parse(grid))
            overrides.append(f"sweep.configs={json.dumps(expanded)}")
        if concurrency is not None:
            overrides.append(f"sweep.concurrency={concurrency}")
        _apply_overrides(params, overrides)
        sys.path.insert(0, str(Path.cwd()))
        from flows.sweep import sweep as sweep_flow

        result = sweep_flow(params=str(params), record_outputs=record)
    except _user_errors() as err:
        _fail(err)
    _print_comparison(result["comparison"])
    _print_registration(result["registration"])


def _print_comparison(comparison: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from negsamp.sweep import render
    from negsamp.sweep.table import Comparison

    c = Comparison.from_dict(comparison)
    rows = c.rows
    table = Table(title=f"sweep: {len(rows)} configurations ranked by {c.metric}")
    for h in render.header(c):
        table.add_column(h, justify="right" if h in ("#", "n_neg", "epochs") else "left")
    for cells in render.cells(c, compact=True):
        table.add_row(*cells)
    Console(width=max(220, Console().width)).print(table)
    typer.echo("the same table: data/report/comparison.md and .html (and the sweep's MLflow run)")


# the run's summary table; every metric is in metrics.json, MLflow and `dvc metrics show`
_HEADLINE = __import__("re").compile(
    r"^(sampled_(hr|ndcg)|full_(recall|ndcg)|bv_recall|coverage)_(5|10|20)$|^n_test_users$"
)


def _metric_order(name: str) -> tuple[int, int, str]:
    """sampled before full, then by K, then by metric: the order people read them in."""
    family, _, rest = name.partition("_")
    metric, _, k = rest.rpartition("_")
    rank = {"sampled": 0, "full": 1, "bv": 2, "coverage": 3}
    if family not in rank or not k.isdigit():
        return (9, 0, name)
    return (rank[family], int(k), metric)


def _print_result(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    per_config, reg = result["metrics"], result["registration"]
    names = list(per_config)
    table = Table(title="negsamp: test metrics (all of them: data/metrics/<config>/metrics.json)")
    table.add_column("metric")
    for n in names:
        table.add_column(
            n + (" *" if n == reg.get("config") and len(names) > 1 else ""), justify="right"
        )
    shown = [k for k in per_config[names[0]] if _HEADLINE.match(k)]
    for key in sorted(shown, key=_metric_order):
        cells = [per_config[n].get(key) for n in names]
        table.add_row(key, *(f"{c:.4f}" if isinstance(c, float) else str(c) for c in cells))
    Console().print(table)
    _print_registration(reg)


def _print_registration(reg: dict) -> None:
    typer.echo(
        f"registered {reg['model_name']} version {reg['version']} as "
        f"{reg['alias']} (configuration {reg.get('config')}: {reg['metric']} = {reg['value']:.4f}; "
        f"{reg['reason']})"
    )
    typer.echo("next: `make ui` (MLflow on 127.0.0.1:5000), `dvc metrics show`")


@app.command()
def drift(
    params: ParamsOpt = Path("params.yaml"),
    force: Annotated[bool, typer.Option(help="retrain even when no signal fires")] = False,
    verbose: bool = False,
) -> None:
    """Check the new data against the champion's; retrain and gate when a signal fires."""
    _setup(verbose)
    try:
        sys.path.insert(0, str(Path.cwd()))
        from flows.drift import drift_check

        out = drift_check(params=str(params), force=force)
    except _user_errors() as err:
        _fail(err)
    typer.echo(f"drift: {out['drift']['summary']}")
    if out["retrained"]:
        reg = out["registration"]
        typer.echo(
            f"retrained ({out['reason']}): {reg['model_name']} v{reg['version']} is {reg['alias']} - {reg['reason']}"
        )
    else:
        typer.echo("no retrain")


@app.command("demo-drift")
def demo_drift(params: ParamsOpt = Path("params.yaml"), verbose: bool = False) -> None:
    """Ingest three simulated windows (no drift, mild, strong) and run the drift check on each."""
    _setup(verbose)
    try:
        sys.path.insert(0, str(Path.cwd()))
        from flows.demo import demo_drift as flow_

        outcomes = flow_(params=str(params))
    except _user_errors() as err:
        _fail(err)
    for o in outcomes:
        typer.echo(
            f"window {o['window']} (drift {o['level']:.1f}): {o['verdict']:<7} {o['summary']}"
        )


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
    data/raw/appends/, recorded in params.yaml (data.appends, with its md5), versioned
    with `dvc add`, and in a git repository params.yaml and the batch's .dvc file are
    committed; existing users and items keep their ids, new ones get new ids.
    """
    _setup(verbose)
    from negsamp import config
    from negsamp.paths import Paths
    from negsamp.stages import ingest as stage

    try:
        if append is None:
            stage.run(config.load(params))
            return
        entry = stage.append_snapshot(params, append, Paths())
    except _user_errors() as err:
        _fail(err)
    typer.echo(
        f"appended {append} as {entry['path']} (snapshot {entry['snapshot']}); params.yaml data.appends updated"
    )
    if entry["commit"]:
        typer.echo(f"versioned with DVC and committed to git as {entry['commit'][:12]}")
    elif entry["versioned"]:
        typer.echo(f"versioned with DVC: commit {entry['path']}.dvc and {params} to git")


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


@registry_app.command("rollback")
def registry_rollback(params: ParamsOpt = Path("params.yaml")) -> None:
    """Make the previous champion the champion again (one command, reversible)."""
    _setup()
    from negsamp import config
    from negsamp.registry import RegistrationError, rollback, tracking_uri

    try:
        cfg = config.load(params)
        out = rollback(cfg.registry.model_name, tracking_uri(Path.cwd()))
    except (config.ConfigError, RegistrationError) as err:
        _fail(err)
    typer.echo(out["reason"])


@registry_app.command("show")
def registry_show(params: ParamsOpt = Path("params.yaml")) -> None:
    """List the registered versions with their aliases, metric and decision."""
    _setup()
    from mlflow import MlflowClient

    from negsamp import config
    from negsamp.registry import tracking_uri

    cfg = config.load(params)
    client = MlflowClient(tracking_uri(Path.cwd()))
    name = cfg.registry.model_name
    for mv in client.search_model_versions(f"name='{name}'"):
        aliases = ",".join(mv.aliases) or "-"
        typer.echo(
            f"{name} v{mv.version}\t{aliases}\t{mv.tags.get('metric_value', '?')}\t{mv.tags.get('reason', '')}"
        )


@app.command()
def show(params: ParamsOpt = Path("params.yaml")) -> None:
    """Print the validated configuration (after defaults)."""
    import json

    from negsamp import config

    try:
        typer.echo(json.dumps(config.dump(config.load(params)), indent=2))
    except config.ConfigError as err:
        _fail(err)


def _per_user_file(ref: str, scratch: Path) -> Path:
    """A per_user.parquet path, its folder (data/metrics/<config>) or an MLflow run id."""
    p = Path(ref)
    if p.is_dir():
        p = p / "per_user.parquet"
    if p.is_file():
        return p
    if p.suffix or "/" in ref:
        raise FileNotFoundError(f"{p} not found: give a per_user.parquet, its folder or a run id")
    from negsamp.registry import download_per_user, tracking_uri

    return download_per_user(ref, tracking_uri(Path.cwd()), scratch)


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="run A: per_user.parquet, its folder or MLflow run id")],
    b: Annotated[str, typer.Argument(help="run B, the same kinds")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", help="metric to test (repeatable; default: all shared)"),
    ] = None,
    resamples: Annotated[int, typer.Option(help="bootstrap resamples and sign flips")] = 2000,
    level: Annotated[float, typer.Option(help="confidence level of the interval")] = 0.95,
    seed: Annotated[int, typer.Option(help="seed of the resampling")] = 0,
    out: Annotated[Path | None, typer.Option(help="also write the table to this CSV")] = None,
) -> None:
    """Paired test of two runs on their common users: B - A, its bootstrap CI, a p-value.

    The p-value is a two-sided sign-flip permutation test of "no difference" per metric.
    A user whose value is NaN (or missing) in either run is left out of that metric's
    test; the users column says how many each metric used.
    """
    _setup()
    import tempfile

    import polars as pl
    from rich.console import Console
    from rich.table import Table

    from negsamp.io import atomic_write
    from negsamp.metrics.bootstrap import compare as paired

    try:
        with tempfile.TemporaryDirectory() as tmp:
            frames = [
                pl.read_parquet(_per_user_file(r, Path(tmp) / n)) for r, n in ((a, "a"), (b, "b"))
            ]
        res = paired(frames[0], frames[1], metric, resamples, level, seed)
    except (ValueError, FileNotFoundError) as err:
        _fail(err)
    n, fewest = res["n_users"].max(), res["n_users"].min()
    some = "" if n == fewest else ", fewer where a value is NaN: see users"
    table = Table(title=f"B - A on {n} common users{some} ({level:.0%} CI)")
    for col in ("metric", "A", "B", "B - A", "CI low", "CI high", "p", "users"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for r in res.iter_rows(named=True):
        nums = (r["a"], r["b"], r["diff"], r["ci_low"], r["ci_high"])
        cells = (*(f"{x:.4f}" for x in nums), f"{r['p_value']:.4f}", str(r["n_users"]))
        table.add_row(r["metric"], *cells)
    Console().print(table)
    if out:
        atomic_write(out, res.write_csv().encode())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
