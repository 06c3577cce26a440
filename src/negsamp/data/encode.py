"""From a raw event log to implicit positives with dense contiguous int32 ids.

Everything downstream (the CSR matrix, samplers, models) indexes arrays by user and
item, so ids must be 0..n-1 with no gaps. Ids are assigned in the sort order of the
original ids, so the same input always gives the same encoding. When the log grows by
appended batches (``_batch`` column: 0 for the base log, 1, 2, ... for each append), ids
follow arrival order: every original keeps the id it had before, and originals first
seen in a later batch get the next ids (sorted within their batch).
"""

from __future__ import annotations

import logging

import polars as pl

from negsamp.data.errors import DataError

log = logging.getLogger(__name__)

_MAX_SHOWN = 5


def check_ids(df: pl.DataFrame | pl.LazyFrame) -> None:
    """Raise :class:`DataError` if a ``user`` or ``item`` value is null, naming the rows.

    A lazy frame is counted by the streaming engine (never loaded whole)."""
    lf = df.lazy()
    names = lf.collect_schema().names()
    for col in ("user", "item"):
        if col not in names:
            raise DataError(f"the interaction frame has no {col!r} column (columns: {names})")
    nulls = _streamed(lf.select(pl.col("user", "item").null_count())).row(0, named=True)
    for col in ("user", "item"):
        n_null = nulls[col]
        if n_null:
            rows = _streamed(
                lf.with_row_index("row").filter(pl.col(col).is_null()).head(_MAX_SHOWN)
            )
            shown = "; ".join(
                f"row {r['row']}: " + ", ".join(f"{k}={v!r}" for k, v in r.items() if k != "row")
                for r in rows.iter_rows(named=True)
            )
            raise DataError(
                f"column {col!r} has {n_null} null value(s); every interaction needs a user "
                f"and an item. First bad rows (0-based, in file order): {shown}. "
                f"Fix or drop those rows in the source file, or check data.columns.{col} "
                "names the right column"
            )


def _streamed(lf: pl.LazyFrame) -> pl.DataFrame:
    return lf.collect(engine="streaming")


WEIGHT_AGGREGATES = ("sum", "max", "mean", "last")


def to_implicit(
    raw: pl.DataFrame | pl.LazyFrame,
    rating_threshold: float | None,
    weight_aggregate: str = "sum",
) -> pl.DataFrame:
    """Keep the positives and aggregate repeated (user, item) events.

    ``raw`` has the loader schema (user, item, rating Float64|null, timestamp Int64|null,
    and ``weight`` Float64 when the log has one); a lazy ``raw`` (a scan of a log larger
    than memory) is counted and aggregated by polars' streaming engine, so only the
    aggregated pairs are ever in memory. A row is a positive when
    ``rating >= rating_threshold`` (every row when the threshold is None); rows of weight 0
    carry no interaction and are dropped (the loader refused them already under
    ``data.zero_weight: refuse``). Returns one row per (user, item) pair, sorted by
    (user, item): ``user`` and ``item`` (raw dtype), ``count`` Int32 (events aggregated,
    >= 1), ``timestamp`` Int64 (the latest event; null when the source has no timestamps)
    and, with a weight, ``weight`` Float64 aggregated by ``weight_aggregate``: sum | max |
    mean | last (the latest event's; ties in time and logs without time: the later row).
    """
    check_ids(raw)
    if weight_aggregate not in WEIGHT_AGGREGATES:
        raise ValueError(f"weight_aggregate must be one of {WEIGHT_AGGREGATES}")
    lf = raw.lazy()  # one plan: polars fuses the group-by and the sort (~25% faster)
    columns = lf.collect_schema().names()
    has_weight = "weight" in columns
    rating = pl.col("rating")
    nonzero = (pl.col("weight") != 0) if has_weight else pl.lit(True)
    counts = [
        pl.len().alias("rows"),
        (~nonzero).fill_null(False).sum().alias("zero"),
        nonzero.fill_null(False).sum().alias("nonzero"),
    ]
    if rating_threshold is not None and "rating" in columns:
        above = rating >= rating_threshold
        counts += [
            above.fill_null(False).sum().alias("above"),
            (above & nonzero).fill_null(False).sum().alias("above_nonzero"),
            rating.null_count().alias("no_rating"),
            rating.min().alias("rating_min"),
            rating.max().alias("rating_max"),
        ]
    n = _streamed(lf.select(counts)).row(0, named=True)
    keep: list[pl.Expr] = []
    if has_weight and n["zero"]:
        log.warning("%d rows have weight 0 and are dropped (data.zero_weight: drop)", n["zero"])
        keep.append(nonzero)
        if n["nonzero"] == 0:
            raise DataError(
                "every row has weight 0, so no interaction is left; check "
                "data.columns.weight names the strength column"
            )
    if rating_threshold is not None:
        if n["no_rating"] == n["rows"]:
            raise DataError(
                f"data.rating_threshold={rating_threshold} but the data has no ratings; "
                "set data.rating_threshold to null (every event is a positive) or set "
                "data.columns.rating to the rating column"
            )
        if n["no_rating"]:
            log.warning(
                "%d rows have no rating and are dropped by rating_threshold=%s",
                n["no_rating"],
                rating_threshold,
            )
        keep.append(rating >= rating_threshold)
        if n["above_nonzero" if has_weight and n["zero"] else "above"] == 0:
            raise DataError(
                f"no row has rating >= data.rating_threshold={rating_threshold} (ratings "
                f"range from {n['rating_min']} to {n['rating_max']}); lower the threshold"
            )
    rule = weight_aggregate if has_weight else None
    if n["rows"] <= SLICE_ROWS:
        return _streamed(_pairs(lf.filter(*keep) if keep else lf, columns, rule))
    return _pairs_by_slices(lf, keep, n["rows"], columns, rule)


# rows aggregated per query of a large log: polars' streaming engine can read ahead of a
# slow group-by (a whole file, measured with polars 2.1 on a busy machine), so the work
# is cut into row slices, each one streaming query, and the partial pairs merged
SLICE_ROWS = 4 << 20


def _pairs(kept: pl.LazyFrame, columns: list[str], rule: str | None) -> pl.LazyFrame:
    """One row per (user, item) of ``kept``, sorted: count, latest timestamp, first batch,
    and the weight by ``rule`` (None: no weight)."""
    batch = [pl.col("_batch").min()] if "_batch" in columns else []
    weight = [_aggregate_weight(rule)] if rule else []
    if rule == "last":
        kept = kept.with_row_index("_row")
    return (
        kept.group_by("user", "item")
        .agg(
            pl.len().cast(pl.Int32).alias("count"),
            pl.col("timestamp").cast(pl.Int64).max().alias("timestamp"),
            *batch,
            *weight,
        )
        .sort("user", "item")
    )


def _pairs_by_slices(
    lf: pl.LazyFrame, keep: list[pl.Expr], n_rows: int, columns: list[str], rule: str | None
) -> pl.DataFrame:
    """:func:`_pairs` of a log of ``n_rows`` rows, :data:`SLICE_ROWS` rows at a time: memory
    holds one slice and the pairs so far. ``sum`` and ``mean`` add the slices' partial sums
    (float sums then round in another order than one pass would)."""
    w = pl.col("weight").cast(pl.Float64)
    latest = ["_lts", "_lrow"]  # rule last: the (timestamp, row) the kept weight came from
    part = [pl.len().cast(pl.Int64).alias("count"), pl.col("timestamp").cast(pl.Int64).max()]
    merge = [pl.col("count").sum(), pl.col("timestamp").max()]
    if "_batch" in columns:
        part.append(pl.col("_batch").min())
        merge.append(pl.col("_batch").min())
    if rule in ("sum", "max"):
        part.append(getattr(w, rule)().alias("weight"))
        merge.append(getattr(pl.col("weight"), rule)())
    elif rule == "mean":
        part += [w.sum().alias("weight"), w.count().alias("_n")]
        merge += [pl.col("weight").sum(), pl.col("_n").sum()]
    elif rule == "last":
        order = {"by": [pl.col("timestamp").cast(pl.Int64), "_row"], "nulls_last": False}
        part += [
            w.sort_by(**order).last().alias("weight"),
            pl.col("timestamp").cast(pl.Int64).sort_by(**order).last().alias("_lts"),
            pl.col("_row").sort_by(**order).last().alias("_lrow"),
        ]
        merge += [pl.col(c).sort_by(latest, nulls_last=False).last() for c in ("weight", *latest)]
    if rule == "last":
        lf = lf.with_row_index("_row")  # the file's row order, before any row is dropped
    pairs: pl.DataFrame | None = None
    for lo in range(0, n_rows, SLICE_ROWS):
        rows = lf.slice(lo, SLICE_ROWS)
        found = _streamed((rows.filter(*keep) if keep else rows).group_by("user", "item").agg(part))
        pairs = found if pairs is None else pl.concat([pairs, found])
        pairs = pairs.group_by("user", "item").agg(merge) if lo else pairs
    assert pairs is not None  # n_rows > SLICE_ROWS
    weight = pl.col("weight")
    if rule == "mean":
        weight = weight / pl.col("_n")
    return pairs.select(
        "user",
        "item",
        pl.col("count").cast(pl.Int32),
        "timestamp",
        *(["_batch"] if "_batch" in columns else []),
        *([weight.alias("weight")] if rule else []),
    ).sort("user", "item")


def _aggregate_weight(rule: str) -> pl.Expr:
    """The per-pair weight of ``rule`` (inside a group-by over (user, item))."""
    w = pl.col("weight").cast(pl.Float64)
    if rule == "last":  # latest in time, then in row order (nulls, i.e. no time, sort first)
        return w.sort_by(["timestamp", "_row"], nulls_last=False).last().alias("weight")
    return getattr(w, rule)().alias("weight")


def encode(df: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Map raw ids to dense contiguous int32 ids (in sorted order of the originals).

    ``df`` is :func:`to_implicit`'s output. Returns

    - ``interactions``: ``user`` Int32 [0, n_users), ``item`` Int32 [0, n_items),
      ``count`` Int32, ``timestamp`` Int64 unix seconds (0 where the source had none),
      ``weight`` Float64 where ``df`` has one, sorted by (user, timestamp, item);
    - ``user_ids``: ``user`` Int32 (0..n_users-1, in order), ``original`` (raw dtype);
    - ``item_ids``: ``item`` Int32 (0..n_items-1, in order), ``original`` (raw dtype).
    """
    check_ids(df)
    if df.height == 0:
        raise DataError("no interactions to encode; the source has no rows left")
    missing = [c for c in ("count", "timestamp") if c not in df.columns]
    if missing:
        raise DataError(f"encode needs to_implicit's output; missing columns {missing}")
    n_null_ts = df["timestamp"].null_count()
    if n_null_ts == df.height:
        log.warning(
            "the source has no timestamps: every interaction gets timestamp 0 (the split "
            "holds out random items instead of the latest, and the recency boost is off)"
        )
    elif n_null_ts:
        log.warning("%d interactions have no timestamp and get timestamp 0", n_null_ts)

    if "_batch" not in df.columns:
        df = df.with_columns(_batch=pl.lit(0, pl.Int32))

    def arrival_ids(col: str) -> pl.DataFrame:
        """original -> dense id, ordered by (first batch the original appears in, original)."""
        return (
            df.group_by(col)
            .agg(pl.col("_batch").min())
            .sort("_batch", col)
            .select(pl.col(col).alias(f"_{col}"), pl.int_range(pl.len(), dtype=pl.Int32).alias(col))
        )

    coded = (
        df.rename({"user": "_user", "item": "_item"})
        .join(arrival_ids("user"), on="_user")
        .join(arrival_ids("item"), on="_item")
        .select(
            "user",
            "item",
            pl.col("count").cast(pl.Int32),
            pl.col("timestamp").cast(pl.Int64).fill_null(0),
            *(["weight"] if "weight" in df.columns else []),
            "_user",
            "_item",
        )
    )
    user_ids = _id_map(coded, "user")
    item_ids = _id_map(coded, "item")
    kept = ["user", "item", "count", "timestamp", *(["weight"] if "weight" in df.columns else [])]
    interactions = coded.select(kept).sort("user", "timestamp", "item")
    return interactions, user_ids, item_ids


def _id_map(coded: pl.DataFrame, col: str) -> pl.DataFrame:
    return (
        coded.select(col, pl.col(f"_{col}").alias("original")).unique(col, keep="first").sort(col)
    )
