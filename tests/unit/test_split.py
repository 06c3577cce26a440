"""Splits: the NCF leave-one-out protocol and the temporal cutoff, on hand-built logs."""

from __future__ import annotations

import polars as pl

from negsamp.config import SplitCfg
from negsamp.split import split


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
