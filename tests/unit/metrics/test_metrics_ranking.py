"""Accuracy metrics from ranks: hand-computed values, K past the list, many held-out items."""

from __future__ import annotations

import math

import numpy as np
import pytest

from negsamp.metrics.ranking import (
    full_row_metrics,
    full_user_metrics,
    ideal_dcg,
    per_user_mean,
    sampled_row_metrics,
)


def _mean(frame, name: str) -> float:
    return float(frame[name].mean())


def test_known_sampled_ranks_give_exact_hr_ndcg_mrr() -> None:
    ranks = np.array([0, 2, 9, 10])
    m = per_user_mean(np.arange(4), sampled_row_metrics(ranks, (10,)))
    assert _mean(m, "sampled_hr_10") == pytest.approx(0.75)
    assert _mean(m, "sampled_ndcg_10") == pytest.approx(
        (1 + 1 / math.log2(4) + 1 / math.log2(11)) / 4
    )
    assert _mean(m, "sampled_mrr") == pytest.approx((1 + 1 / 3 + 1 / 10 + 1 / 11) / 4)


def test_sampled_rows_of_one_user_are_averaged_before_users() -> None:
    # user 0: ranks 0 and 5; user 1: rank 1 -> HR@2 = mean(0.5, 1.0)
    m = per_user_mean(np.array([0, 0, 1]), sampled_row_metrics(np.array([0, 5, 1]), (2,)))
    assert m["sampled_hr_2"].to_list() == [0.5, 1.0]


def test_full_row_metrics_of_one_relevant_item() -> None:
    v = full_row_metrics(np.array([0, 3, 12]), (5,))
    assert v["full_recall_5"].tolist() == [1, 1, 0]
    assert v["full_precision_5"].tolist() == [0.2, 0.2, 0.0]
    assert v["full_ndcg_5"].tolist() == pytest.approx([1, 1 / math.log2(5), 0])
    assert v["full_map_5"].tolist() == pytest.approx([1, 1 / 4, 0])
    assert v["full_mrr"].tolist() == pytest.approx([1, 1 / 4, 1 / 13])


def test_full_user_metrics_with_two_held_out_items() -> None:
    # user 0: held-out items at positions 0 and 3 (2 irrelevant items above the second)
    # user 1: one held-out item at position 4
    users, below, pos = np.array([0, 0, 1]), np.array([0, 2, 4]), np.array([0, 3, 4])
    m = full_user_metrics(users, below, pos, (1, 2, 5))
    u0, u1 = m.row(0, named=True), m.row(1, named=True)
    assert (u0["full_recall_1"], u0["full_recall_2"], u0["full_recall_5"]) == (0.5, 0.5, 1.0)
    assert (u0["full_precision_1"], u0["full_precision_2"]) == (1.0, 0.5)
    assert u0["full_precision_5"] == pytest.approx(2 / 5)
    assert u0["full_ndcg_1"] == 1.0
    assert u0["full_ndcg_5"] == pytest.approx((1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert u0["full_map_2"] == pytest.approx(1 / 2)  # AP@2: (1/1) / min(2, 2)
    assert u0["full_map_5"] == pytest.approx((1 / 1 + 2 / 4) / 2)
    assert u0["full_mrr"] == 1.0
    assert (u1["full_recall_1"], u1["full_recall_5"]) == (0.0, 1.0)
    assert u1["full_precision_5"] == pytest.approx(0.2)
    assert u1["full_ndcg_5"] == pytest.approx(1 / math.log2(6))
    assert u1["full_map_5"] == pytest.approx(1 / 5) and u1["full_mrr"] == pytest.approx(1 / 5)


def test_k_larger_than_the_candidate_list() -> None:
    # 3 candidates, the held-out item last: every K >= 3 holds it; precision still divides by K
    m = full_user_metrics(np.array([0]), np.array([2]), np.array([2]), (100,))
    assert m["full_recall_100"][0] == 1.0
    assert m["full_precision_100"][0] == pytest.approx(1 / 100)
    assert m["full_ndcg_100"][0] == pytest.approx(1 / math.log2(4))
    assert m["full_map_100"][0] == pytest.approx(1 / 3)


def test_one_held_out_item_per_user_row_and_user_metrics_agree() -> None:
    rng = np.random.default_rng(0)
    ranks = rng.integers(0, 50, 30)
    users = np.arange(30)
    by_user = full_user_metrics(users, ranks, ranks, (1, 10, 20))
    by_row = per_user_mean(users, full_row_metrics(ranks, (1, 10, 20)))
    for c in by_user.columns:
        assert by_user[c].to_list() == pytest.approx(by_row[c].to_list()), c


def test_ideal_dcg() -> None:
    assert ideal_dcg(3).tolist() == pytest.approx(
        [0, 1, 1 + 1 / math.log2(3), 1 + 1 / math.log2(3) + 0.5]
    )
