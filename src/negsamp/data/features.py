"""Item side information (``data.item_features``): attributes and release dates per item.

A file of item attributes becomes two frames in the interactions' item ids:

- ``attributes``: one row per (item, family, value): ``item`` Int32, ``family`` String (the
  attribute family: ``genre``, ``decade``, a column name), ``value`` String; sorted by
  (family, value, item). A multi-valued column (``Action|Comedy``) gives one row per value.
- ``release``: ``item`` Int32 for every catalog item, ``release`` Int64 unix seconds (null
  where the file gives none).

Sources: ``movielens-100k`` (``u.item``: the 19 genre flags and the release date),
``movielens-csv`` (``movies.csv``: ``genres`` split on ``|``, the year in the title as
release date, 1 January), and generic ``csv`` / ``parquet`` with a column mapping. Both
MovieLens sources also give a ``decade`` family (from the release year).

Fallbacks (stated, reported in ingest.json): rows for items the log never mentions are
dropped (counted); log items the file does not list get no attribute; a missing value
(empty cell, MovieLens' ``(no genres listed)``) is refused naming its row under
``missing: refuse``, else the item has no value in that family. A duplicated item row is
always refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from negsamp.config import ItemFeaturesCfg
from negsamp.data.errors import DataError
from negsamp.data.timestamps import timestamp_expr

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
DEFAULT_FILES = {"movielens-100k": "u.item", "movielens-csv": "movies.csv"}
MISSING_TOKENS = ("", "(no genres listed)")
_SHOWN = 5


def resolve_features_path(cfg: ItemFeaturesCfg, root: Path = Path(".")) -> Path:
    """The attributes file ``cfg.path`` names (a MovieLens folder resolves to its file)."""
    path = Path(cfg.path) if Path(cfg.path).is_absolute() else root / cfg.path
    if path.is_dir() and cfg.source in DEFAULT_FILES:
        path = path / DEFAULT_FILES[cfg.source]
    if not path.is_file():
        raise DataError(
            f"{path}: item features file not found (data.item_features.source={cfg.source}); "
            "set data.item_features.path to the file or its MovieLens folder"
        )
    return path


def read_item_features(cfg: ItemFeaturesCfg, path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(long attributes: original item, family, value; release: original item, release).

    ``item`` keeps the file's id type (Int64 for integer ids, else String); a missing
    value has ``value`` null (handled by :func:`encode_item_features`).
    """
    if cfg.source == "movielens-100k":
        return _movielens_100k(path)
    if cfg.source == "movielens-csv":
        return _movielens_csv(path)
    return _generic(cfg, path)


def _with_line(df: pl.DataFrame, offset: int) -> pl.DataFrame:
    return df.with_row_index("_line", offset=offset)


def _movielens_100k(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    text = path.read_bytes().decode("latin-1")
    lines = pl.DataFrame({"l": text.splitlines()}).filter(pl.col("l").str.strip_chars() != "")
    parts = pl.col("l").str.split("|")
    n = 5 + len(ML100K_GENRES)
    df = _with_line(lines, 1).select(
        "_line",
        parts.list.len().alias("_n"),
        *(parts.list.get(i, null_on_oob=True).alias(f"f{i}") for i in range(n)),
    )
    bad = df.filter(pl.col("_n") != n)
    if bad.height:
        raise DataError(
            f"{path}: {bad.height} line(s) do not have {n} '|'-separated fields (first: line "
            f"{bad['_line'][0]}); is this MovieLens-100k's u.item?"
        )
    df = df.with_columns(pl.col("f0").cast(pl.Int64, strict=False).alias("item"))
    _refuse_bad_ids(df, path)
    date = pl.col("f2").str.strip_chars().str.to_date("%d-%b-%Y", strict=False)
    release = df.select(
        "_line", "item", date.cast(pl.Datetime("us")).dt.epoch("s").alias("release")
    )
    flags = df.select(
        "_line", "item", *(pl.col(f"f{5 + g}").alias(name) for g, name in enumerate(ML100K_GENRES))
    ).unpivot(index=["_line", "item"], variable_name="value", value_name="flag")
    genres = flags.filter(pl.col("flag") == "1").select(
        "_line", "item", pl.lit("genre").alias("family"), "value"
    )
    # an item flagged with no genre at all has a missing genre (a null value row)
    none = df.join(genres.select("item").unique(), on="item", how="anti").select(
        "_line", "item", pl.lit("genre").alias("family"), pl.lit(None, pl.String).alias("value")
    )
    long = pl.concat([genres, none, _decades(release)])
    return long, release


def _movielens_csv(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        df = pl.read_csv(path, infer_schema=False)
    except pl.exceptions.PolarsError as err:
        raise DataError(f"{path} could not be read as movies.csv ({err})") from None
    missing = [c for c in ("movieId", "title", "genres") if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: no column(s) {missing} (found {df.columns}); is this MovieLens' movies.csv?"
        )
    df = _with_line(df, 2).with_columns(
        pl.col("movieId").cast(pl.Int64, strict=False).alias("item")
    )
    _refuse_bad_ids(df, path)
    year = pl.col("title").str.strip_chars().str.extract(r"\((\d{4})\)\s*$").cast(pl.Int32)
    release = df.select(
        "_line",
        "item",
        pl.datetime(year, 1, 1, time_unit="us").dt.epoch("s").alias("release"),
    )
    genres = _split(df, "genres", "genre", "|")
    return pl.concat([genres, _decades(release)]), release


def _generic(cfg: ItemFeaturesCfg, path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        if cfg.source == "parquet":
            df = _with_line(pl.read_parquet(path), 0)
        else:
            df = _with_line(pl.read_csv(path, infer_schema=False), 2)
    except pl.exceptions.PolarsError as err:
        raise DataError(
            f"{path} could not be read as {cfg.source} ({str(err).splitlines()[0]}); "
            "check data.item_features.source and .path"
        ) from None
    wanted = {"item": cfg.item, **{a: a for a in cfg.attributes}}
    if cfg.release is not None:
        wanted["release"] = cfg.release
    for key, col in wanted.items():
        if col not in df.columns:
            setting = "item" if key == "item" else "release" if key == "release" else "attributes"
            raise DataError(
                f"{path}: no column {col!r}; columns found: {[c for c in df.columns if c != '_line']}; "
                f"set data.item_features.{setting} to the right name"
            )
    item = pl.col(cfg.item)
    as_int = df[cfg.item].cast(pl.Int64, strict=False)
    if as_int.null_count() == df[cfg.item].null_count():
        item = item.cast(pl.Int64)
    else:
        item = item.cast(pl.String)
    df = df.with_columns(item.alias("item") if cfg.item != "item" else item)
    _refuse_bad_ids(df, path)
    parts = [
        _split(df, a, a, cfg.separator if a in cfg.multi_valued else None) for a in cfg.attributes
    ]
    if cfg.release is not None:
        lf = df.lazy().select("_line", "item", pl.col(cfg.release).alias("timestamp"))
        dtype = lf.collect_schema()["timestamp"]
        expr, _ = timestamp_expr(lf, dtype, "auto", path)
        release = lf.select("_line", "item", expr.alias("release")).collect()
    else:
        release = df.select("_line", "item", pl.lit(None, pl.Int64).alias("release"))
    long = pl.concat(parts) if parts else _empty_long(df.schema["item"])
    return long, release


def _empty_long(item_dtype: pl.DataType) -> pl.DataFrame:
    return pl.DataFrame(
        schema={"_line": pl.UInt32, "item": item_dtype, "family": pl.String, "value": pl.String}
    )


def _split(df: pl.DataFrame, column: str, family: str, sep: str | None) -> pl.DataFrame:
    """Long rows (one per value) of ``column``; a missing cell becomes one null value."""
    text = pl.col(column).cast(pl.String).str.strip_chars()
    text = pl.when(text.is_in(MISSING_TOKENS)).then(None).otherwise(text)
    if sep is None:
        values = text
        out = df.select("_line", "item", values.alias("value"))
    else:
        out = (
            df.select("_line", "item", text.str.split(sep).alias("value"))
            .explode("value")
            .with_columns(pl.col("value").str.strip_chars())
            .with_columns(
                pl.when(pl.col("value") == "").then(None).otherwise(pl.col("value")).alias("value")
            )
        )
        # "A||B" keeps A and B; a cell of only separators is one missing value
        valued = out.filter(pl.col("value").is_not_null()).select("_line").unique()
        out = pl.concat(
            [
                out.filter(pl.col("value").is_not_null()),
                out.join(valued, on="_line", how="anti").unique("_line", keep="first"),
            ]
        )
    return out.select("_line", "item", pl.lit(family).alias("family"), "value")


def _decades(release: pl.DataFrame) -> pl.DataFrame:
    year = pl.from_epoch("release", time_unit="s").dt.year()
    return release.select(
        "_line",
        "item",
        pl.lit("decade").alias("family"),
        ((year // 10) * 10).cast(pl.String).alias("value"),
    )


def _refuse_bad_ids(df: pl.DataFrame, path: Path) -> None:
    null = df.filter(pl.col("item").is_null())
    if null.height:
        lines = null["_line"].head(_SHOWN).to_list()
        raise DataError(
            f"{path}: {null.height} row(s) have no readable item id (lines {lines}); "
            "fix those rows or check data.item_features.item"
        )
    dup = df.filter(pl.col("item").is_duplicated())
    if dup.height:
        first = dup.sort("_line").head(_SHOWN)
        raise DataError(
            f"{path}: item {first['item'][0]!r} is listed more than once (lines "
            f"{first.filter(pl.col('item') == first['item'][0])['_line'].to_list()}); each item "
            "needs one row: merge its attributes into one row"
        )


def encode_item_features(
    cfg: ItemFeaturesCfg,
    long: pl.DataFrame,
    release: pl.DataFrame,
    item_ids: pl.DataFrame,
    path: Path,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Any]]:
    """Map the file's item ids to the interactions' (``item_ids``: item, original).

    Returns (attributes, release) as the module describes, and a summary for ingest.json.
    """
    ids = item_ids.select(pl.col("item"), pl.col("original"))
    try:
        ids = ids.with_columns(pl.col("original").cast(long.schema["item"]))
    except pl.exceptions.PolarsError:
        raise DataError(
            f"{path}: item ids are {long.schema['item']} but the log's are "
            f"{item_ids.schema['original']}; check data.item_features.item"
        ) from None
    ids = ids.rename({"item": "_id", "original": "item"})
    unknown = release.join(ids, on="item", how="anti")
    missing = long.filter(pl.col("value").is_null())
    if cfg.missing == "refuse" and missing.height:
        row = missing.sort("_line").row(0, named=True)
        raise DataError(
            f"{path}: {missing.height} missing {row['family']} value(s), first at line/row "
            f"{row['_line']} (item {row['item']!r}); fill them, or set "
            "data.item_features.missing: empty (such items get no value in that family)"
        )
    attrs = (
        long.filter(pl.col("value").is_not_null())
        .join(ids, on="item", how="inner")
        .select(pl.col("_id").cast(pl.Int32).alias("item"), "family", "value")
        .unique()
        .sort("family", "value", "item")
    )
    rel = (
        ids.join(release.select("item", "release"), on="item", how="left")
        .select(pl.col("_id").cast(pl.Int32).alias("item"), pl.col("release").cast(pl.Int64))
        .sort("item")
    )
    n_items = item_ids.height
    listed = ids.join(release.select("item"), on="item", how="semi").height
    families = {
        f: {
            "values": int(g["value"].n_unique()),
            "items_with_value": int(g["item"].n_unique()),
            "items_without_value": n_items - int(g["item"].n_unique()),
        }
        for (f,), g in attrs.group_by("family", maintain_order=True)
    }
    summary = {
        "source": cfg.source,
        "path": str(path),
        "rows": release.height,
        "unknown_items_dropped": unknown.height,
        "unknown_item_examples": unknown["item"].head(_SHOWN).to_list(),
        "log_items_not_listed": n_items - listed,
        "missing_values": missing.height,
        "missing": cfg.missing,
        "items_with_release": int(rel["release"].is_not_null().sum()),
        "families": dict(sorted(families.items())),
    }
    return attrs, rel, summary


def empty_item_features(item_ids: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What ingest writes under ``source: none``: no attribute, no release date."""
    attrs = pl.DataFrame(schema={"item": pl.Int32, "family": pl.String, "value": pl.String})
    rel = item_ids.select(pl.col("item").cast(pl.Int32), pl.lit(None, pl.Int64).alias("release"))
    return attrs, rel
