"""The listing ``negsamp registry show`` prints: every version of a registered model.

Each version: its aliases, the gate's metric with the run's bootstrap CI
(``<metric>.ci_low/ci_high``), the data it saw (``data_snapshot``, ``data_md5``), the
``refit`` tag ("no" when absent), its creation time, the decision and the gate's reason.

MLflow 3's ``search_model_versions`` returns versions without their aliases (issue #13:
every alias printed as ``-``): they come from the registered model. Importing MLflow and
opening its SQLAlchemy store take most of the command's time (about 10 s of 11 s on a
loaded 2-core machine), so a local sqlite store is read directly, read-only, with the
standard library; the test suite checks that read against MLflow's client on a real store.
Any other store (an ``mlflow server``), or a sqlite schema this read does not know, goes
through :class:`mlflow.MlflowClient`, in three calls whatever the number of versions.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import defaultdict
from contextlib import closing
from typing import Any

log = logging.getLogger(__name__)

_DELETED = "Deleted_Internal"  # MLflow's stage of a deleted version that it keeps a row of


def versions(model_name: str, uri: str) -> list[dict[str, Any]]:
    """Every version of ``model_name`` in ``uri``'s registry, newest first (see module doc)."""
    path = _sqlite_path(uri)
    if path is not None:
        try:
            return _from_sqlite(path, model_name)
        except sqlite3.Error as err:
            log.warning("reading %s directly failed (%s): asking MLflow instead", uri, err)
    return _from_client(model_name, uri)


def _sqlite_path(uri: str) -> str | None:
    """The database file of a SQLAlchemy ``sqlite:///<path>`` URI (``sqlite:////abs``), as
    a read-only ``file:`` URI; None for any other store, options or an in-memory one."""
    from negsamp.mlops.store import sqlite_file  # no MLflow import

    path = sqlite_file(uri)
    return None if path is None else path.as_uri() + "?mode=ro"


def _row(
    version: int,
    created: int | None,
    run_metrics: dict[str, float],
    tags: dict[str, str],
    aliases: list[str],
) -> dict[str, Any]:
    metric = tags.get("metric", "")
    return {
        "version": version,
        "aliases": sorted(aliases),
        "metric": metric,
        "metric_value": run_metrics.get(metric, _number(tags.get("metric_value"))),
        "ci_low": run_metrics.get(f"{metric}.ci_low"),
        "ci_high": run_metrics.get(f"{metric}.ci_high"),
        "data_snapshot": tags.get("data_snapshot"),
        "data_md5": tags.get("data_md5"),
        "refit": tags.get("refit", "no"),
        "created": created,
        "decision": tags.get("decision", ""),
        "reason": tags.get("reason", ""),
    }


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _from_sqlite(path: str, name: str) -> list[dict[str, Any]]:
    """Four queries on MLflow's own tables (schema of MLflow 3: ``workspace`` columns)."""
    with closing(sqlite3.connect(path, uri=True)) as db:
        ws = "AND workspace = 'default'"
        found = db.execute(
            f"SELECT version, creation_time, run_id FROM model_versions "
            f"WHERE name = ? AND current_stage != ? {ws} ORDER BY version DESC",
            (name, _DELETED),
        ).fetchall()
        tags: dict[int, dict[str, str]] = defaultdict(dict)
        for v, key, value in db.execute(
            f"SELECT version, key, value FROM model_version_tags WHERE name = ? {ws}", (name,)
        ):
            tags[int(v)][key] = value
        held: dict[int, list[str]] = defaultdict(list)
        for alias, v in db.execute(
            f"SELECT alias, version FROM registered_model_aliases WHERE name = ? {ws}", (name,)
        ):
            held[int(v)].append(alias)
        runs = sorted({r for _, _, r in found if r})
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        marks = ",".join("?" * len(runs))
        for run, key, value, is_nan in db.execute(
            f"SELECT run_uuid, key, value, is_nan FROM latest_metrics WHERE run_uuid IN ({marks})",
            runs,
        ):
            metrics[run][key] = math.nan if is_nan else float(value)
    return [
        _row(int(v), created, metrics.get(run or "", {}), tags[int(v)], held[int(v)])
        for v, created, run in found
    ]


def _from_client(name: str, uri: str) -> list[dict[str, Any]]:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from negsamp.mlops.store import ready

    client = MlflowClient(ready(uri))
    found = client.search_model_versions(f"name='{name}'")
    if not found:
        return []
    held: dict[int, list[str]] = defaultdict(list)
    for alias, v in client.get_registered_model(name).aliases.items():
        held[int(v)].append(alias)
    runs = sorted({mv.run_id for mv in found if mv.run_id})
    metrics: dict[str, dict[str, float]] = {}
    if runs:
        exps = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
        ids = ", ".join(f"'{r}'" for r in runs)
        found_runs = client.search_runs(
            exps, f"attributes.run_id IN ({ids})", ViewType.ALL, max_results=len(runs)
        )
        metrics = {r.info.run_id: r.data.metrics for r in found_runs}
    return [
        _row(
            int(mv.version),
            mv.creation_timestamp,
            metrics.get(mv.run_id or "", {}),
            dict(mv.tags),
            held[int(mv.version)],
        )
        for mv in sorted(found, key=lambda mv: -int(mv.version))
    ]
