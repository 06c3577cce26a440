"""Pools: sharding gives the same bytes, the audit catches a positive, statistics and plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from negsamp.interactions import Interactions
from negsamp.io import md5_file, write_parquet
from negsamp.samplers import build_sampler, no_exclusions, registered
from negsamp.samplers.pool import (
    USER_BLOCK,
    PoolAuditError,
    audit_pool,
    merge_shards,
    plot_negative_popularity,
    pool_statistics,
    shard_ranges,
    training_pool,
)
from negsamp.samplers.stats import restricted_target
from tests.unit.samplers.helpers import CASES, make_sampler, sampler_cfg, wide_positives


@pytest.fixture(scope="module")
def wide() -> Interactions:
    return wide_positives()


def test_shard_ranges_cover_the_users_on_block_boundaries() -> None:
    assert shard_ranges(1100, 4) == [(0, 256), (256, 512), (512, 768), (768, 1100)]
    assert shard_ranges(100, 3) == [(0, 0), (0, 0), (0, 100)]
    assert shard_ranges(5 * USER_BLOCK, 2)[1] == (2 * USER_BLOCK, 5 * USER_BLOCK)


@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("name", CASES)
def test_four_shards_give_the_same_bytes_as_one_shot(
    name: str, replace: bool, wide: Interactions, tmp_path: Path
) -> None:
    if name.endswith("+unreleased") and not replace:
        pytest.skip("exclude_unreleased draws with replacement (the config refuses false)")

    def pool(user_range: tuple[int, int] | None) -> pl.DataFrame:
        sampler = make_sampler(name, wide, n_neg=3, replace=replace)
        return training_pool(sampler, wide, 3, 2, 11, user_range=user_range)

    one = pool(None)
    shards = merge_shards([pool(r) for r in shard_ranges(wide.n_users, 4)])
    write_parquet(tmp_path / "one.parquet", one)
    write_parquet(tmp_path / "shards.parquet", shards)
    assert md5_file(tmp_path / "one.parquet") == md5_file(tmp_path / "shards.parquet")
    audit_pool(one, wide)


def test_user_range_off_a_block_boundary_is_refused(wide: Interactions) -> None:
    sampler = build_sampler(sampler_cfg("uniform"), wide)
    with pytest.raises(ValueError, match="multiples of USER_BLOCK"):
        training_pool(sampler, wide, 2, 1, 0, user_range=(10, 300))


def test_pool_format(wide: Interactions) -> None:
    pool = training_pool(build_sampler(sampler_cfg("uniform"), wide), wide, 4, 3, 0)
    assert pool.schema == pl.Schema(
        {
            "user": pl.Int32,
            "pos_item": pl.Int32,
            "epoch": pl.Int16,
            "neg_items": pl.Array(pl.Int32, 4),
        }
    )
    assert pool.height == 3 * wide.nnz
    assert pool.select(pl.col("epoch").unique().sort())["epoch"].to_list() == [0, 1, 2]


def test_audit_fires_on_a_corrupted_pool_and_names_the_rows(wide: Interactions) -> None:
    pool = training_pool(build_sampler(sampler_cfg("uniform"), wide), wide, 3, 2, 0)
    audit_pool(pool, wide)
    negs = pool["neg_items"].to_numpy().copy()
    row = 5000
    user, pos_item = int(pool["user"][row]), int(pool["pos_item"][row])
    negs[row, 1] = pos_item  # inject the row's own positive
    bad = pool.with_columns(pl.Series("neg_items", negs, dtype=pl.Array(pl.Int32, 3)))
    epoch = int(pool["epoch"][row])
    with pytest.raises(PoolAuditError) as err:
        audit_pool(bad, wide)
    assert f"user {user}, pos_item {pos_item}, epoch {epoch}: negative {pos_item}" in str(err.value)
    assert "1 negative(s) in 1 row(s)" in str(err.value)
    audit_pool(bad, no_exclusions(wide.n_users, wide.n_items))  # exclude: none passes
    shuffled = bad.sample(fraction=1.0, shuffle=True, seed=1)  # not in pool order
    with pytest.raises(PoolAuditError, match=f"user {user}, pos_item {pos_item}"):
        audit_pool(shuffled, wide)


def test_restricted_target_by_hand() -> None:
    # user 0 holds item 0; rows: two of user 0, one of user 1; weights 1, 2, 3
    pos = Interactions.from_arrays([0], [0], n_users=2, n_items=3)
    q = restricted_target(np.array([1.0, 2.0, 3.0]), pos, np.array([0, 0, 1]))
    expected = (2 * np.array([0, 2, 3]) / 5 + np.array([1, 2, 3]) / 6) / 3
    assert q == pytest.approx(expected)


def test_pool_statistics_by_hand() -> None:
    # counts: item 0..9 -> 0..9; deciles are single items; tail = count < 7.2 -> items 0..7
    users = np.repeat(np.arange(9), np.arange(1, 10))
    items = np.concatenate([np.arange(10 - k, 10) for k in range(1, 10)])
    train = Interactions.from_arrays(users, items, 9, 10)
    assert train.item_counts().tolist() == list(range(10))
    negs = np.array([[0, 0], [9, 3]])
    target = np.full(10, 0.1)
    st = pool_statistics(negs, train, target)
    assert st["distinct_items"] == 3
    assert st["tail_share_of_negatives"] == pytest.approx(0.75)
    assert st["tail_share_of_catalog"] == pytest.approx(0.8)
    assert st["tail_share_of_target"] == pytest.approx(0.8)
    assert st["popularity_deciles"]["negatives"] == pytest.approx(
        [0.5, 0, 0, 0.25, 0, 0, 0, 0, 0, 0.25]
    )
    p = np.array([0.5, 0, 0, 0.25, 0, 0, 0, 0, 0, 0.25])
    assert st["kl_to_target"] == pytest.approx(float((p[p > 0] * np.log(p[p > 0] / 0.1)).sum()))
    assert 0 < st["js_to_target"] < np.log(2)
    assert st["mass_outside_target"] == 0
    target[0] = 0
    assert pool_statistics(negs, train, target)["kl_to_target"] is None


# same_attribute draws depend on the positive, not only the user: no per-user target
# (test_attributes.py checks its distribution per positive)
@pytest.mark.parametrize("name", [n for n in registered() if n != "same_attribute"])
def test_drawn_negatives_match_each_samplers_target(name: str, wide: Interactions) -> None:
    sampler = make_sampler(name, wide)
    pool = training_pool(sampler, wide, 4, 4, 3)
    st = pool_statistics(
        pool["neg_items"].to_numpy(), wide, sampler.target(wide, pool["user"].to_numpy())
    )
    assert st["kl_to_target"] < 3 * st["kl_noise_floor"]  # only sampling noise
    assert st["mass_outside_target"] == 0


def test_plot_writes_a_png(wide: Interactions, tmp_path: Path) -> None:
    sampler = build_sampler(sampler_cfg("popularity"), wide)
    pool = training_pool(sampler, wide, 4, 1, 3)
    st = pool_statistics(pool["neg_items"].to_numpy(), wide, sampler.target(wide, wide.rows()))
    plot_negative_popularity(st, tmp_path / "plots" / "negatives.png")
    assert (tmp_path / "plots" / "negatives.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "plots").iterdir() if p.name != "negatives.png"]


def test_eval_candidates_are_exact_distinct_and_do_not_depend_on_row_order(
    wide: Interactions,
) -> None:
    from negsamp.samplers.pool import eval_candidates

    rng = np.random.default_rng(0)
    test = pl.DataFrame(
        {"user": rng.permutation(wide.n_users)[:600], "item": rng.integers(0, 300, 600)}
    )
    cands = eval_candidates(wide, test, 50, 1)
    negs, users = cands["candidates"].to_numpy(), cands["user"].to_numpy()
    assert cands["user"].to_list() == test["user"].to_list()
    assert not wide.contains(users[:, None], negs).any()
    assert (np.diff(np.sort(negs, axis=1), axis=1) > 0).all()
    backwards = eval_candidates(wide, test.reverse(), 50, 1).reverse()
    assert backwards.equals(cands)  # one row per user: each user's candidates are its own
