from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from negsamp.config import ColumnsCfg, DataCfg, SyntheticCfg
from negsamp.data import DataError
from negsamp.data.loaders import load_raw
from negsamp.data.synthetic import generate

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"

EXPECTED = pl.DataFrame(
    {
        "user": [1, 1, 2],
        "item": [10, 20, 10],
        "rating": [5.0, 3.5, 1.0],
        "timestamp": [100, 200, 300],
    },
    schema={"user": pl.Int64, "item": pl.Int64, "rating": pl.Float64, "timestamp": pl.Int64},
)


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def _load(source: str, path: Path, **kw: object) -> pl.DataFrame:
    return load_raw(DataCfg(source=source, path=str(path), **kw))


def test_movielens_100k_tab_separated(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.data", "1\t10\t5\t100\n1\t20\t3.5\t200\n2\t10\t1\t300\n")
    assert _load("movielens-100k", path).equals(EXPECTED)


def test_movielens_100k_folder_resolves_to_u_data(tmp_path: Path) -> None:
    _write(tmp_path / "u.data", "1\t10\t5\t100\n1\t20\t3.5\t200\n2\t10\t1\t300\n")
    assert _load("movielens-100k", tmp_path).equals(EXPECTED)


def test_movielens_1m_double_colon_with_crlf(tmp_path: Path) -> None:
    path = _write(tmp_path / "ratings.dat", "1::10::5::100\r\n1::20::3.5::200\r\n2::10::1::300\r\n")
    assert _load("movielens-1m", path).equals(EXPECTED)


def test_movielens_csv_with_crlf(tmp_path: Path) -> None:
    text = "userId,movieId,rating,timestamp\r\n1,10,5.0,100\r\n1,20,3.5,200\r\n2,10,1.0,300\r\n"
    assert _load("movielens-csv", _write(tmp_path / "ratings.csv", text)).equals(EXPECTED)


def test_csv_column_mapping_string_ids_without_rating_or_timestamp(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.csv", "who,what,extra\nu1,i9,x\nu2,i8,y\n")
    columns = ColumnsCfg(user="who", item="what", rating=None, timestamp=None)
    df = _load("csv", path, columns=columns)
    assert df.schema == pl.Schema(
        {"user": pl.String, "item": pl.String, "rating": pl.Float64, "timestamp": pl.Int64}
    )
    assert df["user"].to_list() == ["u1", "u2"]
    assert df["item"].to_list() == ["i9", "i8"]
    assert df["rating"].null_count() == 2 and df["timestamp"].null_count() == 2


def test_tsv_with_iso_datetime_timestamps(tmp_path: Path) -> None:
    text = "uid\tiid\tstars\twhen\n7\t3\t4\t2020-01-01 00:00:10\n8\t3\t2\t2020-01-02 00:00:00\n"
    columns = ColumnsCfg(user="uid", item="iid", rating="stars", timestamp="when")
    df = _load("tsv", _write(tmp_path / "log.tsv", text), columns=columns)
    assert df["user"].dtype == pl.Int64
    assert df["timestamp"].to_list() == [1_577_836_810, 1_577_923_200]
    assert df["rating"].to_list() == [4.0, 2.0]


def test_parquet_column_mapping_and_datetime_column(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pl.DataFrame(
        {
            "u": pl.Series([3, 4], dtype=pl.Int32),
            "i": ["a", "b"],
            "when": [datetime(1970, 1, 1, 0, 1, 40), datetime(1970, 1, 1, 0, 3, 20)],
        }
    ).write_parquet(path)
    columns = ColumnsCfg(user="u", item="i", rating=None, timestamp="when")
    df = _load("parquet", path, columns=columns)
    assert df["user"].dtype == pl.Int64
    assert df["item"].to_list() == ["a", "b"]
    assert df["timestamp"].to_list() == [100, 200]


def test_synthetic_parquet_round_trip(tmp_path: Path) -> None:
    log = generate(SyntheticCfg(n_users=20, n_items=30, n_interactions=200), seed=1)
    path = tmp_path / "synthetic.parquet"
    log.write_parquet(path)
    df = _load("synthetic", path)
    assert df.equals(log.with_columns(pl.col("rating").cast(pl.Float64)))


def test_missing_file_names_path_and_key(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(DataError, match="nowhere.csv: file not found") as err:
        _load("csv", path)
    assert "data.path" in str(err.value)


def test_missing_synthetic_file_suggests_synthesize(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="negsamp stage synthesize"):
        _load("synthetic", tmp_path / "synthetic.parquet")


def test_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.data", "")
    with pytest.raises(DataError, match=r"u\.data is empty"):
        _load("movielens-100k", path)


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    path = _write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n")
    with pytest.raises(DataError, match=r"ratings\.csv has no data rows"):
        _load("movielens-csv", path)


def test_missing_column_names_it_and_lists_found(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.csv", "user,item,score\n1,2,3\n")
    with pytest.raises(DataError) as err:
        _load("csv", path)  # default columns expect 'rating'
    msg = str(err.value)
    assert "log.csv" in msg and "no column 'rating'" in msg
    assert "['user', 'item', 'score']" in msg and "data.columns.rating" in msg


def test_unparseable_value_names_line_and_value(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.data", "1\t10\t5\t100\n1\tten\t3\t200\n")
    with pytest.raises(DataError, match="line 2: item 'ten' does not parse"):
        _load("movielens-100k", path)


def test_wrong_field_count_in_double_colon_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "ratings.dat", "1::10::5::100\n2::10::1\n")
    with pytest.raises(DataError, match=r"line 2: '2::10::1' has 3 field\(s\), expected 4"):
        _load("movielens-1m", path)


def test_wrong_source_for_file_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "u.data", "1\t10\t5\t100\n")
    with pytest.raises(DataError, match="is data.source='movielens-1m' right"):
        _load("movielens-1m", path)


def test_ragged_csv_line_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.csv", "user,item\n1,2\n3,4,5\n")
    columns = ColumnsCfg(rating=None, timestamp=None)
    with pytest.raises(DataError, match=r"line 3 .3,4,5. has 3 field\(s\)") as err:
        _load("csv", path, columns=columns)
    assert "log.csv" in str(err.value)


def test_not_a_parquet_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.parquet", "user,item\n1,2\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        _load("parquet", path)


@pytest.mark.data
def test_real_movielens_100k() -> None:
    path = SHARED_DATA / "movielens-100k" / "u.data"
    if not path.exists():
        pytest.skip(f"{SHARED_DATA} not present")
    df = _load("movielens-100k", path)
    assert df.height == 100_000
    assert df["user"].n_unique() == 943
    assert df["item"].n_unique() == 1_682
    assert df.null_count().row(0) == (0, 0, 0, 0)
    assert set(df["rating"].unique().to_list()) == {1.0, 2.0, 3.0, 4.0, 5.0}


@pytest.mark.data
def test_real_ml_latest_small_crlf_csv() -> None:
    path = SHARED_DATA / "ml-latest-small" / "ratings.csv"
    if not path.exists():
        pytest.skip(f"{SHARED_DATA} not present")
    df = _load("movielens-csv", path)
    assert df.height == 100_836
    assert df["user"].n_unique() == 610
    assert df["item"].n_unique() == 9_724
    assert df.null_count().row(0) == (0, 0, 0, 0)


def test_parquet_float_ids_integral_ok_fractional_reported(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    columns = ColumnsCfg(rating=None, timestamp=None)
    pl.DataFrame({"user": [1.0, 2.0], "item": [3.0, 4.0]}).write_parquet(path)
    assert _load("parquet", path, columns=columns)["item"].to_list() == [3, 4]
    pl.DataFrame({"user": [1.0, 2.0], "item": [3.0, 4.5]}).write_parquet(path)
    with pytest.raises(DataError, match="row 1: item 4.5 does not parse"):
        _load("parquet", path, columns=columns)


def test_two_fields_mapped_to_one_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "log.csv", "a,b\n1,2\n")
    columns = ColumnsCfg(user="a", item="a", rating=None, timestamp=None)
    with pytest.raises(DataError, match="maps two fields to the same column"):
        _load("csv", path, columns=columns)
