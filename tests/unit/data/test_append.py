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


def test_append_snapshot_records_the_batch_and_commits_only_params_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    import yaml

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True
        ).stdout

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    (tmp_path / "log.csv").write_text(BASE)
    params = tmp_path / "params.yaml"
    params.write_text(
        "data:\n  source: csv\n  path: log.csv\n  columns: {user: u, item: i, rating: r, "
        "timestamp: t}\n  appends: []\nvalidate:\n  min_eligible_user_share: 0.0\n"
    )
    git("init", "-q", "-b", "main")
    git("config", "user.name", "negsamp test")
    git("config", "user.email", "test@negsamp.local")
    git("add", "-A")
    git("commit", "-qm", "start")
    (tmp_path / "log.csv").write_text(BASE + "9,4,5,1600000070\n")  # unrelated work in progress
    (tmp_path / "new.csv").write_text("u,i,r,t\n5,7,5,1600000080\n")

    got = ingest.append_snapshot(params, tmp_path / "new.csv", Paths(root=tmp_path))

    md5 = got["md5"]
    assert got["path"] == "data/raw/appends/0001.parquet" and got["snapshot"] == 1
    assert not got["versioned"]  # not a DVC project: the batch itself stays untracked
    assert yaml.safe_load(params.read_text())["data"]["appends"] == [
        {
            "path": "data/raw/appends/0001.parquet",
            "md5": md5,
            "base": {"source": "csv", "path": "log.csv"},  # what it was appended to (#13)
        }
    ]
    assert got["commit"] == git("rev-parse", "HEAD").strip()
    assert git("log", "-1", "--format=%s").strip() == (
        f"data: append batch 1 (new.csv as data/raw/appends/0001.parquet, md5 {md5})"
    )
    assert git("show", "--name-only", "--format=", "HEAD").split() == ["params.yaml"]
    assert " M log.csv" in git("status", "--porcelain").splitlines()


def test_clear_appends_empties_data_appends_on_purpose_and_keeps_the_batch_files_issue_13(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from negsamp.config import ConfigError, load

    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))

    (tmp_path / "log.csv").write_text(BASE)
    params = tmp_path / "params.yaml"
    params.write_text(
        "data:\n  source: csv\n  path: log.csv\n  columns: {user: u, item: i, rating: r, "
        "timestamp: t}\n  appends: []\nvalidate:\n  min_eligible_user_share: 0.0\n"
    )
    paths = Paths(root=tmp_path)
    (tmp_path / "new.csv").write_text("u,i,r,t\n5,7,5,1600000080\n")
    ingest.append_snapshot(params, tmp_path / "new.csv", paths)
    with pytest.raises(ConfigError, match=r"data\.appends\[0\] was appended to csv log.csv"):
        load(params, ["data.source=tsv"])

    got = ingest.clear_appends(params, paths)

    assert got == {"cleared": 1, "commit": None}  # not a git repository: nothing committed
    assert load(params, ["data.source=tsv"]).data.appends == ()
    assert (tmp_path / "data/raw/appends/0001.parquet").exists()  # still versioned, kept
    # the next batch does not overwrite the cleared one's file
    again = ingest.append_snapshot(params, tmp_path / "new.csv", paths)
    assert again["path"] == "data/raw/appends/0002.parquet" and again["snapshot"] == 1


def test_cli_clear_appends_works_when_the_refusal_it_names_blocks_every_other_command(
    tmp_path: Path,
) -> None:
    """issue #13: data.source changed by hand with batches of the old source still listed."""
    import yaml
    from typer.testing import CliRunner

    from negsamp.cli import app

    params = tmp_path / "params.yaml"
    base = {"source": "csv", "path": "log.csv"}
    batch = {"path": "data/raw/appends/0001.parquet", "md5": "0" * 32, "base": base}
    params.write_text(
        yaml.safe_dump({"data": {"source": "tsv", "path": "log.tsv", "appends": [batch]}})
    )
    refused = CliRunner().invoke(app, ["ingest", "--params", str(params)])
    assert refused.exit_code != 0 and "--clear-appends" in refused.output

    cleared = CliRunner().invoke(app, ["ingest", "--clear-appends", "--params", str(params)])

    assert cleared.exit_code == 0, cleared.output
    assert "cleared 1 batch(es) from data.appends" in cleared.output
    assert yaml.safe_load(params.read_text())["data"] == {
        "source": "tsv",
        "path": "log.tsv",
        "appends": [],
    }
