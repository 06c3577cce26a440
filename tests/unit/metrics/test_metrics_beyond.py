"""Beyond accuracy: popularity bands, Gini, coverage, ARP, long-tail share, novelty by hand."""

from __future__ import annotations

import numpy as np
import pytest

from negsamp.metrics import beyond


def test_item_bands_split_by_cumulative_interaction_share() -> None:
    # 100 interactions; item 1 starts after 50% (torso), item 2 after 80% (tail)
    counts = np.array([50, 30, 10, 5, 5, 0])
    assert beyond.item_bands(counts, (0.2, 0.8)).tolist() == [0, 1, 2, 2, 2, 2]
    assert beyond.item_bands(counts, (0.6, 0.95)).tolist() == [0, 0, 1, 1, 2, 2]


def test_gini_by_hand() -> None:
    assert beyond.gini(np.array([3, 0, 1, 0])) == pytest.approx(0.625)
    assert beyond.gini(np.array([2, 2, 2])) == 0.0 and beyond.gini(np.zeros(3)) == 0.0


def test_per_user_popularity_long_tail_and_novelty() -> None:
    top = np.array([[0, 1, -1], [2, 0, 1]])  # user 0 has only two candidate items
    counts, bands = np.array([4, 2, 1]), np.array([0, 1, 2], np.int8)
    v = beyond.user_metrics(top, (2, 3), counts, bands, n_users=8)
    assert v["arp_2"].tolist() == [3.0, 2.5]
    assert v["longtail_2"].tolist() == [0.0, 0.5]
    # -log2(4/8) = 1, -log2(2/8) = 2, -log2(1/8) = 3
    assert v["novelty_2"].tolist() == [1.5, 2.0]
    assert v["arp_3"].tolist() == pytest.approx([3.0, 7 / 3])  # a short list: over what it holds
    assert v["longtail_3"].tolist() == pytest.approx([0.0, 1 / 3])
    assert v["novelty_3"].tolist() == pytest.approx([1.5, 2.0])


def test_unseen_items_count_as_seen_once_for_novelty() -> None:
    v = beyond.user_metrics(np.array([[1]]), (1,), np.array([3, 0]), np.array([0, 2]), 4)
    assert v["novelty_1"].tolist() == [2.0] and v["longtail_1"].tolist() == [1.0]


def test_coverage_and_gini_of_the_lists() -> None:
    top = np.array([[0, 1, -1], [2, 0, 1]])
    c = beyond.catalog_metrics(top, (2, 3), n_items=4)
    assert c["coverage_2"] == 0.75 and c["gini_2"] == pytest.approx(6 / 16)  # counts 2,1,1,0
    assert c["coverage_3"] == 0.75 and c["gini_3"] == pytest.approx(7 / 20)  # counts 2,2,1,0
