"""Segments: activity bands by training count, popularity bands of held-out items."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from negsamp.metrics import segments


def test_user_bands_edges_are_cold_below_the_first_heavy_from_the_second() -> None:
    got = segments.user_bands(np.array([0, 9, 10, 49, 50, 100]), (10, 50))
    assert got.tolist() == [0, 0, 1, 1, 2, 2]


def test_table_means_cis_counts_and_empty_bands_left_out() -> None:
    per_user = pl.DataFrame(
        {"user": [0, 1, 2], "activity": ["cold", "cold", "heavy"], "m": [1.0, 0.0, 0.5]}
    )
    # user 0: two head rows (1 and 0), user 1: one head row (1) and one tail row (0)
    rows = pl.DataFrame(
        {"user": [0, 0, 1, 1], "band": ["head", "head", "head", "tail"], "m": [1.0, 0.0, 1.0, 0.0]}
    )
    t = segments.table(per_user, rows, ["m"], ["m"], 200, 0.95, seed=0)
    got = {(r["segment"], r["band"]): r for r in t.iter_rows(named=True)}
    assert set(got) == {
        ("all", "all"),
        ("user_activity", "cold"),
        ("user_activity", "heavy"),
        ("item_popularity", "head"),
        ("item_popularity", "tail"),
    }
    assert got[("all", "all")]["value"] == 0.5 and got[("all", "all")]["n_users"] == 3
    assert got[("user_activity", "cold")]["value"] == 0.5
    assert got[("user_activity", "cold")]["n_users"] == 2
    head = got[("item_popularity", "head")]
    assert head["value"] == pytest.approx((0.5 + 1.0) / 2) and head["n_users"] == 2
    assert head["ci_low"] <= head["value"] <= head["ci_high"]
    again = segments.table(per_user, rows.reverse(), ["m"], ["m"], 200, 0.95, seed=0)
    assert again.equals(t)  # row order does not change the draws
