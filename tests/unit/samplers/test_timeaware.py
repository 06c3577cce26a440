"""exclude_unreleased: never an item first seen after the positive's time, drawn exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from negsamp.interactions import Interactions
from negsamp.samplers import build_sampler
from negsamp.samplers.timeaware import ItemTimes
from tests.unit.samplers.helpers import fake_attributes, sampler_cfg

N_ITEMS = 60


def _pos() -> Interactions:
    # user 0: items 0..9 (and 10 at time 12: only items 0..12 exist then, 11 and 12 free)
    # user 1: items 11, 12 (so popularity weighs them), 30, 40 (40 at time 59: all exist)
    return Interactions.from_arrays(
        [0] * 11 + [1] * 4, [*range(11), 11, 12, 30, 40], n_users=2, n_items=N_ITEMS
    )


def _times(pos: Interactions) -> ItemTimes:
    t = {(0, 10): 12, (1, 40): 59, (1, 30): 45}
    u, i = pos.rows(), pos.indices
    times = np.array([t.get((a, b), 0) for a, b in zip(u.tolist(), i.tolist(), strict=True)])
    return ItemTimes.build(u, i, times, np.arange(N_ITEMS))  # item i first seen at time i


def _make(name: str, pos: Interactions, **kw: object):  # noqa: ANN202 - a sampler
    by = {"by": "attribute"} if name == "stratified:attribute" else {}
    cfg = sampler_cfg(name.split(":")[0], **by, **kw)
    return build_sampler(cfg, pos, attributes=fake_attributes(N_ITEMS), times=_times(pos))


@pytest.mark.parametrize(
    "name", ["uniform", "popularity", "stratified", "same_attribute", "stratified:attribute"]
)
def test_row_probabilities_match_the_samplers_own_draws(name: str) -> None:
    pos = _pos()
    s = _make(name, pos)
    n = 30_000
    users, items = np.ones(n, np.int64), np.full(n, 40)
    negs = s.sample(pos, users, items, 1, np.random.default_rng(0)).ravel()
    p = s.row_probabilities(pos, users[:1], items[:1])[0]
    observed = np.bincount(negs, minlength=N_ITEMS)
    assert observed[p == 0].sum() == 0 and p.sum() == pytest.approx(1.0)
    assert stats.chisquare(observed[p > 0], p[p > 0] * n).pvalue > 1e-3


@pytest.mark.parametrize("name", ["uniform", "popularity", "same_attribute"])
def test_never_an_unreleased_item_and_the_conditional_distribution(name: str) -> None:
    pos = _pos()
    s = _make(name, pos, exclude_unreleased=True)
    n = 20_000
    users, items = np.zeros(n, np.int64), np.full(n, 10)  # t = 12: free and released: 11, 12
    negs = s.sample(pos, users, items, 2, np.random.default_rng(1))
    assert np.isin(negs, [11, 12]).all()
    p = s.inner.row_probabilities(pos, users[:1], items[:1])[0] * (np.arange(N_ITEMS) <= 12)
    p /= p.sum()
    observed = np.bincount(negs.ravel(), minlength=N_ITEMS)
    assert stats.chisquare(observed[p > 0], p[p > 0] * negs.size).pvalue > 1e-3
    d = s.describe()
    assert d["exclude_unreleased"]
    if name != "popularity":  # popularity puts half its mass on 11 and 12: rejection suffices
        assert d["unreleased_dense_cells"] > 0  # the exact step ran
    inner_p = s.inner.row_probabilities(pos, users[:1], items[:1])[0]
    share = inner_p[13:].sum()  # what the unrestricted sampler puts on unreleased items
    assert d["unreleased_share"] == pytest.approx(share, abs=0.01)


def test_a_row_with_nothing_released_keeps_the_unrestricted_draw_and_counts_it() -> None:
    pos = _pos()
    s = _make("uniform", pos, exclude_unreleased=True)
    times = ItemTimes.build([0], [10], [5], np.arange(N_ITEMS))  # items 0..5 are positives
    s.times = times
    negs = s.sample(pos, np.zeros(100, np.int64), np.full(100, 10), 1, np.random.default_rng(2))
    assert not pos.contains(np.zeros(100, np.int64)[:, None], negs).any()
    assert s.describe()["unreleased_fallback_cells"] == 100


def test_first_seen_from_the_log_and_the_config_rules() -> None:
    pos = _pos()
    with pytest.raises(ValueError, match="exclude_unreleased draws with replacement"):
        sampler_cfg("uniform", exclude_unreleased=True, replace=False)
    with pytest.raises(ValueError, match="not supported by teacher_hard"):
        sampler_cfg("teacher_hard", exclude_unreleased=True)
    mixed = build_sampler(
        sampler_cfg("mixed", exclude_unreleased=True, candidates=4), pos, times=_times(pos)
    )
    assert type(mixed).__name__ == "TimeAwareSampler"  # the base of mixed is restricted too
    with pytest.raises(ValueError, match="needs the items' times"):
        build_sampler(sampler_cfg("uniform", exclude_unreleased=True), pos)


def test_the_stage_writes_pools_that_respect_release_times(tmp_path) -> None:  # noqa: ANN001
    """ingest (with item features) -> sample-negatives, as the pipeline runs them (every
    interaction in train, so no validation and split stages to wait for):
    no pool negative was first seen after its positive, and the manifest says how often
    the unrestricted draw was; same_attribute reports its fallback share."""
    import polars as pl

    from negsamp.config import ColumnsCfg, Config, DataCfg, ItemFeaturesCfg, from_dict
    from negsamp.io import write_parquet
    from negsamp.paths import Paths
    from negsamp.stages import ingest, sample_negatives

    rng = np.random.default_rng(0)
    n = 3000
    users, items = rng.integers(0, 60, n), rng.integers(0, 40, n)
    times = 10**9 + 1000 * items + rng.integers(0, 50_000, n)  # item i appears from 1000 i on
    log = "u,i,t\n" + "\n".join(f"{a},{b},{c}" for a, b, c in zip(users, items, times, strict=True))
    (tmp_path / "log.csv").write_text(log)
    feats = "item,genre\n" + "\n".join(f"{i},{'A|B' if i % 2 else 'B'}" for i in range(39))
    (tmp_path / "items.csv").write_text(feats)
    data = DataCfg(
        source="csv",
        path="log.csv",
        columns=ColumnsCfg(user="u", item="i", rating=None, timestamp="t"),
        item_features=ItemFeaturesCfg(
            source="csv", path="items.csv", attributes=("genre",), multi_valued=("genre",)
        ),
    )
    doc = Config(data=data).model_dump(mode="json")
    doc["sweep"]["configs"] = {
        "t": {"sampler": {"name": "uniform", "exclude_unreleased": True, "pool_epochs": 1}},
        "a": {"sampler": {"name": "same_attribute", "pool_epochs": 1}},
    }
    cfg, paths = from_dict(doc), Paths(tmp_path)
    ingest.run(cfg, paths)
    inter = pl.read_parquet(paths.interactions)
    write_parquet(paths.train, inter)
    write_parquet(paths.valid, inter.head(0))
    m = sample_negatives.run(cfg, paths, "t")
    pool = pl.read_parquet(paths.for_variant("t").train_pool)
    first = inter.group_by("item").agg(pl.col("timestamp").min()).sort("item")
    seen = np.full(40, np.iinfo(np.int64).max)
    seen[first["item"].to_numpy()] = first["timestamp"].to_numpy()
    train = pl.read_parquet(paths.train).select(
        "user", pl.col("item").alias("pos_item"), "timestamp"
    )
    rows = pool.join(train, on=["user", "pos_item"])
    negs = rows["neg_items"].to_numpy()
    late = seen[negs] > rows["timestamp"].to_numpy()[:, None]
    stats = m["sampler_statistics"]
    assert late.sum() <= stats["unreleased_fallback_cells"]  # only rows with nothing released
    assert 0.05 < stats["unreleased_share"] < 0.8 and stats["first_seen"] == "log"
    a = sample_negatives.run(cfg, paths, "a")["sampler_statistics"]
    assert a["family"] == "genre" and 0 < a["fallback_share"] < 0.2  # item 39 has no genre
