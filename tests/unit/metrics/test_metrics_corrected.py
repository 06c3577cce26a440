"""Corrected sampled metrics: hand-computed estimators and the Krichene-Rendle effect."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from negsamp import evaluate as ev
from negsamp.interactions import Interactions
from negsamp.metrics import corrected
from negsamp.metrics.ranking import full_row_metrics, sampled_row_metrics


def test_transition_is_the_hypergeometric_law() -> None:
    p = corrected.transition(40, 7)
    assert p.shape == (41, 8) and p.sum(1) == pytest.approx(np.ones(41))
    r, k = 13, 3
    assert p[r, k] == pytest.approx(math.comb(r, k) * math.comb(40 - r, 7 - k) / math.comb(40, 7))
    assert corrected.transition(2, 1).ravel().tolist() == pytest.approx([1, 0, 0.5, 0.5, 0, 1])


@pytest.mark.parametrize(
    ("gamma", "expected"),
    [
        (1.0, [2 / 3, 0.0]),  # posterior mean: P(r = 0 | r~ = 0) = 1 / (1 + 1/2)
        (0.5, [11 / 15, -1 / 15]),
        (0.0, [5 / 6, -1 / 6]),  # CLS: least squares of [[1,0],[.5,.5],[0,1]] x = [1,0,0]
    ],
)
def test_kr_table_by_hand_for_two_negatives_one_sample(gamma: float, expected: list) -> None:
    recall_1 = np.array([[1.0], [0.0], [0.0]])  # M(r) at r = 0, 1, 2
    assert corrected.kr_table(recall_1, 2, 1, gamma)[:, 0].tolist() == pytest.approx(expected)


def test_posterior_mean_estimator_is_unbiased_under_its_prior() -> None:
    n, m = 300, 20
    metric = np.stack(list(full_row_metrics(np.arange(n + 1), (1, 10)).values()), 1)
    x = corrected.kr_table(metric, n, m, gamma=1.0)
    expected_estimate = corrected.transition(n, m).mean(0) @ x  # E over uniform r, then r~
    assert expected_estimate == pytest.approx(metric.mean(0))


def test_rescaled_estimator_by_hand() -> None:
    # sampled rank 1 of m = 4 candidates from N = 20 negatives -> full rank 5
    v = corrected.rescaled_rows(np.array([1, 0]), np.array([20, 20]), 4, (5, 10))
    assert v["rescaled_recall_5"].tolist() == [0.0, 1.0]
    assert v["rescaled_recall_10"].tolist() == [1.0, 1.0]
    assert v["rescaled_ndcg_10"].tolist() == pytest.approx([1 / math.log2(7), 1.0])
    assert v["rescaled_mrr"].tolist() == pytest.approx([1 / 6, 1.0])


def test_rows_with_different_catalog_sizes_use_their_own_table() -> None:
    ranks, n_neg = np.array([0, 0, 1]), np.array([2, 2, 40])
    v = corrected.kr_rows(ranks, n_neg, 1, (1,), gamma=1.0)
    assert v["bv_recall_1"][:2].tolist() == pytest.approx([2 / 3, 2 / 3])
    alone = corrected.kr_rows(ranks[2:], n_neg[2:], 1, (1,), gamma=1.0)
    assert v["bv_recall_1"][2] == pytest.approx(alone["bv_recall_1"][0])
    # more distinct catalog sizes than groups: grouped, still finite and close
    many = corrected.kr_rows(np.zeros(50, int), np.arange(100, 150), 5, (10,), 0.1, max_groups=4)
    exact = corrected.kr_rows(np.zeros(50, int), np.arange(100, 150), 5, (10,), 0.1)
    assert np.abs(many["bv_recall_10"] - exact["bv_recall_10"]).max() < 0.05


def _scores_at_ranks(ranks: np.ndarray, n_items: int, rng: np.random.Generator) -> torch.Tensor:
    """float [U, n_items]: user u's held-out item u % n_items sits at full rank ranks[u]."""
    out = np.empty((ranks.size, n_items), np.float32)
    for u, r in enumerate(ranks):
        others = rng.permutation(np.delete(np.arange(n_items), u % n_items))
        order = np.insert(others, r, u % n_items)  # best first
        out[u, order] = np.arange(n_items, 0, -1)
    return torch.from_numpy(out)


def test_krichene_rendle_effect_sampled_hr_flips_the_order_and_the_correction_restores_it() -> None:
    """Issue #5: A is better on full Recall@10, B on sampled HR@10; corrections agree with full."""
    rng = np.random.default_rng(5)
    n_users, n_items, m, ks = 400, 2001, 99, (10,)
    # A: 30% of held-out items at the very top, the rest in the bottom half
    top = rng.random(n_users) < 0.3
    ranks_a = np.where(top, 0, rng.integers(1000, 2000, n_users))
    # B: every held-out item a little below the top 10: never a full hit, nearly always sampled
    ranks_b = rng.integers(40, 121, n_users)
    users = np.arange(n_users)
    items = users % n_items
    negs = np.stack([rng.choice(np.delete(np.arange(n_items), i), m, replace=False) for i in items])
    cands = pl.DataFrame(
        {"user": users, "item": items, "candidates": pl.Series(negs, dtype=pl.Array(pl.Int64, m))}
    )
    test = pl.DataFrame({"user": users, "item": items})
    nothing = Interactions.from_arrays([], [], n_users, n_items)
    results = {}
    for name, ranks in (("A", ranks_a), ("B", ranks_b)):
        s = _scores_at_ranks(ranks, n_items, rng)
        sr = ev.sampled_ranks(lambda u, i, s=s: s[u[:, None], i], cands, "cpu", 128)
        fr = ev.full_ranking(lambda u, s=s: s[u].clone(), nothing, test, 10, "cpu", 128)
        n_neg = fr.n_negatives()
        results[name] = {
            "sampled": sampled_row_metrics(sr, ks)["sampled_hr_10"].mean(),
            "full": full_row_metrics(fr.below, ks)["full_recall_10"].mean(),
            "rescaled": corrected.rescaled_rows(sr, n_neg, m, ks)["rescaled_recall_10"].mean(),
            "bv": corrected.kr_rows(sr, n_neg, m, ks, 0.1)["bv_recall_10"].mean(),
        }
    a, b = results["A"], results["B"]
    assert a["full"] > b["full"] + 0.2  # A is the better model
    assert b["sampled"] > a["sampled"] + 0.5  # the sampled metric says the opposite
    assert a["rescaled"] > b["rescaled"] and a["bv"] > b["bv"]  # the corrections do not
    assert abs(b["bv"] - b["full"]) < 0.05 < 0.5 < abs(b["sampled"] - b["full"])
    assert abs(a["bv"] - a["full"]) < 0.1
