"""Stage ``ingest``: raw log -> implicit positives with dense int32 ids.

Outputs (paths.interactions, paths.user_ids, paths.item_ids, paths.ingest_report) are
written only after the whole input was read and encoded, so a bad input leaves the
previous outputs untouched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from negsamp.config import Config
from negsamp.data.encode import encode, to_implicit
from negsamp.data.loaders import load_raw, resolve_path
from negsamp.io import md5_file, write_json, write_parquet
from negsamp.paths import Paths

log = logging.getLogger(__name__)


def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    """Read ``data.path`` as ``data.source``, keep positives, encode ids, write outputs.

    Reads only ``data.source``, ``data.path``, ``data.columns``, ``data.rating_threshold``;
    a relative ``data.path`` is relative to the project root (``paths.root``).
    Returns the ingest report (also written as JSON to ``paths.ingest_report``).
    """
    data = cfg.data
    if not Path(data.path).is_absolute():
        data = data.model_copy(update={"path": str(paths.root / data.path)})
    source_path = resolve_path(data)
    raw = load_raw(data)
    implicit = to_implicit(raw, data.rating_threshold)
    interactions, user_ids, item_ids = encode(implicit)

    rows_kept = int(implicit["count"].sum())
    report: dict[str, Any] = {
        "source": data.source,
        "path": str(source_path),
        "md5": md5_file(source_path),
        "rating_threshold": data.rating_threshold,
        "rows_read": raw.height,
        "rows_kept": rows_kept,
        "duplicates_aggregated": rows_kept - implicit.height,
        "n_users": user_ids.height,
        "n_items": item_ids.height,
        "n_interactions": interactions.height,
        "has_ratings": raw["rating"].null_count() < raw.height,
        "has_timestamps": raw["timestamp"].null_count() < raw.height,
    }
    write_parquet(paths.interactions, interactions)
    write_parquet(paths.user_ids, user_ids)
    write_parquet(paths.item_ids, item_ids)
    write_json(paths.ingest_report, report)
    log.info(
        "ingested %s (%s): %d rows read, %d kept, %d interactions, %d users x %d items",
        source_path,
        data.source,
        report["rows_read"],
        rows_kept,
        report["n_interactions"],
        report["n_users"],
        report["n_items"],
    )
    return report
