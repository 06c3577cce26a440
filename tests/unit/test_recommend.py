"""negsamp.recommend: batch top-K of unseen items on a hand-built log (issue #13, point 3)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from negsamp.interactions import Interactions
from negsamp.recommend import summary, to_frame, top_k

SCORES = torch.tensor(
    [
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],  # seen 0, 2 -> 1, 3
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # seen 5 -> 4, 3
        [0.5, 0.9, 0.1, 0.8, 0.2, 0.3],  # seen 1, 3, 4 -> 0, 5 (then 2)
        [0.3, 0.1, 0.6, 0.2, 0.9, 0.4],  # seen 4 -> 2, 5
    ]
)
SEEN = Interactions.from_arrays(
    np.array([0, 0, 1, 2, 2, 2, 3]), np.array([0, 2, 5, 1, 3, 4, 4]), 4, 6
)
RAW_USERS = pl.Series(["a", "b", "c", "d"])
RAW_ITEMS = pl.Series([100, 101, 102, 103, 104, 105])


def _score_all(users: torch.Tensor) -> torch.Tensor:
    return SCORES[users].clone()  # a fresh tensor, as a model's score_all gives


def test_top_k_is_the_best_unseen_items_in_every_batch() -> None:
    top = top_k(_score_all, SEEN, np.arange(4), 2, "cpu", batch=3)  # two batches
    assert top.items.tolist() == [[1, 3], [4, 3], [0, 5], [2, 5]]
    assert top.scores == pytest.approx(np.array([[0.8, 0.6], [0.5, 0.4], [0.5, 0.3], [0.6, 0.4]]))
    assert top.n_short == 0
    assert not SEEN.contains(np.repeat(np.arange(4), 2), top.items.ravel().astype(np.int64)).any()
    again = top_k(_score_all, SEEN, np.arange(4), 2, "cpu", batch=1)
    assert np.array_equal(again.items, top.items) and np.array_equal(again.scores, top.scores)


def test_a_user_short_of_unseen_items_is_padded_and_its_padding_left_out() -> None:
    top = top_k(_score_all, SEEN, np.array([2]), 5, "cpu", batch=8)
    assert top.items.tolist() == [[0, 5, 2, -1, -1]] and top.n_short == 1
    assert np.isneginf(top.scores[0, 3:]).all()
    assert to_frame(top, RAW_USERS, RAW_ITEMS)["item"].to_list() == [100, 105, 102]


def test_nan_scores_rank_last_but_above_seen_items() -> None:
    def nan_scores(users: torch.Tensor) -> torch.Tensor:
        s = _score_all(users)
        s[:, 1] = float("nan")
        return s

    top = top_k(nan_scores, SEEN, np.array([0]), 4, "cpu", batch=4)
    assert top.items.tolist() == [[3, 4, 5, 1]]  # 1 (NaN) last; 0 and 2 (seen) never


def test_frame_has_original_ids_and_ranks() -> None:
    top = top_k(_score_all, SEEN, np.arange(4), 2, "cpu", batch=4)
    out = to_frame(top, RAW_USERS, RAW_ITEMS)
    assert out.columns == ["user", "rank", "item", "score", "source"]
    assert out["source"].unique().to_list() == ["model"]
    assert out["user"].to_list() == ["a", "a", "b", "b", "c", "c", "d", "d"]
    assert out["rank"].to_list() == [1, 2] * 4
    assert out["item"].to_list() == [101, 103, 104, 103, 100, 105, 102, 105]


def test_summary_coverage_and_long_tail_share() -> None:
    top = top_k(_score_all, SEEN, np.arange(4), 2, "cpu", batch=4)
    # counts 1, 1, 1, 1, 2, 1 of 7: item 4 head; 0, 1, 2, 3 torso; 5 (from 6/7 on) tail
    got = summary(top, SEEN.item_counts(), (0.2, 0.8))
    assert got == {"catalog_coverage": 1.0, "longtail_share": pytest.approx(0.25), "tail_items": 1}
    one = top_k(_score_all, SEEN, np.array([0]), 2, "cpu", batch=4)
    assert summary(one, SEEN.item_counts(), (0.2, 0.8))["catalog_coverage"] == pytest.approx(2 / 6)
