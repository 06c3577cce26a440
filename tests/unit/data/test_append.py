"""New data arrival (issue #7): appended batches keep existing ids and are validated."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from negsamp.config import AppendCfg, ColumnsCfg, Config, DataCfg, ValidateCfg
from negsamp.data.errors import DataError
from negsamp.paths import Paths
from negsamp.stages import ingest
from negsamp.validate import ValidationFailed

BASE = "u,i,r,t\n5,1,5,1600000010\n5,2,4,1600000030\n5,3,2,1600000020\n9,2,4,1600000040\n9,3,1,1600000050\n9,1,1,1600000060\n"


def _cfg(root: Path, appends: tuple[AppendCfg, ...] = ()) -> Config:
    (root / "log.csv").write_text(BASE)
    data = DataCfg(
        source="csv",
        path="log.csv",
        columns=ColumnsCfg(user="u", item="i", rating="r", timestamp="t"),
        appends=appends,
    )
    return Config(data=data, validate=ValidateCfg(min_eligible_user_share=0.0))


def test_appended_batch_keeps_existing_ids_and_gives_new_ones_the_next(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path)
    cfg = _cfg(tmp_path)
    ingest.run(cfg, paths)
    users_before = pl.read_parquet(paths.user_ids)
    (tmp_path / "new.csv").write_text(
        "u,i,r,t\n1,0,5,1600000070\n5,7,5,1600000080\n9,1,5,1600000090\n"
    )
    entry = ingest.append(cfg, tmp_path / "new.csv", paths)
    assert entry["path"] == "data/raw/appends/0001.parquet"
    ingest.run(_cfg(tmp_path, (AppendCfg(**entry),)), paths)
    users = pl.read_parquet(paths.user_ids)
    items = pl.read_parquet(paths.item_ids)
    # user 1 sorts before 5 and 9 but arrived later: it gets the next id, 5 and 9 keep theirs
    assert users.rows() == [*users_before.rows(), (2, 1)]
    assert items.rows() == [(0, 1), (1, 2), (2, 3), (3, 0), (4, 7)]
    inter = pl.read_parquet(paths.interactions)
    assert inter.height == 6 + 2  # (9, 1) was seen before: its count grows instead
    assert inter.filter(user=1, item=0)["count"].to_list() == [2]


def test_a_changed_batch_is_refused(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path)
    cfg = _cfg(tmp_path)
    (tmp_path / "new.csv").write_text("u,i,r,t\n5,7,5,1600000080\n")
    entry = ingest.append(cfg, tmp_path / "new.csv", paths)
    (tmp_path / entry["path"]).write_bytes(b"tampered")
    with pytest.raises(DataError, match="md5 differs"):
        ingest.run(_cfg(tmp_path, (AppendCfg(**entry),)), paths)


def test_an_invalid_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    paths = Paths(root=tmp_path)
    cfg = _cfg(tmp_path)
    (tmp_path / "bad.csv").write_text("u,i,r,t\n5,7,5,7258118400\n")  # the year 2200
    with pytest.raises(ValidationFailed, match="timestamp"):
        ingest.append(cfg, tmp_path / "bad.csv", paths)
    assert not (tmp_path / "data/raw/appends/0001.parquet").exists()
