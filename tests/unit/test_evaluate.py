"""Ranking metrics: boundaries with exact values (perfect, constant, known ranks)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from negsamp import evaluate as ev
from negsamp.interactions import Interactions

KS = (1, 5, 10)


def _cands(n_users: int = 4, n_cand: int = 99) -> pl.DataFrame:
    # user u's held-out item is u; candidates are 100..100+n_cand
    negs = np.tile(np.arange(100, 100 + n_cand, dtype=np.int32), (n_users, 1))
    return pl.DataFrame(
        {
            "user": np.arange(n_users, dtype=np.int32),
            "item": np.arange(n_users, dtype=np.int32),
            "candidates": pl.Series(negs, dtype=pl.Array(pl.Int32, n_cand)),
        }
    )


def test_perfect_scorer_gets_hr_1_and_ndcg_1() -> None:
    def score(users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (items == users[:, None]).float()

    c = _cands()
    ranks = ev.sampled_ranks(score, c, torch.device("cpu"), batch=3)
    m = ev.summarize(ev.sampled_metrics(ranks, c["user"].to_numpy(), KS))
    assert m["sampled_hr_1"] == 1.0 and m["sampled_ndcg_1"] == 1.0 and m["sampled_ndcg_10"] == 1.0


def test_constant_scorer_gets_the_pessimistic_value() -> None:
    c = _cands()
    ranks = ev.sampled_ranks(lambda u, i: torch.zeros(i.shape), c, torch.device("cpu"), batch=2)
    assert ranks.tolist() == [99] * 4
    m = ev.summarize(ev.sampled_metrics(ranks, c["user"].to_numpy(), (10, 100)))
    assert m["sampled_hr_10"] == 0.0 and m["sampled_ndcg_10"] == 0.0
    assert m["sampled_hr_100"] == 1.0
    assert m["sampled_ndcg_100"] == pytest.approx(1 / math.log2(101))


def test_known_ranks_give_exact_hr_and_ndcg() -> None:
    ranks = np.array([0, 2, 9, 10])
    m = ev.summarize(ev.sampled_metrics(ranks, np.arange(4), (10,)))
    assert m["sampled_hr_10"] == pytest.approx(0.75)
    assert m["sampled_ndcg_10"] == pytest.approx((1 + 1 / math.log2(4) + 1 / math.log2(11)) / 4)


def test_full_ranking_masks_training_items_and_counts_ties_against_the_model() -> None:
    # 1 user, 6 items; scores descend with item id; items 0 and 1 are training positives
    seen = Interactions.from_arrays([0, 0], [0, 1], n_users=1, n_items=6)
    scores = torch.tensor([[6.0, 5.0, 4.0, 3.0, 3.0, 1.0]])
    test = pl.DataFrame(
        {"user": [0, 0], "item": [3, 2]}, schema={"user": pl.Int32, "item": pl.Int32}
    )
    ranks = ev.full_ranks(lambda u: scores[u], seen, test, torch.device("cpu"), batch=8)
    # item 3 ties with item 4 (pessimistic) and is beaten by item 2 -> rank 2; item 2 -> rank 0
    assert ranks.tolist() == [2, 0]
    m = ev.summarize(ev.full_metrics(ranks, test["user"].to_numpy(), (1, 2, 3)))
    assert m["full_recall_1"] == pytest.approx(0.5)
    assert m["full_recall_3"] == pytest.approx(1.0)
    # two held-out items: ideal DCG@3 = 1 + 1/log2(3)
    assert m["full_ndcg_3"] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_dense_mask_marks_exactly_the_positives() -> None:
    pos = Interactions.from_arrays([0, 1, 1, 2], [3, 0, 2, 1], n_users=3, n_items=4)
    m = ev.dense_mask(pos, np.array([2, 1]), "cpu")
    assert m.tolist() == [[False, True, False, False], [True, False, True, False]]
