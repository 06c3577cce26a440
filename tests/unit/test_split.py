"""Splits: the NCF leave-one-out protocol and the temporal cutoff, on hand-built logs."""

from __future__ import annotations

import polars as pl
import pytest

from negsamp.config import SplitCfg
from negsamp.split import check_test_users, split


def _log(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": [r[0] for r in rows],
            "item": [r[1] for r in rows],
            "count": [1] * len(rows),
            "timestamp": [r[2] for r in rows],
        },
        schema={"user": pl.Int32, "item": pl.Int32, "count": pl.Int32, "timestamp": pl.Int64},
    )


LOG = _log(
    [
        (0, 5, 10),
        (0, 6, 20),
        (0, 7, 30),
        (0, 8, 40),
        (1, 1, 5),
        (1, 2, 5),
        (1, 3, 5),
        (2, 4, 1),
        (2, 9, 2),
    ]
)


def test_leave_one_out_holds_out_latest_then_next_latest() -> None:
    s = split(LOG, SplitCfg(method="leave_one_out", validation=True, min_interactions=3))
    assert s.test.select("user", "item").rows() == [(0, 8), (1, 3)]
    assert s.valid.select("user", "item").rows() == [(0, 7), (1, 2)]
    # user 2 has only 2 interactions: kept in train only, and counted
    assert sorted(s.train.select("user", "item").rows()) == [(0, 5), (0, 6), (1, 1), (2, 4), (2, 9)]
    assert s.stats["train_only_users"] == 1


def test_ties_in_time_are_broken_by_item_id() -> None:
    s = split(LOG, SplitCfg(method="leave_one_out", validation=False, min_interactions=2))
    assert (1, 3) in s.test.select("user", "item").rows()
    assert s.valid.height == 0


def test_temporal_split_uses_a_global_cutoff() -> None:
    s = split(LOG, SplitCfg(method="temporal", validation=False, temporal_cutoff=0.7))
    cutoff = s.stats["cutoff"]
    assert s.train["timestamp"].max() <= cutoff < s.test["timestamp"].min()
    assert s.test.select("user", "item").rows() == [(0, 6), (0, 7), (0, 8)]
    assert s.stats["test_rows_without_history"] == 0


# --------------------------------------------------------------------------- #14: random splits


def _untimed(n_users: int = 30, n_items: int = 40, seed: int = 0) -> pl.DataFrame:
    """A log without timestamps (ingest writes 0): users with 1..20 distinct items."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, size=int(rng.integers(1, 21)), replace=False):
            rows.append((u, int(i), 0))
    return _log(rows)


def test_random_leave_one_out_is_seeded_and_holds_out_one_item_per_user() -> None:
    df = _untimed()
    cfg = SplitCfg(method="random", validation=True, min_interactions=3)
    a, b = split(df, cfg, seed=7), split(df.sample(fraction=1.0, shuffle=True, seed=1), cfg, 7)
    for part in ("train", "valid", "test"):  # the input's row order does not matter
        assert getattr(a, part).equals(getattr(b, part))
    assert not a.test.equals(split(df, cfg, seed=8).test)
    eligible = df.group_by("user").len().filter(pl.col("len") >= 3)["user"].sort()
    assert a.test["user"].to_list() == eligible.to_list()  # exactly one per eligible user
    assert a.valid["user"].to_list() == eligible.to_list()
    held = pl.concat([a.test, a.valid]).select("user", "item")
    assert held.join(a.train, on=["user", "item"], how="inner").height == 0  # never a train item
    assert a.train.height + a.valid.height + a.test.height == df.height
    assert a.stats["method"] == "random" and a.stats["requested_method"] == "random"


def test_random_does_not_pick_the_highest_item_id() -> None:
    """#14: leave-one-out on a log without time used to hold out each user's highest id."""
    df = _untimed(n_users=200)
    s = split(df, SplitCfg(method="random", validation=False), seed=0)
    top = df.group_by("user").agg(pl.col("item").max())
    share = s.test.join(top, on=["user", "item"], how="semi").height / s.test.height
    assert share < 0.3


def test_random_holdout_takes_a_fraction_per_user() -> None:
    df = _untimed()
    cfg = SplitCfg(method="random_holdout", holdout_fraction=0.25, validation=True)
    s = split(df, cfg, seed=3)
    n = df.group_by("user").len().rename({"len": "n"})
    per = s.test.group_by("user").len().join(n, on="user")
    expected = ((per["n"] * 0.25 + 0.5).floor().clip(1, None)).clip(None, per["n"] - 2)
    assert per["len"].to_list() == expected.cast(pl.UInt32).to_list()
    assert s.valid.group_by("user").len()["len"].max() == 1
    assert s.test.join(s.train, on=["user", "item"]).height == 0
    assert s.stats["holdout_fraction"] == 0.25
    assert split(df, cfg, seed=3).test.equals(s.test)


def test_no_time_order_switches_to_random_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    df = _untimed()
    loo = split(df, SplitCfg(method="leave_one_out"), seed=1)
    assert loo.stats["method"] == "random" and loo.stats["requested_method"] == "leave_one_out"
    assert loo.stats["has_time_order"] is False
    assert loo.test.equals(split(df, SplitCfg(method="random"), seed=1).test)
    assert "no time order" in caplog.text and "random" in caplog.text
    temporal = split(df, SplitCfg(method="temporal"), seed=1)
    assert temporal.stats["method"] == "random_holdout"
    timed = split(LOG, SplitCfg(method="leave_one_out", min_interactions=3))
    assert timed.stats["method"] == "leave_one_out" and timed.stats["has_time_order"] is True


def test_too_few_test_users_are_refused_naming_the_numbers() -> None:
    # only user 0 has events after the cutoff: 1 of 3 users in test
    s = split(LOG, SplitCfg(method="temporal", validation=False, temporal_cutoff=0.7))
    assert (s.stats["test_users"], s.stats["n_users"]) == (1, 3)
    check_test_users(s.stats, 0.3, "interactions.parquet")  # 1 >= 0.9 users: fine
    with pytest.raises(
        ValueError, match=r"leaves 1 of 3 users \(33\.3%\).*min_test_user_share=0\.5"
    ):
        check_test_users(s.stats, 0.5, "interactions.parquet")


def test_split_stage_refuses_too_few_test_users(tmp_path) -> None:  # noqa: ANN001
    """#14: a temporal split that tests a single user used to pass silently."""
    from negsamp import config
    from negsamp.io import write_json
    from negsamp.paths import Paths
    from negsamp.stages import split as stage

    paths = Paths(root=tmp_path)
    paths.interactions.parent.mkdir(parents=True)
    LOG.write_parquet(paths.interactions)
    write_json(paths.validation_result, {"success": True})
    raw = {"split": {"method": "temporal", "validation": False, "temporal_cutoff": 0.7}}
    with pytest.raises(ValueError, match=r"leaves 1 of 3 users.*min_test_user_share=0\.5"):
        stage.run(
            config.from_dict(raw | {"split": raw["split"] | {"min_test_user_share": 0.5}}), paths
        )
    assert not paths.test.exists()
    assert stage.run(config.from_dict(raw), paths)["test_users"] == 1  # 1 >= 0.05 * 3
