"""#14 point 1: the interaction strength column, read, validated and aggregated per pair."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from negsamp.config import ColumnsCfg, Config, DataCfg
from negsamp.data import DataError
from negsamp.data.encode import encode, to_implicit
from negsamp.data.loaders import load_raw
from negsamp.paths import Paths
from negsamp.stages import ingest

COLUMNS = ColumnsCfg(user="u", item="i", rating=None, timestamp="t", weight="plays")
# user 1 plays item 10 three times (weights 2, 5, 3 at t = 30, 10, 20), item 20 once
LOG = "u,i,t,plays\n1,10,30,2\n1,10,10,5\n1,20,5,4\n1,10,20,3\n"


def _cfg(path: Path, **kw: object) -> DataCfg:
    return DataCfg(source="csv", path=str(path), columns=kw.pop("columns", COLUMNS), **kw)


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "log.csv").write_text(text)
    return tmp_path / "log.csv"


@pytest.mark.parametrize(
    ("rule", "expected"), [("sum", 10.0), ("max", 5.0), ("mean", 10 / 3), ("last", 2.0)]
)
def test_weights_aggregate_per_pair_by_the_declared_rule(
    tmp_path: Path, rule: str, expected: float
) -> None:
    raw = load_raw(_cfg(_write(tmp_path, LOG)))
    pairs = to_implicit(raw, None, rule)
    assert pairs.select("item", "count").rows() == [(10, 3), (20, 1)]
    assert pairs["weight"].to_list() == pytest.approx([expected, 4.0])


def test_last_without_timestamps_is_the_last_row(tmp_path: Path) -> None:
    cols = COLUMNS.model_copy(update={"timestamp": None})
    raw = load_raw(_cfg(_write(tmp_path, LOG), columns=cols))
    assert to_implicit(raw, None, "last")["weight"].to_list() == [3.0, 4.0]


def test_no_weight_column_keeps_the_schema(tmp_path: Path) -> None:
    cols = COLUMNS.model_copy(update={"weight": None})
    raw = load_raw(_cfg(_write(tmp_path, LOG), columns=cols))
    assert raw.columns == ["user", "item", "rating", "timestamp"]
    interactions, _, _ = encode(to_implicit(raw, None))
    assert interactions.columns == ["user", "item", "count", "timestamp"]


def test_zero_weights_are_dropped_or_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "u,i,t,plays\n1,10,1,0\n1,20,2,3\n2,10,3,1\n")
    kept = to_implicit(load_raw(_cfg(path)), None)
    assert kept.select("user", "item").rows() == [(1, 20), (2, 10)]
    with pytest.raises(DataError, match=r"line 2: 0\.0.*data.zero_weight: drop"):
        load_raw(_cfg(path, zero_weight="refuse"))


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", "-inf"])
def test_non_finite_or_negative_weights_are_refused_by_line(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path, f"u,i,t,plays\n1,10,1,2\n1,20,2,{bad}\n")
    with pytest.raises(DataError, match=r"log.csv: 1 row\(s\) have a weight .* line 3") as err:
        load_raw(_cfg(path))
    assert "'plays'" in str(err.value)


def test_unparseable_weight_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "u,i,t,plays\n1,10,1,lots\n")
    with pytest.raises(DataError, match=r"line 2: weight 'lots' does not parse"):
        load_raw(_cfg(path))


def test_movielens_rating_as_weight(tmp_path: Path) -> None:
    (tmp_path / "u.data").write_text("1\t10\t5\t100\n1\t20\t3.5\t200\n")
    raw = load_raw(
        DataCfg(source="movielens-100k", path=str(tmp_path), columns=ColumnsCfg(weight="rating"))
    )
    assert raw["weight"].to_list() == [5.0, 3.5]
    with pytest.raises(DataError, match="set data.columns.weight to rating"):
        load_raw(
            DataCfg(source="movielens-100k", path=str(tmp_path), columns=ColumnsCfg(weight="x"))
        )


def test_ingest_writes_the_weight_and_reports_it(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    _write(tmp_path / "out", LOG)
    data = _cfg(Path("log.csv"), weight_aggregate="max")
    report = ingest.run(Config(data=data), Paths(root=tmp_path / "out"))
    assert report["weight"] == {
        "column": "plays",
        "aggregate": "max",
        "zero_weight": "drop",
        "min": 4.0,
        "median": 4.5,
        "max": 5.0,
        "sum": 9.0,
    }
    out = pl.read_parquet(Paths(root=tmp_path / "out").interactions)
    assert out.columns == ["user", "item", "count", "timestamp", "weight"]
