"""How results are printed: the run's metric table, a sweep's comparison, a registration."""

from __future__ import annotations

import re
from typing import Any

import typer

# the run's summary table; every metric is in metrics.json, MLflow and `dvc metrics show`
_HEADLINE = re.compile(
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


def result(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    per_config, reg = result["metrics"], result["registration"]
    names = list(per_config)
    table = Table(title="test metrics", caption="all of them: data/metrics/<config>/metrics.json")
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
    registration(reg)


def comparison(comparison: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from negsamp.sweep import render
    from negsamp.sweep.table import Comparison

    c = Comparison.from_dict(comparison)
    head = render.header(c)
    # a terminal gets what decides (fits 100 columns); every column is in comparison.md/html
    keep = ["#", "configuration", "sampler", "n_neg", render.valid_column(c)]
    keep += [c.metric] if c.metric in c.columns else c.columns[:1]
    keep += [f"{c.metric} vs chosen", "train s"]
    idx = [head.index(h) for h in keep if h in head]
    short = {keep[4]: "valid", keep[5]: "test", keep[6]: "test vs chosen"}
    table = Table(title=f"sweep: {len(c.rows)} configurations, {keep[5]} (test: ± CI half-width)")
    for i in idx:
        h = head[i]
        table.add_column(
            short.get(h, h),
            justify="right" if h in ("#", "n_neg", "train s") else "left",
            no_wrap=h == "configuration",  # names are what people copy: never cut
            min_width=max(len(r.config) for r in c.rows) if h == "configuration" else None,
        )
    for cells in render.cells(c, compact=True):
        table.add_row(*(cells[i] for i in idx))
    Console().print(table)
    typer.echo(c.choice)
    typer.echo("every column: data/report/comparison.md and .html (and the sweep's MLflow run)")


def registration(reg: dict[str, Any]) -> None:
    if not reg.get("registered", True):
        typer.echo(f"{reg['model_name']}: {reg['reason']} (aliases unchanged)")
        return
    typer.echo(
        f"registered {reg['model_name']} version {reg['version']} as "
        f"{reg['alias']} (configuration {reg.get('config')}: {reg['metric']} = {reg['value']:.4f}; "
        f"{reg['reason']})"
    )
    typer.echo("next: `make ui` (MLflow on 127.0.0.1:5000), `dvc metrics show`")


def _ci(v: dict[str, Any]) -> str:
    value, low, high = v["metric_value"], v["ci_low"], v["ci_high"]
    if value is None:
        return "-"
    ci = "" if low is None or high is None else f" [{low:.4f}, {high:.4f}]"
    return f"{value:.4f}{ci}"


def _data(v: dict[str, Any]) -> str:
    snapshot = v["data_snapshot"]
    parts = [f"snapshot {snapshot}" if snapshot else "", (v["data_md5"] or "")[:8]]
    return " ".join(p for p in parts if p) or "-"


def _when(ms: int | None) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M") if ms else "-"


def registry_versions(name: str, uri: str, versions: list[dict[str, Any]]) -> None:
    """``negsamp registry show``: one row per version, newest first; the metric with its
    bootstrap CI over users, the data it was trained on (snapshot, md5 of the interactions)."""
    from rich.console import Console
    from rich.table import Table

    if not versions:
        typer.echo(f"no registered versions of {name} in {uri}")
        return
    names = {v["metric"] for v in versions if v["metric"]}
    one = names.pop() if len(names) == 1 else None
    table = Table(title=f"{name} in {uri}")
    for col in ("version", "aliases", f"{one or 'metric'} [CI]", "data", "refit", "created"):
        table.add_column(col, no_wrap=True)
    table.add_column("gate's reason", overflow="fold")
    for v in versions:
        metric = _ci(v) if one else f"{v['metric'] or '?'} {_ci(v)}"
        aliases = ", ".join(v["aliases"]) or "-"
        table.add_row(
            f"v{v['version']}", aliases, metric, _data(v), v["refit"], _when(v["created"]),
            v["reason"] or "-",
        )  # fmt: skip
    Console(width=max(160, Console().width)).print(table)
