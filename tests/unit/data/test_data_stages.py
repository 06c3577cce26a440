"""The two data stages, synthesize and ingest, run against a tmp project root."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from negsamp.config import ColumnsCfg, Config, DataCfg, SyntheticCfg
from negsamp.data import DataError
from negsamp.io import md5_file, read_json
from negsamp.paths import Paths
from negsamp.stages import ingest, synthesize

SMALL = SyntheticCfg(n_users=30, n_items=25, n_interactions=400, n_tastes=3)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # data.path is relative to the working directory
    return tmp_path


def test_synthesize_writes_same_bytes_for_same_seed(root: Path) -> None:
    cfg = Config(data=DataCfg(synthetic=SMALL))
    paths = Paths()
    summary = synthesize.run(cfg, paths)
    assert paths.raw_synthetic == Path("data/raw/synthetic.parquet")
    assert summary["rows"] == 400 and summary["users"] == 30
    assert summary["items"] == pl.read_parquet(paths.raw_synthetic)["item"].n_unique()
    first = md5_file(paths.raw_synthetic)
    synthesize.run(cfg, paths)
    assert md5_file(paths.raw_synthetic) == first


def test_synthesize_then_ingest(root: Path) -> None:
    cfg = Config(data=DataCfg(synthetic=SMALL))
    paths = Paths()
    synthesize.run(cfg, paths)
    report = ingest.run(cfg, paths)
    interactions = pl.read_parquet(paths.interactions)
    assert report["rows_read"] == report["rows_kept"] == 400
    assert report["n_users"] == 30
    assert report["n_interactions"] == interactions.height
    assert report["duplicates_aggregated"] == 400 - interactions.height
    assert interactions["count"].sum() == 400
    assert read_json(paths.ingest_report) == report


def test_ingest_csv_report_and_outputs(root: Path) -> None:
    # a relative data.path is relative to the project root (paths.root)
    (root / "out").mkdir()
    (root / "out" / "log.csv").write_text(
        "u,i,r,t\n5,1,5,10\n5,1,4,30\n5,2,2,20\n9,2,4,40\n9,3,1,50\n"
    )
    data = DataCfg(
        source="csv",
        path="log.csv",
        columns=ColumnsCfg(user="u", item="i", rating="r", timestamp="t"),
        rating_threshold=4,
    )
    paths = Paths(root=Path("out"))
    report = ingest.run(Config(data=data), paths)
    assert report == {
        "source": "csv",
        "path": "out/log.csv",
        "md5": md5_file(root / "out" / "log.csv"),
        "rating_threshold": 4.0,
        "rows_read": 5,
        "rows_kept": 3,
        "duplicates_aggregated": 1,
        "n_users": 2,
        "n_items": 2,
        "n_interactions": 2,
        "has_ratings": True,
        "has_timestamps": True,
        "timestamp_format": "auto",
        "timestamp_parsed_as": "unix_s",
        "weight": None,
        "appends": [],
        "item_features": None,
    }
    assert pl.read_parquet(paths.interactions).rows() == [(0, 0, 2, 30), (1, 1, 1, 40)]
    assert pl.read_parquet(paths.user_ids).rows() == [(0, 5), (1, 9)]
    assert pl.read_parquet(paths.item_ids).rows() == [(0, 1), (1, 2)]
    assert read_json(paths.ingest_report) == report


def test_ingest_writes_nothing_when_loading_fails(root: Path) -> None:
    (root / "u.data").write_text("1\t10\t5\t100\n1\tten\t3\t200\n")
    cfg = Config(data=DataCfg(source="movielens-100k", path="u.data"))
    with pytest.raises(DataError, match="line 2"):
        ingest.run(cfg, Paths())
    assert not (root / "data").exists()
