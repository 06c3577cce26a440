"""The Great Expectations suite on interactions: one test per kind of bad input."""

from __future__ import annotations

import json

import polars as pl
import pytest

from negsamp.config import Config, ValidateCfg
from negsamp.io import read_json, write_parquet
from negsamp.paths import Paths
from negsamp.stages import validate as stage
from negsamp.validate import ValidationFailed, ValidationReport, iso_to_unix, validate_interactions

N_USERS, N_ITEMS = 4, 5
T0 = 1_700_000_000  # 2023-11-14
SRC = "data/interim/interactions.parquet"


def good() -> pl.DataFrame:
    """4 users x 3-4 items each: 15 rows, unique (user, item), every user has >= 3 rows."""
    pairs = [(u, i) for u in range(N_USERS) for i in range(N_ITEMS) if (u + i) % 5 != 4]
    pairs = [p for p in pairs if not (p[0] == 0 and p[1] == 3)]  # user 0 keeps 3 items
    n = len(pairs)
    return pl.DataFrame(
        {
            "user": pl.Series([u for u, _ in pairs], dtype=pl.Int32),
            "item": pl.Series([i for _, i in pairs], dtype=pl.Int32),
            "count": pl.Series([1 + k % 3 for k in range(n)], dtype=pl.Int32),
            "timestamp": pl.Series([T0 + 60 * k for k in range(n)], dtype=pl.Int64),
        }
    )


def check(df: pl.DataFrame, min_interactions: int = 3, **cfg: object) -> ValidationReport:
    return validate_interactions(df, N_USERS, N_ITEMS, ValidateCfg(**cfg), min_interactions, SRC)


def set_value(df: pl.DataFrame, column: str, row: int, value: object) -> pl.DataFrame:
    """``df`` with ``df[row, column] = value``, keeping the column's dtype."""
    col = df[column].to_list()
    col[row] = value
    return df.with_columns(pl.Series(column, col, dtype=df.schema[column]))


def failed_names(report: ValidationReport) -> list[str]:
    return [f.name for f in report.failures]


def test_good_frame_passes() -> None:
    df = good()
    assert df.height == 15
    report = check(df)
    assert report.success, report.summary()
    assert report.failures == []
    assert (
        report.evaluated == 19
    )  # 1 row count + 4 x (exists, type, nulls) + 4 ranges + unique + per-user
    assert report.stats["eligible_user_share"] == pytest.approx(1.0)
    assert "all 19 expectations passed" in report.summary()
    out = report.to_json()
    assert out["success"] is True
    assert set(out["gx_result"]) == {"interactions", "per_user"}
    json.dumps(out)  # plain JSON


def test_report_bytes_are_reproducible() -> None:
    """No run ids or clock times in the report: the same data gives the same result.json."""
    a = json.dumps(check(good()).to_json(), sort_keys=True)
    b = json.dumps(check(good()).to_json(), sort_keys=True)
    assert a == b


def test_missing_column_is_reported_with_found_columns() -> None:
    report = check(good().drop("count"))
    assert not report.success
    assert failed_names(report) == ["column count exists"]
    msg = report.summary()
    assert "column count exists" in msg
    assert "found columns: user, item, timestamp" in msg


def test_nulls_in_a_column() -> None:
    # two nulls for user 0: reported by the null check only, not as a duplicate (0, null) pair
    report = check(set_value(set_value(good(), "item", 1, None), "item", 2, None))
    assert not report.success
    assert failed_names(report) == ["no nulls in column item"]
    (f,) = report.failures
    assert (f.column, f.unexpected_count) == ("item", 2)
    assert f.examples == [{"row": 1, "value": None}, {"row": 2, "value": None}]
    assert "no nulls in column item" in report.summary()
    assert "row 1: null; row 2: null" in report.summary()


@pytest.mark.parametrize("bad", [N_USERS, -1])
def test_user_id_out_of_range(bad: int) -> None:
    report = check(set_value(good(), "user", 5, bad))
    assert not report.success
    assert "user ids in [0, n_users-1] = [0, 3]" in failed_names(report)
    f = next(f for f in report.failures if f.column == "user")
    assert (f.unexpected_count, f.examples) == (1, [{"row": 5, "value": bad}])
    assert f"row 5: {bad}" in report.summary()


def test_item_id_out_of_range() -> None:
    report = check(set_value(good(), "item", 7, N_ITEMS + 10))
    assert not report.success
    assert failed_names(report) == ["item ids in [0, n_items-1] = [0, 4]"]
    assert "row 7: 15" in report.summary()
    assert "(column item): 1 bad row" in report.summary()


@pytest.mark.parametrize("bad", [0, -3])
def test_count_below_one(bad: int) -> None:
    report = check(set_value(good(), "count", 4, bad))
    assert not report.success
    assert failed_names(report) == ["count >= 1"]
    assert f"row 4: {bad}" in report.summary()


def test_duplicate_user_item_row() -> None:
    df = good()
    report = check(pl.concat([df, df.slice(3, 1)]))
    assert not report.success
    assert failed_names(report) == ["no duplicate (user, item) rows"]
    (f,) = report.failures
    assert f.unexpected_count == 2  # both copies
    assert [e["row"] for e in f.examples] == [3, 15]
    assert "no duplicate (user, item) rows" in report.summary()


@pytest.mark.parametrize(
    ("ts", "date"), [(iso_to_unix("2200-01-01", "t"), "2200-01-01"), (-315619200, "1960-01-01")]
)
def test_implausible_timestamp(ts: int, date: str) -> None:
    report = check(set_value(good(), "timestamp", 6, ts))
    assert not report.success
    assert failed_names(report) == ["timestamp between 1970-01-02 and 2100-01-01"]
    assert f"row 6: {ts} ({date})" in report.summary()


def test_log_without_timestamps_is_valid() -> None:
    """#14: a log without timestamps (ingest writes 0 for each) passes the suite as it is."""
    report = check(good().with_columns(pl.lit(0, dtype=pl.Int64).alias("timestamp")))
    assert report.success
    assert report.stats["has_timestamps"] is False
    assert check(good()).stats["has_timestamps"] is True


def test_some_missing_timestamps_hint_at_the_fix() -> None:
    report = check(set_value(good(), "timestamp", 6, 0))
    assert failed_names(report) == ["timestamp between 1970-01-02 and 2100-01-01"]
    assert report.failures[0].unexpected_count == 1
    assert "data.columns.timestamp: null" in report.summary()


def test_empty_table() -> None:
    report = check(good().clear())
    assert not report.success
    assert failed_names(report)[0] == "table is not empty"
    assert "table is not empty" in report.summary()


def test_too_few_users_with_enough_interactions() -> None:
    # users 1 and 3 keep one row, user 2 none: 1 of 4 users (25%) has >= 3 interactions
    df = good().filter((pl.col("user") == 0) | (pl.col("item") == pl.col("user")))
    report = check(df)
    assert not report.success
    assert failed_names(report) == ["at least 50% of users have >= 3 interactions"]
    (f,) = report.failures
    assert (f.unit, f.unexpected_count) == ("users", 3)
    assert f.examples[0] == {"user": 1, "n_interactions": 1}
    msg = report.summary()
    assert "at least 50% of users have >= 3 interactions" in msg
    assert "75.0% of users fall short" in msg
    assert check(df, min_eligible_user_share=0.25).success


def test_examples_are_capped_and_several_failures_are_all_named() -> None:
    df = good().with_columns(pl.lit(0, dtype=pl.Int32).alias("count"))
    df = set_value(df, "item", 0, 99)
    report = check(df, failure_examples=2)
    assert failed_names(report) == ["item ids in [0, n_items-1] = [0, 4]", "count >= 1"]
    count = report.failures[1]
    assert count.unexpected_count == 15
    assert [e["row"] for e in count.examples] == [0, 1]


def test_non_integer_column_fails_the_type_check() -> None:
    report = check(good().with_columns(pl.col("count").cast(pl.Float64)))
    assert failed_names(report) == ["column count has an integer type"]
    assert "observed: float64" in report.summary()


def test_bad_iso_date_names_the_key() -> None:
    with pytest.raises(ValueError, match="validate.max_timestamp"):
        check(good(), max_timestamp="next year")


# --- the stage -----------------------------------------------------------------------


def write_inputs(paths: Paths, df: pl.DataFrame) -> None:
    write_parquet(paths.interactions, df)
    write_parquet(
        paths.user_ids,
        pl.DataFrame(
            {"user": pl.Series(range(N_USERS), dtype=pl.Int32), "original": range(N_USERS)}
        ),
    )
    write_parquet(
        paths.item_ids,
        pl.DataFrame(
            {"item": pl.Series(range(N_ITEMS), dtype=pl.Int32), "original": range(N_ITEMS)}
        ),
    )


def test_stage_failure_writes_failed_json_and_no_result(tmp_path) -> None:
    paths = Paths(root=tmp_path)
    write_inputs(paths, set_value(good(), "user", 1, 17))
    paths.validation_result.parent.mkdir(parents=True)
    paths.validation_result.write_text("{}")  # a stale pass from an earlier run
    with pytest.raises(ValidationFailed, match=r"user ids in \[0, n_users-1\]") as err:
        stage.run(Config(), paths)
    assert "failed.json" in str(err.value)
    assert not paths.validation_result.exists()
    saved = read_json(paths.validation_dir / "failed.json")
    assert saved["success"] is False
    assert saved["failures"][0]["examples"] == [{"row": 1, "value": 17}]
    assert "interactions" in saved["gx_result"]


def test_stage_pass_writes_result_and_clears_failed(tmp_path) -> None:
    paths = Paths(root=tmp_path)
    write_inputs(paths, good())
    (paths.validation_dir).mkdir(parents=True)
    (paths.validation_dir / "failed.json").write_text("{}")
    out = stage.run(Config(), paths)
    assert out["success"] is True
    assert (out["rows"], out["n_users"], out["n_items"]) == (15, N_USERS, N_ITEMS)
    assert read_json(paths.validation_result)["success"] is True
    assert not (paths.validation_dir / "failed.json").exists()


def test_stage_without_inputs_says_what_to_run(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="interactions.parquet not found"):
        stage.run(Config(), Paths(root=tmp_path))
