from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from negsamp.config import SyntheticCfg
from negsamp.data.synthetic import MIN_EVENTS_PER_USER, SCHEMA, _start_unix, generate

SMALL = SyntheticCfg(n_users=50, n_items=40, n_interactions=1_000, n_tastes=4)


@pytest.fixture(scope="module")
def default_log() -> pl.DataFrame:
    return generate(SyntheticCfg(), seed=42)


def test_same_seed_gives_identical_frame() -> None:
    assert generate(SMALL, seed=7).equals(generate(SMALL, seed=7))


def test_different_seed_gives_different_frame() -> None:
    assert not generate(SMALL, seed=7).equals(generate(SMALL, seed=8))


def test_schema_and_exact_size(default_log: pl.DataFrame) -> None:
    assert default_log.schema == pl.Schema(SCHEMA)
    assert default_log.height == 200_000
    assert default_log.null_count().row(0) == (0, 0, 0, 0)


def test_raw_ids_start_at_one_and_every_user_appears(default_log: pl.DataFrame) -> None:
    assert default_log["user"].min() == 1
    assert default_log["user"].max() == 5_000
    assert default_log["user"].n_unique() == 5_000
    assert default_log["item"].min() >= 1
    assert default_log["item"].max() <= 2_000


def test_ratings_are_stars(default_log: pl.DataFrame) -> None:
    assert set(default_log["rating"].unique().to_list()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_timestamps_within_the_configured_days(default_log: pl.DataFrame) -> None:
    start = _start_unix("2025-01-01")
    assert start == 1_735_689_600
    assert default_log["timestamp"].min() >= start
    assert default_log["timestamp"].max() < start + 365 * 86_400


def test_item_popularity_is_long_tailed(default_log: pl.DataFrame) -> None:
    counts = np.sort(default_log["item"].value_counts()["count"].to_numpy())[::-1]
    top_decile_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile_share > 0.5


def test_user_activity_spans_orders_of_magnitude(default_log: pl.DataFrame) -> None:
    per_user = default_log["user"].value_counts()["count"]
    assert per_user.min() >= MIN_EVENTS_PER_USER
    assert per_user.max() / per_user.min() > 50


def test_every_user_has_min_events_even_with_flat_activity() -> None:
    cfg = SMALL.model_copy(update={"activity_sigma": 0.0, "n_interactions": 250})
    per_user = generate(cfg, seed=1)["user"].value_counts()["count"]
    assert per_user.min() == per_user.max() == 5


def test_too_few_interactions_for_the_users_is_an_error() -> None:
    cfg = SMALL.model_copy(update={"n_interactions": 249})
    with pytest.raises(ValueError, match="n_interactions=249"):
        generate(cfg, seed=1)


def test_drift_new_items_only_after_midpoint() -> None:
    cfg = SyntheticCfg(
        n_users=500, n_items=200, n_interactions=20_000, drift=0.5, new_item_share=0.1
    )
    df = generate(cfg, seed=3)
    midpoint = _start_unix(cfg.start) + cfg.days * 86_400 // 2
    new = pl.col("item") > 180  # the last 10% of ids are the new items
    assert df.filter(new & (pl.col("timestamp") < midpoint)).height == 0
    assert df.filter(new)["item"].n_unique() == 20


def test_no_drift_means_every_item_can_appear_early() -> None:
    cfg = SyntheticCfg(n_users=500, n_items=200, n_interactions=20_000, drift=0.0)
    df = generate(cfg, seed=3)
    midpoint = _start_unix(cfg.start) + cfg.days * 86_400 // 2
    early = df.filter(pl.col("timestamp") < midpoint)
    assert early.filter(pl.col("item") > 180)["item"].n_unique() == 20


def test_drift_rotates_the_popular_items() -> None:
    def head_overlap(drift: float) -> int:
        cfg = SyntheticCfg(n_users=1_000, n_items=500, n_interactions=50_000, drift=drift)
        df = generate(cfg, seed=5)
        quarter = cfg.days * 86_400 // 4
        start = _start_unix(cfg.start)

        def top(frame: pl.DataFrame) -> set[int]:
            vc = frame["item"].value_counts().sort(["count", "item"], descending=True)
            return set(vc["item"].head(50).to_list())

        first = top(df.filter(pl.col("timestamp") < start + quarter))
        last = top(df.filter(pl.col("timestamp") >= start + 3 * quarter))
        return len(first & last)

    assert head_overlap(1.0) < head_overlap(0.0)
