"""Accuracy metrics from ranks: per held-out row, and per user over all of its rows.

Row metrics take each held-out item on its own at ``rank`` (0-based) among irrelevant
items: the sampled protocol (HR@K, NDCG@K, MRR), and the full-ranking value that a
sampled rank estimates. User metrics score the user's whole full-ranking list with all
of its held-out items relevant: Recall@K = hits / held-out, Precision@K = hits / K
(K also when fewer than K items can be recommended), NDCG@K against the ideal DCG of
min(held-out, K) hits, AP@K averaged over min(held-out, K), reciprocal rank of the
first hit. With one held-out item per user (leave-one-out) the two agree.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from negsamp.metrics_names import full, sampled


def ideal_dcg(n: int) -> np.ndarray:
    """float64 [n + 1]: DCG of m hits at the top, for m = 0..n."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, n + 2)))])


def sampled_row_metrics(rank: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """float64 [R] per metric: HR@K, NDCG@K, MRR of a held-out item at sampled ``rank``."""
    rank = np.asarray(rank, np.float64)
    gain, out = 1.0 / np.log2(rank + 2.0), {}
    for k in ks:
        hit = rank < k
        out[sampled("hr", k)] = hit.astype(np.float64)
        out[sampled("ndcg", k)] = np.where(hit, gain, 0.0)
    out[sampled("mrr")] = 1.0 / (rank + 1.0)
    return out


def full_row_metrics(rank: np.ndarray, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """float64 [R] per full_ metric for one relevant item at ``rank`` (may be fractional)."""
    rank = np.asarray(rank, np.float64)
    gain, rr, out = 1.0 / np.log2(rank + 2.0), 1.0 / (rank + 1.0), {}
    for k in ks:
        hit = rank < k
        out[full("recall", k)] = hit.astype(np.float64)
        out[full("precision", k)] = hit / k
        out[full("ndcg", k)] = np.where(hit, gain, 0.0)
        out[full("map", k)] = np.where(hit, rr, 0.0)
    out[full("mrr")] = rr
    return out


def per_user_mean(users: np.ndarray, values: dict[str, np.ndarray]) -> pl.DataFrame:
    """Each value averaged over a user's rows: one row per user present, ascending."""
    users = np.asarray(users, np.int64)
    present = np.unique(users)
    n = np.bincount(users)[present]
    cols = {name: np.bincount(users, weights=v)[present] / n for name, v in values.items()}
    return pl.DataFrame({"user": present.astype(np.int32), **cols})


def full_user_metrics(
    users: np.ndarray, below: np.ndarray, position: np.ndarray, ks: tuple[int, ...]
) -> pl.DataFrame:
    """Per-user full_ metrics of a list holding all of the user's held-out rows.

    users, below, position: int [R] per held-out row (see ``evaluate.FullRanking``);
    ``position - below`` is how many of the user's held-out items rank above the row.
    """
    users = np.asarray(users, np.int64)
    position = np.asarray(position, np.int64)
    present = np.unique(users)
    n_rel = np.bincount(users)[present]
    above = position - np.asarray(below, np.int64)  # relevant items above: precision (j+1)/(pos+1)
    gain = 1.0 / np.log2(position + 2.0)
    idcg = ideal_dcg(max(ks))

    def per_user(w: np.ndarray) -> np.ndarray:
        return np.bincount(users, weights=w)[present]

    cols: dict[str, np.ndarray] = {}
    for k in ks:
        hit = position < k
        hits = per_user(hit.astype(np.float64))
        cols[full("recall", k)] = hits / n_rel
        cols[full("precision", k)] = hits / k
        cols[full("ndcg", k)] = per_user(np.where(hit, gain, 0.0)) / idcg[np.minimum(n_rel, k)]
        ap = per_user(np.where(hit, (above + 1.0) / (position + 1.0), 0.0))
        cols[full("map", k)] = ap / np.minimum(n_rel, k)
    first = np.full(users.max() + 1 if users.size else 0, np.iinfo(np.int64).max)
    np.minimum.at(first, users, position)
    cols[full("mrr")] = 1.0 / (first[present] + 1.0)
    return pl.DataFrame({"user": present.astype(np.int32), **cols})
