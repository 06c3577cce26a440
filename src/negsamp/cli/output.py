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
    registration(reg)


def comparison(comparison: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from negsamp.sweep import render
    from negsamp.sweep.table import Comparison

    c = Comparison.from_dict(comparison)
    rows = c.rows
    table = Table(title=f"sweep: {len(rows)} configurations; {c.choice}")
    for h in render.header(c):
        table.add_column(h, justify="right" if h in ("#", "n_neg", "epochs") else "left")
    for cells in render.cells(c, compact=True):
        table.add_row(*cells)
    Console(width=max(220, Console().width)).print(table)
    typer.echo("the same table: data/report/comparison.md and .html (and the sweep's MLflow run)")


def registration(reg: dict[str, Any]) -> None:
    typer.echo(
        f"registered {reg['model_name']} version {reg['version']} as "
        f"{reg['alias']} (configuration {reg.get('config')}: {reg['metric']} = {reg['value']:.4f}; "
        f"{reg['reason']})"
    )
    typer.echo("next: `make ui` (MLflow on 127.0.0.1:5000), `dvc metrics show`")
