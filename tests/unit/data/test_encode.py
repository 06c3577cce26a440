from __future__ import annotations

import logging

import polars as pl
import pytest

from negsamp.data import DataError
from negsamp.data.encode import encode, to_implicit

RAW_SCHEMA = {"user": pl.Int64, "item": pl.Int64, "rating": pl.Float64, "timestamp": pl.Int64}


def _raw(rows: list[tuple], schema: dict | None = None) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema or RAW_SCHEMA, orient="row")


RAW = _raw(
    [
        (30, 7, 5.0, 100),
        (30, 7, 2.0, 400),  # repeat: counted, latest timestamp kept
        (30, 9, 4.0, 200),
        (10, 9, 1.0, 300),
        (10, 5, 4.5, 50),
        (30, 7, 4.0, 250),
    ]
)


def test_to_implicit_aggregates_counts_and_latest_timestamp() -> None:
    out = to_implicit(RAW, None)
    assert out.schema == pl.Schema(
        {"user": pl.Int64, "item": pl.Int64, "count": pl.Int32, "timestamp": pl.Int64}
    )
    assert out.rows() == [(10, 5, 1, 50), (10, 9, 1, 300), (30, 7, 3, 400), (30, 9, 1, 200)]


def test_to_implicit_threshold_keeps_rating_at_or_above() -> None:
    out = to_implicit(RAW, 4.0)
    # (30, 7) keeps the events rated 5.0@100 and 4.0@250, not 2.0@400
    assert out.rows() == [(10, 5, 1, 50), (30, 7, 2, 250), (30, 9, 1, 200)]


def test_threshold_without_ratings_is_an_error() -> None:
    raw = RAW.with_columns(pl.lit(None, pl.Float64).alias("rating"))
    with pytest.raises(DataError, match="has no ratings"):
        to_implicit(raw, 4.0)


def test_threshold_above_every_rating_is_an_error() -> None:
    with pytest.raises(DataError, match="no row has rating >= data.rating_threshold=6"):
        to_implicit(RAW, 6.0)


def test_encode_dense_ids_in_sorted_original_order() -> None:
    interactions, user_ids, item_ids = encode(to_implicit(RAW, None))
    assert user_ids.schema == pl.Schema({"user": pl.Int32, "original": pl.Int64})
    assert user_ids.rows() == [(0, 10), (1, 30)]
    assert item_ids.rows() == [(0, 5), (1, 7), (2, 9)]
    assert interactions.schema == pl.Schema(
        {"user": pl.Int32, "item": pl.Int32, "count": pl.Int32, "timestamp": pl.Int64}
    )
    # sorted by (user, timestamp, item)
    assert interactions.rows() == [(0, 0, 1, 50), (0, 2, 1, 300), (1, 2, 1, 200), (1, 1, 3, 400)]


def test_encode_round_trip_recovers_original_pairs() -> None:
    implicit = to_implicit(RAW, None)
    interactions, user_ids, item_ids = encode(implicit)
    decoded = (
        interactions.join(user_ids, on="user")
        .join(item_ids, on="item", suffix="_item")
        .select(
            pl.col("original").alias("user"),
            pl.col("original_item").alias("item"),
            "count",
            "timestamp",
        )
        .sort("user", "item")
    )
    assert decoded.equals(implicit)


def test_encode_string_ids_keep_their_dtype() -> None:
    schema = {"user": pl.String, "item": pl.String, "rating": pl.Float64, "timestamp": pl.Int64}
    raw = _raw([("b", "x", None, 1), ("a", "y", None, 2), ("b", "y", None, 3)], schema)
    interactions, user_ids, item_ids = encode(to_implicit(raw, None))
    assert user_ids.rows() == [(0, "a"), (1, "b")]
    assert item_ids.rows() == [(0, "x"), (1, "y")]
    assert interactions.rows() == [(0, 1, 1, 2), (1, 0, 1, 1), (1, 1, 1, 3)]


def test_missing_timestamps_become_zero_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw = RAW.with_columns(pl.lit(None, pl.Int64).alias("timestamp"))
    with caplog.at_level(logging.WARNING, logger="negsamp.data.encode"):
        interactions, _, _ = encode(to_implicit(raw, None))
    assert interactions["timestamp"].to_list() == [0, 0, 0, 0]
    assert interactions.select("user", "item").rows() == [(0, 0), (0, 2), (1, 1), (1, 2)]
    assert "no timestamps" in caplog.text


@pytest.mark.parametrize("column", ["user", "item"])
def test_null_ids_name_the_column_and_rows(column: str) -> None:
    raw = RAW.with_columns(
        pl.when(pl.int_range(pl.len()).is_in([1, 4]))
        .then(None)
        .otherwise(pl.col(column))
        .alias(column)
    )
    with pytest.raises(DataError) as err:
        to_implicit(raw, None)
    msg = str(err.value)
    assert f"column '{column}' has 2 null value(s)" in msg
    assert "row 1:" in msg and "row 4:" in msg
    assert f"data.columns.{column}" in msg


def test_encode_rejects_null_ids_too() -> None:
    implicit = to_implicit(RAW, None).with_columns(pl.lit(None, pl.Int64).alias("item"))
    with pytest.raises(DataError, match="column 'item' has 4 null"):
        encode(implicit)
