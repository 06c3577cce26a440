"""Commands around a trained pipeline: new data, serving, paired comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from negsamp.cli.common import (
    ParamsOpt,
    SetOpt,
    VerboseOpt,
    configure,
    fail,
    reported,
    root_of,
    setup,
)


def ingest(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    append: Annotated[
        Path | None,
        typer.Option(
            "--append", help="add this file (same format as data.source) as a new data snapshot"
        ),
    ] = None,
    clear_appends: Annotated[
        bool,
        typer.Option(
            "--clear-appends",
            help="empty data.appends in params.yaml on purpose (before --append, if given); "
            "the batch files stay versioned",
        ),
    ] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the ingest stage, or with --append add a batch of new interactions.

    An appended batch is validated with the rest of the log, stored under
    data/raw/appends/, recorded in params.yaml (data.appends, with its md5), versioned
    with `dvc add`, and in a git repository params.yaml and the batch's .dvc file are
    committed; existing users and items keep their ids, new ones get new ids.
    """
    setup(verbose, params)
    from negsamp.paths import Paths
    from negsamp.stages import ingest as stage
    from negsamp.stages import run_stage

    with reported():
        if clear_appends:
            cleared = stage.clear_appends(params, Paths(root_of(params)))
            typer.echo(f"cleared {cleared['cleared']} batch(es) from data.appends in {params}")
            if cleared["commit"]:
                typer.echo(f"committed to git as {cleared['commit'][:12]}")
            if append is None:
                return
        cfg = configure(params, set_)
        paths = Paths(root_of(params))
        if append is None:
            run_stage("ingest", cfg, paths)
            return
        entry = stage.append_snapshot(params, append, paths)
    typer.echo(
        f"appended {append} as {entry['path']} (snapshot {entry['snapshot']}); params.yaml data.appends updated"
    )
    if entry["commit"]:
        typer.echo(f"versioned with DVC and committed to git as {entry['commit'][:12]}")
    elif entry["versioned"]:
        typer.echo(f"versioned with DVC: commit {entry['path']}.dvc and {params} to git")


def serve(
    params: ParamsOpt = Path("params.yaml"),
    alias: Annotated[str, typer.Option(help="registered model alias to serve")] = "champion",
    host: Annotated[
        str, typer.Option(help="interface to bind (keep 127.0.0.1 outside a container)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 5001,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    poll: Annotated[
        float,
        typer.Option(
            min=0,
            help="seconds between reads of the alias; a new version is swapped in "
            "without a gap in service (0: serve the version found at start-up)",
        ),
    ] = 10.0,
) -> None:
    """Serve top-K recommendations of `models:/<registry.model_name>@<alias>` over HTTP.

    POST /invocations with {"dataframe_records": [{"user": <original id>}], "params": {"k": 10}}
    (MLflow's scoring protocol). The server follows the alias: when the gate promotes a new
    champion it is loaded beside the old one and swapped in, so requests never fail during a
    switch; the X-Model-Version header and GET /model say which version answered.
    """
    from negsamp.mlops.uri import tracking_uri

    setup(params=params)
    with reported():
        cfg = configure(params, None, write=False)
    uri = tracking_uri(root_of(params))
    name = cfg.registry.model_name
    typer.echo(f"serving models:/{name}@{alias} from {uri} on http://{host}:{port}")
    from negsamp.mlops.serving import serve as serve_

    with reported():
        serve_(uri, name, alias, host, port, workers=workers, poll_s=poll)


def _per_user_file(ref: str, scratch: Path) -> Path:
    """A per_user.parquet path, its folder (data/metrics/<config>) or an MLflow run id."""
    p = Path(ref)
    if p.is_dir():
        p = p / "per_user.parquet"
    if p.is_file():
        return p
    if p.suffix or "/" in ref:
        raise FileNotFoundError(f"{p} not found: give a per_user.parquet, its folder or a run id")
    from negsamp.mlops.artifacts import download_per_user
    from negsamp.mlops.uri import tracking_uri

    return download_per_user(ref, tracking_uri(Path.cwd()), scratch)


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
    setup()
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
        fail(err)
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
