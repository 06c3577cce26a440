"""Negative pools: the training pool per configuration and the shared evaluation candidates.

Both are built in fixed-size chunks of rows, each with its own generator derived
from ``(seed, purpose, epoch, chunk)``, so the bytes depend only on the data, the
config and the seed: never on threads, batch size or the machine.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl
from tqdm.auto import tqdm

from negsamp.interactions import Interactions
from negsamp.samplers import Sampler
from negsamp.samplers.exact import check_capacity, uniform_excluding

log = logging.getLogger(__name__)

CHUNK = 1 << 18  # rows per generator; part of the format: changing it changes the bytes
_TRAIN, _EVAL = 1, 2


def _rng(seed: int, purpose: int, epoch: int, chunk: int) -> np.random.Generator:
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, purpose, epoch, chunk]))
    )


def training_pool(
    sampler: Sampler, train: Interactions, n_neg: int, pool_epochs: int, seed: int
) -> pl.DataFrame:
    """``n_neg`` negatives per training positive for each of ``pool_epochs`` epochs.

    Returns columns user int32, pos_item int32, epoch int16, neg_items array[int32, n_neg],
    ordered by (epoch, user, pos_item).
    """
    users = train.rows()
    pos = train.indices
    check_capacity(train, np.unique(users), n_neg, replace=True, what="training pool")
    n = users.size
    frames = []
    total = pool_epochs * ((n + CHUNK - 1) // CHUNK)
    with tqdm(total=total, desc="sample negatives", unit="chunk", disable=total < 4) as bar:
        for e in range(pool_epochs):
            negs = np.empty((n, n_neg), np.int32)
            for c, lo in enumerate(range(0, n, CHUNK)):
                hi = min(lo + CHUNK, n)
                negs[lo:hi] = sampler.sample(
                    train, users[lo:hi], pos[lo:hi], n_neg, _rng(seed, _TRAIN, e, c)
                )
                bar.update()
            frames.append(_frame(users, pos, negs, epoch=e))
    return pl.concat(frames)


def _frame(users: np.ndarray, pos: np.ndarray, negs: np.ndarray, epoch: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user": pl.Series(users, dtype=pl.Int32),
            "pos_item": pl.Series(pos, dtype=pl.Int32),
            "epoch": pl.Series(np.full(users.size, epoch, np.int16), dtype=pl.Int16),
            "neg_items": pl.Series(negs, dtype=pl.Array(pl.Int32, negs.shape[1])),
        }
    )


def eval_candidates(
    known: Interactions, test: pl.DataFrame, n_eval_neg: int, seed: int
) -> pl.DataFrame:
    """``n_eval_neg`` distinct uniform negatives per test row (the NCF protocol).

    known: every positive of every user (train, valid and test), so a candidate is never
    an item the user interacted with. Returns user int32, item int32 (the held-out item),
    candidates array[int32, n_eval_neg], in the order of ``test``.
    """
    users = test["user"].to_numpy().astype(np.int64)
    check_capacity(known, users, n_eval_neg, replace=False, what="evaluation candidates")
    negs = np.empty((users.size, n_eval_neg), np.int32)
    for c, lo in enumerate(range(0, users.size, CHUNK)):
        hi = min(lo + CHUNK, users.size)
        negs[lo:hi] = uniform_excluding(
            known, users[lo:hi], n_eval_neg, _rng(seed, _EVAL, 0, c), replace=False
        )
    return pl.DataFrame(
        {
            "user": test["user"].cast(pl.Int32),
            "item": test["item"].cast(pl.Int32),
            "candidates": pl.Series(negs, dtype=pl.Array(pl.Int32, n_eval_neg)),
        }
    )


def pool_statistics(negs: np.ndarray, train: Interactions) -> dict[str, Any]:
    """How popular the drawn negatives are, against the catalog (for the manifest)."""
    counts = train.item_counts()
    drawn = np.bincount(negs.ravel(), minlength=train.n_items)
    p = drawn / max(drawn.sum(), 1)
    return {
        "distinct_items": int((drawn > 0).sum()),
        "mean_train_count_of_negatives": float(counts[negs.ravel()].mean()) if negs.size else 0.0,
        "mean_train_count_of_items": float(counts.mean()),
        "entropy": float(-(p[p > 0] * np.log(p[p > 0])).sum()),
        "max_item_share": float(p.max()) if p.size else 0.0,
    }
