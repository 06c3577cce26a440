"""Stage recommend: every known user gets exactly K unseen items, in original ids (#13)."""

from __future__ import annotations

import polars as pl
import pytest

from negsamp.config.run import RecommendCfg
from negsamp.io import read_json, write_json
from negsamp.stages import recommend, run_stage
from tests.unit.mlops import world


def test_recommend_writes_k_unseen_items_for_every_known_user(tmp_path) -> None:
    cfg = world.config().model_copy(update={"recommend": RecommendCfg(k=5, batch_size=7)})
    paths = world.build(tmp_path, cfg)
    registration = {"config": "default", "model_name": "negsamp", "version": 3, "alias": "champion"}
    write_json(paths.registration, registration)

    manifest = run_stage("recommend", cfg, paths)

    out = pl.read_parquet(paths.recommendations)
    assert out.columns == ["user", "rank", "item", "score", "source"]
    per_user = out.group_by("user").agg(pl.col("rank").sort(), pl.len())
    assert set(per_user["user"].to_list()) == set(world.RAW_USERS)  # original ids, every user
    assert per_user["len"].to_list() == [5] * world.N_USERS
    assert per_user["rank"].to_list() == [[1, 2, 3, 4, 5]] * world.N_USERS
    assert set(out["item"].to_list()) <= set(world.RAW_ITEMS)
    log_ = pl.read_parquet(paths.interactions).select(
        user=pl.col("user").map_elements(world.RAW_USERS.__getitem__, pl.Int64),
        item=pl.col("item").map_elements(world.RAW_ITEMS.__getitem__, pl.String),
    )
    assert out.join(log_, on=["user", "item"]).height == 0  # nothing in the whole log
    assert read_json(paths.recommendations_manifest) == manifest
    assert manifest | {"catalog_coverage": 0, "longtail_share": 0, "tail_items": 0} == {
        "config": "default",
        "model_name": "negsamp",
        "version": 3,
        "alias": "champion",
        "model_dir": "data/models/default/model",  # no served_model: written before #13
        "refit": False,
        "engine": {"engine": "local", "shards": 1},  # base.engine: where it ran (#16)
        "data_snapshot": 0,
        "k": 5,
        "users": world.N_USERS,
        "users_short": 0,
        "users_popularity": 0,
        "rows": 5 * world.N_USERS,
        "items": world.N_ITEMS,
        "catalog_coverage": 0,
        "longtail_share": 0,
        "tail_items": 0,
    }
    recommended = out["item"].n_unique()
    assert manifest["catalog_coverage"] == pytest.approx(recommended / world.N_ITEMS)
    assert 0.0 <= manifest["longtail_share"] <= 1.0

    before = paths.recommendations.read_bytes()
    recommend.run(cfg, paths)  # deterministic: the same bytes again
    assert paths.recommendations.read_bytes() == before


def test_recommend_refuses_a_model_of_another_snapshot(tmp_path) -> None:
    cfg = world.config()
    paths = world.build(tmp_path, cfg)
    write_json(paths.registration, {"config": "default", "version": 1})
    ids = pl.read_parquet(paths.item_ids)
    extra = pl.DataFrame({"item": [world.N_ITEMS], "original": ["new"]}, schema=ids.schema)
    pl.concat([ids, extra]).write_parquet(paths.item_ids)
    with pytest.raises(ValueError, match="another snapshot"):
        recommend.run(cfg, paths)
    assert not paths.recommendations.exists()
