"""Ranking metrics, vectorized in torch and batched so memory stays bounded.

Sampled protocol (NCF): the held-out item is ranked among its fixed candidates;
ties count against the model (rank = number of candidates scoring >= the item),
so a constant scorer gets HR@K = 0, never 1.

Full ranking: each held-out item is ranked against every item the user has not
trained on (training and validation positives are masked), again pessimistically.
With several held-out items per user, recall@K = hits / n_held_out and NDCG@K uses
the ideal DCG of min(n_held_out, K) hits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import torch

from negsamp.interactions import Interactions
from negsamp.metrics_names import full, sampled

Scorer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
AllScorer = Callable[[torch.Tensor], torch.Tensor]


def dense_mask(pos: Interactions, users: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """bool [B, n_items]: True where (users[b], i) is a positive."""
    users = np.asarray(users, np.int64)
    starts, ends = pos.indptr[users], pos.indptr[users + 1]
    lens = ends - starts
    rows = np.repeat(np.arange(users.size), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    cols = pos.indices[np.repeat(starts, lens) + offs]
    m = torch.zeros((users.size, pos.n_items), dtype=torch.bool, device=device)
    m[
        torch.as_tensor(rows, device=device), torch.as_tensor(cols.astype(np.int64), device=device)
    ] = True
    return m


def sampled_ranks(
    score: Scorer, cands: pl.DataFrame, device: torch.device, batch: int
) -> np.ndarray:
    """int64 [n_rows]: pessimistic rank of each held-out item among its candidates."""
    users = cands["user"].to_numpy().astype(np.int64)
    items = cands["item"].to_numpy().astype(np.int64)
    negs = cands["candidates"].to_numpy().astype(np.int64)
    out = np.empty(users.size, np.int64)
    with torch.no_grad():
        for lo in range(0, users.size, batch):
            sl = slice(lo, lo + batch)
            u = torch.as_tensor(users[sl], device=device)
            it = torch.as_tensor(np.concatenate([items[sl, None], negs[sl]], axis=1), device=device)
            s = score(u, it).float()
            out[sl] = (s[:, 1:] >= s[:, :1]).sum(1).cpu().numpy()
    return out


def full_ranks(
    score_all: AllScorer, mask: Interactions, test: pl.DataFrame, device: torch.device, batch: int
) -> np.ndarray:
    """int64 [n_rows]: pessimistic rank of each held-out item among the user's unmasked items."""
    users = test["user"].to_numpy().astype(np.int64)
    items = test["item"].to_numpy().astype(np.int64)
    out = np.empty(users.size, np.int64)
    with torch.no_grad():
        for lo in range(0, users.size, batch):
            sl = slice(lo, lo + batch)
            u = torch.as_tensor(users[sl], device=device)
            s = score_all(u).float()
            s.masked_fill_(dense_mask(mask, users[sl], device), float("-inf"))
            it = torch.as_tensor(items[sl], device=device)
            target = s.gather(1, it[:, None])
            # the item itself scores >= itself: subtract it
            out[sl] = ((s >= target).sum(1) - 1).cpu().numpy()
    return out


def _per_user_mean(users: np.ndarray, values: dict[str, np.ndarray]) -> pl.DataFrame:
    """Average each value over a user's held-out rows: one row per user present, sorted."""
    users = users.astype(np.int64)
    present = np.unique(users)
    n = np.bincount(users)[present]
    cols = {name: np.bincount(users, weights=v)[present] / n for name, v in values.items()}
    return pl.DataFrame({"user": present.astype(np.int32), **cols})


def sampled_metrics(ranks: np.ndarray, users: np.ndarray, ks: tuple[int, ...]) -> pl.DataFrame:
    """Per-user HR@K and NDCG@K from sampled ranks (mean over the user's held-out rows)."""
    gain = 1.0 / np.log2(ranks + 2.0)
    vals = {}
    for k in ks:
        hit = ranks < k
        vals[sampled("hr", k)] = hit.astype(np.float64)
        vals[sampled("ndcg", k)] = np.where(hit, gain, 0.0)
    return _per_user_mean(users, vals)


def full_metrics(ranks: np.ndarray, users: np.ndarray, ks: tuple[int, ...]) -> pl.DataFrame:
    """Per-user Recall@K and NDCG@K from the full-ranking ranks of every held-out row."""
    users = users.astype(np.int64)
    present = np.unique(users)
    n_test = np.bincount(users)[present]
    gain = 1.0 / np.log2(ranks + 2.0)
    # ideal DCG of m hits: sum_{j < m} 1 / log2(j + 2)
    disc = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, max(ks) + 2)))])
    cols = {}
    for k in ks:
        hit = ranks < k
        hits = np.bincount(users, weights=hit.astype(np.float64))[present]
        dcg = np.bincount(users, weights=np.where(hit, gain, 0.0))[present]
        cols[full("recall", k)] = hits / n_test
        cols[full("ndcg", k)] = dcg / disc[np.minimum(n_test, k)]
    return pl.DataFrame({"user": present.astype(np.int32), **cols})


def summarize(per_user: pl.DataFrame) -> dict[str, float]:
    """Headline metrics: the mean over users of every metric column."""
    return {c: float(per_user[c].mean()) for c in per_user.columns if c != "user"}
