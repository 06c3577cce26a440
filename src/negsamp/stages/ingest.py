"""Stage ``ingest``: raw log -> implicit positives with dense int32 ids.

Outputs (paths.interactions, paths.user_ids, paths.item_ids, paths.ingest_report) are
written only after the whole input was read and encoded, so a bad input leaves the
previous outputs untouched.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl

from negsamp import dvcops
from negsamp.config import AppendCfg, Config, DataCfg, load, read_document, write_overrides
from negsamp.data.encode import encode, to_implicit
from negsamp.data.errors import DataError
from negsamp.data.features import (
    empty_item_features,
    encode_item_features,
    read_item_features,
    resolve_features_path,
)
from negsamp.data.loaders import collect, load_raw, resolve_path, scan_raw_info
from negsamp.io import md5_file, write_json, write_parquet
from negsamp.paths import Paths
from negsamp.stages.spec import SHARED, StageSpec, rel, src

SPEC = StageSpec(
    name="ingest",
    # data.appends: the appended batches (path + md5), so a new batch re-runs ingest
    params=(
        "data.source",
        "data.path",
        "data.columns",
        "data.rating_threshold",
        "data.appends",
        "data.timestamp_format",
        "data.weight_aggregate",
        "data.zero_weight",
        "data.item_features",
    ),
    deps=("${data.path}", "${data.item_features.path}"),
    code=src(
        "data/loaders.py",
        "data/timestamps.py",
        "data/encode.py",
        "data/features.py",
        "stages/ingest.py",
    ),
    outs=rel(
        SHARED.interactions,
        SHARED.user_ids,
        SHARED.item_ids,
        SHARED.ingest_report,
        SHARED.item_attributes,
        SHARED.item_release,
    ),
)

log = logging.getLogger(__name__)

RAW_COLUMNS = ["user", "item", "rating", "timestamp"]
SPEC_DATA_KEYS = tuple(k.removeprefix("data.") for k in SPEC.params)


def _rooted(data: DataCfg, paths: Paths) -> DataCfg:
    """``data`` with a relative ``path`` made relative to the project root."""
    if Path(data.path).is_absolute():
        return data
    return data.model_copy(update={"path": str(paths.root / data.path)})


def read_snapshot(data: DataCfg, paths: Paths) -> pl.DataFrame:
    """The base log plus every appended batch, in order, with a ``_batch`` column (0, 1, ...).

    Each appended file must still have the md5 params.yaml recorded for it: the snapshot
    that ran is exactly the one DVC and MLflow say ran.
    """
    snapshot = collect(scan_snapshot_info(data, paths)[0], resolve_path(data), data.source)
    if "_batch" in snapshot.columns:
        return snapshot
    return snapshot.with_columns(_batch=pl.lit(0, pl.Int32))


def scan_snapshot_info(data: DataCfg, paths: Paths) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """:func:`read_snapshot` as a lazy frame (every row checked, none held: issue #16) and
    how the base log was read (the loader's timestamp format). Without appends it has no
    ``_batch`` column. Appended batches are read whole: each is one increment, the base
    log is what outgrows memory."""
    base, info = scan_raw_info(data)
    if not data.appends:  # no _batch column: encode() reads its absence as batch 0 (and
        return base, info  # polars' streaming group-by once held a whole log for that literal)
    frames = [base.with_columns(_batch=pl.lit(0, pl.Int32))]
    schema = base.collect_schema()
    for i, a in enumerate(data.appends, start=1):
        f = Path(a.path) if Path(a.path).is_absolute() else paths.root / a.path
        if a.base is None:
            log.warning(
                "data.appends[%d] (%s) does not record the source it was appended to (appended "
                "before negsamp recorded it): read as part of %s %s; if it belongs to another "
                "dataset, clear the appends with `negsamp ingest --clear-appends`",
                i - 1,
                a.path,
                data.source,
                data.path,
            )
        if not f.exists():
            raise DataError(f"{f}: appended batch {i} not found; `dvc pull` or `dvc checkout` it")
        if md5_file(f) != a.md5:
            raise DataError(
                f"{f}: md5 differs from data.appends[{i - 1}].md5 in params.yaml; the batch "
                "changed after it was appended (restore it with `dvc checkout`)"
            )
        batch = _conform(pl.read_parquet(f), schema, f)
        frames.append(batch.with_columns(_batch=pl.lit(i, pl.Int32)).lazy())
    return pl.concat(frames, how="vertical_relaxed"), info


def _conform(batch: pl.DataFrame, base: pl.Schema, where: Path) -> pl.DataFrame:
    cols = [
        "user",
        "item",
        "rating",
        "timestamp",
        *(["weight"] if "weight" in base else []),
    ]
    missing = [c for c in cols if c not in batch.columns]
    if missing:
        raise DataError(f"{where}: appended batch lacks columns {missing} (has {batch.columns})")
    try:
        return batch.select(pl.col(c).cast(base[c]) for c in cols)
    except pl.exceptions.PolarsError as err:
        raise DataError(
            f"{where}: ids or values do not match the base log's types: {err}"
        ) from None


def append(cfg: Config, source: Path, paths: Paths = Paths()) -> dict[str, Any]:
    """Add ``source`` (in the format of ``data.source``) as the next batch of the raw log.

    The batch is written to ``data/raw/appends/NNNN.parquet`` in the raw schema, and the
    whole new snapshot is encoded and run through the validation suite before anything
    stays on disk; on any failure the batch file is removed. Returns ``{path, md5}`` for
    ``data.appends`` (the caller records it in params.yaml and versions the file).
    """
    from negsamp.stages.common import min_interactions_needed
    from negsamp.validate import ValidationFailed, validate_interactions

    data = _rooted(cfg.data, paths)
    batch = load_raw(data.model_copy(update={"path": str(source)}))
    n = len(data.appends) + 1
    while (paths.root / _batch_file(n)).exists():  # batches of cleared appends stay on disk
        n += 1
    rel = _batch_file(n)
    target = paths.root / rel
    write_parquet(
        target, batch.select(RAW_COLUMNS, *(["weight"] if "weight" in batch.columns else []))
    )
    entry = {"path": str(rel), "md5": md5_file(target), "base": cfg.data.base.model_dump()}
    try:
        grown = data.model_copy(update={"appends": (*data.appends, AppendCfg(**entry))})
        interactions, user_ids, item_ids = encode(
            to_implicit(
                scan_snapshot_info(grown, paths)[0], data.rating_threshold, data.weight_aggregate
            )
        )
        report = validate_interactions(
            interactions,
            user_ids.height,
            item_ids.height,
            cfg.validate_,
            min_interactions_needed(cfg),
            f"{source} appended to {data.path}",
        )
        if not report.success:
            raise ValidationFailed(report)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    log.info(
        "appended %s as %s: %d rows, snapshot %d", source, rel, batch.height, len(grown.appends)
    )
    return entry


def _weight_report(data: DataCfg, implicit: pl.DataFrame) -> dict[str, Any] | None:
    """The weight column's summary for ingest.json (None without ``data.columns.weight``)."""
    if "weight" not in implicit.columns:
        return None
    w = implicit["weight"]
    return {
        "column": data.columns.weight,
        "aggregate": data.weight_aggregate,
        "zero_weight": data.zero_weight,
        "min": float(w.min()),
        "median": float(w.median()),
        "max": float(w.max()),
        "sum": float(w.sum()),
    }


def _batch_file(n: int) -> Path:
    return Path("data", "raw", "appends", f"{n:04d}.parquet")


def _commit(params: Path, root: Path, extra: list[Path], message: str) -> str | None:
    """Commit ``params`` and the ``extra`` files (relative to ``root``) that exist."""
    params, root = Path(params).resolve(), root.resolve()
    written = [params.relative_to(root) if params.is_relative_to(root) else params, *extra]
    return dvcops.commit_files(root, [p for p in written if (root / p).exists()], message)


def clear_appends(params: Path, paths: Paths = Paths()) -> dict[str, Any]:
    """``negsamp ingest --clear-appends``: empty ``data.appends`` in ``params`` on purpose.

    The batch files stay where they are (DVC still tracks them; older commits use them);
    in a git repository params.yaml is committed, so the data version without them is
    reachable from a commit too. Returns ``cleared`` (how many) and ``commit`` (sha or None).
    """
    cleared = len(read_document(params).get("data", {}).get("appends") or [])
    if not write_overrides(params, ["data.appends=[]"]):
        return {"cleared": 0, "commit": None}
    message = f"data: clear {cleared} appended batch(es) from data.appends"
    try:
        commit = _commit(params, paths.root, [], message)
    except RuntimeError as err:
        raise RuntimeError(
            f"data.appends was cleared in {params} but not committed: {err}"
        ) from err
    return {"cleared": cleared, "commit": commit}


def append_snapshot(params: Path, source: Path, paths: Paths = Paths()) -> dict[str, Any]:
    """``negsamp ingest --append``: add ``source`` as the next batch and version the snapshot.

    After :func:`append`, the entry goes into ``data.appends`` of ``params``, the batch is
    `dvc add`-ed, and in a git repository exactly the files this wrote (``params``, the
    batch's ``.dvc`` file, the ``.gitignore`` beside it) are committed, so the new snapshot is
    reachable from a commit and a model trained on it carries that commit as its lineage.
    Returns the ``{path, md5}`` entry plus ``snapshot`` (batches appended so far),
    ``versioned`` (DVC tracks the batch) and ``commit`` (the new sha, or None).
    """
    cfg = load(params)
    entry = append(cfg, source, paths)
    appends = [a.model_dump() for a in cfg.data.appends] + [entry]
    write_overrides(params, [f"data.appends={json.dumps(appends)}"])
    versioned = dvcops.add(paths.root, entry["path"])
    batch = Path(entry["path"])
    extra = [Path(f"{batch}.dvc"), batch.parent / ".gitignore"] if versioned else []
    message = f"data: append batch {len(appends)} ({source.name} as {batch}, md5 {entry['md5']})"
    try:
        commit = _commit(params, paths.root, extra, message)
    except RuntimeError as err:
        raise RuntimeError(
            f"{source} was appended as {batch} and recorded in {params}, "
            f"but not committed to git: {err}"
        ) from err
    return {**entry, "snapshot": len(appends), "versioned": versioned, "commit": commit}


def _declared(data: Any) -> DataCfg:
    """The keys of ``data`` ingest reads (SPEC.params) as a DataCfg; ``synthetic``, which
    ingest never reads, keeps its default."""
    keys = SPEC_DATA_KEYS
    return DataCfg(**{k: getattr(data, k) for k in keys})


def item_features(
    data: DataCfg, item_ids: pl.DataFrame, paths: Paths
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any] | None]:
    """``data.item_features`` in the log's item ids: (attributes, release, ingest.json summary)."""
    feats = data.item_features
    if feats.source == "none":
        return (*empty_item_features(item_ids), None)
    path = resolve_features_path(feats, paths.root)
    long, release = read_item_features(feats, path)
    return encode_item_features(feats, long, release, item_ids, path)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    """Read ``data.path`` as ``data.source``, keep positives, encode ids, write outputs.

    Reads only ``data.source``, ``data.path``, ``data.columns``, ``data.rating_threshold``
    and ``data.appends``; a relative ``data.path`` is relative to the project root
    (``paths.root``). Returns the ingest report (also written as JSON to ``paths.ingest_report``).
    """
    data = _rooted(_declared(cfg.data), paths)
    if data.source == "synthetic" and Path(data.path).resolve() != paths.raw_synthetic.resolve():
        log.warning(
            "data.path=%s is not where the synthesize stage writes (%s): reading %s",
            cfg.data.path,
            paths.raw_synthetic,
            data.path,
        )
    source_path = resolve_path(data)
    raw, read_info = scan_snapshot_info(data, paths)  # checked, never loaded whole
    implicit = to_implicit(raw, data.rating_threshold, data.weight_aggregate)
    read = collect(
        raw.select(
            pl.len().alias("rows"),
            pl.col("rating").null_count().alias("no_rating"),
            pl.col("timestamp").null_count().alias("no_timestamp"),
        ),
        source_path,
        data.source,
    ).row(0, named=True)
    interactions, user_ids, item_ids = encode(implicit)
    attributes, release, features_report = item_features(data, item_ids, paths)

    rows_kept = int(implicit["count"].sum())
    report: dict[str, Any] = {
        "source": data.source,
        "path": str(source_path),
        "md5": md5_file(source_path),
        "rating_threshold": data.rating_threshold,
        "rows_read": read["rows"],
        "rows_kept": rows_kept,
        "duplicates_aggregated": rows_kept - implicit.height,
        "n_users": user_ids.height,
        "n_items": item_ids.height,
        "n_interactions": interactions.height,
        "has_ratings": read["no_rating"] < read["rows"],
        "has_timestamps": read["no_timestamp"] < read["rows"],
        # how the timestamps were read: the setting and what auto detected (unix_s, iso, ...)
        "timestamp_format": read_info["timestamp_format"],
        "timestamp_parsed_as": read_info["timestamp_parsed_as"],
        "weight": _weight_report(data, implicit),
        "appends": [a.model_dump() for a in data.appends],
        "item_features": features_report,
    }
    write_parquet(paths.item_attributes, attributes)
    write_parquet(paths.item_release, release)
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
