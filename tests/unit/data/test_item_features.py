"""data.item_features: MovieLens genres and release dates, generic files, validation, ingest."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from negsamp.config import ColumnsCfg, Config, DataCfg, ItemFeaturesCfg
from negsamp.data import DataError
from negsamp.paths import Paths
from negsamp.stages import ingest

LOG = "u,i,r,t\n1,10,5,100\n1,20,4,200\n2,20,3,300\n2,30,5,400\n3,30,1,500\n"
COLUMNS = ColumnsCfg(user="u", item="i", rating="r", timestamp="t")


def _run(
    root: Path, feats: ItemFeaturesCfg, log: str = LOG
) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    (root / "log.csv").write_text(log)
    cfg = Config(data=DataCfg(source="csv", path="log.csv", columns=COLUMNS, item_features=feats))
    paths = Paths(root)
    report = ingest.run(cfg, paths)
    ids = pl.read_parquet(paths.item_ids)
    attrs = pl.read_parquet(paths.item_attributes).join(ids, on="item")
    release = pl.read_parquet(paths.item_release).join(ids, on="item")
    return report, attrs, release


def _values(attrs: pl.DataFrame, family: str) -> dict[int, list[str]]:
    g = attrs.filter(pl.col("family") == family).group_by("original").agg(pl.col("value").sort())
    return dict(zip(g["original"].to_list(), g["value"].to_list(), strict=True))


def test_generic_csv_multi_valued_split_release_and_unknown_items(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text(
        "id,genres,studio,released\n"
        "10,Action|Comedy,A,2001-05-01\n"
        "20,Drama,B,1999-01-01\n"
        "30,,A,\n"  # missing genre and release: no value, null release
        "99,Horror,C,2000-01-01\n"  # the log never mentions 99: dropped and counted
    )
    feats = ItemFeaturesCfg(
        source="csv",
        path="items.csv",
        item="id",
        attributes=("genres", "studio"),
        multi_valued=("genres",),
        release="released",
    )
    report, attrs, release = _run(tmp_path, feats)
    assert _values(attrs, "genres") == {10: ["Action", "Comedy"], 20: ["Drama"]}
    assert _values(attrs, "studio") == {10: ["A"], 20: ["B"], 30: ["A"]}
    assert dict(zip(release["original"], release["release"], strict=True)) == {
        10: 988675200,
        20: 915148800,
        30: None,
    }
    summary = report["item_features"]
    assert summary["unknown_items_dropped"] == 1 and summary["unknown_item_examples"] == [99]
    assert summary["missing_values"] == 1
    assert summary["families"]["genres"] == {
        "values": 3,
        "items_with_value": 2,
        "items_without_value": 1,
    }


def test_missing_refuse_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item,genre\n10,A\n20,\n30,B\n")
    feats = ItemFeaturesCfg(source="csv", path="items.csv", attributes=("genre",), missing="refuse")
    with pytest.raises(DataError, match=r"missing genre value\(s\), first at line/row 3"):
        _run(tmp_path, feats)
    assert not (tmp_path / "data" / "interim" / "item_attributes.parquet").exists()


def test_duplicated_item_and_wrong_column_are_refused(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("item,genre\n10,A\n10,B\n")
    feats = ItemFeaturesCfg(source="csv", path="items.csv", attributes=("genre",))
    with pytest.raises(DataError, match=r"item 10 is listed more than once \(lines \[2, 3\]\)"):
        _run(tmp_path, feats)
    feats = ItemFeaturesCfg(source="csv", path="items.csv", attributes=("kind",))
    with pytest.raises(DataError, match="no column 'kind'.*data.item_features.attributes"):
        _run(tmp_path, feats)


def test_movielens_100k_u_item_and_movies_csv(tmp_path: Path) -> None:
    flags = ["0"] * 19
    action, comedy = flags.copy(), flags.copy()
    action[1] = action[5] = "1"  # Action, Comedy
    comedy[5] = "1"
    (tmp_path / "u.item").write_text(
        "10|A (1995)|01-Jan-1995||url|" + "|".join(action) + "\n"
        "20|B (1987)|15-Mar-1987||url|" + "|".join(comedy) + "\n"
        "30|unknown|||url|" + "|".join(flags) + "\n"
    )
    _, attrs, release = _run(tmp_path, ItemFeaturesCfg(source="movielens-100k", path="."))
    assert _values(attrs, "genre") == {10: ["Action", "Comedy"], 20: ["Comedy"]}
    assert _values(attrs, "decade") == {10: ["1990"], 20: ["1980"]}
    assert release.sort("original")["release"].to_list() == [788918400, 542764800, None]

    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n10,"A, The (1995)",Action|Comedy\n20,B (1987),(no genres listed)\n'
    )
    report, attrs, release = _run(tmp_path, ItemFeaturesCfg(source="movielens-csv", path="."))
    assert _values(attrs, "genre") == {10: ["Action", "Comedy"]}
    assert release.sort("original")["release"].to_list() == [788918400, 536457600, None]
    assert report["item_features"]["log_items_not_listed"] == 1


def test_without_item_features_ingest_writes_empty_frames(tmp_path: Path) -> None:
    report, attrs, release = _run(tmp_path, ItemFeaturesCfg())
    assert report["item_features"] is None and attrs.height == 0
    assert release.height == 3 and release["release"].null_count() == 3


def test_config_refuses_multi_valued_outside_attributes() -> None:
    with pytest.raises(ValueError, match=r"multi_valued names \['tags'\]"):
        ItemFeaturesCfg(source="csv", attributes=("genre",), multi_valued=("tags",))
